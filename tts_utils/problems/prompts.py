"""Policy prompts: system prompts per family, step splitting, and chat-template continuation.

The instructions are the ones the paper's code uses (compute-optimal-tts, ``cot_prompt_dict`` in
src/reason/evaluation/evaluate.py, borrowed from OpenR): Meta's official math prompt for Llama-3.x,
and the Qwen2.5-Math prompt for Qwen2.5 and the DeepSeek-R1 distills. Llama and Qwen get theirs as a
system turn; the R1 distills get no system turn and the instruction appended to the user turn,
``question + "\n" + instruction`` (``build_query_str`` in the paper's src/envs/base_env.py, as
DeepSeek's model card asks: "all instructions should be contained within the user prompt").

A partial solution is continued by rendering the chat up to the assistant's turn (the generation
prompt) and appending the steps verbatim. This is exactly the context in which the model produced
those steps, and it keeps every "\\n\\n" intact. Rendering the steps as an assistant message
(``continue_final_message=True``) is not equivalent: Llama-3's template applies ``|trim`` to message
content, which drops the trailing "\\n\\n" of the last step, and DeepSeek-R1's template renders past
assistant turns differently from the generation prompt.
"""

from __future__ import annotations

# Steps are separated by a blank line (docs/DESIGN.md, "Search methods"); tts_utils.models.policy re-exports it.
STEP_SEPARATOR = "\n\n"

# Meta's official math prompt (Llama-3.1/3.2/3.3 evals), verbatim from the paper's code.
LLAMA3_MATH_SYSTEM_PROMPT = (
    "Solve the following math problem efficiently and clearly:\n\n"
    "- For simple problems (2 steps or fewer):\n"
    "Provide a concise solution with minimal explanation.\n\n"
    "- For complex problems (3 steps or more):\n"
    "Use this step-by-step format:\n\n"
    "## Step 1: [Concise description]\n"
    "[Brief explanation and calculations]\n\n"
    "## Step 2: [Concise description]\n"
    "[Brief explanation and calculations]\n\n"
    "...\n\n"
    "Regardless of the approach, always conclude with:\n\n"
    "Therefore, the final answer is: $\\boxed{answer}$. I hope it is correct.\n\n"
    "Where [answer] is just the final number or expression that solves the problem."
)

QWEN_MATH_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."

# Keys are models.PROMPT_FAMILIES. None: no system turn (the tiny world's template has none).
SYSTEM_PROMPTS: dict[str, str | None] = {
    "llama3": LLAMA3_MATH_SYSTEM_PROMPT,
    "qwen2.5": QWEN_MATH_SYSTEM_PROMPT,
    "deepseek-r1": None,  # its instruction goes in the user turn (USER_INSTRUCTIONS)
    "tiny": None,
}
# Families whose instruction follows the question in the user turn, after a newline.
USER_INSTRUCTIONS: dict[str, str] = {
    "deepseek-r1": QWEN_MATH_SYSTEM_PROMPT,  # the paper's cot_prompt_dict['deepseek-r1']
}


def first_stop(text: str, stops) -> tuple[int, str] | None:
    """(end index, stop string) of the stop string that occurs first in ``text``, or None."""
    best = None
    for s in stops or ():
        i = text.find(s)
        if i != -1 and (best is None or i < best[0]):
            best = (i, s)
    return None if best is None else (best[0] + len(best[1]), best[1])


def system_prompt(family: str) -> str | None:
    try:
        return SYSTEM_PROMPTS[family]
    except KeyError:
        raise KeyError(f"unknown prompt family {family!r}; known: {', '.join(SYSTEM_PROMPTS)}") from None


def split_steps(text: str, sep: str = STEP_SEPARATOR) -> list[str]:
    """Split a solution into steps at ``sep``, keeping the separator at the end of each step, so that
    ``"".join(split_steps(text)) == text``. The last step has no separator unless the text ends with
    one. Runs of newlines stay inside one step ("a\\n\\n\\nb" -> ["a\\n\\n", "\\nb"]), as generation
    would have cut them: a step ends at the first separator."""
    steps = []
    start = 0
    while (i := text.find(sep, start)) != -1:
        steps.append(text[start:i + len(sep)])
        start = i + len(sep)
    if start < len(text):
        steps.append(text[start:])
    return steps


def chat_messages(question: str, family: str) -> list[dict[str, str]]:
    """The conversation before the assistant's answer: system prompt (if the family has one) + user
    (the question, followed by the family's instruction where it goes there)."""
    sys_prompt = system_prompt(family)
    messages = [] if sys_prompt is None else [{"role": "system", "content": sys_prompt}]
    instruction = USER_INSTRUCTIONS.get(family)
    messages.append({"role": "user", "content": question if instruction is None else f"{question}\n{instruction}"})
    return messages


def build_prompt(tokenizer, question: str, steps: list[str], family: str) -> str:
    """The text prompt that makes the policy continue the partial solution ``steps``.

    It is the chat template rendered with the generation prompt (the assistant header), followed by
    the steps verbatim, with no end-of-turn token: the result ends exactly with ``"".join(steps)``.
    The template's own special tokens (BOS included) are in the text, so backends must tokenize it
    with ``add_special_tokens=False``.
    """
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no chat template")
    head = tokenizer.apply_chat_template(chat_messages(question, family), tokenize=False,
                                         add_generation_prompt=True)
    return head + "".join(steps)


__all__ = ["STEP_SEPARATOR", "LLAMA3_MATH_SYSTEM_PROMPT", "QWEN_MATH_SYSTEM_PROMPT", "SYSTEM_PROMPTS", "USER_INSTRUCTIONS",
           "build_prompt", "chat_messages", "split_steps", "system_prompt"]

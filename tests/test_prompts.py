"""System prompts, step splitting, and continuing a partial solution through real chat templates."""

import hashlib

import pytest
from _tiny_lm import make_tokenizer

from tts_utils.problems.prompts import (
    LLAMA3_MATH_SYSTEM_PROMPT,
    QWEN_MATH_SYSTEM_PROMPT,
    SYSTEM_PROMPTS,
    USER_INSTRUCTIONS,
    build_prompt,
    chat_messages,
    split_steps,
)

# The shape of Llama-3.1-Instruct's template (tools left out): BOS, a system header with the knowledge
# and today dates, then every message's content through |trim, and the assistant header as the
# generation prompt.
LLAMA31_TEMPLATE = """{{- bos_token }}
{%- if not date_string is defined %}{%- set date_string = "26 Jul 2024" %}{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- for message in messages %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}"""

# The shape of Qwen2.5-Instruct's template: no BOS, a default system turn, content kept verbatim.
QWEN25_TEMPLATE = """{%- if messages[0]['role'] == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
{%- else %}
    {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant") %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}"""

QUESTION = "What is $1+2\\cdot 3$?"
STEPS = ["## Step 1: Multiply\n$2\\cdot 3 = 6$\n\n", "## Step 2: Add\n$1 + 6 = 7$\n\n"]


@pytest.fixture(scope="module")
def llama_tok():
    return make_tokenizer(LLAMA31_TEMPLATE, eos="<|eot_id|>", bos="<|begin_of_text|>")


@pytest.fixture(scope="module")
def qwen_tok():
    return make_tokenizer(QWEN25_TEMPLATE, eos="<|im_end|>", bos=None)


def test_system_prompts_are_the_papers():
    p = LLAMA3_MATH_SYSTEM_PROMPT
    assert p.startswith("Solve the following math problem efficiently and clearly:\n\n- For simple problems")
    assert "Therefore, the final answer is: $\\boxed{answer}$. I hope it is correct.\n\n" in p
    assert p.endswith("Where [answer] is just the final number or expression that solves the problem.")
    assert "## Step 1: [Concise description]\n[Brief explanation and calculations]\n\n## Step 2:" in p
    assert p.count("\\") == 1 and p == p.strip()
    # sha256 of cot_prompt_dict['llama_official'] in the paper's src/reason/evaluation/evaluate.py.
    assert len(p) == 577
    assert hashlib.sha256(p.encode()).hexdigest() == "fba6765edf2162ae50990853a7f310103b685c72d9b4434cccec28371f005dae"
    assert QWEN_MATH_SYSTEM_PROMPT == "Please reason step by step, and put your final answer within " + "\\" + "boxed{}."
    assert SYSTEM_PROMPTS["llama3"] == p
    assert SYSTEM_PROMPTS["qwen2.5"] == USER_INSTRUCTIONS["deepseek-r1"] == QWEN_MATH_SYSTEM_PROMPT
    assert SYSTEM_PROMPTS["deepseek-r1"] is None
    assert SYSTEM_PROMPTS["tiny"] is None


@pytest.mark.parametrize("text, steps", [
    ("", []),
    ("no separator", ["no separator"]),
    ("a\n\nb", ["a\n\n", "b"]),
    ("a\n\nb\n\n", ["a\n\n", "b\n\n"]),
    ("a\nb\n\n\\boxed{3}", ["a\nb\n\n", "\\boxed{3}"]),
    ("a\n\n\nb", ["a\n\n", "\nb"]),          # the first "\n\n" ends the step, as generation cuts it
    ("\n\n\n\n", ["\n\n", "\n\n"]),
])
def test_split_steps(text, steps):
    assert split_steps(text) == steps
    assert "".join(split_steps(text)) == text


def test_llama_continuation_keeps_separator_that_the_template_trims(llama_tok):
    prompt = build_prompt(llama_tok, QUESTION, STEPS, "llama3")
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n" + "".join(STEPS))
    assert prompt.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n")
    assert prompt.count("<|begin_of_text|>") == 1
    assert LLAMA3_MATH_SYSTEM_PROMPT + "<|eot_id|>" in prompt
    assert "<|start_header_id|>user<|end_header_id|>\n\n" + QUESTION + "<|eot_id|>" in prompt
    assert prompt.count("<|eot_id|>") == 2  # system and user turns closed, the assistant turn open
    # Why not continue_final_message: Llama's |trim drops the last step's "\n\n".
    messages = [{"role": "system", "content": LLAMA3_MATH_SYSTEM_PROMPT}, {"role": "user", "content": QUESTION},
                {"role": "assistant", "content": "".join(STEPS)}]
    continued = llama_tok.apply_chat_template(messages, tokenize=False, continue_final_message=True)
    assert continued == prompt.removesuffix("\n\n")


def test_qwen_continuation_matches_continue_final_message(qwen_tok):
    prompt = build_prompt(qwen_tok, QUESTION, STEPS, "qwen2.5")
    assert prompt == ("<|im_start|>system\n" + QWEN_MATH_SYSTEM_PROMPT + "<|im_end|>\n<|im_start|>user\n" + QUESTION
                      + "<|im_end|>\n<|im_start|>assistant\n" + "".join(STEPS))
    # Where the template keeps content verbatim, both ways of continuing agree.
    messages = [{"role": "system", "content": QWEN_MATH_SYSTEM_PROMPT}, {"role": "user", "content": QUESTION},
                {"role": "assistant", "content": "".join(STEPS)}]
    assert qwen_tok.apply_chat_template(messages, tokenize=False, continue_final_message=True) == prompt


def test_no_steps_is_the_generation_prompt(qwen_tok, llama_tok):
    assert build_prompt(qwen_tok, QUESTION, [], "qwen2.5").endswith(QUESTION + "<|im_end|>\n<|im_start|>assistant\n")
    assert build_prompt(llama_tok, QUESTION, [], "llama3").endswith("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")


def test_r1_distills_get_the_instruction_in_the_user_turn_and_no_system_turn():
    # As the paper's build_query_str does for 'deepseek-r1' models (and DeepSeek's model card asks).
    assert chat_messages(QUESTION, "deepseek-r1") == [
        {"role": "user", "content": QUESTION + "\n" + QWEN_MATH_SYSTEM_PROMPT}]
    assert chat_messages(QUESTION, "qwen2.5") == [{"role": "system", "content": QWEN_MATH_SYSTEM_PROMPT},
                                                  {"role": "user", "content": QUESTION}]


def test_tiny_family_has_no_system_turn(llama_tok):
    prompt = build_prompt(llama_tok, "1+2", ["1+2=3\n\n"], "tiny")
    assert "system" not in prompt.split("<|start_header_id|>user")[1]
    # Llama's template still writes its (empty) system header: that is the template's doing, not a prompt.
    assert LLAMA3_MATH_SYSTEM_PROMPT not in prompt and QWEN_MATH_SYSTEM_PROMPT not in prompt
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n1+2=3\n\n")


def test_clear_errors(qwen_tok):
    with pytest.raises(KeyError, match="unknown prompt family 'mistral'"):
        build_prompt(qwen_tok, QUESTION, [], "mistral")
    bare = make_tokenizer(chat_template=None)
    bare.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        build_prompt(bare, QUESTION, [], "qwen2.5")

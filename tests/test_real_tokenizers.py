"""The paper world's input formats on the real tokenizers of its models (offline).

The tokenizer files live in ``<repo>/../shared/data/tokenizers`` (see their SOURCES.md), never in
the repository; every test here skips where that folder is absent (a user's clone). The models
behind the PRM classes are tiny random ones with the real vocabulary size (the formats only need
the tokenizer; one ``score`` per format checks the whole path runs).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import (
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForTokenClassification,
)

from tts_utils.models.prm import MathShepherdPRM, QwenPRM, RLHFlowPRM, SkyworkPRM
from tts_utils.models.value_head import Qwen2ValueHeadConfig, Qwen2ValueHeadModel
from tts_utils.problems.prompts import (
    LLAMA3_MATH_SYSTEM_PROMPT,
    QWEN_MATH_SYSTEM_PROMPT,
    build_prompt,
    chat_messages,
)

TOKENIZERS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "tokenizers"
pytestmark = pytest.mark.skipif(not TOKENIZERS.is_dir(),
                                reason=f"real tokenizers not found at {TOKENIZERS} (../shared is not part of the repo)")

QUESTION = "Find $x$ if $2x + 3 = 11$."
# Steps as a policy writes them: "\n\n" after each, inner newlines in the second.
STEPS = ["Subtract 3 from both sides: $2x = 8$.\n\n",
         "Divide by 2:\n$$x = 4.$$\nCheck: $2 \\cdot 4 + 3 = 11$.\n\n",
         "The final answer is $\\boxed{4}$."]


@pytest.fixture(scope="module")
def tok():
    """Each real tokenizer, loaded once. qwen2.5-math-prm ships only its config: it is read beside
    qwen2.5's vocabulary and merges (links in a temporary folder, nothing copied into the repo)."""
    cache = {}

    def load(name: str, tmp_factory=None):
        if name not in cache:
            path = TOKENIZERS / name
            if name == "qwen2.5-math-prm":
                path = tmp_factory.mktemp("qwen-prm-tokenizer")
                (path / "tokenizer_config.json").symlink_to(TOKENIZERS / name / "tokenizer_config.json")
                for f in ("vocab.json", "merges.txt"):
                    (path / f).symlink_to(TOKENIZERS / "qwen2.5" / f)
            cache[name] = AutoTokenizer.from_pretrained(path)
        return cache[name]
    return load


def tiny(config_cls, model_cls, tokenizer, **kw):
    # Grouped-query attention (2 heads, 1 KV head), as in the real models.
    torch.manual_seed(0)
    config = config_cls(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024, **kw)
    return model_cls(config)


def check_scores(prm, positions):
    scores = prm.score([QUESTION], [STEPS])[0]
    assert len(scores.rewards) == len(STEPS) == len(positions)
    assert all(0 <= r <= 1 for r in scores.rewards)


# ---- PRM formats -------------------------------------------------------------------------------

def test_math_shepherd_on_mistral(tok):
    t = tok("mistral-7b-v0.1")
    prm = MathShepherdPRM(tiny(MistralConfig, MistralForCausalLM, t), t)
    assert (prm.tag_id, prm.good_id, prm.bad_id) == (12902, 648, 387)
    assert t.encode("+ -") == [1, 648, 387]  # the model card's candidate tokens: encode("+ -")[1:]
    ids, positions = prm.encode(QUESTION, STEPS)
    assert ids[0] == t.bos_token_id == 1 and ids.count(1) == 1
    assert [ids[p] for p in positions] == [12902] * len(STEPS)  # one ки per step, read at the ки
    assert [i for i, x in enumerate(ids) if x == 12902] == positions
    check_scores(prm, positions)


def test_rlhflow_on_llama31_plus_by_reserved_token_equals_plain_text(tok):
    t = tok("llama-3.1")
    prm = RLHFlowPRM(tiny(LlamaConfig, LlamaForCausalLM, t), t)
    assert (prm.good_id, prm.bad_id) == (10, 12)
    ids, positions = prm.encode(QUESTION, STEPS)
    conversation = []
    for k, step in enumerate(STEPS):
        conversation.append({"role": "user", "content": f"{QUESTION} {step.strip()}" if k == 0 else step.strip()})
        conversation.append({"role": "assistant", "content": "+"})
    text = t.apply_chat_template(conversation, tokenize=False)
    assert "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024" in text  # the real 3.1 template
    # The route of the paper's code: <|reserved_special_token_0|> (one token, 128002) as each
    # assistant turn, then that id replaced by "+"'s.
    reserved = t.apply_chat_template([{**m, "content": "<|reserved_special_token_0|>"} if m["role"] == "assistant"
                                      else m for m in conversation], tokenize=False)
    routed = [10 if x == 128002 else x for x in t.encode(reserved, add_special_tokens=False)]
    direct = t.encode(text, add_special_tokens=False)
    assert ids == routed == direct
    assert ids[0] == 128000 and ids.count(128000) == 1  # the template's BOS, once
    assert [ids[p + 1] for p in positions] == [10] * len(STEPS)  # each read position predicts its "+"
    assert [ids[p + 2] for p in positions] == [128009] * len(STEPS)  # followed by <|eot_id|>
    assert [t.decode(ids[p]) for p in positions] == ["\n\n"] * len(STEPS)  # RLHFlow's position -3
    check_scores(prm, positions)


def test_qwen_prm_extra_0_is_one_token(tok, tmp_path_factory):
    t = tok("qwen2.5-math-prm", tmp_path_factory)
    assert t.encode("<extra_0>", add_special_tokens=False) == [151651]
    assert t.encode("a<extra_0>b", add_special_tokens=False)[1] == 151651  # never merged with its neighbours
    prm = QwenPRM(tiny(Qwen2Config, Qwen2ForTokenClassification, t, num_labels=2), t)
    assert prm.step_id == 151651
    ids, positions = prm.encode(QUESTION, STEPS)
    assert [i for i, x in enumerate(ids) if x == 151651] == positions and len(positions) == len(STEPS)
    text = t.decode(ids)
    assert text.startswith(f"<|im_start|>system\n{QWEN_MATH_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n{QUESTION}")
    assert "Divide by 2:\n$$x = 4.$$\nCheck" in text  # inner newlines kept
    check_scores(prm, positions)


def test_skywork_on_plain_qwen25_prepends_im_start_as_skyworks_tokenizer_does(tok):
    t = tok("qwen2.5")
    assert t.bos_token is None  # Qwen2.5's own tokenizer has no BOS
    prm = SkyworkPRM(tiny(Qwen2ValueHeadConfig, Qwen2ValueHeadModel, t), t)
    ids, positions = prm.encode(QUESTION, STEPS)
    assert ids[0] == 151644 and t.decode(ids[:1]) == "<|im_start|>"
    newline = t.encode("\n", add_special_tokens=False)
    assert newline == [198] and prm.step_tag_id == 198
    # Skywork's prepare_input, written out: encode(bos + question + "\n"), then per step its own
    # encoding and the "\n" id (our steps are stripped and their inner newlines made spaces).
    expected = t.encode("<|im_start|>" + QUESTION + "\n", add_special_tokens=False)
    read = []
    for step in STEPS:
        expected += t.encode(step.strip().replace("\n", " "), add_special_tokens=False) + [198]
        read.append(len(expected) - 1)
    assert ids == expected and positions == read
    check_scores(prm, positions)


# ---- policy prompts ------------------------------------------------------------------------------

def test_llama3_prompt_with_the_real_template_continues_the_assistant_turn(tok):
    t = tok("llama-3.1")
    prompt = build_prompt(t, QUESTION, STEPS[:2], "llama3")
    head = build_prompt(t, QUESTION, [], "llama3")
    assert prompt == head + STEPS[0] + STEPS[1]  # every "\n\n" kept, no end of turn
    assert head.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                           "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
                           + LLAMA3_MATH_SYSTEM_PROMPT + "<|eot_id|>")
    assert head.endswith(f"<|start_header_id|>user<|end_header_id|>\n\n{QUESTION}<|eot_id|>"
                         "<|start_header_id|>assistant<|end_header_id|>\n\n")
    ids = t(prompt, add_special_tokens=False)["input_ids"]
    assert ids[0] == 128000 and ids.count(128000) == 1
    # The prompt's token count is the head's plus the steps' (no token spans the boundary), and
    # the template's own tokenization gives the head.
    head_ids = t(head, add_special_tokens=False)["input_ids"]
    templated = t.apply_chat_template(chat_messages(QUESTION, "llama3"), tokenize=True, add_generation_prompt=True)
    templated = templated["input_ids"] if hasattr(templated, "keys") else templated
    assert head_ids == list(templated)
    assert len(ids) == len(head_ids) + len(t(STEPS[0] + STEPS[1], add_special_tokens=False)["input_ids"])
    assert ids[len(head_ids):] == t(STEPS[0] + STEPS[1], add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("family", ["qwen2.5", "deepseek-r1"])
def test_qwen_prompts_with_the_real_template(tok, family):
    t = tok("qwen2.5")
    prompt = build_prompt(t, QUESTION, STEPS[:1], family)
    if family == "qwen2.5":
        assert prompt.startswith(f"<|im_start|>system\n{QWEN_MATH_SYSTEM_PROMPT}<|im_end|>\n"
                                 f"<|im_start|>user\n{QUESTION}<|im_end|>\n")
    else:  # R1 distills: no system turn of ours, the instruction after the question
        # (Qwen's template then writes its default system turn; R1's own template writes none.)
        assert f"<|im_start|>user\n{QUESTION}\n{QWEN_MATH_SYSTEM_PROMPT}<|im_end|>\n" in prompt
        assert QWEN_MATH_SYSTEM_PROMPT not in prompt.split("<|im_start|>user")[0]
    assert prompt.endswith("<|im_start|>assistant\n" + STEPS[0])
    ids = t(prompt, add_special_tokens=False)["input_ids"]
    assert ids[0] == 151644 and t.decode(ids) == prompt  # round trip: the step's "\n\n" survives

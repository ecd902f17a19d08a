"""PRM input formats, checked offline on tiny random models of each real architecture.

Each format gets a tokenizer carrying the real special tokens (a byte-level BPE with no merges,
so any text tokenizes) and, where the format is a chat, a template shaped like the real one.
Each class is checked against a slow reference written here independently from strings: one
forward pass per step prefix, reading the last relevant position.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import (
    AutoModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForTokenClassification,
)

from tts_utils.models import grouped_attention
from tts_utils.models.catalog import get_model
from tts_utils.models.prm import (
    PRM_CLASSES,
    MathShepherdPRM,
    QwenPRM,
    RLHFlowPRM,
    SkyworkPRM,
    StepScores,
    TransformersPRM,
    load_prm,
)
from tts_utils.models.value_head import Qwen2ValueHeadConfig, Qwen2ValueHeadModel, load_value_head_model

# Chat templates shaped like Meta's Llama-3.1 and Qwen2.5 ones, shared with the tiny world's PRMs.
from tts_utils.tinyworld.tokenizer import LLAMA31_TEMPLATE, QWEN25_TEMPLATE

QUESTION = "What is (2 + 3) * 4?"
STEPS = ["First, 2 + 3 = 5.\n\n", "Then\n5 * 4 = 20.\n\n", "So the answer is $\\boxed{20}$."]
SHORT = ["It is \\boxed{20}."]
LONG = [f"Step {k}: add {k} to the total.\n\n" for k in range(7)]


def byte_tokenizer(special: list[str], plain: list[str] = (), bos_first: bool = False, template=None,
                   **named) -> PreTrainedTokenizerFast:
    """Byte-level BPE without merges (every byte one token) plus the given tokens."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tk = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens(special)
    tk.add_tokens(list(plain))
    if bos_first:  # like Mistral's tokenizer: encode() starts with BOS
        bos = named["bos_token"]
        tk.post_processor = processors.TemplateProcessing(single=f"{bos} $A",
                                                          special_tokens=[(bos, tk.token_to_id(bos))])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, **named)
    if template is not None:
        tok.chat_template = template
    return tok


def small(config_cls, tok, **kw):
    # initializer_range 0.5: random weights that give clearly different rewards per position.
    base = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                initializer_range=0.5, pad_token_id=None)
    return config_cls(**{**base, **kw})


def build(fmt: str, **config_kw):
    """(prm, model, tokenizer) for a format, with a fixed seed."""
    torch.manual_seed(0)
    if fmt == "math-shepherd":
        tok = byte_tokenizer(["<s>", "</s>"], plain=["ки"], bos_first=True, bos_token="<s>", eos_token="</s>")
        model = MistralForCausalLM(small(MistralConfig, tok, **config_kw))
        return MathShepherdPRM(model, tok), model, tok
    if fmt == "rlhflow":
        tok = byte_tokenizer(["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                              "<|eot_id|>"], template=LLAMA31_TEMPLATE, bos_token="<|begin_of_text|>",
                             eos_token="<|eot_id|>")
        model = LlamaForCausalLM(small(LlamaConfig, tok, **config_kw))
        return RLHFlowPRM(model, tok), model, tok
    if fmt == "skywork":
        tok = byte_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], template=QWEN25_TEMPLATE,
                             bos_token="<|endoftext|>", eos_token="<|im_end|>", pad_token="<|endoftext|>")
        model = Qwen2ValueHeadModel(small(Qwen2ValueHeadConfig, tok, **config_kw))
        return SkyworkPRM(model, tok), model, tok
    if fmt == "qwen-prm":
        tok = byte_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<extra_0>"], template=QWEN25_TEMPLATE,
                             eos_token="<|im_end|>", pad_token="<|endoftext|>")
        model = Qwen2ForTokenClassification(small(Qwen2Config, tok, num_labels=2, **config_kw))
        return QwenPRM(model, tok), model, tok
    raise AssertionError(fmt)


FORMATS = ["math-shepherd", "rlhflow", "skywork", "qwen-prm"]


@pytest.fixture(scope="module", params=FORMATS)
def world(request):
    return (request.param, *build(request.param))


# ---- slow references: one forward per step prefix, built from strings ---------------------------

def _ids(tok, text, special=False):
    return tok.encode(text, add_special_tokens=special)


@torch.inference_mode()
def reference(fmt, model, tok, question, steps) -> list[float]:
    model.eval()
    plus, minus = tok.convert_tokens_to_ids("+"), tok.convert_tokens_to_ids("-")
    clean = [s.strip() for s in steps]
    out = []
    for k in range(1, len(steps) + 1):
        if fmt == "math-shepherd":
            ids = _ids(tok, question + " " + " ки\n".join(clean[:k]) + " ки", special=True)
            assert tok.decode(ids[-1:]) == "ки"
            logits = model(torch.tensor([ids])).logits[0, -1]
            out.append(logits[[plus, minus]].softmax(-1)[0].item())
        elif fmt == "rlhflow":
            conv = []
            for j, s in enumerate(clean[:k]):
                conv += [{"role": "user", "content": f"{question} {s}" if j == 0 else s},
                         {"role": "assistant", "content": "+"}]
            ids = _ids(tok, tok.apply_chat_template(conv, tokenize=False))
            assert tok.decode(ids[-2:]) == "+<|eot_id|>"
            logits = model(torch.tensor([ids])).logits[0, -3]  # RLHFlow's own read position
            out.append(logits[[plus, minus]].softmax(-1)[0].item())
        elif fmt == "skywork":
            text = "<|endoftext|>" + question + "\n" + "".join(s.replace("\n", " ") + "\n" for s in clean[:k])
            value = model(torch.tensor([_ids(tok, text)])).logits[0, -1]
            out.append(torch.sigmoid(value).item())
        else:
            msgs = [{"role": "system", "content": QwenPRM.SYSTEM}, {"role": "user", "content": question},
                    {"role": "assistant", "content": "".join(s + "<extra_0>" for s in clean[:k])}]
            ids = _ids(tok, tok.apply_chat_template(msgs, tokenize=False))
            last = max(i for i, t in enumerate(ids) if t == tok.convert_tokens_to_ids("<extra_0>"))
            out.append(model(torch.tensor([ids])).logits[0, last].softmax(-1)[1].item())
    return out


# ---- (a) positions ---------------------------------------------------------------------------------

def test_read_positions_are_the_step_ends(world):
    fmt, prm, _, tok = world
    ids, pos = prm.encode(QUESTION, STEPS)
    assert len(pos) == len(STEPS) and pos == sorted(pos) and pos[-1] < len(ids)
    dec = [tok.decode([i]) for i in ids]
    clean = [s.strip() for s in STEPS]
    starts = [None] + [p + 1 for p in pos[:-1]]
    for k, (p, step) in enumerate(zip(pos, clean, strict=True)):
        if fmt == "math-shepherd":
            assert dec[p] == "ки" and dec[p - 1] == " "
            before = tok.decode(ids[1:p]) if k == 0 else tok.decode(ids[starts[k]:p])
            assert before == (f"{QUESTION} {step} " if k == 0 else f"\n{step} ")
        elif fmt == "rlhflow":
            # p predicts the assistant "+" at p + 1, which closes the turn.
            assert dec[p + 1] == "+" and dec[p + 2] == "<|eot_id|>"
            assert tok.decode(ids[:p + 1]).endswith(
                f"{QUESTION if k == 0 else ''}{' ' if k == 0 else ''}{step}<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n")
        elif fmt == "skywork":
            assert dec[p] == "\n"
            if k == 0:
                assert tok.decode(ids[:p]) == f"<|endoftext|>{QUESTION}\n{step.replace(chr(10), ' ')}"
            else:
                assert tok.decode(ids[starts[k]:p]) == step.replace("\n", " ")
        else:
            assert dec[p] == "<extra_0>"
            if k == 0:
                assert tok.decode(ids[:p]).endswith(f"<|im_start|>assistant\n{step}")
            else:
                assert tok.decode(ids[starts[k]:p]) == step
    if fmt == "math-shepherd":
        assert ids[0] == tok.bos_token_id  # the model card's encode() keeps BOS
    if fmt == "rlhflow":
        assert tok.decode(ids).startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>")
        assert len(ids) == len(_ids(tok, tok.apply_chat_template(
            [m for s in STEPS for m in ({"role": "user", "content": s}, {"role": "assistant", "content": "+"})],
            tokenize=False))) + len(_ids(tok, QUESTION + " "))


def test_rlhflow_training_labels_put_plus_or_minus():
    prm, _, tok = build("rlhflow")
    ids, pos = prm.encode(QUESTION, STEPS, labels=[True, False, True])
    assert [tok.decode([ids[p + 1]]) for p in pos] == ["+", "-", "+"]
    assert prm.encode(QUESTION, STEPS)[1] == pos
    with pytest.raises(ValueError, match="labels"):
        prm.encode(QUESTION, STEPS, labels=[True])


# ---- (b) equal to the slow reference; (c) independent of the batch ---------------------------------

def test_scores_match_one_forward_per_prefix(world):
    fmt, prm, model, tok = world
    [got] = prm.score([QUESTION], [STEPS])
    want = reference(fmt, model, tok, QUESTION, STEPS)
    assert got.rewards == pytest.approx(want, abs=1e-5)
    assert all(0.0 <= r <= 1.0 for r in got.rewards)
    assert max(want) - min(want) > 1e-3  # the check could tell a wrong position from a right one
    assert got.num_tokens == len(prm.encode(QUESTION, STEPS)[0])


def test_scores_do_not_depend_on_padding_or_batch(world):
    _, prm, _, _ = world
    alone = prm.score([QUESTION], [STEPS])[0]
    qs, sols = ["Q: 1+1?", QUESTION, "What is 20?", QUESTION], [LONG, STEPS, SHORT, STEPS[:2]]
    for bs in (1, 2, 8):
        prm.batch_size = bs
        batch = prm.score(qs, sols)
        assert batch[1].rewards == pytest.approx(alone.rewards, abs=1e-5)
        assert batch[1].num_tokens == alone.num_tokens
        assert batch[3].rewards == pytest.approx(alone.rewards[:2], abs=1e-5)  # prefix: causal
        assert [len(s.rewards) for s in batch] == [len(LONG), 3, 1, 2]
    prm.batch_size = 8


def test_identical_inputs_run_once_and_score_the_same(world):
    _, prm, _, _ = world
    prm.share_prefixes = False  # count whole inputs only (prefix sharing is tested below)
    before = prm.tokens_processed
    got = prm.score([QUESTION, "Q: 1+1?", QUESTION, QUESTION], [STEPS, SHORT, list(STEPS), STEPS[:2]])
    ran = prm.tokens_processed - before
    prm.share_prefixes = True
    n = len(prm.encode(QUESTION, STEPS)[0])
    assert got[0] == got[2] and got[2].num_tokens == n  # the copy still counts its own tokens
    assert ran == sum(s.num_tokens for s in got) - n     # ... but runs once
    assert got[0].rewards == pytest.approx(prm.score([QUESTION], [STEPS])[0].rewards, abs=1e-6)


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_siblings_share_their_prefix_and_score_as_alone(world, batch_size):
    """A search's children (same question and steps, different last step) run their common input
    prefix once; every reward equals a full forward of that solution alone (1e-5)."""
    _, prm, _, _ = world
    last = ["So the answer is $\\boxed{20}$.", "Then 20 + 0 = 20.\n\n", "Hmm.", "So it is 21, \\boxed{21}."]
    family = [STEPS[:2] + [x] for x in last]
    qs = [QUESTION] * 4 + ["Q: 1+1?", QUESTION]
    sols = family + [SHORT, STEPS[:1]]
    prm.batch_size = batch_size
    try:
        prm.share_prefixes = False
        before = prm.tokens_processed
        full = prm.score(qs, sols)
        ran_full = prm.tokens_processed - before
        prm.share_prefixes = True
        before = prm.tokens_processed
        shared = prm.score(qs, sols)
        ran_shared = prm.tokens_processed - before
    finally:
        prm.batch_size, prm.share_prefixes = 8, TransformersPRM.share_prefixes
    for a, b in zip(shared, full, strict=True):
        assert a.num_tokens == b.num_tokens  # the FLOPs count is unchanged
        assert a.rewards == pytest.approx(b.rewards, abs=1e-5)
    ids = [prm.encode(QUESTION, s)[0] for s in family]
    common = next(k for k in range(len(ids[0])) if len({tuple(x[:k + 1]) for x in ids}) > 1)
    assert common >= prm.min_shared_prefix
    assert ran_full - ran_shared == 3 * common  # the prefix ran once instead of four times


def test_next_round_runs_only_the_childrens_new_tokens_and_scores_as_alone(world):
    """A search's next round scores children of paths scored in the previous call: each family
    runs on its parent's kept cache (a lone child too), only the tokens after the parent's input,
    and every reward equals a full forward of that solution alone (1e-5)."""
    _, prm, _, _ = world
    parents = [STEPS[:2], STEPS[:1] + ["Then 5 * 4 is 20.\n\n"]]
    children = [parents[0] + [x] for x in ("So \\boxed{20}.", "Hmm.", "It is 21.")] + [parents[1] + ["Done."]]
    qs = [QUESTION] * len(children)
    prm.share_prefixes = False
    alone = prm.score(qs, children)
    prm.share_prefixes = True
    try:
        prm.score([QUESTION] * 2, parents)  # round 1: kept
        before = prm.tokens_processed
        got = prm.score(qs, children)       # round 2: on the kept caches
        ran = prm.tokens_processed - before
        prm.score([QUESTION], [SHORT])      # any other call replaces what is kept
        assert set(prm._kept) <= {(QUESTION, tuple(s.strip() for s in SHORT))}
    finally:
        prm._kept = {}
    for a, b in zip(got, alone, strict=True):
        assert a.num_tokens == b.num_tokens
        assert a.rewards == pytest.approx(b.rewards, abs=1e-5)

    def shared(a, b):
        return next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))

    held = []
    for parent, family in ((parents[0], children[:3]), (parents[1], children[3:])):
        p_ids = prm.encode(QUESTION, parent)[0]
        ids = [prm.encode(QUESTION, c)[0] for c in family]
        held += [min(shared(p_ids, x) for x in ids)] * len(family)
    assert min(held) >= len(prm.encode(QUESTION, STEPS[:1])[0]) - 8  # most of the parent is reused
    assert ran == sum(g.num_tokens for g in got) - sum(held)


@pytest.mark.parametrize("fmt", FORMATS)
def test_grouped_key_value_heads_score_as_transformers_sdpa(fmt):
    """On CPU a PRM runs attention on its grouped key/value heads (no copy per query head); its
    rewards equal those of transformers' own sdpa attention, which repeats the heads, for whole
    solutions with padding, a family sharing its prefix, and a next round on kept caches."""
    parents = [STEPS[:2], STEPS[:1] + ["Then 5 * 4 is 20.\n\n"]]
    children = [parents[0] + [x] for x in ("So \\boxed{20}.", "Hmm.", "It is 21.")] + [parents[1] + ["Done."]]
    calls = [([QUESTION, "Q: 1+1?", QUESTION], [LONG, SHORT, STEPS]), ([QUESTION] * 2, parents),
             ([QUESTION] * len(children), children)]
    rewards = {}
    for attn in (grouped_attention.NAME, "sdpa"):
        prm, model, _ = build(fmt)  # the same seed: the same weights
        assert model.config._attn_implementation == grouped_attention.NAME
        model.set_attn_implementation(attn)
        rewards[attn] = [[s.rewards for s in prm.score(qs, sols)] for qs, sols in calls]
    for got, want in zip(rewards[grouped_attention.NAME], rewards["sdpa"], strict=True):
        for a, b in zip(got, want, strict=True):
            assert a == pytest.approx(b, abs=1e-6)
    _, model, _ = build(fmt, num_key_value_heads=4)  # one key/value head per query head: nothing to do
    assert model.config._attn_implementation == "sdpa"


def test_grouped_attention_hands_a_model_moved_off_the_cpu_to_transformers_sdpa(monkeypatch):
    """A PRM switched on CPU and moved to a GPU afterwards must not send its masked grouped heads to
    torch's slow GPU math kernel: off the CPU the attention is transformers' own sdpa (checked on
    the meta device, which has no kernels)."""
    import transformers.integrations.sdpa_attention as sdpa

    calls = []
    monkeypatch.setattr(sdpa, "sdpa_attention_forward", lambda *a, **k: calls.append(a[1].device.type) or ("ok", None))
    q = torch.zeros(1, 4, 3, 8, device="meta")
    kv = torch.zeros(1, 2, 3, 8, device="meta")
    assert grouped_attention._grouped_sdpa(None, q, kv, kv, None)[0] == "ok"
    assert calls == ["meta"]
    q, kv = torch.zeros(1, 4, 3, 8), torch.zeros(1, 2, 3, 8)
    out, _ = grouped_attention._grouped_sdpa(None, q, kv, kv, None)
    assert calls == ["meta"] and out.shape == (1, 3, 4, 8)  # on CPU it runs itself


@pytest.mark.parametrize("case", ["unknown head", "short sliding window"])
def test_siblings_run_whole_where_sharing_is_not_known_to_be_exact(case):
    if case == "unknown head":  # e.g. the real remote-code Qwen2ForProcessRewardModel
        prm, _, _ = build("qwen-prm")
        prm._head = lambda hidden: (_ for _ in ()).throw(NotImplementedError)
    else:  # a window shorter than the inputs: the cache would not keep the whole prefix
        prm, _, _ = build("math-shepherd", sliding_window=16)
    family = [STEPS[:2] + [x] for x in ("Hmm.", "So \\boxed{20}.")]
    before = prm.tokens_processed
    got = prm.score([QUESTION] * 2, family)
    assert prm.tokens_processed - before == sum(g.num_tokens for g in got)  # nothing shared
    prm.share_prefixes = False
    assert [g.rewards for g in got] == [g.rewards for g in prm.score([QUESTION] * 2, family)]


def test_zero_steps_give_empty_rewards_and_others_are_untouched(world):
    _, prm, _, _ = world
    empty, full = prm.score(["Q?", QUESTION], [[], STEPS])
    assert empty == StepScores(rewards=[], num_tokens=0)
    assert full.rewards == pytest.approx(prm.score([QUESTION], [STEPS])[0].rewards, abs=1e-6)


def test_bad_calls_are_clear_errors(world):
    _, prm, _, _ = world
    with pytest.raises(ValueError, match="2 questions but 1 solutions"):
        prm.score(["a", "b"], [STEPS])
    with pytest.raises(TypeError, match="list of steps"):
        prm.score([QUESTION], ["one string, not steps"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_too_long_is_an_error_not_a_truncation(fmt):
    prm, _, _ = build(fmt, max_position_embeddings=300)
    long_steps = ["1 + 1 = 2. " * 20 + "\n\n"] * 2
    assert len(prm.encode(QUESTION, long_steps)[0]) > 300
    with pytest.raises(ValueError, match=r"max_position_embeddings \(300\)"):
        prm.score([QUESTION, QUESTION], [STEPS, long_steps])
    assert len(prm.score([QUESTION], [STEPS])[0].rewards) == 3  # a short one still fits


# ---- special tokens missing -> error at construction ------------------------------------------------

def test_missing_special_tokens_fail_at_construction():
    _, ms_model, _ = build("math-shepherd")
    no_tag = byte_tokenizer(["<s>"], bos_token="<s>")  # "ки" is two bytes here, not a token
    with pytest.raises(ValueError, match="'ки' as a single token"):
        MathShepherdPRM(ms_model, no_tag)

    _, q_model, _ = build("qwen-prm")
    no_extra = byte_tokenizer(["<|im_start|>", "<|im_end|>"], template=QWEN25_TEMPLATE)
    with pytest.raises(ValueError, match="<extra_0>"):
        QwenPRM(q_model, no_extra)
    no_template = byte_tokenizer(["<extra_0>"])
    with pytest.raises(ValueError, match="no chat template"):
        QwenPRM(q_model, no_template)

    _, l_model, _ = build("rlhflow")
    with pytest.raises(ValueError, match="no chat template"):
        RLHFlowPRM(l_model, byte_tokenizer(["<|eot_id|>"]))

    _, s_model, _ = build("skywork")
    with pytest.raises(ValueError, match="bos_token"):
        SkyworkPRM(s_model, byte_tokenizer(["<|im_end|>"]))


def test_step_containing_the_tag_is_an_error():
    prm, _, _ = build("math-shepherd")
    with pytest.raises(ValueError, match="found 3 step tags"):
        prm.encode(QUESTION, ["a ки b", "c"])
    qprm, _, _ = build("qwen-prm")
    with pytest.raises(ValueError, match="found 3 <extra_0>"):
        qprm.encode(QUESTION, ["a<extra_0>b", "c"])


# ---- loading -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_load_prm_from_a_local_dir(fmt, tmp_path):
    prm, model, tok = build(fmt)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded = load_prm(get_model(str(tmp_path), kind="prm", prm_format=fmt))
    assert type(loaded) is PRM_CLASSES[fmt] and not loaded.model.training
    want = prm.score([QUESTION, "Q?"], [STEPS, SHORT])
    got = loaded.score([QUESTION, "Q?"], [STEPS, SHORT])
    assert next(loaded.model.parameters()).dtype == torch.float64  # the CPU default (see load_prm)
    for g, w in zip(got, want, strict=True):  # float64 against the float32 original
        assert g.rewards == pytest.approx(w.rewards, abs=1e-5) and g.num_tokens == w.num_tokens
    # a path plus prm_format works too; a path without it is an error naming what is missing
    assert type(load_prm(str(tmp_path), prm_format=fmt)) is PRM_CLASSES[fmt]
    with pytest.raises(ValueError, match="prm_format"):
        load_prm(str(tmp_path))


def test_load_prm_device_and_dtype(tmp_path, monkeypatch):
    """Without a device a PRM goes where the policy goes (the GPU if one is visible; here the CPU,
    in float64); a dtype may be named by a string, as a grid config's prm_options name it."""
    import tts_utils.models.catalog

    prm, model, tok = build("skywork")
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    asked = []
    monkeypatch.setattr(tts_utils.models.catalog, "default_device", lambda: asked.append(1) or "cpu")
    loaded = load_prm(str(tmp_path), prm_format="skywork")
    assert asked and next(loaded.model.parameters()).device.type == "cpu"
    assert next(loaded.model.parameters()).dtype == torch.float64
    as32 = load_prm(str(tmp_path), prm_format="skywork", dtype="float32")
    assert next(as32.model.parameters()).dtype == torch.float32
    with pytest.raises(ValueError, match="unknown dtype 'float33'"):
        load_prm(str(tmp_path), prm_format="skywork", dtype="float33")


def test_load_prm_rejects_policies():
    with pytest.raises(ValueError, match="not a prm"):
        load_prm("Qwen2.5-7B-Instruct")


def test_value_head_has_skywork_names_and_autoloads(tmp_path):
    _, model, _ = build("skywork")
    keys = set(model.state_dict())
    assert {"v_head.summary.weight", "v_head.summary.bias", "model.embed_tokens.weight"} <= keys
    assert model.state_dict()["v_head.summary.weight"].shape == (1, 32)
    model.save_pretrained(tmp_path)
    auto = AutoModel.from_pretrained(tmp_path)  # registered model_type
    assert type(auto) is Qwen2ValueHeadModel
    x = torch.tensor([[1, 2, 3, 4]])
    with torch.inference_mode():
        assert torch.allclose(auto.eval()(x).logits, model.eval()(x).logits)


def _real_layout_checkpoint(model, path, with_head=True):
    """A checkpoint laid out like Skywork's: a qwen2 config and Qwen2ForCausalLM keys + v_head.*."""
    sd = {k: v.clone() for k, v in model.state_dict().items() if with_head or not k.startswith("v_head.")}
    sd["lm_head.weight"] = torch.zeros(model.config.vocab_size, model.config.hidden_size)
    save_file(sd, str(path / "model.safetensors"), metadata={"format": "pt"})
    cfg = {k: v for k, v in model.config.to_dict().items() if k not in ("model_type", "architectures")}
    Qwen2Config(**cfg, architectures=["Qwen2ForCausalLM"]).save_pretrained(path)
    assert json.loads((path / "config.json").read_text())["model_type"] == "qwen2"


def test_value_head_loads_a_skywork_layout_checkpoint(tmp_path):
    _, model, _ = build("skywork")
    _real_layout_checkpoint(model, tmp_path)
    loaded = load_value_head_model(str(tmp_path)).eval()
    x = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.inference_mode():
        assert torch.allclose(loaded(x).logits, model.eval()(x).logits)

    (tmp_path / "nohead").mkdir()
    _real_layout_checkpoint(model, tmp_path / "nohead", with_head=False)
    with pytest.raises(ValueError, match="v_head"):
        load_value_head_model(str(tmp_path / "nohead"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_loaded_scores_are_the_same_bytes_for_any_batch_and_thread_count(fmt, tmp_path):
    # The grid cache keys a unit by its inputs, not by how it was batched or how many threads ran
    # it, so a rerun or a resume on another machine must score to the same bits. In float32,
    # batch size changed about one reward in five by up to 6e-7 (and 2 threads vs 1 a few),
    # enough to flip a PRM-Max winner between near-tied candidates and move a figure's point.
    _, model, tok = build(fmt)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    prm = load_prm(str(tmp_path), prm_format=fmt)  # the study's CPU default dtype
    qs = [QUESTION, "Q: 1+1?", QUESTION, "What is 20?", QUESTION, QUESTION]
    sols = [STEPS, LONG, STEPS[:2], SHORT, [*STEPS[:2], "So it is 21.\n\n"], LONG[:3]]
    threads = torch.get_num_threads()
    runs = []
    try:
        for n_threads, batch_size, share, order in [(1, 8, True, None), (2, 8, True, None), (1, 1, True, None),
                                                    (1, 3, False, None), (2, 2, True, [5, 3, 1, 0, 4, 2])]:
            torch.set_num_threads(n_threads)
            prm.batch_size, prm.share_prefixes = batch_size, share
            idx = order or list(range(len(qs)))
            scored = prm.score([qs[i] for i in idx], [sols[i] for i in idx])
            runs.append([scored[idx.index(i)].rewards for i in range(len(qs))])
    finally:
        torch.set_num_threads(threads)
    assert all(r == runs[0] for r in runs[1:]), [[a for a, b in zip(r, runs[0], strict=True) if a != b]
                                                 for r in runs[1:]]

"""TransformersPolicy against a tiny random Llama with a character-level tokenizer (one token per
character, so token counts can be read off the text).

A random model rarely emits "\\n\\n" or EOS by itself; to force each finish reason, the tests bias
the logits of chosen tokens through an lm_head bias (see _tiny_lm.make_model).
"""

import numpy as np
import pytest
import torch
from _tiny_lm import MULTI, SPECIAL, make_model, make_tokenizer

from tts_utils.models.decoder import sample_tokens, seed_keys, seeded_uniforms
from tts_utils.models.policy import Generation, SamplingParams, TransformersPolicy, load_policy

EOT = "<|eot_id|>"
# The random model may emit special tokens (counted, but not in the text, as with vLLM's
# skip_special_tokens) and multi-character tokens; tests that count tokens from the text forbid both.
QUIET = {t: -100.0 for t in SPECIAL + MULTI if t != EOT}


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer()


@pytest.fixture(scope="module")
def prompts(tok):
    def chat(q):
        return tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
    # Different lengths, so batches are left-padded.
    return [chat("1+2=?"), chat("12*(3+4)-5=?") + "12*7=84\n\n", chat("7?")]


def policy(tok, batch_size=8, **model_kw):
    return TransformersPolicy(make_model(tok, **model_kw), tok, "tiny", name="tiny-test", batch_size=batch_size)


def n_chars_tokens(tok, text):
    return len(tok(text, add_special_tokens=False)["input_ids"])


def test_stop_after_separator_kept_and_counted(tok, prompts):
    pol = policy(tok, bias={**QUIET, "\n": 1.5, EOT: -100})
    gens = pol.generate(prompts * 6, SamplingParams(max_tokens=20), seeds=list(range(18)))
    reasons = {g.finish_reason for g in gens}
    assert reasons == {"stop", "length"}, reasons  # the bias makes both happen among 18 samples
    for g in gens:
        assert g.num_tokens == n_chars_tokens(tok, g.text)  # one token per character, nothing lost
        if g.finish_reason == "stop":
            assert g.text.endswith("\n\n") and g.text.index("\n\n") == len(g.text) - 2
        else:
            assert g.num_tokens == 20 and "\n\n" not in g.text


def test_stop_inside_a_token_cuts_text_but_counts_the_token(tok, prompts):
    pol = policy(tok, bias={"7\n\n8": 20.0})  # a single token that runs past the separator
    [g] = pol.generate(prompts[:1], SamplingParams(temperature=0, max_tokens=10), seeds=[0])
    assert g == Generation("7\n\n", 1, "stop")


def test_eos_finish(tok, prompts):
    pol = policy(tok, bias={EOT: 20.0})
    assert pol.generate(prompts, SamplingParams(max_tokens=10), seeds=[1, 2, 3]) == [Generation("", 1, "eos")] * 3
    # EOS after some text: counted as a token, absent from the text.
    pol = policy(tok, bias={**QUIET, EOT: 2.0}, scale=0.3)
    gens = pol.generate(prompts * 4, SamplingParams(max_tokens=60, stop=None), seeds=list(range(12)))
    eos = [g for g in gens if g.finish_reason == "eos"]
    assert eos and any(g.text for g in eos)
    for g in eos:
        assert g.num_tokens == n_chars_tokens(tok, g.text) + 1 and EOT not in g.text


def test_generation_config_eos_ids_also_end(tok, prompts):
    model = make_model(tok, bias={"<|im_end|>": 20.0})
    model.generation_config.eos_token_id = [tok.convert_tokens_to_ids(EOT), tok.convert_tokens_to_ids("<|im_end|>")]
    pol = TransformersPolicy(model, tok, "tiny")
    assert pol.generate(prompts[:1], SamplingParams(max_tokens=5), seeds=[0]) == [Generation("", 1, "eos")]


def test_length_finish(tok, prompts):
    pol = policy(tok, bias={**QUIET, EOT: -100})
    for g in pol.generate(prompts, SamplingParams(max_tokens=7, stop=None), seeds=[1, 2, 3]):
        assert g.finish_reason == "length" and g.num_tokens == 7 and len(g.text) == 7


def test_seed_fixes_a_sample_whatever_the_batch(tok, prompts):
    pol = policy(tok, bias={"\n": 2.0, EOT: 1.0})
    params = SamplingParams(temperature=0.8, max_tokens=30)
    a, b, c = prompts
    ref = pol.generate([a, b, c], params, seeds=[11, 22, 33])
    assert len({g.finish_reason for g in ref + pol.generate([a] * 8, params, list(range(8)))}) >= 2
    pol.batch_size = 2  # other chunks, other padding, other companions
    mixed = pol.generate([c, a, b, a, b], params, seeds=[33, 11, 5, 7, 22])
    assert [mixed[1], mixed[4], mixed[0]] == ref
    pol.batch_size = 1
    assert pol.generate([b], params, seeds=[22]) == [ref[1]]


def test_repeated_prompts_are_prefilled_once_and_sample_as_alone(tok, prompts):
    pol = policy(tok, bias={"\n": 2.0, EOT: 1.0})
    params = SamplingParams(temperature=0.8, max_tokens=30)
    a, b, c = prompts
    batch = [a, b, a, a, c, b, a]
    seeds = [1, 2, 3, 4, 5, 6, 1]
    calls = []
    net = pol.decoder.net
    forward = net.forward
    net.forward = lambda ids, *args: calls.append(ids.shape) or forward(ids, *args)
    got = pol.generate(batch, params, seeds)
    del net.forward
    assert calls[0][0] == 3  # one prefill row per distinct prompt
    assert got[0] == got[6] and len({g.text for g in got[:4]}) > 1  # same seed same text; others differ
    pol.batch_size = 1
    assert got == [pol.generate([p], params, [sd])[0] for p, sd in zip(batch, seeds, strict=True)]


def test_next_round_prefills_only_new_tokens_and_samples_as_a_fresh_decoder(tok, prompts):
    """A search's next round prompts with a kept row (one that ended at a stop string) plus what
    follows it: only the new tokens are prefilled, on the kept cache, and every sample equals a
    fresh decoder's, whatever else shares the batch (rows on kept caches of different lengths,
    and a row with none: the columns between them are padding)."""
    pol = policy(tok, bias={"\n": 2.5, EOT: -100.0})
    params = SamplingParams(temperature=0.8, max_tokens=12, stop=("\n\n",))
    first = pol.generate(prompts, params, seeds=[4, 5, 6])
    stopped = [p + g.text for p, g in zip(prompts, first, strict=True) if g.finish_reason == "stop"]
    assert len(stopped) >= 2, [g.finish_reason for g in first]
    batch = stopped + [prompts[0] + "x", stopped[0]]  # the third extends no kept row
    seeds = [7, 8, 9, 10][:len(batch)]
    # new buffers start as garbage (torch.empty): NaN here, so a masked column left unwritten shows
    net = pol.decoder.net
    new_cache = net.new_cache

    def nan_cache(*args):
        cache = new_cache(*args)
        cache.kv.fill_(float("nan"))
        return cache

    net.new_cache = nan_cache
    before = pol.decoder.prefilled_tokens
    reused = pol.generate(batch, params, seeds)
    ran = pol.decoder.prefilled_tokens - before
    del net.new_cache
    pol.decoder._kept = {}
    fresh = pol.generate(batch, params, seeds)
    assert reused == fresh
    lengths = [n_chars_tokens(tok, x) for x in batch]
    # distinct prompts run once: the kept ones only their last token, the other one whole
    assert ran == len(stopped) + lengths[len(stopped)]
    assert pol.decoder.prefilled_tokens - before - ran == sum(lengths[:len(stopped) + 1])
    # a call without stop strings (whole solutions) keeps nothing
    pol.generate(prompts[:1], SamplingParams(temperature=0.8, max_tokens=5, stop=None), [1])
    assert pol.decoder._kept == {}


def test_different_seeds_differ(tok, prompts):
    pol = policy(tok, scale=0.3, bias={EOT: -100})
    gens = pol.generate(prompts[:1] * 8, SamplingParams(temperature=1.0, max_tokens=20, stop=None), seeds=list(range(8)))
    assert len({g.text for g in gens}) == 8


def test_greedy_equals_model_generate_with_left_padding(tok, prompts):
    model = make_model(tok, bias={EOT: -100})
    pol = TransformersPolicy(model, tok, "tiny")
    ours = pol.generate(prompts, SamplingParams(temperature=0, max_tokens=25, stop=None), seeds=[1, 2, 3])
    tok.padding_side = "left"
    enc = tok(prompts, add_special_tokens=False, padding=True, return_tensors="pt")
    out = model.generate(**enc, do_sample=False, max_new_tokens=25, pad_token_id=tok.pad_token_id)
    theirs = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert [g.text for g in ours] == theirs
    # Greedy is deterministic, ignores seeds, and a short prompt gives the same alone as padded.
    assert pol.generate(prompts[2:], SamplingParams(temperature=0, max_tokens=25, stop=None), seeds=[9]) == ours[2:]
    # With the separator as stop, the greedy text is the unconstrained one cut after the first "\n\n".
    stopped = pol.generate(prompts, SamplingParams(temperature=0, max_tokens=25), seeds=[1, 2, 3])
    for s, g in zip(stopped, ours, strict=True):
        assert g.text.startswith(s.text)
        assert s.finish_reason == ("stop" if "\n\n" in g.text else "length")


def test_context_limit(tok, prompts):
    pol = policy(tok, max_positions=64, bias={EOT: -100})
    long_prompt = prompts[0] + "x" * 30
    n = n_chars_tokens(tok, long_prompt)
    assert n < 64
    [g] = pol.generate([long_prompt], SamplingParams(max_tokens=100, stop=None), seeds=[0])
    assert g.finish_reason == "length" and g.num_tokens == 64 - n  # capped by the context, not max_tokens
    with pytest.raises(ValueError, match=r"prompt 1 has \d+ tokens; tiny-test allows at most 64"):
        pol.generate([prompts[0], prompts[0] + "x" * 64], SamplingParams(), seeds=[0, 1])


def test_bad_arguments(tok, prompts):
    pol = policy(tok)
    with pytest.raises(ValueError, match="2 prompts but 1 seeds"):
        pol.generate(prompts[:2], SamplingParams(), seeds=[0])
    with pytest.raises(ValueError, match="temperature"):
        pol.generate(prompts[:1], SamplingParams(temperature=-1), seeds=[0])
    with pytest.raises(TypeError, match="tuple of strings"):
        pol.generate(prompts[:1], SamplingParams(stop="\n\n"), seeds=[0])
    with pytest.raises(KeyError, match="unknown prompt family"):
        TransformersPolicy(make_model(tok), tok, "llama2")
    assert pol.generate([], SamplingParams(), seeds=[]) == []


def test_sampler_follows_the_distribution():
    p = torch.tensor([0.5, 0.3, 0.15, 0.05])
    n = 20000
    keys = seed_keys(list(range(n)))
    logits = p.log().expand(n, 4)

    def freq(temperature, top_p):
        return torch.bincount(sample_tokens(logits, keys, 3, temperature, top_p), minlength=4).float() / n

    assert torch.allclose(freq(1.0, 1.0), p, atol=0.015)
    assert torch.allclose(freq(1.0, 0.7), torch.tensor([0.625, 0.375, 0, 0]), atol=0.015)  # nucleus {0, 1}
    sharp = p**2 / (p**2).sum()  # temperature 0.5 squares the probabilities
    assert torch.allclose(freq(0.5, 1.0), sharp, atol=0.015)
    assert (sample_tokens(logits[:5], keys[:5], 0, 0.0, 1.0) == 0).all()


def test_seeded_uniforms():
    keys = seed_keys([0, 1, 2**64 + 1, -1])
    assert keys[1] == keys[2] and len(set(keys.tolist())) == 3  # seeds are taken modulo 2**64
    u0, u1 = seeded_uniforms(keys, 0), seeded_uniforms(keys, 1)
    assert (u0 != u1).all() and ((u0 >= 0) & (u0 < 1)).all()
    assert np.array_equal(u0, seeded_uniforms(keys, 0))
    many = seeded_uniforms(seed_keys(range(100000)), 7)
    assert abs(many.mean() - 0.5) < 0.005 and abs((many < 0.1).mean() - 0.1) < 0.005


def test_load_policy_from_local_dir(tok, prompts, tmp_path):
    model = make_model(tok)
    model.lm_head.bias = None  # a stock LlamaForCausalLM head, so the saved model reloads as one
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    pol = load_policy(str(tmp_path), family="tiny", device="cpu")
    assert isinstance(pol, TransformersPolicy) and pol.family == "tiny"
    params = SamplingParams(max_tokens=12, stop=None)
    assert pol.generate(prompts, params, [1, 2, 3]) == TransformersPolicy(model, tok, "tiny").generate(prompts, params, [1, 2, 3])
    assert pol.build_prompt("1+2=?", ["1+2=3\n\n"]) == prompts[0] + "1+2=3\n\n"
    with pytest.raises(ValueError, match="family"):
        load_policy(str(tmp_path))
    with pytest.raises(ValueError, match="unknown backend"):
        load_policy(str(tmp_path), backend="tgi", family="tiny")


def test_an_architecture_the_decoder_does_not_run_fails_clearly(tok):
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=4, n_positions=64)).eval()
    with pytest.raises(ValueError, match="model_type 'gpt2'"):
        TransformersPolicy(model, tok, "tiny")


def _family_model(tok, kind: str, seed: int = 0):
    """A random 2-layer model of each architecture the decoder runs, with grouped-query attention
    (4 query heads on 2 or 1 KV heads), Qwen2's projection biases and Llama 3's rotary scaling."""
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        MistralConfig,
        MistralForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    torch.manual_seed(seed)
    common = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, max_position_embeddings=256, pad_token_id=tok.pad_token_id,
                  eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)
    if kind == "llama3":
        config = LlamaConfig(**common, num_key_value_heads=1, rope_parameters={
            "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 64})
        model = LlamaForCausalLM(config)
    elif kind == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common, num_key_value_heads=2, tie_word_embeddings=True))
    else:
        model = MistralForCausalLM(MistralConfig(**common, num_key_value_heads=2, sliding_window=None))
    with torch.no_grad():  # larger weights than the init's, so that numerical slips show in the logits
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0, 0.2)
            elif name.endswith(".bias"):
                p.normal_(0, 0.5)
    return model.eval()


@pytest.mark.parametrize("kind", ["llama3", "qwen2", "mistral"])
def test_decoder_forward_matches_the_models_own(tok, prompts, kind):
    from tts_utils.models.decoder import SeededDecoder

    model = _family_model(tok, kind)
    dec = SeededDecoder(model, tok)
    ids = tok(prompts, add_special_tokens=False)["input_ids"]
    extra = [5, 9, 12, 40]  # tokens appended one decode step at a time
    for x in ids:
        with torch.inference_mode():
            full = model(torch.tensor([x + extra])).logits[0]
            cache = dec.net.new_cache(1, len(x) + len(extra))
            rotary = dec.net.rotary_tables(len(x) + len(extra))
            got = [dec.net.forward(torch.tensor([x]), torch.arange(len(x))[None], cache, None, rotary)[0]]
            for i, t in enumerate(extra):
                got.append(dec.net.forward(torch.tensor([[t]]), torch.tensor([[len(x) + i]]), cache, None, rotary)[0])
        want = full[len(x) - 1:]
        assert torch.allclose(torch.stack(got), want, atol=1e-4, rtol=1e-4), (got[0][:5], want[0][:5])


@pytest.mark.parametrize("kind", ["llama3", "qwen2"])
def test_greedy_with_left_padding_equals_model_generate_on_gqa_models(tok, prompts, kind):
    model = _family_model(tok, kind, seed=1)
    pol = TransformersPolicy(model, tok, "tiny")
    tok.padding_side = "left"
    enc = tok(prompts, add_special_tokens=False, padding=True, return_tensors="pt")
    out = model.generate(**enc, do_sample=False, max_new_tokens=15, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id)
    theirs = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    greedy = pol.generate(prompts, SamplingParams(temperature=0, max_tokens=15, stop=None), seeds=[0, 0, 0])
    assert [g.text for g in greedy] == theirs

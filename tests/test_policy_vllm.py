"""VLLMPolicy: its output mapping everywhere; the in-process vLLM contract where vLLM is installed
(the GPU environment; DESIGN section 10)."""

import importlib.util
from types import SimpleNamespace

import pytest
from _tiny_lm import make_tokenizer
from transformers import LlamaConfig, LlamaForCausalLM

from tts_utils.policy import Generation, SamplingParams, VLLMPolicy, from_vllm_output

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def out(text, token_ids, finish_reason, stop_reason):
    return SimpleNamespace(text=text, token_ids=token_ids, finish_reason=finish_reason, stop_reason=stop_reason)


@pytest.mark.parametrize("o, expected", [
    (out("a\n\n", [5, 6, 6], "stop", "\n\n"), Generation("a\n\n", 3, "stop")),   # include_stop_str_in_output
    (out("a", [5, 6, 6], "stop", "\n\n"), Generation("a\n\n", 3, "stop")),       # dropped: put back
    (out("ab", [5, 7, 2], "stop", None), Generation("ab", 3, "eos")),            # EOS counted, not in text
    (out("ab", [5, 7, 9], "stop", 9), Generation("ab", 3, "eos")),               # a stop token id
    (out("abc", [5, 7, 8], "length", None), Generation("abc", 3, "length")),
])
def test_output_mapping(o, expected):
    assert from_vllm_output(o, ("\n\n",)) == expected


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed")
def test_missing_vllm_is_a_clear_error():
    with pytest.raises(ImportError, match="GPU environment"):
        VLLMPolicy("some/model", "qwen2.5")


@pytest.fixture(scope="module")
def vllm_policy(tmp_path_factory):
    pytest.importorskip("vllm", reason="vLLM is not installed (it lives in the GPU environment)")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a GPU")
    path = tmp_path_factory.mktemp("tiny-llama")
    tok = make_tokenizer()
    torch.manual_seed(0)
    # head_dim 32: attention kernels support it; a random model, near-uniform over ~100 tokens.
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=512, bos_token_id=tok.bos_token_id,
                                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return VLLMPolicy(str(path), "tiny", dtype="bfloat16", max_model_len=512, gpu_memory_utilization=0.3,
                      enforce_eager=True)


def test_vllm_contract(vllm_policy):
    pol = vllm_policy
    prompts = [pol.build_prompt(q, s) for q, s in [("1+2=?", []), ("12*(3+4)-5=?", ["12*7=84\n\n"]), ("7?", [])]]
    # Single letters as stop strings: likely enough for a random model to hit within 4 tokens.
    params = SamplingParams(temperature=0.8, max_tokens=4, stop=tuple("abcdefghijklmnopqrstuvwxyz"))
    gens = pol.generate(prompts * 6, params, seeds=list(range(18)))
    assert {g.finish_reason for g in gens} >= {"stop", "length"}
    for g in gens:
        assert 1 <= g.num_tokens <= 4
        if g.finish_reason == "stop":
            assert g.text[-1] in params.stop and not any(c in params.stop for c in g.text[:-1])
        if g.finish_reason == "length":
            assert g.num_tokens == 4
    # Per-request seeds: the same samples again, in another order and batch.
    again = pol.generate([prompts[2], prompts[0]], params, seeds=[5, 3])
    assert again == [gens[5], gens[3]]
    assert len({g.text for g in pol.generate(prompts[:1] * 8, SamplingParams(temperature=1.0, max_tokens=12, stop=None),
                                            seeds=list(range(8)))}) > 1
    greedy = SamplingParams(temperature=0, max_tokens=8, stop=None)
    assert pol.generate(prompts, greedy, [1, 2, 3]) == pol.generate(prompts, greedy, [4, 5, 6])

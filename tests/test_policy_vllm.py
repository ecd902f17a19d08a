"""VLLMPolicy: its output mapping and what it hands vLLM, everywhere (a test double of the
``vllm`` module records every call); the in-process vLLM contract where vLLM and a GPU exist (the
GPU environment)."""

import importlib.util
import sys
from types import ModuleType, SimpleNamespace

import pytest
from _tiny_lm import make_tokenizer
from tokenizers import processors
from transformers import LlamaConfig, LlamaForCausalLM

from tts_utils.models.policy import Generation, SamplingParams, VLLMPolicy, from_vllm_output, load_policy

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


def test_missing_vllm_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm fails, installed or not
    with pytest.raises(ImportError, match="GPU environment") as e:
        VLLMPolicy("some/model", "qwen2.5")
    # It points to what exists: environment.yml (pyproject.toml has no GPU extra, see its comment).
    assert "environment.yml" in str(e.value) and "[gpu]" not in str(e.value)


# ---- a test double of the vllm module --------------------------------------------------------------

class FakeVLLM(ModuleType):
    """``vllm`` with ``LLM`` and ``SamplingParams`` that record what they are given. The fake LLM
    answers each request with "<seed>:<prompt length>\\n\\n" (stop string kept, 3 tokens)."""

    def __init__(self, tokenizer):
        super().__init__("vllm")
        fake = self
        self.inits, self.params, self.calls = [], [], []

        class SamplingParams:
            def __init__(self, **kw):
                self.kw = kw
                fake.params.append(kw)

        class LLM:
            def __init__(self, **kw):
                fake.inits.append(kw)

            def get_tokenizer(self):
                return tokenizer

            def generate(self, inputs, sampling, use_tqdm=True):
                fake.calls.append({"inputs": inputs, "sampling": sampling, "use_tqdm": use_tqdm})
                return [SimpleNamespace(outputs=[SimpleNamespace(
                    text=f"{sp.kw['seed']}:{len(x['prompt_token_ids'])}\n\n", token_ids=[1, 2, 3],
                    finish_reason="stop", stop_reason="\n\n")]) for x, sp in zip(inputs, sampling, strict=True)]

        self.LLM, self.SamplingParams = LLM, SamplingParams


@pytest.fixture
def fake_vllm(monkeypatch):
    tok = make_tokenizer()
    # Like Llama 3's tokenizer, encoding text adds a BOS unless told not to: the template writes its own.
    bos = tok.bos_token
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", special_tokens=[(bos, tok.bos_token_id)])
    assert tok("x")["input_ids"][0] == tok.bos_token_id
    fake = FakeVLLM(tok)
    monkeypatch.setitem(sys.modules, "vllm", fake)
    return fake


def test_llm_options_tensor_parallel_and_prefix_caching(fake_vllm):
    VLLMPolicy("org/model", "llama3", tensor_parallel_size=4, dtype="bfloat16", gpu_memory_utilization=0.8)
    assert fake_vllm.inits == [{"model": "org/model", "tensor_parallel_size": 4, "enable_prefix_caching": True,
                                "dtype": "bfloat16", "gpu_memory_utilization": 0.8}]
    VLLMPolicy("org/model", "llama3", enable_prefix_caching=False)  # the caller's choice wins
    assert fake_vllm.inits[1] == {"model": "org/model", "tensor_parallel_size": 1, "enable_prefix_caching": False}
    # load_policy hands vLLM the registry's hub id and the caller's options.
    pol = load_policy("Llama-3.2-1B-Instruct", backend="vllm", tensor_parallel_size=2)
    assert fake_vllm.inits[2]["model"] == "meta-llama/Llama-3.2-1B-Instruct"
    assert fake_vllm.inits[2]["tensor_parallel_size"] == 2
    assert (pol.name, pol.family) == ("Llama-3.2-1B-Instruct", "llama3")


def test_generate_maps_seeds_stops_and_token_id_prompts(fake_vllm):
    pol = VLLMPolicy("org/model", "llama3")
    tok = pol.tokenizer
    prompts = [pol.build_prompt("1+2?", []), pol.build_prompt("3*4?", ["3*4=12\n\n"]), pol.build_prompt("1+2?", [])]
    params = SamplingParams(temperature=0.7, top_p=0.9, max_tokens=50, stop=("\n\n",))
    gens = pol.generate(prompts, params, seeds=[7, 8, 9])
    (call,) = fake_vllm.calls
    assert call["use_tqdm"] is False
    # One request per prompt, n = 1, its own seed; the stop string kept in the output.
    assert fake_vllm.params == [{"n": 1, "seed": s, "temperature": 0.7, "top_p": 0.9, "max_tokens": 50,
                                 "stop": ["\n\n"], "include_stop_str_in_output": True} for s in (7, 8, 9)]
    # Token ids, not text (vLLM would tokenize text with a BOS): exactly the template's one BOS.
    for x, p in zip(call["inputs"], prompts, strict=True):
        ids = x["prompt_token_ids"]
        assert set(x) == {"prompt_token_ids"}
        assert ids == tok(p, add_special_tokens=False)["input_ids"]
        assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
        assert tok(p)["input_ids"][:2] == [tok.bos_token_id] * 2  # what text would have become
    lengths = [len(x["prompt_token_ids"]) for x in call["inputs"]]
    assert gens == [Generation(f"{s}:{n}\n\n", 3, "stop") for s, n in zip((7, 8, 9), lengths, strict=True)]


def test_generate_without_stop_strings_and_empty_batches(fake_vllm):
    pol = VLLMPolicy("org/model", "qwen2.5")
    assert pol.generate([], SamplingParams(), []) == [] and fake_vllm.calls == []
    pol.generate([pol.build_prompt("q", [])], SamplingParams(temperature=0, max_tokens=8, stop=None), seeds=[3])
    assert fake_vllm.params[-1]["stop"] is None and fake_vllm.params[-1]["temperature"] == 0
    with pytest.raises(ValueError):
        pol.generate(["a", "b"], SamplingParams(), seeds=[1])  # one seed per prompt


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

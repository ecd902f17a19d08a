"""Policy interface: generate continuations of prompts, one step or a whole solution at a time.

Backends (transformers on CPU/GPU, vLLM, any OpenAI-compatible completions server) all implement
``Policy.generate``. Prompts are plain strings already rendered through the model's chat template
(see tts_utils.problems.prompts.build_prompt), so every backend sees exactly the same text. The template
writes its own special tokens (BOS included), so every backend tokenizes prompts with
``add_special_tokens=False``.

Common contract of ``generate`` (tests/test_policy*.py check it for each backend):
  * generation stops right after the first stop string, which is kept in the text (the paper's step
    semantics); the token that completed it is the last one counted, even if its text went further;
  * ``finish_reason`` is "stop" (stop string), "eos" (an end-of-sequence/turn token, counted in
    ``num_tokens`` and absent from the text) or "length" (``max_tokens``, or the model's context);
  * ``seeds[i]`` alone fixes sample i: same prompt + same seed -> same text whatever the batch;
  * temperature 0 is greedy decoding; ``top_p`` is nucleus sampling.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tts_utils.problems import prompts as prompt_lib
from tts_utils.problems.prompts import STEP_SEPARATOR, first_stop

# torch is imported where a model is loaded: the search methods and the notebooks' cached reruns
# import this module for its types only, and torch's import is most of their start-up (1.4 s).


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 2048
    # Generation stops right after one of these strings; the stop string is KEPT in the text
    # (the paper's step semantics: a step ends with "\n\n"). None or () means no stop string.
    stop: tuple[str, ...] | None = (STEP_SEPARATOR,)

    def validate(self) -> None:
        if not 0 <= self.temperature < math.inf:  # NaN fails too
            raise ValueError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if isinstance(self.stop, str):
            raise TypeError(f"stop must be a tuple of strings, not the string {self.stop!r}")
        if any(not s for s in self.stop or ()):
            raise ValueError("stop strings must be non-empty")


class PromptError(ValueError):
    """A prompt the model cannot take (empty, or too long for its context); ``index`` is its
    position in the batch, so that a caller can say which problem it came from."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class Generation:
    text: str            # the continuation (stop string included when finish_reason == "stop")
    num_tokens: int      # generated tokens
    finish_reason: str   # "stop" (hit a stop string), "eos" (end of sequence/turn), "length" (max_tokens)


class Policy(ABC):
    """A policy model. ``name`` is its registry name; ``family`` selects its system prompt."""

    name: str
    family: str
    tokenizer = None  # set by backends that render prompts locally

    @abstractmethod
    def generate(self, prompts: list[str], params: SamplingParams, seeds: list[int]) -> list[Generation]:
        """One continuation per prompt. ``seeds[i]`` makes sample i reproducible on its own,
        whatever else is in the batch (same seed + same prompt -> same text). Exactly so on the
        CPU in float32; in bf16 on CUDA a different batch can round differently and flip a token,
        so there the same batch gives the same texts (``make gpu-smoke`` measures both)."""

    def build_prompt(self, question: str, steps: list[str]) -> str:
        """The rendered prompt that continues the partial solution ``steps`` (each ending in
        "\\n\\n"), with no end-of-turn token after them."""
        if self.tokenizer is None:
            raise ValueError(f"policy {self.name!r} has no tokenizer to render its chat template")
        return prompt_lib.build_prompt(self.tokenizer, question, steps, self.family)


def _check_batch(prompt_list: list[str], params: SamplingParams, seeds: list[int]) -> None:
    params.validate()
    if len(prompt_list) != len(seeds):
        raise ValueError(f"{len(prompt_list)} prompts but {len(seeds)} seeds")


def normalize_stop(text: str, finish_reason: str | None, matched, stops) -> tuple[str, str]:
    """Map a server's (text, finish_reason, matched stop) to our (text, finish_reason).

    OpenAI-style servers report "stop" both for a stop string and for EOS, and drop the stop string
    from the text unless asked to keep it (vLLM's ``include_stop_str_in_output``). ``matched`` is
    what the server says matched (vLLM ``stop_reason``, SGLang ``matched_stop``): a stop string, a
    stop token id, or None for EOS. Without it, a "stop" whose text holds no stop string is EOS.
    """
    if finish_reason == "length":
        return text, "length"
    if finish_reason not in ("stop", "eos", None):
        raise ValueError(f"unexpected finish_reason {finish_reason!r}")
    found = first_stop(text, stops)
    if found is not None:
        return text[:found[0]], "stop"  # kept by the server; cut after it in case it sent more
    if isinstance(matched, str) and matched in (stops or ()):
        return text + matched, "stop"   # the server dropped it: put it back
    return text, "eos"


# ---------------------------------------------------------------------------------------------
# transformers backend


class TransformersPolicy(Policy):
    """A ``transformers`` causal LM on CPU or GPU, decoded by ``tts_utils.models.decoder.SeededDecoder``
    (batched, a KV cache, one seed per row)."""

    def __init__(self, model, tokenizer, family: str, name: str | None = None, batch_size: int = 64):
        prompt_lib.system_prompt(family)  # fail early on an unknown family
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.family = family
        self.name = name or getattr(model.config, "name_or_path", None) or type(model).__name__
        self.batch_size = batch_size
        from tts_utils.models.decoder import SeededDecoder

        self.decoder = SeededDecoder(self.model, tokenizer)

    @classmethod
    def from_pretrained(cls, source: str, family: str, name: str | None = None, device: str | None = None,
                        dtype=None, batch_size: int | None = None, **model_kwargs) -> TransformersPolicy:
        """``batch_size`` defaults to 256 on CPU (tiny models: a larger batch amortizes each decode
        step's fixed cost; 1.2-2.3x the tokens/s of batch 64 in ``make bench``) and 64 on GPU (a
        real model's KV cache at batch 256 may not fit; use vLLM for throughput there)."""
        import torch
        from transformers import AutoModelForCausalLM

        from tts_utils.models.catalog import default_device, load_tokenizer

        device = device or default_device()
        if batch_size is None:
            batch_size = 256 if device == "cpu" else 64
        if dtype is None:
            dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        tokenizer = load_tokenizer(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **model_kwargs).to(device)
        return cls(model, tokenizer, family, name=name or source, batch_size=batch_size)

    def generate(self, prompts: list[str], params: SamplingParams, seeds: list[int]) -> list[Generation]:
        _check_batch(prompts, params, seeds)
        if not prompts:
            return []
        ids = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        max_len = self.decoder.max_len
        for i, x in enumerate(ids):
            if not x:
                raise PromptError(f"prompt {i} is empty", i)
            if max_len is not None and len(x) >= max_len:
                raise PromptError(f"prompt {i} has {len(x)} tokens; {self.name} allows at most {max_len} "
                                  f"(prompt and generated tokens together)", i)
        done = self.decoder.decode(ids, seeds, temperature=params.temperature, top_p=params.top_p,
                                   max_tokens=params.max_tokens, stops=tuple(params.stop or ()),
                                   batch_size=self.batch_size)
        return [Generation(*d) for d in done]


# ---------------------------------------------------------------------------------------------
# OpenAI-compatible completions server (vLLM, SGLang, tts_utils.models.serve)


class OpenAIError(RuntimeError):
    """A request the server rejected (4xx), or that still failed after every retry."""


class OpenAIPolicy(Policy):
    """A policy served by any OpenAI-compatible ``/v1/completions`` endpoint, through the ``openai``
    client (which retries connection errors, 408, 409, 429 and 5xx with exponential backoff and
    honours Retry-After; other 4xx fail at once, with the server's message).

    One request per sample (``n=1``) so each carries its own ``seed``; requests run concurrently
    from a thread pool (the client is thread-safe). ``tokenizer`` renders prompts (``build_prompt``)
    and counts tokens when a server reports no usage. ``extra_body`` adds fields the OpenAI API
    does not define (vLLM's, below); ``api_key`` defaults to "EMPTY", as vLLM's docs use for a
    server that checks none.
    """

    def __init__(self, base_url: str, model: str, tokenizer=None, family: str = "qwen2.5", name: str | None = None,
                 api_key: str | None = None, concurrency: int = 32, timeout: float = 600.0, max_retries: int = 6,
                 extra_body: dict | None = None):
        import openai

        prompt_lib.system_prompt(family)
        base = base_url.rstrip("/")
        self.base_url = base if base.endswith("/v1") else base + "/v1"
        self.url = self.base_url + "/completions"  # for messages
        self.model = model
        self.tokenizer = tokenizer
        self.family = family
        self.name = name or model
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.client = openai.OpenAI(base_url=self.base_url, api_key=api_key or "EMPTY", timeout=timeout,
                                    max_retries=max_retries)
        # vLLM extensions (others ignore unknown fields): keep the stop string in the text, and do not
        # add a BOS in front of the chat template's own.
        self.extra_body = {"include_stop_str_in_output": True, "add_special_tokens": False, **(extra_body or {})}

    def generate(self, prompts: list[str], params: SamplingParams, seeds: list[int]) -> list[Generation]:
        _check_batch(prompts, params, seeds)
        if not prompts:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            futures = [pool.submit(self._one, p, params, s) for p, s in zip(prompts, seeds, strict=True)]
            try:
                return [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise

    def _one(self, prompt: str, params: SamplingParams, seed: int) -> Generation:
        resp = self._create(prompt=prompt, n=1, seed=int(seed), max_tokens=params.max_tokens,
                            temperature=params.temperature, top_p=params.top_p,
                            stop=list(params.stop) if params.stop else None)
        try:
            choice = resp["choices"][0]
            text, reason = choice["text"], choice.get("finish_reason")
        except (KeyError, IndexError, TypeError):
            raise OpenAIError(f"{self.url}: malformed response {str(resp)[:300]}") from None
        matched = choice.get("stop_reason", choice.get("matched_stop"))
        text, reason = normalize_stop(text, reason, matched, params.stop)
        num = (resp.get("usage") or {}).get("completion_tokens")
        if num is None:
            if self.tokenizer is None:
                raise OpenAIError(f"{self.url} reported no usage and the policy has no tokenizer to count tokens")
            num = len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) + (reason == "eos")
        return Generation(text, int(num), reason)

    def _create(self, **fields) -> dict:
        """One completions request; the response as plain JSON (servers add fields such as vLLM's
        ``stop_reason`` that the client's typed objects do not declare)."""
        import openai

        fields = {k: v for k, v in fields.items() if v is not None}
        try:
            raw = self.client.completions.with_raw_response.create(model=self.model, extra_body=self.extra_body,
                                                                  **fields)
        except openai.APIStatusError as e:
            message = _error_message(e.body) or e.message
            if e.status_code in (408, 409, 429) or e.status_code >= 500:
                raise OpenAIError(f"{self.url}: giving up after {self.max_retries + 1} attempts; last error: "
                                  f"HTTP {e.status_code}: {message}") from None
            raise OpenAIError(f"{self.url} rejected the request ({e.status_code}): {message}") from None
        except openai.APIConnectionError as e:
            cause = e.__cause__ or e
            raise OpenAIError(f"{self.url}: giving up after {self.max_retries + 1} attempts; last error: "
                              f"{type(cause).__name__}: {cause}") from None
        try:
            return raw.http_response.json()
        except ValueError:
            raise OpenAIError(f"{self.url}: malformed response {raw.http_response.text[:300]}") from None


def _error_message(body) -> str:
    """The server's own message from an error body ({"message": ...} once the client has taken
    "error" out, or FastAPI's "detail"), else the body as text."""
    if isinstance(body, dict):
        return str(body.get("message") or body.get("detail") or body)
    return "" if body is None else str(body)[:500]


# ---------------------------------------------------------------------------------------------
# vLLM in-process backend (GPU environment only; imported lazily)


class VLLMPolicy(Policy):
    """A thin adapter over an in-process ``vllm.LLM`` (prefix caching on: steps share prefixes)."""

    def __init__(self, model: str, family: str, name: str | None = None, tensor_parallel_size: int = 1,
                 llm=None, **llm_kwargs):
        prompt_lib.system_prompt(family)
        if llm is None:
            try:
                from vllm import LLM
            except ImportError as e:
                # Not a pip extra of this package: vLLM pins its own torch, which conflicts with the
                # CPU torch pin of pyproject.toml (see environment.yml).
                raise ImportError("the vllm backend needs vLLM, which lives in the GPU environment: "
                                  "`conda env create -f environment.yml && conda activate tts-study-gpu && "
                                  "pip install --no-deps -e .`") from e
            llm_kwargs.setdefault("enable_prefix_caching", True)
            llm = LLM(model=model, tensor_parallel_size=tensor_parallel_size, **llm_kwargs)
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()
        self.family = family
        self.name = name or model

    def generate(self, prompts: list[str], params: SamplingParams, seeds: list[int]) -> list[Generation]:
        from vllm import SamplingParams as VLLMSamplingParams

        _check_batch(prompts, params, seeds)
        if not prompts:
            return []
        stop = list(params.stop) if params.stop else None
        sampling = [VLLMSamplingParams(n=1, seed=int(s), temperature=params.temperature, top_p=params.top_p,
                                       max_tokens=params.max_tokens, stop=stop, include_stop_str_in_output=True)
                    for s in seeds]
        # Token ids, not text: vLLM would add a BOS in front of the template's own.
        inputs = [{"prompt_token_ids": self.tokenizer(p, add_special_tokens=False)["input_ids"]} for p in prompts]
        outputs = self.llm.generate(inputs, sampling, use_tqdm=False)
        return [from_vllm_output(o.outputs[0], params.stop) for o in outputs]


def from_vllm_output(out, stops) -> Generation:
    """Our Generation from a vLLM ``CompletionOutput`` (text, token_ids, finish_reason, stop_reason:
    the matched stop string, a stop token id, or None for EOS)."""
    text, reason = normalize_stop(out.text, out.finish_reason, out.stop_reason, stops)
    return Generation(text, len(out.token_ids), reason)


# ---------------------------------------------------------------------------------------------


def _weights_location(spec) -> str:
    if Path(spec.source).exists():
        return spec.source
    if spec.world != "paper":  # tiny-world dirs are relative to the repo root
        return str(spec.local_path())
    return spec.source  # a hub id


def load_policy(name_or_spec, backend: str = "transformers", **kw) -> Policy:
    """A policy from the registry (a name, a ModelSpec, or a local dir with ``family=``).

    backend "transformers": kw of TransformersPolicy.from_pretrained (device, dtype, batch_size);
    "vllm": kw of VLLMPolicy (tensor_parallel_size, vllm.LLM arguments);
    "openai": ``base_url`` plus kw of OpenAIPolicy; ``served_model_name`` is the server's model name
    (default: the weights' location, as ``vllm serve`` names it).
    """
    from tts_utils.models.catalog import ModelSpec, get_model

    family = kw.pop("family", None)
    spec = name_or_spec if isinstance(name_or_spec, ModelSpec) else get_model(name_or_spec, kind="policy",
                                                                              family=family)
    if spec.kind != "policy":
        raise ValueError(f"{spec.name!r} is a {spec.kind}, not a policy")
    source = _weights_location(spec)
    if backend == "transformers":
        return TransformersPolicy.from_pretrained(source, spec.family, name=spec.name, **kw)
    if backend == "vllm":
        return VLLMPolicy(source, spec.family, name=spec.name, **kw)
    if backend == "openai":
        from tts_utils.models.catalog import load_tokenizer

        if "base_url" not in kw:
            raise ValueError("the openai backend needs base_url=, e.g. 'http://localhost:8000/v1'")
        served = kw.pop("served_model_name", source)
        return OpenAIPolicy(kw.pop("base_url"), served, tokenizer=load_tokenizer(source),
                            family=spec.family, name=spec.name, **kw)
    raise ValueError(f"unknown backend {backend!r}; use 'transformers', 'vllm' or 'openai'")


__all__ = ["STEP_SEPARATOR", "Generation", "OpenAIError", "OpenAIPolicy", "Policy", "SamplingParams",
           "TransformersPolicy", "VLLMPolicy", "from_vllm_output", "load_policy", "normalize_stop"]

"""Policy interface: generate continuations of prompts, one step or a whole solution at a time.

Backends (transformers on CPU/GPU, vLLM, any OpenAI-compatible completions server) all implement
``Policy.generate``. Prompts are plain strings already rendered through the model's chat template
(see tts_utils.prompts.build_prompt), so every backend sees exactly the same text. The template
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

import functools
import inspect
import json
import random
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tts_utils import prompts as prompt_lib
from tts_utils.prompts import STEP_SEPARATOR


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 2048
    # Generation stops right after one of these strings; the stop string is KEPT in the text
    # (the paper's step semantics: a step ends with "\n\n"). None or () means no stop string.
    stop: tuple[str, ...] | None = (STEP_SEPARATOR,)

    def validate(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if isinstance(self.stop, str):
            raise TypeError(f"stop must be a tuple of strings, not the string {self.stop!r}")
        if any(not s for s in self.stop or ()):
            raise ValueError("stop strings must be non-empty")


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
        whatever else is in the batch (same seed + same prompt -> same text)."""

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


def _first_stop(text: str, stops) -> tuple[int, str] | None:
    """(end index, stop string) of the stop string that occurs first in ``text``, or None."""
    best = None
    for s in stops or ():
        i = text.find(s)
        if i != -1 and (best is None or i < best[0]):
            best = (i, s)
    return None if best is None else (best[0] + len(best[1]), best[1])


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
    found = _first_stop(text, stops)
    if found is not None:
        return text[:found[0]], "stop"  # kept by the server; cut after it in case it sent more
    if isinstance(matched, str) and matched in (stops or ()):
        return text + matched, "stop"   # the server dropped it: put it back
    return text, "eos"


# ---------------------------------------------------------------------------------------------
# Sampling with per-request seeds.
#
# Each row draws one uniform number per generated token from a counter-based generator keyed by its
# own seed: u = splitmix64(mix(seed) + (t + 1) * golden) for token position t (this is exactly the
# SplitMix64 stream seeded with mix(seed)). The token is the inverse CDF of the row's (temperature-
# scaled, nucleus-truncated) distribution at u. No generator state is shared between rows, so a row's
# sample depends only on its prompt, its seed and the position, never on the rest of the batch, and
# the whole batch is sampled in a few vectorized operations.

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(z: np.ndarray) -> np.ndarray:
    # SplitMix64 finalizer. numpy uint64 array arithmetic wraps modulo 2**64 (defined behaviour).
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def seed_keys(seeds: list[int]) -> np.ndarray:
    """One 64-bit stream key per seed (any Python int; taken modulo 2**64)."""
    return _mix64(np.array([int(s) % 2**64 for s in seeds], dtype=np.uint64))


def seeded_uniforms(keys: np.ndarray, step: int) -> np.ndarray:
    """U[0, 1) in float64 (53 random bits), one per key, for token position ``step``."""
    counter = np.full(keys.shape, step + 1, dtype=np.uint64) * _GOLDEN
    return (_mix64(keys + counter) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def sample_tokens(logits: torch.Tensor, keys: np.ndarray, step: int, temperature: float,
                  top_p: float) -> torch.Tensor:
    """Sample one token per row of ``logits`` [B, V] (greedy when temperature == 0)."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    order = None
    if top_p < 1:
        # Nucleus: keep the most likely tokens until their mass reaches top_p (the token that crosses
        # it included, as vLLM does); the most likely token always survives.
        probs, order = probs.sort(dim=-1, descending=True, stable=True)
        before = probs.cumsum(-1) - probs
        probs = probs.masked_fill(before >= top_p, 0.0)
    cdf = probs.double().cumsum(-1)
    u = torch.from_numpy(seeded_uniforms(keys, step)).to(cdf.device)
    # right=True: the first index whose CDF exceeds u * total, so zero-probability tokens never win.
    idx = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(1), right=True).squeeze(1)
    idx = idx.clamp(max=probs.shape[-1] - 1)
    return idx if order is None else order.gather(1, idx.unsqueeze(1)).squeeze(1)


# ---------------------------------------------------------------------------------------------
# transformers backend


class TransformersPolicy(Policy):
    """A ``transformers`` causal LM on CPU or GPU, decoded by our own batched loop with a KV cache.

    Why not ``model.generate``: it cannot seed each row separately, and its ``stop_strings`` fails
    with tiny vocabularies (DESIGN section 11). The loop left-pads each chunk of ``batch_size``
    prompts (sorted by length, which is safe because rows do not interact), prefills identical prompts
    once, keeps the KV cache in preallocated buffers (no per-step concatenation), and drops finished
    rows from the cache once a quarter of the live rows are done, so that stragglers run alone.
    """

    def __init__(self, model, tokenizer, family: str, name: str | None = None, batch_size: int = 64):
        prompt_lib.system_prompt(family)  # fail early on an unknown family
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.family = family
        self.name = name or getattr(model.config, "name_or_path", None) or type(model).__name__
        self.batch_size = batch_size
        self.device = next(model.parameters()).device
        self.eos_ids = _eos_ids(model, tokenizer)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids, default=None)
        if pad is None:
            raise ValueError("tokenizer has neither a pad nor an eos token to pad batches with")
        self.pad_id = pad
        self.max_len = getattr(model.config, "max_position_embeddings", None)
        # Ids past the tokenizer's vocabulary (padded embedding rows) cannot be decoded: never sample them.
        self.n_decodable = len(tokenizer)
        # transformers 5.2x renamed forward's `past_key_values` to `cache`; accept both.
        self._cache_kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        self._trigger_masks: dict[frozenset, torch.Tensor] = {}

    @classmethod
    def from_pretrained(cls, source: str, family: str, name: str | None = None, device: str | None = None,
                        dtype=None, batch_size: int | None = None, **model_kwargs) -> TransformersPolicy:
        """``batch_size`` defaults to 256 on CPU (tiny models: a larger batch amortizes each decode
        step's fixed cost; 1.2-2.3x the tokens/s of batch 64 in ``make bench``) and 64 on GPU (a
        real model's KV cache at batch 256 may not fit; use vLLM for throughput there)."""
        from transformers import AutoModelForCausalLM

        from tts_utils.models import load_tokenizer

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
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
        for i, x in enumerate(ids):
            if not x:
                raise ValueError(f"prompt {i} is empty")
            if self.max_len is not None and len(x) >= self.max_len:
                raise ValueError(f"prompt {i} has {len(x)} tokens; {self.name} allows at most {self.max_len} "
                                 f"(prompt and generated tokens together)")
        # By length (less padding), identical prompts together (prefilled once, see _generate_batch).
        order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), ids[i]))
        out: list[Generation | None] = [None] * len(ids)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            for i, g in zip(chunk, self._generate_batch([ids[i] for i in chunk], [seeds[i] for i in chunk],
                                                        params), strict=True):
                out[i] = g
        return out

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def _trigger_mask(self, stops: tuple[str, ...]) -> torch.Tensor:
        """Tokens whose text holds the last character of a stop string: only those can complete one,
        so only rows that just sampled one are decoded and searched."""
        last = frozenset(s[-1] for s in stops)
        if last not in self._trigger_masks:
            texts = self.tokenizer.batch_decode([[i] for i in range(self.n_decodable)], skip_special_tokens=True)
            mask = torch.zeros(max(self.model.config.vocab_size, len(texts)), dtype=torch.bool)
            mask[: len(texts)] = torch.tensor([any(c in t for c in last) for t in texts])
            self._trigger_masks[last] = mask
        return self._trigger_masks[last]

    @torch.inference_mode()
    def _generate_batch(self, ids: list[list[int]], seeds: list[int], params: SamplingParams) -> list[Generation]:
        n, width = len(ids), max(len(x) for x in ids)
        budget = [params.max_tokens if self.max_len is None else min(params.max_tokens, self.max_len - len(x))
                  for x in ids]
        steps_max = max(budget)
        # One attention-mask buffer for the whole decode (prompt + every generated column); the model
        # gets a view of its first columns, so nothing is concatenated per step.
        cap = width + steps_max
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask_buf = torch.zeros((n, cap), dtype=torch.long)
        for r, x in enumerate(ids):  # left padding: every row's last prompt token is in the last column
            input_ids[r, width - len(x):] = torch.tensor(x)
            mask_buf[r, width - len(x):] = 1
        mask_buf[:, width:] = 1
        input_ids, mask_buf = input_ids.to(self.device), mask_buf.to(self.device)
        mask = mask_buf[:, :width]
        # Positions count real tokens only, so a padded row sees the same positions as alone.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        padded = bool((mask == 0).any())
        stops = tuple(params.stop or ())
        trigger = self._trigger_mask(stops).to(self.device) if stops else None
        eos = torch.tensor(sorted(self.eos_ids), dtype=torch.long, device=self.device)
        keys = seed_keys(seeds)
        budget_t = torch.tensor(budget, device=self.device)

        # The KV buffers start with room for 64 new tokens and double when full (most rows stop early).
        cache = _growing_cache(self.model.config, width + min(steps_max, 64))
        # With SDPA, decode steps get the [batch, 1, 1, length] boolean mask as a view of the buffer
        # (transformers passes a 4D mask through as is) instead of rebuilding it every step.
        mask4d = padded and getattr(self.model.config, "_attn_implementation", None) == "sdpa"
        if mask4d:
            mask_bool = mask_buf.bool()
        # Identical prompts (Best-of-N's samples, a beam's children) are prefilled once; their rows
        # then start from copies of its KV cache and logits.
        first: dict[tuple[int, ...], int] = {}
        src = [first.setdefault(tuple(x), r) for r, x in enumerate(ids)]
        unique = sorted(first.values())
        pre = slice(None) if len(unique) == n else torch.tensor(unique, device=self.device)
        logits = self.model(input_ids=input_ids[pre], attention_mask=mask[pre] if padded else None,
                            position_ids=positions[pre], use_cache=True, logits_to_keep=1,
                            **{self._cache_kw: cache}).logits[:, -1]
        if len(unique) < n:
            slot = {r: k for k, r in enumerate(unique)}
            expand = torch.tensor([slot[r] for r in src], device=self.device)
            cache.batch_select_indices(expand)
            logits = logits[expand]
        next_pos = positions[:, -1] + 1
        rows = torch.arange(n, device=self.device)   # original row of each live batch row
        live = list(range(n))
        out = torch.zeros((n, steps_max), dtype=torch.long, device=self.device)
        result: list[Generation | None] = [None] * n
        n_done_in_batch = 0
        for step in range(steps_max):
            logits = logits.float()
            logits[:, self.n_decodable:] = float("-inf")
            tok = sample_tokens(logits, keys[live], step, params.temperature, params.top_p)
            out[rows, step] = tok
            # Only rows whose token may end them go through Python: EOS, a token that can complete
            # a stop string, or the row's token budget.
            hits = trigger[tok] if trigger is not None else torch.zeros_like(tok, dtype=torch.bool)
            check = hits | torch.isin(tok, eos) | (budget_t[rows] <= step + 1)
            for j in check.nonzero().flatten().tolist():
                r = live[j]
                if result[r] is None:
                    result[r] = self._finish(out[r, :step + 1].tolist(), stops, bool(hits[j]), budget[r])
                    n_done_in_batch += result[r] is not None
            if n_done_in_batch:
                alive = [j for j, r in enumerate(live) if result[r] is None]
                if not alive:
                    break
                if n_done_in_batch >= 0.25 * len(live):
                    keep = torch.tensor(alive, device=self.device)
                    cache.batch_select_indices(keep)
                    mask_buf, next_pos, tok, rows = mask_buf[keep], next_pos[keep], tok[keep], rows[keep]
                    if mask4d:
                        mask_bool = mask_bool[keep]
                    live = [live[j] for j in alive]
                    n_done_in_batch = 0
            if not padded:
                mask = None
            elif mask4d:
                mask = mask_bool[:, None, None, :width + step + 1]
            else:
                mask = mask_buf[:, :width + step + 1]
            logits = self.model(input_ids=tok.unsqueeze(1), attention_mask=mask,
                                position_ids=next_pos.unsqueeze(1), use_cache=True,
                                **{self._cache_kw: cache}).logits[:, -1]
            next_pos = next_pos + 1
        return result

    def _finish(self, gen: list[int], stops: tuple[str, ...], maybe_stop: bool, budget: int) -> Generation | None:
        """The row's Generation if the token just appended to ``gen`` ends it, else None."""
        if gen[-1] in self.eos_ids:
            return Generation(self._decode(gen[:-1]), len(gen), "eos")
        if maybe_stop:
            text = self._decode(gen)
            found = _first_stop(text, stops)
            if found is not None:
                return Generation(text[:found[0]], len(gen), "stop")
        if len(gen) >= budget:
            return Generation(self._decode(gen), len(gen), "length")
        return None


def _growing_cache(config, capacity: int):
    """A ``DynamicCache`` whose plain full-attention layers write into preallocated buffers.

    ``DynamicLayer`` concatenates every new token onto its keys and values: a copy of the whole
    cache per step and layer, which dominated the decode step of the tiny policies. A BufferLayer
    writes in place and hands attention a view of the filled part; other layer kinds (sliding
    window, ...) are left as transformers builds them.
    """
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=config)
    if cache.layers:
        cache.layers = [_buffer_layer_class()(capacity) if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


@functools.cache
def _buffer_layer_class():
    """The BufferLayer class, defined on first use (this module imports transformers lazily)."""
    from transformers.cache_utils import DynamicLayer

    class BufferLayer(DynamicLayer):
        """A full-attention cache layer over preallocated [batch, heads, capacity, dim] buffers."""

        def __init__(self, capacity: int):
            super().__init__()
            self.capacity = capacity
            self.length = 0

        def lazy_initialization(self, key_states, value_states):
            self.device = key_states.device
            b, h, _, d = key_states.shape
            self._k = key_states.new_empty((b, h, self.capacity, d))
            self._v = value_states.new_empty((b, h, self.capacity, value_states.shape[-1]))
            self.is_initialized = True

        def _resize(self, rows, capacity: int) -> None:
            """Keep batch rows ``rows`` (all: None) in new buffers of ``capacity`` columns; only the
            filled columns are gathered and copied (gathering whole buffers doubled the cost)."""
            k, v = (x[:, :, :self.length] for x in (self._k, self._v))
            if rows is not None:
                k, v = k.index_select(0, rows), v.index_select(0, rows)
            self._k = k.new_empty((k.shape[0], k.shape[1], capacity, k.shape[3]))
            self._v = v.new_empty((v.shape[0], v.shape[1], capacity, v.shape[3]))
            self._k[:, :, :self.length] = k
            self._v[:, :, :self.length] = v

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            end = self.length + key_states.shape[-2]
            if end > self._k.shape[-2]:  # past the planned capacity: grow (amortized by doubling)
                self._resize(None, max(end, 2 * self._k.shape[-2]))
            self._k[:, :, self.length:end] = key_states
            self._v[:, :, self.length:end] = value_states
            self.length = end
            self.keys, self.values = self._k[:, :, :end], self._v[:, :, :end]
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.length

        def batch_select_indices(self, indices):
            if self.is_initialized:  # copies the filled part only
                self._resize(indices, self._k.shape[-2])
                self.keys, self.values = self._k[:, :, :self.length], self._v[:, :, :self.length]

        def reorder_cache(self, beam_idx) -> None:
            self.batch_select_indices(beam_idx)

        def crop(self, tokens_to_remove: int) -> None:
            raise NotImplementedError("the decode loop never crops its cache")

    return BufferLayer


def _eos_ids(model, tokenizer) -> set[int]:
    """End-of-sequence ids: the tokenizer's eos plus the generation config's (Llama-3 Instruct ends
    turns with <|eot_id|>, which only the generation config lists)."""
    ids = set()
    for v in (tokenizer.eos_token_id, getattr(getattr(model, "generation_config", None), "eos_token_id", None)):
        if isinstance(v, int):
            ids.add(v)
        elif v is not None:
            ids.update(v)
    return ids


# ---------------------------------------------------------------------------------------------
# OpenAI-compatible completions server (vLLM, SGLang, tts_utils.serve)


class OpenAIError(RuntimeError):
    """A request the server rejected (4xx), or that still failed after every retry."""


class OpenAIPolicy(Policy):
    """A policy served by any OpenAI-compatible ``/v1/completions`` endpoint.

    One request per sample (``n=1``) so each carries its own ``seed``; requests run concurrently
    from a thread pool. Connection errors, 429 and 5xx are retried with exponential backoff; other
    4xx fail at once with the server's message. ``tokenizer`` renders prompts (``build_prompt``) and
    counts tokens when a server reports no usage.
    """

    def __init__(self, base_url: str, model: str, tokenizer=None, family: str = "qwen2.5", name: str | None = None,
                 api_key: str | None = None, concurrency: int = 32, timeout: float = 600.0, max_retries: int = 6,
                 backoff: float = 1.0, extra_body: dict | None = None):
        prompt_lib.system_prompt(family)
        self.url = base_url.rstrip("/") + ("/completions" if base_url.rstrip("/").endswith("/v1")
                                          else "/v1/completions")
        self.model = model
        self.tokenizer = tokenizer
        self.family = family
        self.name = name or model
        self.api_key = api_key
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
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
        body = {"model": self.model, "prompt": prompt, "n": 1, "seed": int(seed), "max_tokens": params.max_tokens,
                "temperature": params.temperature, "top_p": params.top_p, **self.extra_body}
        if params.stop:
            body["stop"] = list(params.stop)
        resp = self._post(body)
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

    def _post(self, body: dict) -> dict:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(last[1] if last[1] is not None else
                           min(self.backoff * 2 ** (attempt - 1), 60.0) * (0.5 + random.random()))
            req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                message = _error_message(e)
                if e.code != 429 and e.code < 500:
                    raise OpenAIError(f"{self.url} rejected the request ({e.code}): {message}") from None
                retry_after = e.headers.get("Retry-After") if e.headers else None
                wait = min(float(retry_after), 60.0) if retry_after and retry_after.isdigit() else None
                last = (f"HTTP {e.code}: {message}", wait)
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                last = (f"{type(e).__name__}: {getattr(e, 'reason', e)}", None)
        raise OpenAIError(f"{self.url}: giving up after {self.max_retries + 1} attempts; last error: {last[0]}")


def _error_message(e: urllib.error.HTTPError) -> str:
    try:
        body = e.read().decode(errors="replace")
    except Exception:  # the body is only for the message
        return str(e.reason)
    try:
        err = json.loads(body)
        return str(err.get("error", {}).get("message") or err.get("message") or err.get("detail") or body)
    except (ValueError, AttributeError):
        return body[:500]


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
                raise ImportError("the vllm backend needs vLLM, which lives in the GPU environment "
                                  "(environment.yml or `pip install .[gpu]`)") from e
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
    from tts_utils.models import ModelSpec, get_model

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
        from tts_utils.models import load_tokenizer

        if "base_url" not in kw:
            raise ValueError("the openai backend needs base_url=, e.g. 'http://localhost:8000/v1'")
        served = kw.pop("served_model_name", source)
        return OpenAIPolicy(kw.pop("base_url"), served, tokenizer=load_tokenizer(source),
                            family=spec.family, name=spec.name, **kw)
    raise ValueError(f"unknown backend {backend!r}; use 'transformers', 'vllm' or 'openai'")


__all__ = ["STEP_SEPARATOR", "Generation", "OpenAIError", "OpenAIPolicy", "Policy", "SamplingParams",
           "TransformersPolicy", "VLLMPolicy", "from_vllm_output", "load_policy", "normalize_stop",
           "sample_tokens", "seed_keys", "seeded_uniforms"]

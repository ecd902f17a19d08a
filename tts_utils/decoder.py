"""Seeded batched decoding of a ``transformers`` causal LM: the engine behind TransformersPolicy.

Works on token ids: ``SeededDecoder.decode`` takes prompts as token-id lists and returns, per prompt,
``(text, num_tokens, finish_reason)`` under the contract of ``tts_utils.policy.Policy.generate``
(stop string kept in the text, EOS counted but not in the text, ``seeds[i]`` alone fixes row i).

Why not ``model.generate``: it cannot seed each row separately, and its ``stop_strings`` fails with
tiny vocabularies (a stop string must be a whole token sequence there, while our character-level
tokenizers reach "\n\n" in two tokens or inside a longer one).
"""

from __future__ import annotations

import functools
import inspect

import numpy as np
import torch


def first_stop(text: str, stops) -> tuple[int, str] | None:
    """(end index, stop string) of the stop string that occurs first in ``text``, or None."""
    best = None
    for s in stops or ():
        i = text.find(s)
        if i != -1 and (best is None or i < best[0]):
            best = (i, s)
    return None if best is None else (best[0] + len(best[1]), best[1])


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
# The decode loop


Decoded = tuple[str, int, str]  # (text, generated tokens, finish reason), as in policy.Generation


class SeededDecoder:
    """Batched, per-row seeded decoding with a KV cache.

    ``decode`` left-pads each chunk of ``batch_size`` prompts (sorted by length, which is safe because
    rows do not interact), prefills identical prompts once, keeps the KV cache in preallocated
    buffers (no per-step concatenation), and drops finished rows from the cache once a quarter of
    the live rows are done, so that stragglers run alone.
    """

    def __init__(self, model, tokenizer):
        self.model = model
        self.tokenizer = tokenizer
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

    def decode(self, ids: list[list[int]], seeds: list[int], *, temperature: float, top_p: float,
               max_tokens: int, stops: tuple[str, ...], batch_size: int) -> list[Decoded]:
        """One continuation per prompt (token ids, each non-empty and shorter than ``max_len``)."""
        # By length (less padding), identical prompts together (prefilled once, see _decode_batch).
        order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), ids[i]))
        out: list[Decoded | None] = [None] * len(ids)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            done = self._decode_batch([ids[i] for i in chunk], [seeds[i] for i in chunk], temperature, top_p,
                                      max_tokens, stops)
            for i, d in zip(chunk, done, strict=True):
                out[i] = d
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
    def _decode_batch(self, ids: list[list[int]], seeds: list[int], temperature: float, top_p: float,
                      max_tokens: int, stops: tuple[str, ...]) -> list[Decoded]:
        n, width = len(ids), max(len(x) for x in ids)
        budget = [max_tokens if self.max_len is None else min(max_tokens, self.max_len - len(x)) for x in ids]
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
        result: list[Decoded | None] = [None] * n
        n_done_in_batch = 0
        for step in range(steps_max):
            logits = logits.float()
            logits[:, self.n_decodable:] = float("-inf")
            tok = sample_tokens(logits, keys[live], step, temperature, top_p)
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

    def _finish(self, gen: list[int], stops: tuple[str, ...], maybe_stop: bool, budget: int) -> Decoded | None:
        """The row's result if the token just appended to ``gen`` ends it, else None."""
        if gen[-1] in self.eos_ids:
            return self._decode(gen[:-1]), len(gen), "eos"
        if maybe_stop:
            text = self._decode(gen)
            found = first_stop(text, stops)
            if found is not None:
                return text[:found[0]], len(gen), "stop"
        if len(gen) >= budget:
            return self._decode(gen), len(gen), "length"
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



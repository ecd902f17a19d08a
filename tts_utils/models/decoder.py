"""Seeded batched decoding of a ``transformers`` causal LM: the engine behind TransformersPolicy.

Works on token ids: ``SeededDecoder.decode`` takes prompts as token-id lists and returns, per prompt,
``(text, num_tokens, finish_reason)`` under the contract of ``tts_utils.models.policy.Policy.generate``
(stop string kept in the text, EOS counted but not in the text, ``seeds[i]`` alone fixes row i).

Why not ``model.generate``: it cannot seed each row separately, and its ``stop_strings`` fails with
tiny vocabularies (a stop string must be a whole token sequence there, while our character-level
tokenizers reach "\n\n" in two tokens or inside a longer one).
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from tts_utils.problems.prompts import first_stop

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
# The model's forward pass over our own KV cache

SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2")


class KVCache:
    """Keys and values of every layer in one preallocated buffer [2, layers, rows, kv heads, capacity,
    head dim]: a step writes one column in place and attention reads a view of the filled columns
    (no per-step concatenation); dropping finished rows or growing copies the filled part once."""

    def __init__(self, layers: int, rows: int, kv_heads: int, capacity: int, head_dim: int, dtype, device):
        self.kv = torch.empty((2, layers, rows, kv_heads, capacity, head_dim), dtype=dtype, device=device)
        self.length = 0

    def _rebuild(self, rows: torch.Tensor | None, capacity: int) -> None:
        filled = self.kv[:, :, :, :, :self.length]
        shape = list(filled.shape)
        shape[2], shape[4] = (shape[2] if rows is None else len(rows)), capacity
        kv = filled.new_empty(shape)
        if rows is None:
            kv[:, :, :, :, :self.length] = filled
        else:  # straight into the new buffer: one copy instead of two (1.5-2x faster)
            torch.index_select(filled, 2, rows, out=kv[:, :, :, :, :self.length])
        self.kv = kv

    def select(self, rows: torch.Tensor) -> None:
        """Keep (or repeat) batch rows ``rows``."""
        self._rebuild(rows, self.kv.shape[4])

    def reserve(self, end: int, limit: int) -> None:
        """Room for columns up to ``end``, doubling (up to ``limit``) so growth is amortized."""
        if end > self.kv.shape[4]:
            self._rebuild(None, min(max(end, 2 * self.kv.shape[4]), max(end, limit)))


class LlamaFamilyForward:
    """The forward pass of a Llama-family decoder (Llama, Mistral, Qwen2: pre-norm RMSNorm, rotary
    position embeddings, grouped-query attention, gated MLP) over a ``KVCache``, calling the model's
    own modules (weights are shared, never copied).

    Why not the model's forward: for a tiny model a decode step is mostly per-operation overhead,
    and transformers' forward spends about 30 kernels a layer plus cache and mask bookkeeping in
    Python. This one does about 15: a fused RMSNorm, rotary embeddings from a table, and one
    attention call in which the query heads of a group attend to their shared KV head in place
    (as extra query rows) instead of repeating the keys and values per head.
    """

    def __init__(self, model):
        cfg = model.config
        if cfg.model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(f"the seeded decoder runs {', '.join(SUPPORTED_MODEL_TYPES)} models; "
                             f"got model_type {cfg.model_type!r}")
        base = model.model
        self.model = model
        self.layers = list(base.layers)
        self.n_heads = cfg.num_attention_heads
        self.n_kv = getattr(cfg, "num_key_value_heads", None) or self.n_heads
        if self.n_heads % self.n_kv:
            raise ValueError(f"{self.n_heads} attention heads do not split into {self.n_kv} KV heads")
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads
        self.scale = getattr(self.layers[0].self_attn, "scaling", self.head_dim ** -0.5)
        # A sliding window only matters once the context outgrows it; decode() refuses that case.
        windowed = cfg.model_type == "mistral" or getattr(cfg, "use_sliding_window", False) or \
            "sliding_attention" in (getattr(cfg, "layer_types", None) or ())
        self.window = getattr(cfg, "sliding_window", None) if windowed else None
        # A decode step's attention on CUDA: the plain (math) kernel. For these query rows (a KV
        # group's heads) with a padding mask, the kernel SDPA picks by default was 5-15x slower in
        # bf16 on an H200: tiny-policy-m 1,040 against 11,754 tokens/s, and decode steps of
        # Llama-3.1-8B's attention shape (4 layers, random weights, batch 64) 1,146 against 17,428
        # at a 512-token context, 1,387 against 7,460 at 2,048.
        self.decode_backends = [SDPBackend.MATH] if next(model.parameters()).is_cuda else None

    def new_cache(self, rows: int, capacity: int) -> KVCache:
        p = self.model.model.embed_tokens.weight
        return KVCache(len(self.layers), rows, self.n_kv, capacity, self.head_dim, p.dtype, p.device)

    def rotary_tables(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sign-folded sin for positions 0..length-1, [length, head_dim] each.

        Rotary embedding is x * cos + rotate_half(x) * sin with rotate_half(x) = (-x2, x1); folding
        the sign into sin makes it x * cos + (x2, x1) * sin' (the same numbers, one kernel fewer)."""
        p = self.model.model.embed_tokens.weight
        pos = torch.arange(length, device=p.device)[None]
        cos, sin = self.model.model.rotary_emb(p.new_zeros(1), pos)
        half = self.head_dim // 2
        return cos[0], torch.cat([-sin[0, :, :half], sin[0, :, half:]], -1)

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, cache: KVCache, mask: torch.Tensor | None,
                 rotary: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Logits of the last position, [rows, vocab], for new tokens ``ids`` [rows, T] at ``positions``
        [rows, T], appended to ``cache`` (whose columns end at the same index for every row). T > 1 is a
        prefill into an empty cache. ``mask``: additive, [rows, 1, T, columns so far], or None (all
        columns; causal in a prefill)."""
        rows, t = ids.shape
        start, end = cache.length, cache.length + t
        cos, sin = (x[positions].unsqueeze(2) for x in rotary)   # [rows, T, 1, head_dim]
        h = self.model.model.embed_tokens(ids)
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            x = _rms_norm(layer.input_layernorm, h)
            q = _rotate(attn.q_proj(x).view(rows, t, self.n_heads, self.head_dim), cos, sin)
            k = _rotate(attn.k_proj(x).view(rows, t, self.n_kv, self.head_dim), cos, sin)
            cache.kv[0, i, :, :, start:end] = k.transpose(1, 2)
            cache.kv[1, i, :, :, start:end] = attn.v_proj(x).view(rows, t, self.n_kv, self.head_dim).transpose(1, 2)
            keys, values = cache.kv[0, i, :, :, :end], cache.kv[1, i, :, :, :end]
            if t == 1:
                # The query heads of a KV group become that group's query rows: [rows, kv heads, group, dim].
                with sdpa_kernel(self.decode_backends) if self.decode_backends else nullcontext():
                    o = F.scaled_dot_product_attention(q.view(rows, self.n_kv, -1, self.head_dim), keys, values,
                                                       attn_mask=mask, scale=self.scale)
                o = o.reshape(rows, 1, -1)
            else:
                # A prefill (the cache was empty): causal over the new tokens.
                o = F.scaled_dot_product_attention(q.transpose(1, 2), keys, values, attn_mask=mask, scale=self.scale,
                                                   is_causal=mask is None, enable_gqa=self.n_kv != self.n_heads)
                o = o.transpose(1, 2).reshape(rows, t, -1)
            h = h + attn.o_proj(o)
            x = _rms_norm(layer.post_attention_layernorm, h)
            mlp = layer.mlp
            h = h + mlp.down_proj(mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x))
        cache.length = end
        return self.model.lm_head(_rms_norm(self.model.model.norm, h[:, -1]))


def _rms_norm(norm, x: torch.Tensor) -> torch.Tensor:
    """transformers' LlamaRMSNorm (normalized in float32, scaled in the input's dtype), fused."""
    return norm.weight * F.rms_norm(x.float(), (x.shape[-1],), eps=norm.variance_epsilon).to(x.dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat([x[..., half:], x[..., :half]], -1) * sin


# ---------------------------------------------------------------------------------------------
# The decode loop


Decoded = tuple[str, int, str]  # (text, generated tokens, finish reason), as in policy.Generation


class SeededDecoder:
    """Batched, per-row seeded decoding with a KV cache.

    ``decode`` left-pads each chunk of ``batch_size`` prompts (sorted by length, which is safe because
    rows do not interact), prefills identical prompts once, and drops finished rows from the cache
    once a quarter of the live rows are done, so that stragglers run alone.

    Rows that end at a stop string are **kept** until the next call (``_Kept``: the keys and values
    of their prompt and generated tokens): a search's next round prompts with a path plus the step
    just generated, so a prompt that extends a kept row only prefills its new tokens, on the kept
    cache. A row's kept columns and its new ones are laid out apart (the kept ones end at one
    column for the whole batch, the new ones at the last column, with masked padding between), so
    each row computes exactly its own new tokens whatever else shares the batch.
    """

    def __init__(self, model, tokenizer):
        self.model = model
        self.tokenizer = tokenizer
        self.net = LlamaFamilyForward(model)
        self.device = next(model.parameters()).device
        self.eos_ids = _eos_ids(model, tokenizer)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids, default=None)
        if pad is None:
            raise ValueError("tokenizer has neither a pad nor an eos token to pad batches with")
        self.pad_id = pad
        self.max_len = getattr(model.config, "max_position_embeddings", None)
        # Ids past the tokenizer's vocabulary (padded embedding rows) cannot be decoded: never sample them.
        self.n_decodable = len(tokenizer)
        self._trigger_masks: dict[frozenset, torch.Tensor] = {}
        self._kept: dict[tuple[int, ...], _Kept] = {}  # rows of the previous call that ended at a stop
        self.prefilled_tokens = 0  # prompt tokens run through the model so far (kept ones are not)

    def decode(self, ids: list[list[int]], seeds: list[int], *, temperature: float, top_p: float,
               max_tokens: int, stops: tuple[str, ...], batch_size: int) -> list[Decoded]:
        """One continuation per prompt (token ids, each non-empty and shorter than ``max_len``)."""
        # By length (less padding), identical prompts together (prefilled once, see _decode_batch).
        order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), ids[i]))
        out: list[Decoded | None] = [None] * len(ids)
        old, self._kept = self._kept, {}
        # Only rows that stopped at a stop string can be continued (a search's steps); a call
        # without stops (whole solutions) keeps nothing.
        keep = self._kept if stops else None
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            done = self._decode_batch([ids[i] for i in chunk], [seeds[i] for i in chunk], temperature, top_p,
                                      max_tokens, stops, old, keep)
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
                      max_tokens: int, stops: tuple[str, ...], old: dict, keep: dict | None) -> list[Decoded]:
        n = len(ids)
        budget = [max_tokens if self.max_len is None else min(max_tokens, self.max_len - len(x)) for x in ids]
        steps_max = max(budget)
        # Identical prompts (Best-of-N's samples, a beam's children) are prefilled once; their rows
        # then start from copies of its KV cache and logits.
        first: dict[tuple[int, ...], int] = {}
        src = [first.setdefault(tuple(x), r) for r, x in enumerate(ids)]
        unique_rows = sorted(first.values())
        # How much of each distinct prompt a kept row of the previous call holds (its columns are
        # copied, not computed again).
        reuse = {r: _find_kept(old, ids[r]) for r in unique_rows}
        held = {r: (0 if k is None else k.length_for(ids[r])) for r, k in reuse.items()}
        kept_w = max(held.values())                  # kept columns end here for every row
        new_w = max(len(ids[r]) - held[r] for r in unique_rows)
        width = kept_w + new_w
        cap = width + steps_max
        if self.net.window is not None and cap > self.net.window:
            raise ValueError(f"prompt and generation ({cap} tokens) outgrow the model's sliding attention window "
                             f"({self.net.window}); the seeded decoder does not implement sliding windows")
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        valid = torch.zeros((n, width), dtype=torch.bool)
        for r, x in enumerate(ids):
            # kept columns right-aligned to kept_w, new tokens left-padded to the last column:
            # every row's last prompt token is in the last column
            h = held[src[r]]
            input_ids[r, kept_w - h:kept_w] = torch.tensor(x[:h], dtype=torch.long)
            valid[r, kept_w - h:kept_w] = True
            input_ids[r, width - (len(x) - h):] = torch.tensor(x[h:])
            valid[r, width - (len(x) - h):] = True
        input_ids, valid = input_ids.to(self.device), valid.to(self.device)
        # Positions count real tokens only, so a padded row sees the same positions as alone.
        positions = (valid.long().cumsum(-1) - 1).clamp(min=0)
        padded = not bool(valid.all())
        dtype = self.model.model.embed_tokens.weight.dtype
        # One additive mask over every column the decode can reach (-inf on padding); a step
        # hands attention a view of the filled columns.
        mask_buf = None
        if padded:
            mask_buf = torch.zeros((n, 1, 1, cap), dtype=dtype, device=self.device)
            mask_buf[:, 0, 0, :width].masked_fill_(~valid, float("-inf"))
        rotary = self.net.rotary_tables(cap)
        trigger = self._trigger_mask(stops).to(self.device) if stops else None
        eos = torch.tensor(sorted(self.eos_ids), dtype=torch.long, device=self.device)
        keys = seed_keys(seeds)
        budget_t = torch.tensor(budget, device=self.device)

        unique = torch.tensor(unique_rows, device=self.device)
        # The KV buffers start with room for 64 new tokens and double when full (most rows stop early).
        cache = self.net.new_cache(len(unique), width + min(steps_max, 64))
        # Masked columns must hold finite numbers (attention's zero weight times NaN is NaN): the
        # padding before a row's kept columns is never computed, so it is zeroed.
        cache.kv[..., :kept_w, :].zero_()
        for k, r in enumerate(unique_rows):
            if held[r]:
                reuse[r].copy_into(cache.kv[:, :, k, :, kept_w - held[r]:kept_w], held[r])
        cache.length = kept_w
        prefill_mask = None
        if padded:
            # Causal over the new columns, no attending to padding; a padding position attends to
            # itself so that its softmax has a term (its output is never used).
            q_cols = torch.arange(kept_w, width, device=self.device)
            k_cols = torch.arange(width, device=self.device)
            allowed = (k_cols[None, :] <= q_cols[:, None]) & (valid[unique][:, None, :] | (k_cols[None, :] == q_cols[:, None]))
            prefill_mask = torch.zeros(allowed.shape, dtype=dtype, device=self.device)
            prefill_mask = prefill_mask.masked_fill_(~allowed, float("-inf")).unsqueeze(1)
        logits = self.net.forward(input_ids[unique][:, kept_w:], positions[unique][:, kept_w:], cache, prefill_mask,
                                  rotary)
        self.prefilled_tokens += sum(len(ids[r]) - held[r] for r in unique_rows)
        # Each distinct prompt's keys and values, for the rows kept at the end (views: no copy).
        prompt_kv = {}
        if keep is not None:
            for k, r in enumerate(unique_rows):
                h, m = held[r], len(ids[r]) - held[r]
                row = cache.kv[:, :, k]
                prompt_kv[r] = [row[..., kept_w - h:kept_w, :], row[..., width - m:width, :]]
        if len(unique) < n:
            slot = {r: k for k, r in enumerate(unique_rows)}
            expand = torch.tensor([slot[r] for r in src], device=self.device)
            cache.select(expand)
            logits = logits[expand]
        next_pos = positions[:, -1] + 1
        rows = torch.arange(n, device=self.device)   # original row of each live batch row
        live = list(range(n))
        out = torch.zeros((n, steps_max), dtype=torch.long, device=self.device)
        result: list[Decoded | None] = [None] * n
        n_done_in_batch = 0

        def keep_finished():
            # live rows that stopped at a stop string: their prompt's columns and those of every
            # generated token but the last (whose keys and values were never computed)
            for j, r in enumerate(live):
                if result[r] is None or result[r][2] != "stop":
                    continue
                g = result[r][1] - 1
                segments = [*prompt_kv[src[r]], cache.kv[:, :, j, :, width:width + g].clone()]
                keep[(*ids[r], *out[r, :g].tolist())] = _Kept(segments)

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
                drop = n_done_in_batch >= 0.25 * len(live)
                if keep is not None and (drop or not alive):  # finished rows leave the cache now
                    keep_finished()
                if not alive:
                    break
                if drop:
                    keep_t = torch.tensor(alive, device=self.device)
                    cache.select(keep_t)
                    next_pos, tok, rows = next_pos[keep_t], tok[keep_t], rows[keep_t]
                    if mask_buf is not None:
                        mask_buf = mask_buf[keep_t]
                    live = [live[j] for j in alive]
                    n_done_in_batch = 0
            cache.reserve(width + step + 1, cap)
            mask = None if mask_buf is None else mask_buf[..., :width + step + 1]
            logits = self.net.forward(tok.unsqueeze(1), next_pos.unsqueeze(1), cache, mask, rotary)
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


class _Kept:
    """A row of the previous call that ended at a stop string: the keys and values of its prompt and
    generated tokens, as segments [2, layers, kv heads, columns, head dim] (views of that call's
    buffers; only the generated columns are copies)."""

    def __init__(self, segments: list[torch.Tensor]):
        self.segments = segments
        self.length = sum(x.shape[-2] for x in segments)

    def length_for(self, prompt: list[int]) -> int:
        """Columns this row holds of ``prompt``, whose last token always runs (it gives the logits)."""
        return min(self.length, len(prompt) - 1)

    def copy_into(self, dest: torch.Tensor, length: int) -> None:
        at = 0
        for x in self.segments:
            take = min(x.shape[-2], length - at)
            dest[..., at:at + take, :] = x[..., :take, :]
            at += take


_KEPT_LOOKBACK = 8  # a search's next prompt ends a token or a few after a kept row (the stop string)


def _find_kept(kept: dict, prompt: list[int]) -> _Kept | None:
    """The kept row whose tokens are the longest prefix of ``prompt`` (within a few tokens of its
    end), if any."""
    if not kept:
        return None
    for cut in range(len(prompt), max(len(prompt) - _KEPT_LOOKBACK, 0), -1):
        found = kept.get(tuple(prompt[:cut]))
        if found is not None:
            return found
    return None


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



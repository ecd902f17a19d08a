"""Prefix sharing for PRM scoring: siblings run their common input prefix once, and a path's
input is not run again when its children are scored in the next call.

A search scores many **siblings** in one call: solutions with the same question and the same
steps but the last (a beam's children). Their encoded inputs share a long prefix; running it
once and each sibling's own last tokens on its KV cache gives the outputs of one forward per
solution (the model is causal), to rounding. A search's next round scores the children of some
of these solutions: their common prefix is (most of) their parent's input, which was run in the
previous call. So every solution scored in a family is **kept** (``Kept``: its keys and values
and its hidden states at the read positions) until the next call, and a family whose parent is
kept runs only its members' new tokens on the parent's cache. ``tts_utils.models.prm.TransformersPRM.score``
uses this where the model allows it (``sharing_support``) and the format's head is known
(``head``: the backbone's last hidden states at the read positions -> rewards).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch

# A family: its members [(solution index, input ids, read positions)], their shared prefix length,
# and the kept parent whose cache holds that prefix (None: the prefix runs in this call).
Family = tuple[list[tuple[int, list[int], list[int]]], int, "Kept | None"]


@dataclass(frozen=True)
class Support:
    """How a model runs a prefix's KV cache: the forward's cache keyword, and the longest input
    it can share (sliding-window layers keep only inputs shorter than the window whole)."""

    cache_kw: str
    max_len: int | None


@dataclass
class Kept:
    """A solution scored in a family, kept for the next call: its input ids, the keys and values
    of every layer ([kv heads, length, head dim] each; the family's prefix is shared with its
    siblings, not copied) and its last hidden states at its read positions."""

    ids: list[int]
    prefix_kv: list[tuple[torch.Tensor, torch.Tensor]]  # columns [0, prefix), shared by the family
    own_kv: list[tuple[torch.Tensor, torch.Tensor]]     # columns [prefix, len(ids))
    hidden: dict[int, torch.Tensor]                      # read position -> hidden state

    def kv(self, length: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Keys and values of the first ``length`` columns, per layer."""
        prefix = self.prefix_kv[0][0].shape[1]
        if length <= prefix:
            return [(k[:, :length], v[:, :length]) for k, v in self.prefix_kv]
        return [(torch.cat([k, ok[:, :length - prefix]], 1), torch.cat([v, ov[:, :length - prefix]], 1))
                for (k, v), (ok, ov) in zip(self.prefix_kv, self.own_kv, strict=True)]


@functools.cache
def _in_place_layer():
    """A DynamicLayer over preallocated buffers [batch, kv heads, columns, head dim] whose first
    ``filled`` columns hold the past: ``update`` writes the new keys and values after them in
    place, where DynamicLayer concatenates (a copy of the whole past per call). A class made on
    first use, so that importing this module does not import transformers."""
    from transformers.cache_utils import DynamicLayer

    class InPlaceLayer(DynamicLayer):
        def __init__(self, keys: torch.Tensor, values: torch.Tensor, filled: int):
            super().__init__()
            self._keys, self._values = keys, values
            self.keys, self.values = keys[..., :filled, :], values[..., :filled, :]
            self.device, self.is_initialized = keys.device, True

        def update(self, key_states, value_states, *args, **kwargs):
            start = self.keys.shape[-2]
            end = start + key_states.shape[-2]
            self._keys[..., start:end, :] = key_states
            self._values[..., start:end, :] = value_states
            self.keys, self.values = self._keys[..., :end, :], self._values[..., :end, :]
            return self.keys, self.values

    return InPlaceLayer


def sharing_support(model, head: Callable[[torch.Tensor], torch.Tensor]) -> Support | None:
    """A ``Support`` when the model's backbone runs on a transformers DynamicCache of full (or
    sliding-window) attention layers and ``head`` works on hidden states; None otherwise (then
    every solution runs whole)."""
    try:
        probe = next(model.parameters())
        head(torch.zeros((1, model.config.get_text_config().hidden_size), dtype=probe.dtype, device=probe.device))
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

        body = model.base_model
        cache_kw = "cache" if "cache" in inspect.signature(body.forward).parameters else "past_key_values"
        # Full-attention layers, or sliding-window ones on inputs shorter than the window
        # (which they then keep whole, like full attention).
        layers = DynamicCache(config=model.config).layers
        windows = [x.sliding_window for x in layers if isinstance(x, DynamicSlidingWindowLayer)]
        ok = body is not model and bool(layers) and all(
            type(x) in (DynamicLayer, DynamicSlidingWindowLayer) for x in layers)
    except (NotImplementedError, AttributeError):
        return None
    return Support(cache_kw, min(windows) - 1 if windows else None) if ok else None


def _longest_common(seqs: list[list[int]]) -> int:
    n = min(len(x) for x in seqs)
    first = seqs[0]
    for x in seqs[1:]:
        k = 0
        while k < n and x[k] == first[k]:
            k += 1
        n = k
    return n


def common_prefix(seqs: list[list[int]]) -> int:
    """Length of the longest common prefix of ``seqs``, less one if it is a whole sequence (every
    sequence keeps at least one token of its own to run)."""
    return min(_longest_common(seqs), min(len(x) for x in seqs) - 1)


def _on_kept(family: list, kept: Kept) -> int:
    """How much of a family's input the kept parent's cache holds: the columns every member shares
    with the parent's input (each member keeps one token of its own to run), or 0 where a read
    position inside them has no kept hidden state."""
    n = min(_longest_common([kept.ids, *(ids for _, ids, _ in family)]), min(len(ids) for _, ids, _ in family) - 1)
    if any(c < n and c not in kept.hidden for _, _, cols in family for c in cols):
        return 0
    return n


def split_families(items: list[tuple[int, list[int], list[int]]], parent: dict, min_prefix: int,
                   max_len: int | None, kept: dict | None = None,
                   ) -> tuple[list[Family], list[tuple[int, list[int], list[int]]]]:
    """(families worth sharing, items to run whole). Items are grouped by ``parent[index]`` (the
    question and every step but the last). A family whose parent is in ``kept`` (scored in the
    previous call) runs on the parent's cache, one member or more; otherwise it shares when its
    common prefix has at least ``min_prefix`` tokens. No member may be longer than ``max_len``."""
    families: dict = {}
    for item in items:
        families.setdefault(parent[item[0]], []).append(item)
    shared, whole = [], []
    for key, family in families.items():
        too_long = max_len is not None and max(len(ids) for _, ids, _ in family) > max_len
        old = (kept or {}).get(key)
        on_kept = _on_kept(family, old) if old is not None and not too_long else 0
        if on_kept >= min_prefix:
            shared.append((family, on_kept, old))
            continue
        prefix = common_prefix([ids for _, ids, _ in family]) if len(family) > 1 else 0
        if prefix < min_prefix or too_long:
            whole += family
        else:
            shared.append((family, prefix, None))
    return shared, whole


@torch.inference_mode()
def score_families(model, head: Callable[[torch.Tensor], torch.Tensor], families: list[Family], batch_size: int,
                   pad_id: int, support: Support) -> tuple[dict[int, list[float]], dict[int, Kept]]:
    """Rewards of families of solutions whose inputs share their first ``prefix`` tokens, and every
    member ``Kept`` for the next call, both by solution index.

    The backbone runs every family's prefix once (right-padded batches), unless a kept parent's
    cache holds it, then every member's remaining tokens on its family's KV cache: each batch row
    holds its prefix's keys and values in its first ``prefix`` columns (masked padding up to the
    batch's longest prefix), its own tokens after that, with positions that continue its prefix.
    The model being causal, the outputs are those of one forward per solution (to rounding)."""
    from transformers import DynamicCache

    body, device, config = model.base_model, model.device, model.config
    bs = batch_size
    hidden_at: dict[int, list[torch.Tensor]] = {}
    kept: dict[int, Kept] = {}
    prefix_kv: list = [None] * len(families)
    prefix_hidden: list = [None] * len(families)  # indexable by column: a tensor or a dict
    for f, (_, prefix, parent) in enumerate(families):
        if parent is not None:
            prefix_kv[f], prefix_hidden[f] = parent.kv(prefix), parent.hidden
    order = sorted((f for f in range(len(families)) if families[f][2] is None), key=lambda f: families[f][1])
    for start in range(0, len(order), bs):
        fs = order[start:start + bs]
        width = max(families[f][1] for f in fs)
        ids = torch.full((len(fs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(fs), width), dtype=torch.long)
        for b, f in enumerate(fs):
            members, prefix, _ = families[f]
            ids[b, :prefix] = torch.tensor(members[0][1][:prefix], dtype=torch.long)
            mask[b, :prefix] = 1
        cache = DynamicCache(config=config)
        hidden = body(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=True,
                      **{support.cache_kw: cache}).last_hidden_state
        for b, f in enumerate(fs):
            prefix = families[f][1]
            prefix_hidden[f] = hidden[b, :prefix]
            prefix_kv[f] = [(layer.keys[b, :, :prefix], layer.values[b, :, :prefix]) for layer in cache.layers]
    members = sorted(((f, item) for f, (fam, _, _) in enumerate(families) for item in fam),
                     key=lambda m: (families[m[0]][1], len(m[1][1])))
    for start in range(0, len(members), bs):
        chunk = members[start:start + bs]
        longest = max(families[f][1] for f, _ in chunk)
        width = max(len(ids) - families[f][1] for f, (_, ids, _) in chunk)
        n = len(chunk)
        suffix = torch.full((n, width), pad_id, dtype=torch.long)
        mask = torch.zeros((n, longest + width), dtype=torch.long)
        positions = torch.zeros((n, width), dtype=torch.long)
        # One buffer per layer for the past and the new tokens: the cache writes the new keys and
        # values in place (a DynamicCache would copy the whole past again to append them).
        past = [(k.new_empty((n, k.shape[0], longest + width, k.shape[2])),
                 v.new_empty((n, v.shape[0], longest + width, v.shape[2]))) for k, v in prefix_kv[chunk[0][0]]]
        for b, (f, (_, ids, _)) in enumerate(chunk):
            prefix = families[f][1]
            for (K, V), (k, v) in zip(past, prefix_kv[f], strict=True):
                K[b, :, :prefix] = k
                V[b, :, :prefix] = v
                # masked columns must hold finite numbers (a zero attention weight times NaN is NaN)
                K[b, :, prefix:longest] = 0
                V[b, :, prefix:longest] = 0
            own = len(ids) - prefix
            suffix[b, :own] = torch.tensor(ids[prefix:], dtype=torch.long)
            mask[b, :prefix] = 1
            mask[b, longest:longest + own] = 1
            positions[b] = torch.arange(prefix, prefix + width)
        cache = DynamicCache(config=config)
        cache.layers = [_in_place_layer()(K, V, longest) for K, V in past]
        hidden = body(input_ids=suffix.to(device), attention_mask=mask.to(device),
                      position_ids=positions.to(device), use_cache=True,
                      **{support.cache_kw: cache}).last_hidden_state
        for b, (f, (i, ids, cols)) in enumerate(chunk):
            prefix, own = families[f][1], len(ids) - families[f][1]
            hidden_at[i] = [prefix_hidden[f][c] if c < prefix else hidden[b, c - prefix].clone() for c in cols]
            # own columns are copied out of the batch's cache, so that the batch can be freed
            kept[i] = Kept(ids, prefix_kv[f], [(layer.keys[b, :, longest:longest + own].clone(),
                                                 layer.values[b, :, longest:longest + own].clone())
                                                for layer in cache.layers],
                           dict(zip(cols, hidden_at[i], strict=True)))
    flat = head(torch.stack([h for hs in hidden_at.values() for h in hs])).float().cpu().tolist()
    out, k = {}, 0
    for i, hs in hidden_at.items():
        out[i] = flat[k:k + len(hs)]
        k += len(hs)
    return out, kept

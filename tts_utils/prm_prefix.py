"""Prefix sharing for PRM scoring: siblings run their common input prefix once.

A search scores many **siblings** in one call: solutions with the same question and the same
steps but the last (a beam's children). Their encoded inputs share a long prefix; running it
once and each sibling's own last tokens on its KV cache gives the outputs of one forward per
solution (the model is causal), to rounding. ``tts_utils.prm.TransformersPRM.score`` uses this
where the model allows it (``sharing_support``) and the format's head is known (``head``: the
backbone's last hidden states at the read positions -> rewards).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch

# A family: its members [(solution index, input ids, read positions)] and their shared prefix length.
Family = tuple[list[tuple[int, list[int], list[int]]], int]


@dataclass(frozen=True)
class Support:
    """How a model runs a prefix's KV cache: the forward's cache keyword, and the longest input
    it can share (sliding-window layers keep only inputs shorter than the window whole)."""

    cache_kw: str
    max_len: int | None


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


def common_prefix(seqs: list[list[int]]) -> int:
    """Length of the longest common prefix of ``seqs``, less one if it is a whole sequence (every
    sequence keeps at least one token of its own to run)."""
    n = min(len(x) for x in seqs)
    first = seqs[0]
    for x in seqs[1:]:
        k = 0
        while k < n and x[k] == first[k]:
            k += 1
        n = k
    return min(n, min(len(x) for x in seqs) - 1)


def split_families(items: list[tuple[int, list[int], list[int]]], parent: dict, min_prefix: int,
                   max_len: int | None) -> tuple[list[Family], list[tuple[int, list[int], list[int]]]]:
    """(families worth sharing, items to run whole). Items are grouped by ``parent[index]`` (the
    question and every step but the last); a family shares when its common prefix has at least
    ``min_prefix`` tokens and no member is longer than ``max_len``."""
    families: dict = {}
    for item in items:
        families.setdefault(parent[item[0]], []).append(item)
    shared, whole = [], []
    for family in families.values():
        prefix = common_prefix([ids for _, ids, _ in family]) if len(family) > 1 else 0
        too_long = max_len is not None and max(len(ids) for _, ids, _ in family) > max_len
        if prefix < min_prefix or too_long:
            whole += family
        else:
            shared.append((family, prefix))
    return shared, whole


@torch.inference_mode()
def score_families(model, head: Callable[[torch.Tensor], torch.Tensor], families: list[Family], batch_size: int,
                   pad_id: int, support: Support) -> dict[int, list[float]]:
    """Rewards of families of solutions whose inputs share their first ``prefix`` tokens, by
    solution index.

    The backbone runs every family's prefix once (right-padded batches), then every member's
    remaining tokens on its family's KV cache: each batch row holds its prefix's keys and values
    in its first ``prefix`` columns (masked padding up to the batch's longest prefix), its own
    tokens after that, with positions that continue its prefix. The model being causal, the
    outputs are those of one forward per solution (to rounding)."""
    from transformers import DynamicCache

    body, device, config = model.base_model, model.device, model.config
    bs = batch_size
    hidden_at: dict[int, list[torch.Tensor]] = {}
    prefix_kv: list = [None] * len(families)
    prefix_hidden: list = [None] * len(families)
    order = sorted(range(len(families)), key=lambda f: families[f][1])
    for start in range(0, len(order), bs):
        fs = order[start:start + bs]
        width = max(families[f][1] for f in fs)
        ids = torch.full((len(fs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(fs), width), dtype=torch.long)
        for b, f in enumerate(fs):
            members, prefix = families[f]
            ids[b, :prefix] = torch.tensor(members[0][1][:prefix], dtype=torch.long)
            mask[b, :prefix] = 1
        cache = DynamicCache(config=config)
        hidden = body(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=True,
                      **{support.cache_kw: cache}).last_hidden_state
        for b, f in enumerate(fs):
            prefix = families[f][1]
            prefix_hidden[f] = hidden[b, :prefix]
            prefix_kv[f] = [(layer.keys[b, :, :prefix], layer.values[b, :, :prefix]) for layer in cache.layers]
    members = sorted(((f, item) for f, (fam, _) in enumerate(families) for item in fam),
                     key=lambda m: (families[m[0]][1], len(m[1][1])))
    for start in range(0, len(members), bs):
        chunk = members[start:start + bs]
        longest = max(families[f][1] for f, _ in chunk)
        width = max(len(ids) - families[f][1] for f, (_, ids, _) in chunk)
        n = len(chunk)
        suffix = torch.full((n, width), pad_id, dtype=torch.long)
        mask = torch.zeros((n, longest + width), dtype=torch.long)
        positions = torch.zeros((n, width), dtype=torch.long)
        past = [(k.new_zeros((n, k.shape[0], longest, k.shape[2])), v.new_zeros((n, v.shape[0], longest, v.shape[2])))
                for k, v in prefix_kv[chunk[0][0]]]
        for b, (f, (_, ids, _)) in enumerate(chunk):
            prefix = families[f][1]
            for (K, V), (k, v) in zip(past, prefix_kv[f], strict=True):
                K[b, :, :prefix] = k
                V[b, :, :prefix] = v
            own = len(ids) - prefix
            suffix[b, :own] = torch.tensor(ids[prefix:], dtype=torch.long)
            mask[b, :prefix] = 1
            mask[b, longest:longest + own] = 1
            positions[b] = torch.arange(prefix, prefix + width)
        cache = DynamicCache(ddp_cache_data=past, config=config)
        hidden = body(input_ids=suffix.to(device), attention_mask=mask.to(device),
                      position_ids=positions.to(device), use_cache=True,
                      **{support.cache_kw: cache}).last_hidden_state
        for b, (f, (i, _, cols)) in enumerate(chunk):
            prefix = families[f][1]
            hidden_at[i] = [prefix_hidden[f][c] if c < prefix else hidden[b, c - prefix] for c in cols]
    flat = head(torch.stack([h for hs in hidden_at.values() for h in hs])).float().cpu().tolist()
    out, k = {}, 0
    for i, hs in hidden_at.items():
        out[i] = flat[k:k + len(hs)]
        k += len(hs)
    return out

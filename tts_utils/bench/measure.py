"""Throughput sections: the machine's ceilings, each policy's decoding and each PRM's scoring."""

from __future__ import annotations

import statistics
import time

import torch

from tts_utils.bench.common import (
    BenchError,
    dtype_name,
    median_run,
    model_dtype,
    model_params,
    n_params,
    share,
    spread,
)
from tts_utils.models.policy import SamplingParams
from tts_utils.problems.prompts import split_steps


def bench_ceiling(size: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32) -> dict:
    """matmul FLOP/s of a ``size`` x ``size`` product in ``dtype`` (median)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    t, _ = median_run(lambda: torch.matmul(a, b), repeats, warmup=2)
    return {"size": size, "dtype": dtype_name(dtype), "flops": 2 * size**3 / t}


def bench_bandwidth(mbytes: int = 256, repeats: int = 5) -> dict:
    """Memory read bandwidth (bytes/s): summing an fp32 tensor far larger than the caches."""
    x = torch.ones(mbytes * 2**20 // 4)
    t, _ = median_run(lambda: x.sum(), repeats, warmup=1)
    return {"mbytes": mbytes, "bytes_per_s": x.numel() * 4 / t}


def _attention_shape(config) -> tuple[int, int, int, int]:
    """(layers, query heads, key/value heads, head size) of a decoder's config (a multimodal one's
    text part)."""
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = cfg.num_attention_heads
    kv = getattr(cfg, "num_key_value_heads", None) or heads
    return cfg.num_hidden_layers, heads, kv, getattr(cfg, "head_dim", None) or cfg.hidden_size // heads


def decode_bytes(policy, prompts: list[str], generations) -> dict | None:
    """What a decode step reads per generated token, for the memory bound: the KV cache (every
    layer's keys and values for the whole context so far) and the weights (read once per step,
    shared by the step's rows). None if the policy is not a local transformers model."""
    model, tok = getattr(policy, "model", None), getattr(policy, "tokenizer", None)
    cfg = getattr(model, "config", None)
    if not isinstance(model, torch.nn.Module) or tok is None or cfg is None:
        return None
    layers, _, kv, head_dim = _attention_shape(cfg)
    per_ctx_token = layers * 2 * kv * head_dim * next(model.parameters()).element_size()
    lengths = [len(x) for x in tok(list(prompts), add_special_tokens=False)["input_ids"]]
    ctx = sum(g.num_tokens * p + g.num_tokens * (g.num_tokens - 1) / 2 for g, p in zip(generations, lengths,
                                                                                     strict=True))
    n = max(1, sum(g.num_tokens for g in generations))
    return {"mean_context": ctx / n, "kv_bytes_per_token": per_ctx_token * ctx / n,
            "weight_bytes": sum(p.numel() * p.element_size() for p in model.parameters())}


def bench_policy(policy, problems, batches=(1, 16, 64, 256), repeats: int = 3, max_tokens: int = 512,
                 min_sequences: int = 16, ceiling_flops: float = 0.0) -> list[dict]:
    """Generated tokens/s at each batch size: ``max(batch, min_sequences)`` whole solutions in
    generate calls of ``batch`` prompts (distinct problems, fixed seeds)."""
    params = SamplingParams(temperature=0.7, top_p=1.0, max_tokens=max_tokens, stop=None)
    p = model_params(policy)
    old_bs = getattr(policy, "batch_size", None)
    rows = []
    try:
        for b in batches:
            total = max(b, min_sequences)
            # the same mix of levels at every batch size (the sets are ordered by level)
            prompts = [policy.build_prompt(p.problem, []) for p in spread(problems, total)]
            prompts = [prompts[i % len(prompts)] for i in range(total)]
            if old_bs is not None:
                policy.batch_size = b

            def run(prompts=prompts, b=b):
                gens = []
                for s in range(0, len(prompts), b):
                    chunk = prompts[s:s + b]
                    gens += policy.generate(chunk, params, list(range(s, s + len(chunk))))
                return gens

            t, gens = median_run(run, repeats)
            tokens = sum(g.num_tokens for g in gens)
            tps = tokens / t
            rows.append({"policy": policy.name, "params": p, "batch": b, "sequences": total, "tokens": tokens,
                         "wall_s": t, "tokens_per_s": tps, "share": share(tps, p, ceiling_flops),
                         "bytes": decode_bytes(policy, prompts, gens)})
    finally:
        if old_bs is not None:
            policy.batch_size = old_bs
    return rows


def prm_flops_per_token(prm, lengths: list[int]) -> dict | None:
    """The FLOPs of one scored token in a causal forward: 2 per parameter (the weights' matmuls)
    plus attention, 4 x d_attn per layer and per earlier token it attends to (QK^T and AV), over
    the mean causal context of ``lengths``' tokens. None if the PRM is not a local model."""
    model = getattr(prm, "model", None)
    cfg = getattr(model, "config", None)
    if not isinstance(model, torch.nn.Module) or cfg is None:
        return None
    layers, heads, _, head_dim = _attention_shape(cfg)
    context = sum(n * (n + 1) / 2 for n in lengths) / max(1, sum(lengths))
    params = n_params(model)
    attention = 4 * layers * heads * head_dim * context
    return {"params": 2 * params, "attention": attention, "total": 2 * params + attention, "mean_context": context}


def bench_prm(prm, problems, repeats: int = 3, ceiling_flops: float = 0.0,
              ceilings: dict[str, float] | None = None) -> dict:
    """Scored tokens/s over the problems' reference solutions (one ``score`` call). ``share``: the
    parameter FLOPs (2P a token) over ``ceiling_flops``, the policies' measure; ``flop_share``: all
    the FLOPs of a token (parameters and attention) over the matmul ceiling of the PRM's own dtype
    (``ceilings``, by dtype name: the study's CPU PRMs run in float64)."""
    solved = [p for p in problems if p.solution]
    if not solved:
        raise BenchError("the PRM bench needs problems with reference solutions")
    questions = [p.problem for p in solved]
    solutions = [split_steps(p.solution) for p in solved]
    t, scores = median_run(lambda: prm.score(questions, solutions), repeats, warmup=1)
    tokens = sum(s.num_tokens for s in scores)
    p = model_params(prm)
    row = {"prm": prm.name, "params": p, "solutions": len(solved), "batch": getattr(prm, "batch_size", None),
           "tokens": tokens, "wall_s": t, "tokens_per_s": tokens / t,
           "share": share(tokens / t, p, ceiling_flops)}
    dtype = model_dtype(prm)
    name = dtype and dtype_name(dtype)
    flops = prm_flops_per_token(prm, [s.num_tokens for s in scores])
    if flops is not None and name in (ceilings or {}):
        row.update(dtype=name, flops_per_token=flops, ceiling_dtype_flops=ceilings[name],
                   flop_share=tokens / t * flops["total"] / ceilings[name])
    return row



def bench_kv_heads(policy, batch: int = 256, context: int = 96, steps: int = 32, repeats: int = 3) -> list[dict]:
    """The grouped-query-attention lever: decode steps of the policy's architecture with its own
    number of KV heads and with 1 (as Llama 3 shares a KV head between query heads), random weights
    and otherwise the same shapes, ``batch`` rows at a ``context``-token context. Decode steps
    only (no sampling), so the rows differ in nothing but the attention's KV bytes. Every row stays
    live, so the first row is also what refilling finished rows (continuous batching) could reach
    at best: a batch without a tail."""
    import copy

    from transformers import AutoModelForCausalLM

    from tts_utils.models.decoder import LlamaFamilyForward

    model = getattr(policy, "model", None)
    if not isinstance(model, torch.nn.Module):
        return []
    rows = []
    for kv in dict.fromkeys([model.config.num_key_value_heads, 1]):
        cfg = copy.deepcopy(model.config)
        cfg.num_key_value_heads = kv
        torch.manual_seed(0)
        net = LlamaFamilyForward(AutoModelForCausalLM.from_config(cfg).eval())
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(0, cfg.vocab_size, (batch, context + steps), generator=gen)
        positions = torch.arange(context + steps).expand(batch, -1)
        rotary = net.rotary_tables(context + steps)

        @torch.inference_mode()
        def decode(net=net, ids=ids, positions=positions, rotary=rotary):
            cache = net.new_cache(batch, context + steps)
            net.forward(ids[:, :context], positions[:, :context], cache, None, rotary)
            start = time.perf_counter()
            for s in range(context, context + steps):
                net.forward(ids[:, s:s + 1], positions[:, s:s + 1], cache, None, rotary)
            return time.perf_counter() - start

        decode()  # warm-up
        t = statistics.median(decode() for _ in range(max(1, repeats)))
        elem = next(net.model.parameters()).element_size()
        kv_bytes = cfg.num_hidden_layers * 2 * kv * net.head_dim * elem * (context + steps / 2)
        params = sum(p.numel() for p in net.model.parameters())
        rows.append({"policy": policy.name, "kv_heads": kv, "heads": net.n_heads, "batch": batch,
                     "context": context, "kv_bytes_per_token": kv_bytes, "params": params,
                     "weight_bytes": params * elem, "tokens_per_s": batch * steps / t})
    return rows


def _layer_linears(model) -> list[list[torch.nn.Linear]]:
    """The weight matmuls of each decoder layer (attention and MLP projections; not the heads)."""
    by_layer: dict[int, list] = {}
    for name, m in model.named_modules():
        parts = name.split(".")
        if isinstance(m, torch.nn.Linear) and "layers" in parts[:-1]:
            i = parts.index("layers") + 1  # the layer's number follows
            if parts[i].isdigit():
                by_layer.setdefault(int(parts[i]), []).append(m)
    return [by_layer[i] for i in sorted(by_layer)]


def kernels_alone_s(model, batch: int, new: int, context: int, repeats: int = 3) -> float:
    """Seconds that one forward of ``model``'s shape spends in torch's attention kernel and its
    layers' weight matmuls alone, on random inputs in the model's dtype: ``batch`` rows of ``new``
    tokens over ``context`` columns. ``new == context`` is a causal forward over whole inputs (as a
    PRM scores), ``new == 1`` a decode step over a filled KV cache (one buffer per layer, every row
    live, no padding mask). Norms, rotary embeddings, activations, the heads, sampling and Python
    are left out, so ``batch * new`` tokens over this time is the most that these kernels allow the
    whole forward on this machine: an upper bound, not a prediction."""
    if new not in (1, context):
        raise ValueError(f"new must be 1 (a decode step) or context (a whole forward); got {new} of {context}")
    n_layers, heads, kv, head_dim = _attention_shape(model.config)
    layers = _layer_linears(model)
    if len(layers) != n_layers:
        raise BenchError(f"found the linear layers of {len(layers)} decoder layers, config says {n_layers}")
    dtype = next(model.parameters()).dtype
    gen = torch.Generator().manual_seed(0)
    inputs = {m.in_features: torch.randn(batch * new, m.in_features, generator=gen).to(dtype)
              for ls in layers for m in ls}
    if new == 1:   # the decoder's layout: a group's query heads as query rows of their KV head
        q = torch.randn(batch, kv, heads // kv, head_dim, generator=gen).to(dtype)
        cache = torch.randn(len(layers), 2, batch, kv, context + 64, head_dim, generator=gen).to(dtype)
        kvs = [(c[0, :, :, :context], c[1, :, :, :context]) for c in cache]
        options = {}
    else:
        q = torch.randn(batch, heads, new, head_dim, generator=gen).to(dtype)
        kvs = [tuple(torch.randn(2, batch, kv, new, head_dim, generator=gen).to(dtype)) for _ in layers]
        options = {"is_causal": True, "enable_gqa": kv != heads}

    @torch.inference_mode()
    def forward():
        for linears, (k, v) in zip(layers, kvs, strict=True):
            for m in linears:
                torch.nn.functional.linear(inputs[m.in_features], m.weight, m.bias)
            torch.nn.functional.scaled_dot_product_attention(q, k, v, **options)

    t, _ = median_run(forward, repeats, warmup=1)
    return t

"""Throughput sections: the machine's ceilings, each policy's decoding and each PRM's scoring."""

from __future__ import annotations

import torch

from tts_utils.bench.common import BenchError, median_run, model_params, share, spread
from tts_utils.policy import SamplingParams
from tts_utils.prompts import split_steps


def bench_ceiling(size: int = 2048, repeats: int = 5) -> dict:
    """fp32 matmul FLOP/s of a ``size`` x ``size`` product (median)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    t, _ = median_run(lambda: torch.matmul(a, b), repeats, warmup=2)
    return {"size": size, "flops": 2 * size**3 / t}


def bench_bandwidth(mbytes: int = 256, repeats: int = 5) -> dict:
    """Memory read bandwidth (bytes/s): summing an fp32 tensor far larger than the caches."""
    x = torch.ones(mbytes * 2**20 // 4)
    t, _ = median_run(lambda: x.sum(), repeats, warmup=1)
    return {"mbytes": mbytes, "bytes_per_s": x.numel() * 4 / t}


def decode_bytes(policy, prompts: list[str], generations) -> dict | None:
    """What a decode step reads per generated token, for the memory bound: the KV cache (every
    layer's keys and values for the whole context so far) and the weights (read once per step,
    shared by the step's rows). None if the policy is not a local transformers model."""
    model, tok = getattr(policy, "model", None), getattr(policy, "tokenizer", None)
    cfg = getattr(model, "config", None)
    if not isinstance(model, torch.nn.Module) or tok is None or cfg is None:
        return None
    heads = getattr(cfg, "num_attention_heads", 1)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    elem = next(model.parameters()).element_size()
    per_ctx_token = cfg.num_hidden_layers * 2 * getattr(cfg, "num_key_value_heads", heads) * head_dim * elem
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


def bench_prm(prm, problems, repeats: int = 3, ceiling_flops: float = 0.0) -> dict:
    """Scored tokens/s over the problems' reference solutions (one ``score`` call)."""
    solved = [p for p in problems if p.solution]
    if not solved:
        raise BenchError("the PRM bench needs problems with reference solutions")
    questions = [p.problem for p in solved]
    solutions = [split_steps(p.solution) for p in solved]
    t, scores = median_run(lambda: prm.score(questions, solutions), repeats, warmup=1)
    tokens = sum(s.num_tokens for s in scores)
    p = model_params(prm)
    return {"prm": prm.name, "params": p, "solutions": len(solved), "batch": getattr(prm, "batch_size", None),
            "tokens": tokens, "wall_s": t, "tokens_per_s": tokens / t,
            "share": share(tokens / t, p, ceiling_flops)}


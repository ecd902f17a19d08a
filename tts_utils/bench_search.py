"""Benchmark: Best-of-N, beam search and DVTS at the same N on the same problems.

Reports, per method: wall time, policy tokens generated, PRM tokens processed, generate/score
calls, and wall time per generated policy token relative to BoN (tree searches re-prompt and
re-score every round, so they cost more time per token than one long BoN sample). A script,
not a test: run it on the tiny world or on real models with any registry names, e.g.

    python -m tts_utils.bench_search --policy tiny-policy-2m --prm tiny-prm-shepherd \\
        --dataset tinymath500 --limit 50 --n 16
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tts_utils.data import load_dataset
from tts_utils.search import SearchConfig, run_method

METHODS = ("best_of_n", "beam_search", "dvts")


def load_models(policy: str, prm: str, backend: str, loader: str | None):
    if loader:
        module, _, name = loader.partition(":")
        fn = getattr(importlib.import_module(module), name)
        return fn("policy", policy), fn("prm", prm)
    from tts_utils.policy import load_policy
    from tts_utils.prm import load_prm

    return load_policy(policy, backend=backend), load_prm(prm)


def bench(policy, prm, problems, n: int, seed: int = 0, config: SearchConfig | None = None) -> list[dict]:
    """One row per method; ``rel_s_per_token`` is (wall / policy tokens) over BoN's."""
    rows = []
    for method in METHODS:
        res = run_method(method, policy, prm, problems, n, seed, config)
        rows.append({"method": method, "wall_s": res.wall_s, "policy_tokens": res.policy_tokens,
                     "prm_tokens": res.prm_tokens, "policy_calls": res.policy_calls, "prm_calls": res.prm_calls,
                     "s_per_token": res.wall_s / max(res.policy_tokens, 1),
                     "any_correct": sum(any(c.correct for c in res.candidates if c.problem_id == p.id)
                                        for p in problems) / max(len(problems), 1)})
    base = rows[0]["s_per_token"]
    for r in rows:
        r["rel_s_per_token"] = r["s_per_token"] / base if base > 0 else float("nan")
    return rows


def format_table(rows: list[dict]) -> str:
    head = f"{'method':<12} {'wall_s':>8} {'policy_tok':>11} {'prm_tok':>10} {'gen_calls':>9} " \
           f"{'s/tok vs BoN':>12} {'pass@N':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['method']:<12} {r['wall_s']:>8.2f} {r['policy_tokens']:>11d} {r['prm_tokens']:>10d} "
                     f"{r['policy_calls']:>9d} {r['rel_s_per_token']:>12.2f} {r['any_correct']:>7.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--policy", required=True)
    ap.add_argument("--prm", required=True)
    ap.add_argument("--dataset", default="tinymath500")
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--beam-width", type=int, default=4)
    ap.add_argument("--max-depth", type=int, default=40)
    ap.add_argument("--max-step-tokens", type=int, default=2048)
    ap.add_argument("--max-solution-tokens", type=int, default=8192)
    ap.add_argument("--backend", default="transformers")
    ap.add_argument("--loader", help="'module:function' (kind, name) -> model, instead of the registry")
    args = ap.parse_args(argv)
    cfg = SearchConfig(beam_width=args.beam_width, max_depth=args.max_depth, max_step_tokens=args.max_step_tokens,
                       max_solution_tokens=args.max_solution_tokens)
    problems = load_dataset(args.dataset, limit=args.limit)
    policy, prm = load_models(args.policy, args.prm, args.backend, args.loader)
    rows = bench(policy, prm, problems, args.n, args.seed, cfg)
    print(f"{len(problems)} problems of {args.dataset}, N={args.n}, M={args.beam_width}, "
          f"policy {args.policy}, PRM {args.prm}")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

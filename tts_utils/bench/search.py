"""The search section: Best-of-N, beam search and DVTS at the same N on the same problems."""

from __future__ import annotations

import time

from tts_utils.bench.common import SEARCH_METHODS, BenchError
from tts_utils.search import SearchConfig, run_method


class _Timed:
    """Wraps a policy or PRM; adds the wall time of its generate/score calls to ``seconds``."""

    def __init__(self, inner, method: str):
        self._inner, self._method, self.seconds = inner, method, 0.0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def _call(self, *args, **kw):
        start = time.perf_counter()
        try:
            return getattr(self._inner, self._method)(*args, **kw)
        finally:
            self.seconds += time.perf_counter() - start

    def generate(self, *args, **kw):
        return self._call(*args, **kw)

    def score(self, *args, **kw):
        return self._call(*args, **kw)


def bench_search(policy, prm, problems, budgets=(16, 64), repeats: int = 3, seed: int = 0,
                 config: SearchConfig | None = None, methods=SEARCH_METHODS) -> list[dict]:
    """One row per (N, method); ratios relative to BoN at the same N, within this run. The methods
    take turns within each repeat (BoN, beam search, DVTS, BoN, ...), so that a drift in the host's
    speed (this machine's drifts by up to a quarter within an hour) falls on every method alike
    instead of on the ratio."""
    cfg = config or SearchConfig()
    rows = []
    for n in budgets:
        group = []
        timed: dict[str, list] = {m: [] for m in methods}
        for _ in range(max(1, repeats)):
            for method in methods:
                pol, rm = _Timed(policy, "generate"), _Timed(prm, "score")
                before = getattr(prm, "tokens_processed", None)
                res = run_method(method, pol, rm, problems, n, seed, cfg)
                ran = None if before is None else prm.tokens_processed - before
                timed[method].append((res.wall_s, pol.seconds, rm.seconds, res, ran))
        for method in methods:
            runs = sorted(timed[method], key=lambda r: r[0])
            wall, pol_s, prm_s, res, ran = runs[len(runs) // 2]
            if len({(r[3].policy_tokens, r[3].prm_tokens) for r in runs}) != 1:
                raise BenchError(f"{method} at N={n} is not deterministic: token counts differ between repeats")
            gen = max(res.policy_tokens, 1)
            group.append({"method": method, "n": n, "problems": len(problems), "wall_s": wall, "policy_s": pol_s,
                          "prm_s": prm_s, "policy_tokens": res.policy_tokens, "prm_tokens": res.prm_tokens,
                          "policy_calls": res.policy_calls, "prm_calls": res.prm_calls,
                          "prm_tokens_run": ran, "s_per_token": wall / gen, "prm_per_token": res.prm_tokens / gen,
                          "prm_run_per_token": None if ran is None else ran / gen,
                          "pass_at_n": sum(any(c.correct for c in res.candidates if c.problem_id == p.id)
                                           for p in problems) / max(len(problems), 1)})
        base = next((r for r in group if r["method"] == "best_of_n"), group[0])["s_per_token"]
        for r in group:
            r["rel_s_per_token"] = r["s_per_token"] / base if base > 0 else float("nan")
        rows += group
    return rows


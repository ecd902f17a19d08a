"""Best-of-N (docs/DESIGN.md, "Search methods"): N whole solutions per problem, every step PRM-scored, all kept.

The answer is chosen afterwards by a voting rule (tts_utils.search.voting) over the stored candidates.
One generate call and one PRM call for all problems together. Sample i of a problem has the same
seed at every N, so a run at N is exactly the first N samples of a run at N_max
(``search.derive``, group size 1).
"""

from __future__ import annotations

from tts_utils.search.common import (
    SearchConfig,
    SearchResult,
    Timer,
    check_budget,
    grade_candidates,
    problems_by_id,
    sample_solutions,
    score_candidates,
)
from tts_utils.search.registry import Method, register

METHOD = "best_of_n"


def best_of_n(policy, prm, problems, n: int, seed: int = 0, config: SearchConfig | None = None) -> SearchResult:
    cfg = config or SearchConfig()
    check_budget(n, method=METHOD)
    problems = list(problems)
    problems_by_id(problems)
    with Timer() as t:
        cands, runs = sample_solutions(policy, problems, n, seed, cfg.solution_params(), METHOD)
        score_candidates(prm, problems, cands, runs)
    grade_candidates(cands, {p.id: p.answer for p in problems})
    return SearchResult(METHOD, n, seed, cands, runs, wall_s=t.seconds,
                        policy_calls=1 if problems else 0, prm_calls=1 if cands else 0)


register(Method(METHOD, best_of_n, uses_prm=True, derivable=True))

"""Chain-of-thought baseline: one greedy (temperature 0) whole solution per problem, no PRM."""

from __future__ import annotations

from tts_utils.search.common import (
    SearchConfig,
    SearchResult,
    Timer,
    grade_candidates,
    problems_by_id,
    sample_solutions,
)
from tts_utils.search.registry import Method, register

METHOD = "cot"


def cot(policy, problems, seed: int = 0, config: SearchConfig | None = None) -> SearchResult:
    cfg = config or SearchConfig()
    problems = list(problems)
    problems_by_id(problems)
    with Timer() as t:
        cands, runs = sample_solutions(policy, problems, 1, seed, cfg.solution_params(temperature=0.0),
                                       METHOD, namespace="cot")
    grade_candidates(cands, {p.id: p.answer for p in problems})
    return SearchResult(METHOD, 1, seed, cands, runs, wall_s=t.seconds, policy_calls=1 if problems else 0)


def _run(policy, prm, problems, n, seed, config):
    return cot(policy, problems, seed, config)


register(Method(METHOD, _run, uses_prm=False, budgets="one"))

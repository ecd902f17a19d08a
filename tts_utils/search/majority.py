"""Majority-voting baseline: N whole solutions per problem, the most frequent answer wins.

No PRM is used. The samples are the same as Best-of-N's (same seeds: sample i of a problem is
identical in both), so majority voting and BoN differ only in how the answer is chosen.
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
)
from tts_utils.search.registry import Method, register

METHOD = "majority"


def majority(policy, problems, n: int, seed: int = 0, config: SearchConfig | None = None) -> SearchResult:
    cfg = config or SearchConfig()
    check_budget(n, method=METHOD)
    problems = list(problems)
    problems_by_id(problems)
    with Timer() as t:
        cands, runs = sample_solutions(policy, problems, n, seed, cfg.solution_params(), METHOD)
    grade_candidates(cands, {p.id: p.answer for p in problems})
    return SearchResult(METHOD, n, seed, cands, runs, wall_s=t.seconds, policy_calls=1 if problems else 0)


def majority_answer(answers: list[str | None]) -> str | None:
    """The most frequent answer (equivalence-grouped, deterministic ties) via tts_utils.search.voting."""
    from tts_utils.search.voting import select

    return select(answers, None, "majority")


def _run(policy, prm, problems, n, seed, config):
    return majority(policy, problems, n, seed, config)


register(Method(METHOD, _run, uses_prm=False, derivable=True))

"""Test-time search methods (DESIGN.md section 4), each batched across problems.

``run_method(name, policy, prm, problems, n, seed, config)`` dispatches by name; ``derive`` turns
a BoN / majority / DVTS run at N_max into the runs at smaller N (beam search must run per N).
"""

from __future__ import annotations

from tts_utils.search.beam_search import beam_search
from tts_utils.search.best_of_n import best_of_n
from tts_utils.search.common import (
    METHODS,
    Candidate,
    ProblemRun,
    SearchConfig,
    SearchResult,
    check_budget,
    derive_seed,
    subsample,
)
from tts_utils.search.cot import cot
from tts_utils.search.dvts import dvts
from tts_utils.search.majority import majority
from tts_utils.search.pass1_samples import pass1_samples

USES_PRM = {"cot": False, "majority": False, "best_of_n": True, "beam_search": True, "dvts": True,
            "pass1_samples": False}
# Methods whose run at N_max contains the runs at every smaller N (group size per method).
SUBSAMPLABLE = ("best_of_n", "majority", "dvts")


def group_size(method: str, config: SearchConfig) -> int:
    return config.beam_width if method == "dvts" else 1


def validate_budget(method: str, n: object, config: SearchConfig) -> int:
    """Check that N is a valid budget for ``method`` (ValueError naming the problem)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    if method == "cot":
        return check_budget(n, method=method)
    needs_m = method in ("beam_search", "dvts")
    return check_budget(n, config.beam_width if needs_m else None, method)


def run_method(method: str, policy, prm, problems, n: int, seed: int = 0,
               config: SearchConfig | None = None) -> SearchResult:
    cfg = config or SearchConfig()
    validate_budget(method, n, cfg)
    if method == "cot":
        return cot(policy, problems, seed, cfg)
    if method == "majority":
        return majority(policy, problems, n, seed, cfg)
    if method == "pass1_samples":
        return pass1_samples(policy, problems, n, seed, cfg)
    if prm is None:
        raise ValueError(f"{method} needs a PRM")
    fn = {"best_of_n": best_of_n, "beam_search": beam_search, "dvts": dvts}[method]
    return fn(policy, prm, problems, n, seed, cfg)


def run_budgets(method: str, policy, prm, problems, budgets: list[int], seed: int = 0,
                config: SearchConfig | None = None) -> dict[int, SearchResult]:
    """Results at every budget: one run at max(budgets) subsampled where the method allows it,
    one run per N for beam search. CoT ignores budgets (one greedy sample, N = 1)."""
    cfg = config or SearchConfig()
    if method == "cot":
        return {1: cot(policy, problems, seed, cfg)}
    budgets = sorted(set(budgets))
    for n in budgets:
        validate_budget(method, n, cfg)
    if method in SUBSAMPLABLE:
        top = run_method(method, policy, prm, problems, budgets[-1], seed, cfg)
        return {n: top if n == top.n else derive(top, n, cfg) for n in budgets}
    return {n: run_method(method, policy, prm, problems, n, seed, cfg) for n in budgets}


def derive(result: SearchResult, n: int, config: SearchConfig | None = None) -> SearchResult:
    """The run at budget ``n`` contained in a BoN / majority / DVTS run at a larger budget."""
    cfg = config or SearchConfig()
    if result.method not in SUBSAMPLABLE:
        raise ValueError(f"{result.method} cannot be derived from a larger run (only {', '.join(SUBSAMPLABLE)})")
    return subsample(result, n, group_size(result.method, cfg))


__all__ = [
    "METHODS", "SUBSAMPLABLE", "USES_PRM", "Candidate", "ProblemRun", "SearchConfig", "SearchResult",
    "beam_search", "best_of_n", "check_budget", "cot", "derive", "derive_seed", "dvts", "group_size",
    "majority", "pass1_samples", "run_budgets", "run_method", "subsample", "validate_budget",
]

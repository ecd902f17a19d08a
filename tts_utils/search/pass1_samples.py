"""The difficulty sample set: plain temperature samples that only estimate each problem's pass@1.

Not a test-time scaling method. Binning problems by the pass@1 of the very samples Best-of-N
votes over would make "search beats BoN on hard problems" true by construction (a problem whose
samples are all wrong has BoN = 0 there). So pass@1 comes from a set of its own: its own run seed
(collect's ``pass1_seed``) and its own seed namespace ("pass1"), so no sample of it is a
candidate of BoN / majority ("sample"), beam search, DVTS or CoT; collect runs it once per
(policy, problem) at ``pass1_samples`` samples (at least 16).
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

METHOD = "pass1_samples"
NAMESPACE = "pass1"
MIN_SAMPLES = 16
DEFAULT_SEED = 1_000_003  # never one of the study's TTS seeds (small integers)


def pass1_samples(policy, problems, n: int, seed: int = DEFAULT_SEED,
                  config: SearchConfig | None = None) -> SearchResult:
    cfg = config or SearchConfig()
    check_budget(n, method=METHOD)
    problems = list(problems)
    problems_by_id(problems)
    with Timer() as t:
        cands, runs = sample_solutions(policy, problems, n, seed, cfg.solution_params(), METHOD,
                                       namespace=NAMESPACE)
    grade_candidates(cands, {p.id: p.answer for p in problems})
    return SearchResult(METHOD, n, seed, cands, runs, wall_s=t.seconds, policy_calls=1 if problems else 0)


def _run(policy, prm, problems, n, seed, config):
    return pass1_samples(policy, problems, n, seed, config)


register(Method(METHOD, _run, uses_prm=False, budgets="pass1"))

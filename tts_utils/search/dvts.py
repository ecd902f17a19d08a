"""Diverse Verifier Tree Search (DVTS; Beeching et al., search-and-learn; paper section 4).

N/M independent subtrees per problem. Each subtree is a beam search of budget M: it samples M
first steps, keeps the best by the PRM score of the last step, and samples M children of that
beam per step; subtrees never exchange beams. What a subtree returns follows beam_search.py's
``finished_paths`` rule with budget M:

* ``"slot"`` (default; the paper's code: ``beam_size`` 1, ``num_q`` = N/M): one beam slot, so the
  subtree stops when its kept child ends and returns that one path; N/M candidates per problem.
* ``"ranked"``: ended children ranked above the best live one become candidates (the subtree's
  remaining budget shrinks by one each), the best live child is the next beam; the subtree is
  done when it holds M complete candidates, so N candidates per problem.
* ``"kept"``: every ended child is a candidate; likewise N candidates.

(search-and-learn's DVTS stops a subtree as soon as its *selected* child ends and returns the M
children of that last expansion as the subtree's candidates, some of which can be unfinished
partial solutions; every candidate here is a complete path.)

Subtree k's seeds depend on k but not on N, so a run at N is exactly the first N/M subtrees of
a run at N_max: ``search.derive`` (group size M).
"""

from __future__ import annotations

from tts_utils.search.beam_search import _Group, _Path, grouped_beam_search, to_result
from tts_utils.search.common import SearchConfig, SearchResult, Timer, check_budget, problems_by_id
from tts_utils.search.registry import Method, register

METHOD = "dvts"


def dvts(policy, prm, problems, n: int, seed: int = 0, config: SearchConfig | None = None) -> SearchResult:
    cfg = config or SearchConfig()
    m = cfg.beam_width
    check_budget(n, m, METHOD)
    problems = list(problems)
    problems_by_id(problems)
    # Each subtree is a beam search of budget M and width M: it keeps one beam.
    groups = [_Group(p, k, m, m, cfg.finished_paths, [_Path([], [], ())]) for p in problems for k in range(n // m)]
    with Timer() as t:
        calls = grouped_beam_search(policy, prm, groups, cfg, seed, METHOD)
    return to_result(groups, problems, METHOD, n, seed, t.seconds, calls)


def _subtree_size(config: SearchConfig) -> int:
    return config.beam_width


register(Method(METHOD, dvts, uses_prm=True, n_multiple_of_beam=True, derivable=True, group_size=_subtree_size))

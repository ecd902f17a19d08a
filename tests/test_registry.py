"""The method registry: a method registered in one place is validated, run, derived and tabled by
collect with no other change (here a toy method, registered by the test itself)."""

from __future__ import annotations

import pytest
from test_collect import grid

from tts_utils import collect as C
from tts_utils.search import (
    Method,
    SearchResult,
    get_method,
    method_names,
    register,
    run_budgets,
    unregister,
    validate_budget,
)
from tts_utils.search.common import SearchConfig, grade_candidates, sample_solutions

TOY = "toy_pairs"
RUNS: list[int] = []


def toy_pairs(policy, prm, problems, n, seed, config):
    """N plain samples per problem, produced (and so kept or dropped) in pairs: group size 2."""
    RUNS.append(n)
    problems = list(problems)
    cands, runs = sample_solutions(policy, problems, n, seed, config.solution_params(), TOY, namespace="toy")
    for c in cands:
        c.subtree = c.index // 2
    for r in runs:
        r.group_policy_tokens = [a + b for a, b in zip(r.group_policy_tokens[::2], r.group_policy_tokens[1::2],
                                                       strict=True)]
        r.group_prm_tokens = [0] * (n // 2)
    grade_candidates(cands, {p.id: p.answer for p in problems})
    return SearchResult(TOY, n, seed, cands, runs)


def _pairs(config: SearchConfig) -> int:
    return 2


@pytest.fixture
def toy_method():
    RUNS.clear()
    register(Method(TOY, toy_pairs, uses_prm=False, derivable=True, group_size=_pairs))
    try:
        yield get_method(TOY)
    finally:
        unregister(TOY)


def test_a_registered_method_runs_through_collect(tmp_path, toy_method, tests_on_path):
    paths = C.collect(grid(tmp_path, methods=["majority", TOY], prms=[], n=[4, 8], seeds=[0]), progress=False)
    cands, runs = C.load_results(paths["candidates"].parent)
    toy = cands[cands["method"] == TOY]
    assert set(toy["prm"]) == {""}  # no PRM: once per policy
    assert RUNS == [8, 8, 8]  # once per chunk (7 problems, chunks of 3), at N_max only
    # N = 4 is derived: the first two pairs of each problem's N = 8 run, costs re-added from them
    big, small = toy[toy["n"] == 8], toy[toy["n"] == 4]
    assert small.groupby("problem_id").size().eq(4).all() and big.groupby("problem_id").size().eq(8).all()
    keep = big[big["subtree"] < 2].drop(columns="n").reset_index(drop=True)
    assert keep.equals(small.drop(columns="n").reset_index(drop=True))
    toy_runs = runs[runs["method"] == TOY].set_index(["n", "problem_id"])
    per_problem = small.groupby("problem_id")["policy_tokens"].sum()
    assert (toy_runs.loc[4]["policy_tokens"].reindex(per_problem.index) == per_problem).all()
    assert set(toy_runs.loc[4]["n_run"]) == {8}


def test_an_unregistered_method_is_a_config_error(tmp_path):
    with pytest.raises(C.ConfigError, match=r"'methods'\[1\]: unknown method 'toy_pairs'"):
        C.parse_config(grid(tmp_path, methods=["majority", TOY]))


def test_registry_entries_describe_the_budget_rules(toy_method):
    assert "toy_pairs" in method_names()
    cfg = SearchConfig(beam_width=4)
    assert validate_budget("dvts", 8, cfg) == 8
    with pytest.raises(ValueError, match="not divisible by the beam width"):
        validate_budget("beam_search", 6, cfg)
    assert validate_budget("best_of_n", 6, cfg) == 6
    assert get_method("dvts").group_size(cfg) == 4 and get_method("best_of_n").group_size(cfg) == 1
    assert [m for m in method_names() if get_method(m).derivable] == ["best_of_n", "dvts", "majority", TOY]
    with pytest.raises(ValueError, match="already registered"):
        register(Method(TOY, toy_pairs, uses_prm=False))
    with pytest.raises(ValueError, match="budgets must be one of"):
        Method("bad", toy_pairs, uses_prm=False, budgets="some")
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        get_method("nope")


def test_run_budgets_derives_a_toy_method_in_pairs(toy_method):
    from conftest import ScriptedPolicy, make_problems

    results = run_budgets(TOY, ScriptedPolicy(), None, make_problems(3), [2, 6])
    assert RUNS == [6]
    assert [c.subtree for c in results[2].candidates if c.problem_id == "p0"] == [0, 0]
    with pytest.raises(ValueError, match="not divisible"):
        run_budgets(TOY, ScriptedPolicy(), None, make_problems(3), [3, 6])

"""The study layer: a grid collected once, its per-problem votes cached beside the tables."""

import pandas as pd
from test_collect import grid

from tts_utils import analysis, study


def test_collect_grid_caches_votes_keyed_by_the_candidate_table(tmp_path, tests_on_path, calls):
    cfg = grid(tmp_path, seeds=[0])
    cands, runs, acc = study.collect_grid(cfg, progress=False)
    votes = sorted((tmp_path / "out").glob("votes-*.parquet"))
    assert len(votes) == 1
    pd.testing.assert_frame_equal(acc, analysis.vote_accuracy(cands))
    generated = dict(calls)
    _, _, again = study.collect_grid(cfg, progress=False)
    assert dict(calls) == generated  # nothing regenerated
    pd.testing.assert_frame_equal(again, acc)
    # a different grid (another seed) has other candidates, hence another vote file
    study.collect_grid(grid(tmp_path, seeds=[1]), progress=False)
    assert len(list((tmp_path / "out").glob("votes-*.parquet"))) == 2


def test_with_rule_keeps_the_rule_for_prm_methods_and_majority_for_the_rest():
    acc = pd.DataFrame({"prm": ["p", "p", "", ""], "rule": ["prm_min_max", "majority", "majority", "majority"],
                        "method": ["best_of_n", "best_of_n", "majority", "cot"]})
    kept = study.with_rule(acc, "prm_min_max")
    assert list(kept["method"]) == ["best_of_n", "majority", "cot"]


def _acc(rows):
    """Per-problem votes: (prm, policy, method, n, problem_id, correct) -> the vote_accuracy shape."""
    return pd.DataFrame([{"dataset": "d", "policy": pol, "prm": prm, "method": m, "n": n, "seed": 0,
                          "problem_id": f"q{i}", "rule": "prm_min_vote", "correct": ok}
                         for prm, pol, m, n, i, ok in rows])


def _paired(prm, pol, search_ok, bon_ok, problems=60):
    rows = []
    for i in range(problems):
        for n in (4, 16):
            rows += [(prm, pol, "beam_search", n, i, search_ok(i)), (prm, pol, "dvts", n, i, False),
                     (prm, pol, "best_of_n", n, i, bon_ok(i))]
    return rows


def test_strategy_vs_prm_verdict_follows_the_measured_differences():
    always, half = (lambda i: True), (lambda i: i % 2 == 0)
    # the paper's pattern: BoN wins with the weak PRM, search with the strong one -> agrees
    acc = _acc(_paired("weak", "p", half, always) + _paired("strong", "p", always, half))
    quality = pd.Series({"weak": 0.2, "strong": 0.9})
    table, summary = study.finding_strategy_vs_prm(acc, quality)
    assert summary["verdict"] == "agrees"
    assert table.set_index("prm").loc["strong", "search"] == "beam_search"
    # the reverse pattern -> disagrees; no difference -> inconclusive
    rev = _acc(_paired("weak", "p", always, half) + _paired("strong", "p", half, always))
    assert study.finding_strategy_vs_prm(rev, quality)[1]["verdict"] == "disagrees"
    same = _acc(_paired("weak", "p", half, half) + _paired("strong", "p", half, half))
    assert study.finding_strategy_vs_prm(same, quality)[1]["verdict"] == "inconclusive"


def test_policy_size_verdict_orders_policies_by_parameters():
    always, half = (lambda i: True), (lambda i: i % 2 == 0)
    acc = _acc(_paired("prm", "big", half, always) + _paired("prm", "small", always, half))
    table, summary = study.finding_policy_size(acc, {"small": 1e3, "big": 1e6})
    assert list(table["policy"]) == ["small", "big"]
    assert summary["verdict"] == "agrees"
    # the same data with the sizes swapped contradicts the claim
    assert study.finding_policy_size(acc, {"small": 1e6, "big": 1e3})[1]["verdict"] == "disagrees"

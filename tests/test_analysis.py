import math

import numpy as np
import pandas as pd
import pytest

from tts_utils import analysis


def test_bootstrap_ci_brackets_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small = rng.integers(0, 2, size=50)
    large = rng.integers(0, 2, size=2000)
    m, lo, hi = analysis.bootstrap_ci(small)
    assert lo <= m <= hi
    _, lo2, hi2 = analysis.bootstrap_ci(large)
    assert (hi2 - lo2) < (hi - lo)
    # deterministic for a seed
    assert analysis.bootstrap_ci(small, seed=3) == analysis.bootstrap_ci(small, seed=3)


def test_bootstrap_ci_of_constant_is_a_point():
    assert analysis.bootstrap_ci([1, 1, 1, 1]) == (1.0, 1.0, 1.0)
    assert all(math.isnan(v) for v in analysis.bootstrap_ci([]))


def test_pass_at_k_matches_enumeration():
    # n=4, c=1, k=2: P(at least one correct in 2 draws without replacement) = 1 - C(3,2)/C(4,2) = 1/2
    assert analysis.pass_at_k(4, 1, 2) == pytest.approx(0.5)
    assert analysis.pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert analysis.pass_at_k(5, 4, 2) == 1.0
    assert analysis.pass_at_k(5, 0, 3) == 0.0
    with pytest.raises(ValueError):
        analysis.pass_at_k(3, 1, 4)


def test_difficulty_bins_absolute_follow_the_paper_ranges():
    p = pd.Series([0.9, 0.51, 0.5, 0.1, 0.09, 0.0], index=list("abcdef"))
    bins = analysis.difficulty_bins(p)
    assert list(bins) == ["easy", "easy", "medium", "medium", "hard", "hard"]
    q = analysis.difficulty_bins(pd.Series(np.linspace(0, 1, 10)), scheme="quantile")
    assert q.value_counts().tolist() == [2] * 5
    assert q.iloc[-1] == "1" and q.iloc[0] == "5"
    with pytest.raises(ValueError, match="scheme"):
        analysis.difficulty_bins(p, scheme="thirds")


def test_gains_follow_the_paper_definitions():
    # the paper's Table 5, Llama-3.2-1B row: (66.2 - 26.0) / 26.0 = 154.6%
    assert analysis.performance_gain(66.2, 26.0) == pytest.approx(1.546, abs=5e-4)
    budgets = [4, 16, 64, 256]
    majority = [0.30, 0.40, 0.45, 0.50]       # best 0.50 at N=256
    optimal = [0.40, 0.48, 0.52, 0.55]        # crosses 0.50 between 16 (0.48) and 64 (0.52): N=40
    gain, lower = analysis.efficiency_gain(budgets, majority, budgets, optimal)
    assert gain == pytest.approx(256 / 40)
    assert not lower
    gain, lower = analysis.efficiency_gain(budgets, majority, budgets, [0.6, 0.6, 0.6, 0.6])
    assert gain == pytest.approx(64) and lower
    assert analysis.efficiency_text(gain, lower) == ">= 64.0x"
    gain, lower = analysis.efficiency_gain(budgets, majority, budgets, [0.1, 0.2, 0.3, 0.4])
    assert math.isnan(gain) and analysis.efficiency_text(gain, lower) == "not reached"  # never 0x
    assert analysis.efficiency_text(256 / 40, False) == "6.4x"


def test_bootstrap_p_matches_the_interval_and_holm_controls_the_family():
    rng = np.random.default_rng(0)
    shifted = rng.normal(0.3, 1, 200)
    mean, lo, hi, p = analysis.bootstrap_test(shifted)
    assert lo > 0 and p < 0.05  # the 95% interval excludes 0 exactly when p < 0.05
    mean, lo, hi, p = analysis.bootstrap_test(rng.normal(0, 1, 200))
    assert (lo < 0 < hi) == (p >= 0.05)
    assert analysis.bootstrap_test(np.zeros(50))[3] == 1.0
    # Holm: 0.01 <= 0.05/3, 0.02 <= 0.05/2, 0.04 <= 0.05 -> all; 0.03 > 0.05/2 stops the rest
    assert analysis.holm([0.04, 0.01, 0.02]) == [True, True, True]
    assert analysis.holm([0.01, 0.03, 0.04]) == [True, False, False]
    assert analysis.holm([0.2, float("nan")]) == [False, False]


def test_split_is_stable_and_roughly_balanced():
    ids = [f"p{i}" for i in range(1000)]
    s = [analysis.split_of(i) for i in ids]
    assert s == [analysis.split_of(i) for i in ids]
    assert 400 < sum(s) < 600


def _cands(rows):
    cols = ["dataset", "policy", "prm", "method", "n", "seed", "problem_id", "level", "answer", "rewards",
            "correct", "policy_tokens"]
    return pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows])


def test_vote_accuracy_applies_each_rule_to_each_candidate_set():
    # problem p1: answers 3, 3, 5 with 5 the best-scored -> majority right, PRM-Max wrong
    rows = [("d", "pol", "prm", "best_of_n", 3, 0, "p1", 1, "3", [0.9, 0.2], True, 10),
            ("d", "pol", "prm", "best_of_n", 3, 0, "p1", 1, "3", [0.9, 0.3], True, 10),
            ("d", "pol", "prm", "best_of_n", 3, 0, "p1", 1, "5", [0.9, 0.8], False, 10),
            ("d", "pol", "", "majority", 2, 0, "p1", 1, None, [], False, 7),
            ("d", "pol", "", "majority", 2, 0, "p1", 1, "3", [], True, 7)]
    acc = analysis.vote_accuracy(_cands(rows))
    bon = acc[acc["method"] == "best_of_n"].set_index("rule")["correct"]
    assert bon["majority"] and not bon["prm_last_max"] and not bon["prm_min_max"]
    # PRM-Last-Vote: 3 -> 0.2 + 0.3 = 0.5 < 5 -> 0.8 ; PRM-Avg-Vote: 3 -> 0.55 + 0.6 > 0.85
    assert not bon["prm_last_vote"] and bon["prm_avg_vote"]
    maj = acc[acc["method"] == "majority"]
    assert list(maj["rule"]) == ["majority"] and maj["correct"].item()  # None never wins
    assert set(acc["tokens"]) == {30, 14}


def test_accuracy_table_averages_seeds_before_bootstrapping_problems():
    per = pd.DataFrame({"m": ["a"] * 4, "problem_id": ["p1", "p1", "p2", "p2"], "correct": [1, 0, 1, 1]})
    t = analysis.accuracy_table(per, ["m"])
    assert t["acc"].item() == pytest.approx(0.75) and t["problems"].item() == 2


def test_compute_optimal_oracle_and_heldout():
    ids = [f"q{i}" for i in range(40)]
    # method "x" is right on every problem of split 0, "y" on every problem of split 1
    rows = []
    for pid in ids:
        s = analysis.split_of(pid)
        rows += [{"g": 1, "problem_id": pid, "method": "x", "correct": s == 0},
                 {"g": 1, "problem_id": pid, "method": "y", "correct": s == 1}]
    per = pd.DataFrame(rows)
    oracle = analysis.compute_optimal(per, ["g"], ["x", "y"], mode="oracle")
    assert len(oracle) == 40 and oracle["method"].nunique() == 1
    held = analysis.compute_optimal(per, ["g"], ["x", "y"], mode="heldout")
    # chosen on the half where it is right, reported on the half where it is wrong: 0%
    assert len(held) == 40 and not held["correct"].any()
    assert oracle["correct"].mean() == pytest.approx(max(per.groupby("method")["correct"].mean()))
    with pytest.raises(ValueError, match="mode"):
        analysis.compute_optimal(per, ["g"], ["x"], mode="cv")


def test_combine_verdicts():
    assert analysis.combine_verdicts(["agrees", "agrees"]) == "agrees"
    assert analysis.combine_verdicts(["agrees", "inconclusive"]) == "inconclusive"
    assert analysis.combine_verdicts(["agrees", "disagrees"]) == "disagrees"


def test_first_k_and_pass_at_k_by_problem():
    rows = [{"dataset": "d", "policy": "p", "prm": "r", "method": "best_of_n", "n": 4, "seed": 0, "problem_id": pid,
             "candidate": i, "correct": ok} for pid, oks in (("a", [False, True, False, False]), ("b", [True] * 4))
            for i, ok in enumerate(oks)]
    c = pd.DataFrame(rows)
    two = analysis.first_k(c, 2)
    assert len(two) == 4 and set(two.n) == {2} and set(two.candidate) == {0, 1}
    with pytest.raises(ValueError):
        analysis.first_k(c, 0)
    p = analysis.pass_at_k_by_problem(c, [1, 2, 4]).set_index(["problem_id", "k"])["pass_at_k"]
    assert p[("a", 1)] == pytest.approx(0.25) and p[("a", 2)] == pytest.approx(0.5) and p[("a", 4)] == 1.0
    assert p[("b", 1)] == 1.0
    table = analysis.accuracy_table(analysis.pass_at_k_by_problem(c, [1]), ["k"], value="pass_at_k")
    assert table["acc"].iloc[0] == pytest.approx(0.625)

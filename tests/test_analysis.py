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
    gain, _ = analysis.efficiency_gain(budgets, majority, budgets, [0.1, 0.2, 0.3, 0.4])
    assert gain == 0.0


def test_split_is_stable_and_roughly_balanced():
    ids = [f"p{i}" for i in range(1000)]
    s = [analysis.split_of(i) for i in ids]
    assert s == [analysis.split_of(i) for i in ids]
    assert 400 < sum(s) < 600

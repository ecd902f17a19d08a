"""Analysis of collected runs: accuracy with bootstrap CIs, pass@k, difficulty bins,
reward-aware compute-optimal choice (oracle and held out), performance and efficiency gains.

Definitions follow DESIGN.md section 7 and the paper (Liu et al. 2025):
* difficulty = the policy's own pass@1 on a problem, binned easy > 50%, medium 10-50%, hard < 10%;
* performance gain = (compute-optimal - CoT) / CoT;
* efficiency gain = budget at which majority voting reaches its best accuracy, divided by the
  budget at which the compute-optimal curve first reaches that accuracy (linear interpolation).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

DIFFICULTY_ORDER = ("easy", "medium", "hard")


# --------------------------------------------------------------------------- statistics

def bootstrap_ci(values: Sequence[float] | np.ndarray, n_boot: int = 2000, ci: float = 0.95,
                 seed: int = 0) -> tuple[float, float, float]:
    """Mean and percentile bootstrap interval of per-problem values (resampling problems)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    means = x[idx].mean(axis=1)
    alpha = (1 - ci) / 2
    return float(x.mean()), float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def paired_bootstrap_diff(a: Sequence[float], b: Sequence[float], n_boot: int = 2000, ci: float = 0.95,
                          seed: int = 0) -> tuple[float, float, float]:
    """Mean of a - b over the same problems, with a bootstrap interval that keeps the pairing."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same shape, got {a.shape} and {b.shape}")
    return bootstrap_ci(a - b, n_boot=n_boot, ci=ci, seed=seed)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct (Chen et al. 2021)."""
    if not 0 <= c <= n or k <= 0:
        raise ValueError(f"need 0 <= c <= n and k > 0, got n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


# --------------------------------------------------------------------------- difficulty

def difficulty_bins(pass1: pd.Series, scheme: str = "absolute", n_quantiles: int = 5) -> pd.Series:
    """Bin problems by the policy's pass@1.

    ``absolute`` (the paper): easy > 0.5, medium 0.1-0.5 (both ends included), hard < 0.1.
    ``quantile`` (Snell et al.): ``n_quantiles`` bins of equal size, 1 = easiest.
    """
    if scheme == "absolute":
        bins = np.where(pass1 > 0.5, "easy", np.where(pass1 >= 0.1, "medium", "hard"))
        return pd.Series(pd.Categorical(bins, categories=DIFFICULTY_ORDER, ordered=True), index=pass1.index)
    if scheme == "quantile":
        # rank first so ties do not collapse bins; higher pass@1 = easier = bin 1
        ranks = (-pass1).rank(method="first")
        return pd.qcut(ranks, n_quantiles, labels=[str(i) for i in range(1, n_quantiles + 1)])
    raise ValueError(f"unknown difficulty scheme {scheme!r}; use 'absolute' or 'quantile'")


# --------------------------------------------------------------------------- gains

def performance_gain(tts_acc: float, cot_acc: float) -> float:
    if cot_acc <= 0:
        return math.inf if tts_acc > 0 else math.nan
    return (tts_acc - cot_acc) / cot_acc


def first_budget_reaching(budgets: Sequence[float], accs: Sequence[float], target: float) -> float:
    """The budget at which a curve first reaches ``target``, linearly interpolated between the two
    measured budgets around the crossing; inf if it never does."""
    b = np.asarray(budgets, dtype=float)
    a = np.asarray(accs, dtype=float)
    order = np.argsort(b)
    b, a = b[order], a[order]
    for i in range(len(b)):
        if a[i] >= target:
            if i == 0:
                return float(b[0])
            # interpolate between (b[i-1], a[i-1]) below target and (b[i], a[i]) at/above it
            frac = (target - a[i - 1]) / (a[i] - a[i - 1])
            return float(b[i - 1] + frac * (b[i] - b[i - 1]))
    return math.inf


def efficiency_gain(budgets: Sequence[float], majority_acc: Sequence[float],
                    optimal_budgets: Sequence[float], optimal_acc: Sequence[float]) -> tuple[float, bool]:
    """(gain, is_lower_bound). Majority's best accuracy and the (smallest) budget where it occurs,
    divided by the budget at which the compute-optimal curve first reaches that accuracy.

    When the compute-optimal curve already beats majority's best at its smallest budget, the
    true crossing lies below the measured range: the ratio is then a lower bound, which the paper
    writes as ">256x" (is_lower_bound=True).
    """
    maj = np.asarray(majority_acc, dtype=float)
    b = np.asarray(budgets, dtype=float)
    best = maj.max()
    budget_best = b[np.flatnonzero(maj == best).min()]
    reach = first_budget_reaching(optimal_budgets, optimal_acc, best)
    if math.isinf(reach):
        return 0.0, False
    lower_bound = reach == min(optimal_budgets) and np.asarray(optimal_acc)[np.argmin(optimal_budgets)] > best
    return float(budget_best / reach), bool(lower_bound)


# --------------------------------------------------------------------------- splits

def split_of(problem_id: str, salt: str = "tts-study") -> int:
    """A stable 0/1 split of problems (for choosing on one half and reporting on the other)."""
    return hashlib.sha256(f"{salt}:{problem_id}".encode()).digest()[0] & 1

"""Analysis of collected runs: accuracy with bootstrap CIs, pass@k, difficulty bins,
reward-aware compute-optimal choice (oracle and held out), performance and efficiency gains.

Definitions follow docs/DESIGN.md, "Analysis definitions" and the paper (Liu et al. 2025):
* difficulty = the policy's own pass@1 on a problem, binned easy > 50%, medium 10-50%, hard < 10%;
* performance gain = (compute-optimal - CoT) / CoT;
* efficiency gain = budget at which majority voting reaches its best accuracy, divided by the
  budget at which the compute-optimal curve first reaches that accuracy (linear interpolation);
  printed ">= x" when the curve is already above it at its smallest budget, "not reached" when
  it never gets there (``efficiency_text``);
* verdict statistics: ``bootstrap_test`` (interval and two-sided p over problems) and ``holm``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

DIFFICULTY_ORDER = ("easy", "medium", "hard")


# --------------------------------------------------------------------------- statistics

def bootstrap_means(values: Sequence[float] | np.ndarray, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """``n_boot`` means of per-problem values resampled with replacement (problems are the unit)."""
    x = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    # resampling indices, not values, keeps the draw identical for any two series of one length,
    # which is what makes two bootstraps over the same problems paired
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    return x[idx].mean(axis=1)


def bootstrap_ci(values: Sequence[float] | np.ndarray, n_boot: int = 2000, ci: float = 0.95,
                 seed: int = 0) -> tuple[float, float, float]:
    """Mean and percentile bootstrap interval of per-problem values (resampling problems)."""
    mean, lo, hi, _ = bootstrap_test(values, n_boot=n_boot, ci=ci, seed=seed)
    return mean, lo, hi


def bootstrap_test(values: Sequence[float] | np.ndarray, n_boot: int = 2000, ci: float = 0.95,
                   seed: int = 0) -> tuple[float, float, float, float]:
    """(mean, lo, hi, p): the percentile bootstrap interval of the mean of per-problem values and
    the two-sided bootstrap p-value of "mean = 0", i.e. the smallest 1 - level at which the
    percentile interval excludes 0 (so p < 0.05 exactly when the 95% interval excludes 0).

    Values that are all zero (e.g. two methods right on the same problems) give p = 1.
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (math.nan, math.nan, math.nan, math.nan)
    means = bootstrap_means(x, n_boot, seed)
    alpha = (1 - ci) / 2
    # means of 0/1 differences carry float noise around an exact 0
    means = np.where(np.abs(means) < 1e-12, 0.0, means)
    return float(x.mean()), float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha)), bootstrap_p(means)


def bootstrap_p(boots: np.ndarray, null: float = 0.0) -> float:
    """Two-sided bootstrap p-value of "the statistic = ``null``": twice the smaller share of
    bootstrap values on either side of it (so p < 0.05 exactly when the 95% percentile interval
    excludes ``null``)."""
    return min(1.0, 2 * min(float(np.mean(boots <= null)), float(np.mean(boots >= null))))


def holm(pvalues: Sequence[float], alpha: float = 0.05) -> list[bool]:
    """Holm's step-down rule: which hypotheses are rejected with family-wise error <= ``alpha``.

    Sorted ascending, p_(i) is rejected while p_(i) <= alpha / (m - i) for every earlier one
    too (i from 0). NaN p-values are never rejected.
    """
    p = [1.0 if (v is None or math.isnan(v)) else float(v) for v in pvalues]
    m = len(p)
    rejected = [False] * m
    for rank, i in enumerate(sorted(range(m), key=lambda j: p[j])):
        if p[i] > alpha / (m - rank):
            break
        rejected[i] = True
    return rejected


def paired_bootstrap_test(a: Sequence[float], b: Sequence[float], n_boot: int = 2000, ci: float = 0.95,
                          seed: int = 0) -> tuple[float, float, float, float]:
    """(mean, lo, hi, p) of a - b over the same problems, resampling problems (bootstrap_test)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same shape, got {a.shape} and {b.shape}")
    return bootstrap_test(a - b, n_boot=n_boot, ci=ci, seed=seed)


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
    writes as ">256x" (is_lower_bound=True). When the curve never reaches majority's best in the
    measured range, there is no gain to report: (nan, False); ``efficiency_text`` says "not reached".
    """
    maj = np.asarray(majority_acc, dtype=float)
    b = np.asarray(budgets, dtype=float)
    best = maj.max()
    budget_best = b[np.flatnonzero(maj == best).min()]
    reach = first_budget_reaching(optimal_budgets, optimal_acc, best)
    if math.isinf(reach):
        return math.nan, False
    lower_bound = reach == min(optimal_budgets) and np.asarray(optimal_acc)[np.argmin(optimal_budgets)] > best
    return float(budget_best / reach), bool(lower_bound)


def efficiency_text(gain: float, lower_bound: bool) -> str:
    """The efficiency gain as printed: "12.0x", ">= 4.0x" (a lower bound) or "not reached"."""
    if gain is None or math.isnan(gain):
        return "not reached"
    return f">= {gain:.1f}x" if lower_bound else f"{gain:.1f}x"


# --------------------------------------------------------------------------- splits

def split_of(problem_id: str, salt: str = "tts-study") -> int:
    """A stable 0/1 split of problems (for choosing on one half and reporting on the other)."""
    return hashlib.sha256(f"{salt}:{problem_id}".encode()).digest()[0] & 1


# --------------------------------------------------------------------------- from candidates

RUN_KEYS = ["dataset", "policy", "prm", "method", "n", "seed"]
PASS1_METHOD = "pass1_samples"  # tts_utils.search.pass1_samples: the independent difficulty set


def vote_accuracy(candidates: pd.DataFrame, rules: Sequence[str] | None = None) -> pd.DataFrame:
    """Per problem and voting rule: whether the selected answer is correct.

    Returns one row per (dataset, policy, prm, method, n, seed, problem_id, rule) with columns
    ``level``, ``answer``, ``correct`` and ``tokens`` (policy tokens of the problem's candidates).
    Methods without a PRM (CoT, majority voting) get the ``majority`` rule only; answers are
    grouped by mathematical equivalence once per candidate set and reused for every rule.
    The difficulty sample set (method ``pass1_samples``) is not a method and is left out.
    """
    from tts_utils.search.voting import VOTING_RULES, group_answers, select_index

    rules = tuple(rules or VOTING_RULES)
    rows = []
    keys = [*RUN_KEYS, "problem_id"]
    candidates = candidates[candidates["method"] != PASS1_METHOD]
    for key, g in candidates.groupby(keys, sort=False):
        answers = [None if a is None or (isinstance(a, float) and math.isnan(a)) else a for a in g["answer"]]
        rewards = [list(r) for r in g["rewards"]]
        correct = g["correct"].to_numpy()
        groups = group_answers(answers)
        has_prm = bool(key[2])
        base = dict(zip(keys, key, strict=True), level=g["level"].iloc[0], tokens=int(g["policy_tokens"].sum()))
        for rule in rules if has_prm else ("majority",):
            idx = select_index(answers, rewards if has_prm else None, rule, groups=groups)
            rows.append({**base, "rule": rule, "answer": None if idx is None else answers[idx],
                         "correct": bool(idx is not None and correct[idx])})
    return pd.DataFrame(rows)


def first_k(candidates: pd.DataFrame, k: int) -> pd.DataFrame:
    """The first ``k`` candidates of every candidate set, as a run at N = k. This is how published
    sampled outputs report maj@k and rm@k (their candidates are independent samples, so the first
    k are a sample of k; e.g. Qwen2.5-Math's rm_maj_eval.py takes ``[:k]``)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return candidates[candidates["candidate"] < k].assign(n=k)


def pass_at_k_by_problem(candidates: pd.DataFrame, ks: Sequence[int]) -> pd.DataFrame:
    """Unbiased pass@k of every candidate set for each k (from its n candidates, c of them correct):
    one row per (run keys, problem_id, k) with ``pass_at_k``; feed it to ``accuracy_table`` with
    ``value="pass_at_k"`` for the mean over problems and its CI."""
    rows = []
    keys = [*RUN_KEYS, "problem_id"]
    for key, g in candidates.groupby(keys, sort=False):
        n, c = len(g), int(g["correct"].sum())
        for k in ks:
            rows.append({**dict(zip(keys, key, strict=True)), "k": k, "pass_at_k": pass_at_k(n, c, k)})
    return pd.DataFrame(rows)


def accuracy_table(per_problem: pd.DataFrame, by: Sequence[str], value: str = "correct",
                   n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Mean of ``value`` per group with a bootstrap CI over problems.

    Several seeds of the same problem are averaged first, so the interval resamples problems
    (the unit the paper's benchmarks sample), not seed-problem pairs.
    """
    by = list(by)
    per = per_problem.groupby([*by, "problem_id"], observed=True)[value].mean().reset_index()
    out = []
    for key, g in per.groupby(by, sort=True, observed=True):
        mean, lo, hi = bootstrap_ci(g[value].to_numpy(), n_boot=n_boot, seed=seed)
        key = key if isinstance(key, tuple) else (key,)
        out.append({**dict(zip(by, key, strict=True)), "acc": mean, "lo": lo, "hi": hi, "problems": len(g)})
    return pd.DataFrame(out)


def pass1_by_problem(candidates: pd.DataFrame, method: str = PASS1_METHOD) -> pd.DataFrame:
    """Each policy's pass@1 per problem, from the independent difficulty sample set.

    Uses the candidates of ``method`` (default: the ``pass1_samples`` set, T = 0.7 samples with a
    seed of their own that no TTS method's candidates reuse; at the largest N if several);
    returns columns dataset, policy, problem_id, level, pass1, samples. Estimating it from the
    majority / BoN samples instead would bias every difficulty comparison against BoN.
    """
    c = candidates[candidates["method"] == method]
    if c.empty:
        raise ValueError(f"no {method!r} candidates to estimate pass@1 from: add {method!r} to the grid's "
                         "methods (tts_utils.collect)")
    c = c[c["n"] == c.groupby(["dataset", "policy"])["n"].transform("max")]
    out = (c.groupby(["dataset", "policy", "problem_id"], sort=False)
            .agg(level=("level", "first"), pass1=("correct", "mean"), samples=("correct", "size"))
            .reset_index())
    return out


def add_difficulty(pass1: pd.DataFrame, scheme: str = "absolute") -> pd.DataFrame:
    """pass1 (from pass1_by_problem) with a ``difficulty`` column, binned per policy: the paper
    bins each policy's problems by that policy's own pass@1."""
    parts = [g.assign(difficulty=difficulty_bins(g["pass1"], scheme).astype(str))
             for _, g in pass1.groupby(["dataset", "policy"], sort=False)]
    out = pd.concat(parts).loc[pass1.index]
    order = list(DIFFICULTY_ORDER) if scheme == "absolute" else sorted(out["difficulty"].unique())
    out["difficulty"] = pd.Categorical(out["difficulty"], categories=order, ordered=True)
    return out


def with_difficulty(per_problem: pd.DataFrame, pass1: pd.DataFrame, scheme: str = "absolute") -> pd.DataFrame:
    """Attach each problem's pass@1 and difficulty bin for its own policy."""
    p = add_difficulty(pass1, scheme)
    return per_problem.merge(p[["dataset", "policy", "problem_id", "pass1", "difficulty"]],
                             on=["dataset", "policy", "problem_id"], how="left")


def compute_optimal(per_problem: pd.DataFrame, group: Sequence[str], methods: Sequence[str],
                    mode: str = "oracle", fallback: str | None = None) -> pd.DataFrame:
    """Reward-aware compute-optimal choice of method per ``group`` (e.g. policy, prm, difficulty, n).

    ``per_problem`` has one row per (group..., method, problem_id) with ``correct`` (one voting
    rule already chosen). ``oracle`` (the paper): the method with the best mean accuracy on the
    problems, reported on those same problems. ``heldout``: problems are split in two halves
    (``split_of``); the method is chosen on one half and its accuracy reported on the other, in
    both directions, so every problem is reported once by a choice that never saw it. A group
    whose other half is empty (a bin of one problem) gets ``fallback``, a choice fixed in advance,
    or is left out when there is none.
    Returns one row per (group..., problem_id) with the chosen ``method`` and its ``correct``;
    ``accuracy_table(result, group)`` then gives the compute-optimal accuracy with its CI.
    """
    group = list(group)
    data = per_problem[per_problem["method"].isin(methods)]
    if mode not in ("oracle", "heldout"):
        raise ValueError(f"unknown mode {mode!r}; use 'oracle' or 'heldout'")
    rows = []
    for key, g in data.groupby(group, sort=True, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        if mode == "oracle":
            halves = [(g, g)]
        else:
            split = g["problem_id"].map(split_of)
            halves = [(g[split == 0], g[split == 1]), (g[split == 1], g[split == 0])]
        choices = []
        for choose_on, report_on in halves:
            if report_on.empty or (choose_on.empty and fallback is None):
                continue
            if choose_on.empty:
                best = fallback
            else:
                acc = choose_on.groupby("method")["correct"].mean()
                # deterministic tie-break: the order of `methods` given by the caller
                best = max(methods, key=lambda m: (acc.get(m, -1.0), -list(methods).index(m)))
            chosen = report_on[report_on["method"] == best]
            choices.append(best)
            for pid, ok in zip(chosen["problem_id"], chosen["correct"], strict=True):
                rows.append({**dict(zip(group, key, strict=True)), "problem_id": pid,
                             "method": best, "correct": bool(ok)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- verdicts

def combine_verdicts(verdicts: Sequence[str]) -> str:
    """One verdict for a claim made of several parts: agrees only if every part agrees,
    disagrees if any part disagrees, inconclusive otherwise."""
    v = list(verdicts)
    if not v:
        return "inconclusive"
    if "disagrees" in v:
        return "disagrees"
    return "agrees" if all(x == "agrees" for x in v) else "inconclusive"

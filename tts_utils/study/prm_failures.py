"""PRM failure cases (the paper's Figs. 13-18), found by rule in collected candidates.

Every rule reads per-step labels from an exact step checker (the tiny world's
``tinyworld.task.first_error``), never the text of a step, and the PRM's per-step scores stored
with each candidate. A step is *correct* when every step up to it is right (before the first
error), the *first error* when it is the first wrong one; later steps are not judged (as in
ProcessBench). With a score threshold ``threshold`` (a PRM score below it means "this step is
wrong"):

* **over-criticism** (Fig. 13): a correct step scored below the threshold; rate per correct step;
* **error neglect** (Figs. 14-15): a first-error step scored at or above the threshold; rate per
  solution with an error step;
* **error-localization bias** (Fig. 16): in a solution whose first error follows at least one
  correct step, a correct step scores lower than the error step (the PRM's lowest score points
  at a step that is right); rate per such solution. Steps after the first error are left out:
  their prefix is wrong too, so a PRM that scores prefixes rightly scores them low;
* **scoring bias** (Figs. 17-18): the score of correct steps moves with their position in the
  solution or with their length (tokens): Pearson correlations on ranks (Spearman-style) over the
  correct steps.

Every statistic is bootstrapped over problems (the candidates of a problem move together), with
the resampling scheme of ``analysis.bootstrap_ci``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from tts_utils import analysis
from tts_utils.study.verdicts import summarize

FAILURES = ("over_criticism", "error_neglect", "localization_bias")
BIASES = ("position_bias", "length_bias")
LABELS = {"over_criticism": "over-criticism: correct step scored low",
          "error_neglect": "error neglect: first wrong step scored high",
          "localization_bias": "error-localization bias: a correct step before the error scored lower",
          "position_bias": "scoring bias by position (correct steps)",
          "length_bias": "scoring bias by length (correct steps)"}
TINY_DATASETS = ("tinymath500", "tinyhard30")


def step_checker(dataset: str) -> Callable[[str, list[str]], int]:
    """The exact first-error labeller for ``dataset``: index of the first wrong step, -1 if the
    solution is right, len(steps) if it ran out without an answer."""
    if dataset in TINY_DATASETS:
        from tts_utils.tinyworld.task import first_error

        return first_error
    raise ValueError(f"no exact step checker for {dataset!r}: the failure rules need per-step labels, "
                     f"which only the tiny world's sets ({', '.join(TINY_DATASETS)}) have; real PRMs "
                     "would need human step annotations (ProcessBench)")


def step_table(cands: pd.DataFrame, questions: dict[str, str], first_error: Callable[[str, list[str]], int],
               method: str = "best_of_n") -> pd.DataFrame:
    """One row per scored step of ``method``'s candidates at the largest N of each (policy, PRM).

    Columns: policy, prm, seed, problem_id, candidate, step, steps (of the solution), score,
    tokens, first_error (of the solution; -1 if right, len(steps) if it has no answer) and label:
    "correct", "first_error" or "after_error".
    """
    c = cands[(cands["method"] == method) & cands["prm"].astype(bool)]
    if c.empty:
        raise ValueError(f"no PRM-scored {method!r} candidates")
    # Smaller budgets are prefixes of the largest one's samples: count each candidate once.
    c = c[c["n"] == c.groupby(["policy", "prm"])["n"].transform("max")]
    missing = set(c["problem_id"]) - set(questions)
    if missing:
        raise KeyError(f"no question text for {len(missing)} problem(s), e.g. {sorted(missing)[:3]}")
    labels: dict[tuple[str, tuple[str, ...]], int] = {}  # the same sample recurs under every PRM
    rows = []
    for pol, prm, seed, pid, cand, steps, rewards, toks in zip(
            c["policy"], c["prm"], c["seed"], c["problem_id"], c["candidate"], c["steps"], c["rewards"],
            c["step_tokens"], strict=True):
        steps = [str(s) for s in steps]
        key = (pid, tuple(steps))
        if key not in labels:
            labels[key] = first_error(questions[pid], steps)
        fe = labels[key]
        for i, (score, tok) in enumerate(zip(rewards, toks, strict=True)):
            label = "correct" if fe < 0 or i < fe else "first_error" if i == fe else "after_error"
            rows.append((pol, prm, seed, pid, cand, i, len(steps), float(score), int(tok), fe, label))
    return pd.DataFrame(rows, columns=["policy", "prm", "seed", "problem_id", "candidate", "step", "steps", "score",
                                       "tokens", "first_error", "label"])


def _solutions(steps: pd.DataFrame) -> pd.DataFrame:
    """Per solution with a located error step: the error step's score and the lowest score (and
    its step) among the correct steps before it (NaN when the error is the first step)."""
    keys = ["policy", "prm", "seed", "problem_id", "candidate"]
    err = steps[(steps["first_error"] >= 0) & (steps["first_error"] < steps["steps"])]
    first = err[err["label"] == "first_error"][[*keys, "step", "score"]].rename(
        columns={"step": "error_step", "score": "error_score"})
    before = err[err["label"] == "correct"]
    lowest = before.loc[before.groupby(keys, sort=False)["score"].idxmin(), [*keys, "step", "score"]].rename(
        columns={"step": "lowest_step", "score": "lowest_score"})
    return first.merge(lowest, on=keys, how="left")


def events(steps: pd.DataFrame, threshold: float = 0.5) -> dict[str, pd.DataFrame]:
    """Per failure type, one row per opportunity (policy, prm, problem_id, ..., ``event`` 0/1)."""
    correct = steps[steps["label"] == "correct"]
    sols = _solutions(steps)
    after_correct = sols[sols["error_step"] >= 1]
    return {
        "over_criticism": correct.assign(event=(correct["score"] < threshold).astype(int)),
        "error_neglect": sols.assign(event=(sols["error_score"] >= threshold).astype(int)),
        "localization_bias": after_correct.assign(
            event=(after_correct["lowest_score"] < after_correct["error_score"]).astype(int)),
    }


def _counts(problems: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap weights: how often each problem is drawn in each resample (analysis.bootstrap_ci's
    draws), so that sums over resampled problems are matrix products."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, problems.size, size=(n_boot, problems.size))
    w = np.zeros((n_boot, problems.size))
    np.add.at(w, (np.arange(n_boot)[:, None], idx), 1.0)
    return w


def _quantiles(boots: np.ndarray, ci: float) -> tuple[float, float]:
    lo, hi = np.quantile(boots, [(1 - ci) / 2, (1 + ci) / 2])
    return float(lo), float(hi)


def ratio_boot(table: pd.DataFrame, num: str = "event", n_boot: int = 2000,
               seed: int = 0) -> tuple[float, np.ndarray, int, int]:
    """(rate, bootstrap rates, rows, problems): the share of rows with ``num`` set, resampling
    problems (a problem's rows move together)."""
    if table.empty:
        return (np.nan, np.array([]), 0, 0)
    per = table.groupby("problem_id")[num].agg(["sum", "size"])
    w = _counts(per.index.to_numpy(), n_boot, seed)
    boots = (w @ per["sum"].to_numpy()) / (w @ per["size"].to_numpy())  # every resample has rows
    return (float(per["sum"].sum() / per["size"].sum()), boots, int(per["size"].sum()), len(per))


def ratio_ci(table: pd.DataFrame, num: str = "event", n_boot: int = 2000, ci: float = 0.95,
             seed: int = 0) -> tuple[float, float, float, int]:
    """Share of rows with ``num`` set, bootstrapped over problems: (rate, lo, hi, rows)."""
    rate, boots, rows, problems = ratio_boot(table, num, n_boot, seed)
    if not rows:
        return (np.nan, np.nan, np.nan, 0)
    return (rate, *_rate_interval(rate, boots, problems, ci), rows)


def _rate_interval(rate: float, boots: np.ndarray, problems: int, ci: float = 0.95) -> tuple[float, float]:
    """The percentile interval of a bootstrapped rate (nan without rows). With no event (or only
    events) every resample repeats the observed 0 (1) and the interval collapses to a point: it is
    widened to the rule of three (an exact 95% bound for zero events), counting problems, not
    rows, since a problem's rows move together."""
    if not boots.size:
        return (np.nan, np.nan)
    lo, hi = _quantiles(boots, ci)
    if rate == 0:
        hi = max(hi, min(1.0, 3 / problems))
    if rate == 1:
        lo = min(lo, max(0.0, 1 - 3 / problems))
    return (lo, hi)


def rank_correlation_boot(table: pd.DataFrame, x: str, y: str = "score", n_boot: int = 2000,
                          seed: int = 0) -> tuple[float, np.ndarray, int]:
    """(rho, bootstrap rhos, rows): Pearson correlation of the ranks of ``x`` and ``y``
    (Spearman's rho, ranks taken once on the whole table), resampling problems through
    per-problem sums. No bootstrap (an empty array) when rho is undefined or too often so."""
    if len(table) < 3:
        return (np.nan, np.array([]), len(table))
    t = pd.DataFrame({"problem_id": table["problem_id"].to_numpy(), "x": table[x].rank().to_numpy(),
                      "y": table[y].rank().to_numpy()})
    t["xx"], t["yy"], t["xy"], t["one"] = t["x"] ** 2, t["y"] ** 2, t["x"] * t["y"], 1.0
    per = t.groupby("problem_id")[["one", "x", "y", "xx", "yy", "xy"]].sum()
    sums = per.to_numpy()

    def corr(s):
        n, sx, sy, sxx, syy, sxy = (s[..., i] for i in range(6))
        cov = sxy - sx * sy / n
        with np.errstate(invalid="ignore", divide="ignore"):
            return cov / np.sqrt((sxx - sx ** 2 / n) * (syy - sy ** 2 / n))

    rho = float(corr(sums.sum(axis=0)))
    boots = corr(_counts(per.index.to_numpy(), n_boot, seed) @ sums)
    boots = boots[np.isfinite(boots)]  # a resample whose ranks are all tied has no correlation
    if np.isnan(rho) or boots.size < n_boot / 2:
        return (rho, np.array([]), len(table))
    return (rho, boots, len(table))


def rank_correlation_ci(table: pd.DataFrame, x: str, y: str = "score", n_boot: int = 2000, ci: float = 0.95,
                        seed: int = 0) -> tuple[float, float, float, int]:
    """Spearman's rho of ``x`` and ``y`` with its bootstrap interval over problems: (rho, lo, hi, rows)."""
    rho, boots, rows = rank_correlation_boot(table, x, y, n_boot, seed)
    return (rho, *_interval(boots, ci), rows)


def _interval(boots: np.ndarray, ci: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap values, nan when there are none."""
    return _quantiles(boots, ci) if boots.size else (np.nan, np.nan)


def above_test(value: float, boots: np.ndarray, tolerance: float, problems: int) -> tuple[str | None, float]:
    """(direction, p) of "the rate is above ``tolerance``": "agrees" when the estimate is above,
    "disagrees" when below, with the two-sided bootstrap p-value of "rate = tolerance" (the
    sign test of ``analysis.bootstrap_p``, shifted to the tolerance)."""
    if np.isnan(value) or not boots.size:
        return (None, np.nan)
    p = analysis.bootstrap_p(boots, tolerance)
    if value == 0:
        # every resample of zero events is 0, so the bootstrap alone would reject at any size:
        # with none seen in ``problems`` problems, a true rate of ``tolerance`` per problem would
        # show none with chance (1 - tolerance) ** problems
        p = max(p, (1 - tolerance) ** problems)
    return ("agrees" if value > tolerance else "disagrees" if value < tolerance else None, p)


def beyond_test(value: float, boots: np.ndarray, tolerance: float) -> tuple[str | None, float]:
    """(direction, p) of "|rho| > ``tolerance``" (a bias), the mirror of ``equivalence_part``:
    an estimate beyond the tolerance "agrees" with p = twice the bootstrap share inside on its
    side; one within it "disagrees" when both one-sided tests reject (p = the larger share beyond)."""
    if np.isnan(value) or not boots.size:
        return (None, np.nan)
    if abs(value) > tolerance:
        inside = np.mean(boots <= tolerance) if value > 0 else np.mean(boots >= -tolerance)
        return ("agrees", min(1.0, 2 * float(inside)))
    return ("disagrees", max(float(np.mean(boots >= tolerance)), float(np.mean(boots <= -tolerance))))


def failure_rates(steps: pd.DataFrame, threshold: float = 0.5, rate_tolerance: float = 0.05,
                  bias_tolerance: float = 0.1, n_boot: int = 2000) -> pd.DataFrame:
    """Per PRM (and pooled over PRMs, prm == "all"): each failure rate and each scoring-bias
    correlation with its 95% CI over problems, and the test of the paper's claim for it (rate
    above ``rate_tolerance``; |rho| above ``bias_tolerance``): its direction and p-value.
    Columns: prm, failure, value, lo, hi, count, direction, p."""
    ev = events(steps, threshold)
    correct = steps[steps["label"] == "correct"]
    rows = []
    for prm in [*sorted(steps["prm"].unique()), "all"]:
        for f in FAILURES:
            t = ev[f] if prm == "all" else ev[f][ev[f]["prm"] == prm]
            value, boots, count, problems = ratio_boot(t, n_boot=n_boot)
            lo, hi = _rate_interval(value, boots, problems)
            rows.append((prm, f, value, lo, hi, count, *above_test(value, boots, rate_tolerance, problems)))
        c = correct if prm == "all" else correct[correct["prm"] == prm]
        for f, col in (("position_bias", "step"), ("length_bias", "tokens")):
            rho, boots, count = rank_correlation_boot(c, col, n_boot=n_boot)
            lo, hi = _interval(boots)
            rows.append((prm, f, rho, lo, hi, count, *beyond_test(rho, boots, bias_tolerance)))
    return pd.DataFrame(rows, columns=["prm", "failure", "value", "lo", "hi", "count", "direction", "p"])


def score_by_position(steps: pd.DataFrame, max_step: int = 8) -> pd.DataFrame:
    """Mean score per (prm, label, step index) for correct and first-error steps, for the figure."""
    s = steps[steps["label"].isin(["correct", "first_error"]) & (steps["step"] < max_step)]
    return s.groupby(["prm", "label", "step"])["score"].agg(["mean", "size"]).reset_index()


def finding_failures(rates: pd.DataFrame, rate_tolerance: float = 0.05, bias_tolerance: float = 0.1) -> dict:
    """The paper's claim that PRMs show each failure type, judged on the rates pooled over PRMs
    (``failure_rates``'s "all" rows, tested against the tolerances fixed in the profile): a failure
    rate above ``rate_tolerance`` (seen more often than that, it is a property of the PRMs, not an
    accident), a scoring bias with |rho| above ``bias_tolerance``. The parts are one family, judged
    by ``summarize`` (Holm), as every finding's."""
    pooled = rates[rates["prm"] == "all"].set_index("failure")
    parts = []
    for f in (*FAILURES, *BIASES):
        r = pooled.loc[f]
        is_rate = f in FAILURES
        claim = f"{LABELS[f]} ({'rate' if is_rate else '|rho|'} > {rate_tolerance if is_rate else bias_tolerance:g})"
        unit = "opportunities" if is_rate else "correct steps"
        direction = r["direction"] if isinstance(r["direction"], str) else None
        parts.append({"claim": claim, "effect": float(r["value"]), "lo": float(r["lo"]), "hi": float(r["hi"]),
                      "p": float(r["p"]), "direction": direction, "detail": f"{int(r['count'])} {unit}, all PRMs"})
    return summarize(parts)


def examples(steps: pd.DataFrame, threshold: float = 0.5) -> pd.DataFrame:
    """The clearest case of each failure type per PRM (deterministic): the lowest-scored correct
    step, the highest-scored first-error step, the solution whose error step outscores a correct
    step before it by the most (the marked step is that correct step). Columns: prm, failure, policy, seed, problem_id, candidate, step."""
    ev = events(steps, threshold)
    keys = ["policy", "seed", "problem_id", "candidate"]
    picks = []
    for prm in sorted(steps["prm"].unique()):
        oc = ev["over_criticism"]
        oc = oc[(oc["prm"] == prm) & (oc["event"] == 1)].sort_values(["score", *keys, "step"])
        en = ev["error_neglect"]
        en = en[(en["prm"] == prm) & (en["event"] == 1)].sort_values(["error_score", *keys], ascending=[False] + [True] * 4)
        lb = ev["localization_bias"]
        lb = lb[(lb["prm"] == prm) & (lb["event"] == 1)]
        lb = lb.assign(gap=lb["error_score"] - lb["lowest_score"]).sort_values(
            ["gap", *keys], ascending=[False] + [True] * 4)
        for failure, t, col in [("over_criticism", oc, "step"), ("error_neglect", en, "error_step"),
                                ("localization_bias", lb, "lowest_step")]:
            if len(t):
                r = t.iloc[0]
                picks.append({"prm": prm, "failure": failure, **{k: r[k] for k in keys}, "step": int(r[col])})
    return pd.DataFrame(picks, columns=["prm", "failure", *keys, "step"])


def example_markdown(example: pd.Series, cands: pd.DataFrame, questions: dict[str, str],
                     steps: pd.DataFrame) -> str:
    """One example as markdown: the question, then every step with its label and score."""
    sel = steps[(steps["prm"] == example["prm"]) & (steps["policy"] == example["policy"])
                & (steps["seed"] == example["seed"]) & (steps["problem_id"] == example["problem_id"])
                & (steps["candidate"] == example["candidate"])].sort_values("step")
    c = cands[(cands["prm"] == example["prm"]) & (cands["policy"] == example["policy"])
              & (cands["seed"] == example["seed"]) & (cands["problem_id"] == example["problem_id"])
              & (cands["candidate"] == example["candidate"]) & (cands["method"] == "best_of_n")]
    texts = list(c.sort_values("n")["steps"].iloc[-1])
    mark = {"correct": "right", "first_error": "FIRST ERROR", "after_error": "after the error"}
    lines = [f"**{LABELS[example['failure']]}**: {example['prm']} on {example['policy']}'s sample "
             f"{example['candidate']} of {example['problem_id']}", "", f"> {questions[example['problem_id']]}", ""]
    for (_, r), text in zip(sel.iterrows(), texts, strict=True):
        flag = " **<-**" if r["step"] == example["step"] else ""
        lines.append(f"{r['step'] + 1}. `{text.strip()}` | {mark[r['label']]} | score {r['score']:.2f}{flag}")
    return "\n".join(lines)



def first_error_f1(steps: pd.DataFrame, threshold: float = 0.5) -> pd.Series:
    """Each PRM's ProcessBench-style F1 on these candidates (the measure of the tiny world's build
    report, here on the study's own samples): the predicted first error is the first step scored
    below ``threshold``; F1 is the harmonic mean of the accuracy on erroneous solutions (predicted
    = true first error) and on correct ones (nothing flagged). A solution without an answer goes
    wrong at its last step."""
    keys = ["prm", "policy", "seed", "problem_id", "candidate"]
    s = steps.sort_values([*keys, "step"])
    flagged = s[s["score"] < threshold].groupby(keys, sort=False)["step"].min()
    sol = s.groupby(keys, sort=False)[["first_error", "steps"]].first()
    truth = sol["first_error"].where(sol["first_error"] < sol["steps"], sol["steps"] - 1)
    pred = flagged.reindex(sol.index).fillna(-1)
    hit = pred == truth
    out = {}
    for prm, h in hit.groupby(level="prm"):
        t = truth.loc[h.index]
        acc_err, acc_ok = h[t >= 0].mean(), h[t < 0].mean()
        if np.isnan(acc_err) or np.isnan(acc_ok):  # no solution of one kind: F1 is undefined
            out[prm] = np.nan
        else:
            out[prm] = 0.0 if acc_err + acc_ok == 0 else 2 * acc_err * acc_ok / (acc_err + acc_ok)
    return pd.Series(out, name="first_error_f1")

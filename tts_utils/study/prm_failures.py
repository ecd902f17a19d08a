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
  solution or with their length (tokens): a rank correlation *within* solutions (ranks taken and
  centred in each solution, then pooled), so that differences between solutions (long solutions
  of hard problems scoring lower throughout) do not pass for a bias.

The claim is tested per PRM, never pooled over PRMs (whose biases can have opposite signs), and
each failure rate against **chance**: the rate the same PRM would show if its scores of each
solution were shuffled among that solution's steps (computed exactly, not sampled). A constant or
random scorer then shows no failure, whatever its raw rates: a failure is a property of the PRM
only where its scores single out the wrong steps more often than chance. Every statistic is
bootstrapped over problems (the candidates of a problem move together), with the resampling
scheme of ``analysis.bootstrap_ci``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

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


_SOLUTION = ["policy", "prm", "seed", "problem_id", "candidate"]


def _lower_before_error(scores: np.ndarray, e: int) -> float:
    """Chance of "some step before the error scores lower than the error step" when the solution's
    scores are shuffled over its steps: the error step gets each score v_j alike, and the e steps
    before it a random e-subset of the others, all at or above v_j with probability
    C(m_j, e) / C(L - 1, e), m_j the number of other scores at or above v_j."""
    n_other = len(scores) - 1
    total = 0.0
    for v in scores:
        m = int(np.sum(scores >= v)) - 1  # the others at or above v (v itself left out)
        total += 1.0 - math.comb(m, e) / math.comb(n_other, e)
    return total / len(scores)


def events(steps: pd.DataFrame, threshold: float = 0.5) -> dict[str, pd.DataFrame]:
    """Per failure type, one row per opportunity (policy, prm, problem_id, ..., ``event`` 0/1 and
    ``chance``: its probability with the solution's scores shuffled over its steps)."""
    scores = steps.groupby(_SOLUTION, sort=False)["score"].agg(list)
    low_share = scores.map(lambda s: float(np.mean(np.asarray(s) < threshold))).rename("low_share")
    correct = steps[steps["label"] == "correct"].join(low_share, on=_SOLUTION)
    sols = _solutions(steps).join(low_share, on=_SOLUTION)
    after_correct = sols[sols["error_step"] >= 1].copy()
    after_correct["chance"] = [_lower_before_error(np.asarray(scores.loc[tuple(k)]), int(e)) for k, e in
                               zip(after_correct[_SOLUTION].itertuples(index=False), after_correct["error_step"],
                                   strict=True)]
    return {
        "over_criticism": correct.assign(event=(correct["score"] < threshold).astype(int),
                                         chance=correct["low_share"]),
        "error_neglect": sols.assign(event=(sols["error_score"] >= threshold).astype(int),
                                     chance=1.0 - sols["low_share"]),
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


def rank_correlation_boot(table: pd.DataFrame, x: str, y: str = "score", n_boot: int = 2000,
                          seed: int = 0, within: Sequence[str] | None = None) -> tuple[float, np.ndarray, int]:
    """(rho, bootstrap rhos, rows): Pearson correlation of the ranks of ``x`` and ``y``
    (Spearman's rho), resampling problems through per-problem sums. With ``within`` (the columns
    naming a solution), ranks are taken and centred inside each solution, so only how the score
    moves along a solution counts, not how solutions differ. No bootstrap (an empty array) when
    rho is undefined or too often so."""
    if len(table) < 3:
        return (np.nan, np.array([]), len(table))
    if within:
        solution = [table[c] for c in within]
        rx, ry = (table[c].groupby(solution, sort=False).rank() for c in (x, y))
        rx, ry = (r - r.groupby(solution, sort=False).transform("mean") for r in (rx, ry))
    else:
        rx, ry = table[x].rank(), table[y].rank()
    t = pd.DataFrame({"problem_id": table["problem_id"].to_numpy(), "x": rx.to_numpy(), "y": ry.to_numpy()})
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


def _interval(boots: np.ndarray, ci: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap values, nan when there are none."""
    return _quantiles(boots, ci) if boots.size else (np.nan, np.nan)


def failure_rates(steps: pd.DataFrame, threshold: float = 0.5, n_boot: int = 2000) -> pd.DataFrame:
    """Per PRM: each failure's rate, its chance rate (scores shuffled within each solution) and the
    excess of the one over the other, with the excess's 95% CI over problems; and each scoring
    bias's within-solution rank correlation with its CI. ``effect`` is what the finding tests
    (the excess, or rho), ``p`` its two-sided bootstrap p-value against 0.
    Columns: prm, failure, value, chance, effect, lo, hi, count, p."""
    ev = events(steps, threshold)
    correct = steps[steps["label"] == "correct"]
    rows = []
    for prm in sorted(steps["prm"].unique()):
        for f in FAILURES:
            t = ev[f][ev[f]["prm"] == prm]
            t = t.assign(excess=t["event"] - t["chance"])
            excess, boots, count, _ = ratio_boot(t, "excess", n_boot=n_boot)
            value, chance = (float(t[c].mean()) if count else np.nan for c in ("event", "chance"))
            lo, hi = _interval(boots)
            p = analysis.bootstrap_p(boots) if boots.size else np.nan
            rows.append((prm, f, value, chance, excess, lo, hi, count, p))
        c = correct[correct["prm"] == prm]
        for f, col in (("position_bias", "step"), ("length_bias", "tokens")):
            rho, boots, count = rank_correlation_boot(c, col, n_boot=n_boot, within=_SOLUTION)
            lo, hi = _interval(boots)
            p = analysis.bootstrap_p(boots) if boots.size else np.nan
            rows.append((prm, f, rho, 0.0, rho, lo, hi, count, p))
    return pd.DataFrame(rows, columns=["prm", "failure", "value", "chance", "effect", "lo", "hi", "count", "p"])


def score_by_position(steps: pd.DataFrame, max_step: int = 8) -> pd.DataFrame:
    """Mean score per (prm, label, step index) for correct and first-error steps, for the figure."""
    s = steps[steps["label"].isin(["correct", "first_error"]) & (steps["step"] < max_step)]
    return s.groupby(["prm", "label", "step"])["score"].agg(["mean", "size"]).reset_index()


FIGS13_18_RULE = ("Figs. 13-18: five parts per PRM: for over-criticism, error neglect and error-localization bias, "
                  "the PRM's rate minus its chance rate (its own scores shuffled within each solution), per "
                  "problem, expected > 0; for the position and length biases, the rank correlation of correct "
                  "steps' scores with their position and length within solutions, expected != 0 (either sign "
                  "is a bias)")


def finding_failures(rates: pd.DataFrame) -> dict:
    """The paper's claim that PRMs show each failure type, per PRM (``failure_rates``): a failure
    counts where the PRM's scores single it out more often than chance, a scoring bias where the
    within-solution correlation is not zero. The parts are one family, judged by ``summarize``
    (Holm), as every finding's."""
    parts = []
    for _, r in rates.iterrows():
        is_rate = r["failure"] in FAILURES
        effect = float(r["effect"])
        if is_rate:
            direction = None if math.isnan(effect) or effect == 0 else ("agrees" if effect > 0 else "disagrees")
            claim = f"{r['prm']}: {LABELS[r['failure']]} (rate above chance)"
            detail = f"rate {r['value']:.3f} vs chance {r['chance']:.3f}; {int(r['count'])} opportunities"
        else:  # a bias of either sign is the claim: a significant rho agrees, none can disagree
            direction = None if math.isnan(effect) or effect == 0 else "agrees"
            claim = f"{r['prm']}: {LABELS[r['failure']]} (within-solution rho != 0)"
            detail = f"{int(r['count'])} correct steps"
        parts.append({"claim": claim, "effect": effect, "lo": float(r["lo"]), "hi": float(r["hi"]),
                      "p": float(r["p"]), "direction": direction, "detail": detail})
    return summarize(parts, rule=FIGS13_18_RULE)


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

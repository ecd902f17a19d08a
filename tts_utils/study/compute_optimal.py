"""F6-F7 and Tables 3-6: the compute-optimal configuration, its FLOPs, and what it beats."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from tts_utils import analysis
from tts_utils.models.catalog import get_model
from tts_utils.study.grid import TTS_METHODS
from tts_utils.study.verdicts import N_BOOT, claim_part, problem_means, summarize

CHOICE_RULE = ("compute-optimal configuration (the paper's Eq. 3, which conditions on the PRM: for the given "
               "policy and PRM, at each (difficulty bin, N), the TTS method of Best-of-N, beam search and DVTS "
               "with the best accuracy, difficulty from the policy's independent pass@1 samples)")


def compute_optimal_curve(acc: pd.DataFrame, policy: str, prm: str, mode: str = "oracle",
                          methods: Sequence[str] = TTS_METHODS) -> pd.DataFrame:
    """Per-problem rows of the reward-aware compute-optimal choice of ``policy`` with ``prm``.

    One choice set everywhere in the study (``CHOICE_RULE``): the PRM is given (the paper's Eq. 3
    conditions on it) and only the method is chosen, per difficulty bin and budget; ``acc`` carries
    a ``difficulty`` column (``analysis.with_difficulty`` with the pass@1 samples). ``mode`` is
    "oracle" (the paper: chosen and reported on the same problems) or "heldout" (chosen on one
    half of each group's problems, reported on the other, both ways).
    Rows: prm, difficulty, n, problem_id, method, correct.
    """
    if "difficulty" not in acc:
        raise ValueError("the compute-optimal choice is made per difficulty bin: add the bins first "
                         "(analysis.with_difficulty(acc, analysis.pass1_by_problem(cands)))")
    by = ["prm", "difficulty", "n"]
    sub = acc[(acc["policy"] == policy) & (acc["prm"] == prm) & acc["method"].isin(methods)]
    per = sub.groupby([*by, "method", "problem_id"], observed=True)["correct"].mean().reset_index()
    choices = [m for m in methods if m in set(per["method"])]
    # a held-out group with no other half (a bin of one problem) falls back to Best-of-N, fixed here
    fallback = "best_of_n" if "best_of_n" in choices else (choices[0] if choices else None)
    return analysis.compute_optimal(per, by, choices, mode=mode, fallback=fallback)


def choice_table(acc: pd.DataFrame, policies: Sequence[str], prm: str, mode: str = "oracle") -> pd.DataFrame:
    """Which method is compute-optimal per (policy, difficulty, N) with ``prm``, with its accuracy
    there (Table 5's basis). With ``mode="heldout"`` each half's choice is listed."""
    by = ["difficulty", "n"]
    out = []
    for pol in policies:
        co = compute_optimal_curve(acc, pol, prm, mode)
        if co.empty:
            continue
        t = (co.groupby([*by, "method"], observed=True)
               .agg(acc=("correct", "mean"), problems=("problem_id", "nunique")).reset_index())
        out.append(t.assign(policy=pol, prm=prm))
    if not out:
        return pd.DataFrame(columns=["policy", "prm", *by, "method", "acc", "problems"])
    return pd.concat(out, ignore_index=True)[["policy", "prm", *by, "method", "acc", "problems"]]


def flops_table(runs: pd.DataFrame, rows: Sequence[tuple[str, str, str, str, int]]) -> pd.DataFrame:
    """Training and inference FLOPs of (label, policy, method, prm, n) configurations.

    Training: 6 * params * training tokens of the policy (the PRM's training is not counted, as in
    the paper's Table 4). Inference: 2 * params * tokens over the benchmark, policy tokens
    generated plus PRM tokens processed (prompt tokens not counted), summed over problems of the
    configuration's run.
    """
    from tts_utils.analysis.flops import inference_flops, training_flops

    out = []
    for label, policy, method, prm, n in rows:
        r = runs[(runs["policy"] == policy) & (runs["method"] == method) & (runs["prm"] == prm) & (runs["n"] == n)]
        if r.empty:
            raise KeyError(f"no runs for {label}: {policy} {method} {prm!r} N={n}")
        pspec = get_model(policy)
        prm_params = get_model(prm).params if prm else 0.0
        tok = _tokens_per_seed(r)
        inf = inference_flops(pspec.params, tok["policy_tokens"], prm_params, tok["prm_tokens"])
        train = training_flops(pspec.params, pspec.train_tokens or 0.0)
        out.append({"config": label, "policy": policy, "params": pspec.params, "pretraining": train,
                    "inference": inf.total, "total": train + inf.total})
    return pd.DataFrame(out)


def _tokens_per_seed(r: pd.DataFrame) -> dict[str, float]:
    """Tokens over the benchmark for one run of the grid (the mean over seeds of each seed's sum)."""
    per_seed = r.groupby("seed")[["policy_tokens", "prm_tokens"]].sum().mean()
    return {k: float(per_seed[k]) for k in ("policy_tokens", "prm_tokens")}


def choice_flops(runs: pd.DataFrame, curve: pd.DataFrame, policy: str, n: int, label: str) -> dict:
    """One flops_table row for a compute-optimal curve at budget ``n``, whose choice may differ
    between problems (per difficulty bin, or per half when held out): each problem costs what
    its chosen method (with the curve's PRM) spent on it."""
    from tts_utils.analysis.flops import inference_flops, training_flops

    pspec = get_model(policy)
    chosen = curve[curve["n"] == n].drop_duplicates("problem_id").set_index("problem_id")[["method", "prm"]]
    inf = 0.0
    for (method, prm), pids in chosen.groupby(["method", "prm"]).groups.items():
        r = runs[(runs["policy"] == policy) & (runs["method"] == method) & (runs["prm"] == prm)
                 & (runs["n"] == n) & runs["problem_id"].isin(pids)]
        if r.empty:
            raise KeyError(f"no runs for {label}: {policy} {method} {prm!r} N={n}")
        tok = _tokens_per_seed(r)
        prm_params = get_model(prm).params if prm else 0.0
        inf += inference_flops(pspec.params, tok["policy_tokens"], prm_params, tok["prm_tokens"]).total
    train = training_flops(pspec.params, pspec.train_tokens or 0.0)
    return {"config": label, "policy": policy, "params": pspec.params, "pretraining": train,
            "inference": inf, "total": train + inf}


def _at_largest_n(curve: pd.DataFrame) -> tuple[int, pd.Series]:
    """The largest budget of a compute-optimal curve and its per-problem correctness there."""
    top_n = int(curve["n"].max())
    return top_n, curve[curve["n"] == top_n].groupby("problem_id")["correct"].mean().astype(float)


def _resolution(budgets: Sequence[int]) -> float:
    """The largest efficiency gain a grid can show: its largest budget over its smallest."""
    return float(max(budgets) / min(budgets))


def table5(acc: pd.DataFrame, policies: Sequence[str], prm: str, mode: str = "oracle",
           curves: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """The paper's Table 5 for our policies: CoT, majority voting (best N), compute-optimal TTS
    with ``prm`` (at the largest N; ``CHOICE_RULE``), performance gain and efficiency gain, with CIs
    on the accuracies. "efficiency" is the gain's printed form ("x", ">= x" or "not reached") with
    the grid's resolution: no gain above N_max / N_min can be measured (``efficiency_max``).
    ``curves`` are the policies' compute_optimal_curve results, if at hand."""
    rows = []
    for pol in policies:
        sub = acc[acc["policy"] == pol]
        cot = analysis.bootstrap_ci(problem_means(sub[sub["method"] == "cot"], []).to_numpy())
        maj = analysis.accuracy_table(sub[sub["method"] == "majority"], ["n"])
        co = curves[pol] if curves else compute_optimal_curve(acc, pol, prm, mode=mode)
        co_tab = analysis.accuracy_table(co, ["n"])
        top = co_tab.iloc[-1]
        best_maj = maj.loc[maj["acc"].idxmax()]
        gain, lower = analysis.efficiency_gain(maj["n"], maj["acc"], co_tab["n"], co_tab["acc"])
        resolution = _resolution([*maj["n"], *co_tab["n"]])
        chosen = co[co["n"] == top["n"]]["method"]
        rows.append({"policy": pol, "prm": prm, "cot": cot[0], "cot_lo": cot[1], "cot_hi": cot[2],
                     "majority": best_maj["acc"], "majority_n": int(best_maj["n"]),
                     "majority_lo": best_maj["lo"], "majority_hi": best_maj["hi"],
                     "compute_optimal": top["acc"], "co_lo": top["lo"], "co_hi": top["hi"], "co_n": int(top["n"]),
                     "co_choice": ", ".join(chosen.value_counts().index),
                     "performance_gain": analysis.performance_gain(top["acc"], cot[0]),
                     "efficiency_gain": gain, "efficiency_lower_bound": lower, "efficiency_max": resolution,
                     "efficiency": f"{analysis.efficiency_text(gain, lower)} (at most {resolution:g}x measurable)"})
    return pd.DataFrame(rows)


F7_RULE = ("F7: two parts per policy: its held-out " + CHOICE_RULE + ", chosen on one half of the problems and "
           "reported on the other, at the grid's largest N, minus CoT and minus majority voting at that same N, "
           "per problem (seeds averaged); expected > 0")


def finding_table5(acc: pd.DataFrame, policies: Sequence[str], prm: str, mode: str = "oracle",
                   n_boot: int = N_BOOT, with_table: bool = True) -> tuple[pd.DataFrame | None, dict]:
    """F7: compute-optimal TTS beats CoT and majority voting for every policy.

    The table uses ``mode`` (the paper's oracle choice by default). The verdict never does: it
    judges the held-out choice (chosen on one half of the problems, reported on the other), at
    the largest N, against CoT and against majority voting at the same N (pre-registered: no
    choice of majority's best N either), paired over problems, Holm across the 2 x policies parts.
    ``with_table=False`` skips the table (None), e.g. for the null calibration of the verdict.
    """
    held = {pol: compute_optimal_curve(acc, pol, prm, "heldout") for pol in policies}
    table = None
    if with_table:
        curves = held if mode == "heldout" else {pol: compute_optimal_curve(acc, pol, prm, mode=mode)
                                                 for pol in policies}
        table = table5(acc, policies, prm, mode, curves)
    parts = []
    for pol in policies:
        sub = acc[acc["policy"] == pol]
        top_n, co_pp = _at_largest_n(held[pol])
        cot_pp = problem_means(sub[sub["method"] == "cot"], []).reindex(co_pp.index)
        parts.append(claim_part(f"{pol}: compute-optimal TTS beats CoT",
                           analysis.paired_bootstrap_test(co_pp, cot_pp, n_boot=n_boot), +1, f"held out, N={top_n}"))
        maj = sub[(sub["method"] == "majority") & (sub["n"] == top_n)]
        maj_pp = problem_means(maj, []).reindex(co_pp.index)
        parts.append(claim_part(f"{pol}: compute-optimal TTS beats majority voting",
                           analysis.paired_bootstrap_test(co_pp, maj_pp, n_boot=n_boot), +1, f"held out, N={top_n}"))
    return table, summarize(parts, n_boot, rule=F7_RULE)


F6_RULE = ("F6: one part: the small policy's held-out " + CHOICE_RULE + ", at the grid's largest N, minus the "
           "large policy's CoT, per problem (seeds averaged); expected > 0")


def finding_small_beats_large(acc: pd.DataFrame, small: str, large: str, prm: str, mode: str = "oracle",
                              n_boot: int = N_BOOT) -> tuple[dict, dict]:
    """F6: the small policy with compute-optimal TTS (largest N) beats the large one with CoT.

    ``info`` reports ``mode``'s choice (the paper's oracle by default); the verdict judges the
    held-out choice, as F7 does."""
    co = compute_optimal_curve(acc, small, prm, mode=mode)
    top_n, co_pp = _at_largest_n(co)
    held = co if mode == "heldout" else compute_optimal_curve(acc, small, prm, "heldout")
    _, held_pp = _at_largest_n(held)
    big = acc[(acc["policy"] == large) & (acc["method"] == "cot")]
    cot_pp = problem_means(big, []).reindex(held_pp.index)
    choice = ", ".join(co[co["n"] == top_n]["method"].value_counts().index)
    info = {"small": small, "large": large, "prm": prm, "n": top_n, "choice": choice,
            "small_tts": float(co_pp.mean()), "small_tts_heldout": float(held_pp.mean()),
            "large_cot": float(cot_pp.mean())}
    part = claim_part(f"{small} with compute-optimal TTS (N={top_n}, {prm}) beats {large} with CoT",
                 analysis.paired_bootstrap_test(held_pp, cot_pp, n_boot=n_boot), +1, f"held out; {mode}: {choice}")
    return info, summarize([part], n_boot, rule=F6_RULE)

"""F1-F3: which method is compute-optimal depends on the PRM, the policy size and the difficulty."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tts_utils import analysis
from tts_utils.study.grid import SEARCH
from tts_utils.study.verdicts import N_BOOT, claim_part, summarize


def search_minus_bon(acc: pd.DataFrame, keys: Sequence[str], search: Sequence[str] = SEARCH,
                     n_boot: int = N_BOOT) -> pd.DataFrame:
    """Per ``keys`` group: mean over problems of (search - Best-of-N), paired, with CI and p.

    With one search method, that method. With several (beam search and DVTS), which one is
    compared is chosen on one half of the problems (``analysis.split_of``) and measured on the
    other half, both ways (cross-fitting): every problem is judged by a choice that never saw it,
    so picking the better method cannot bias the effect towards "search wins". ``search`` names
    the choice of each half ("beam_search/dvts" when they differ).
    """
    search = list(search)
    rows = []
    for key, g in acc.groupby(list(keys), observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        per = g.groupby(["method", "problem_id"])["correct"].mean().unstack("method")
        avail = [m for m in search if m in per.columns]
        if "best_of_n" not in per.columns or not avail:
            continue
        per = per[[*avail, "best_of_n"]].dropna()
        half = np.array([analysis.split_of(pid) for pid in per.index])
        values = {m: per[m].to_numpy(dtype=float) for m in per.columns}
        diff = np.full(len(per), np.nan)
        chosen = []
        for h in (0, 1):
            report, choose_on = half == h, half != h
            if not report.any():
                continue
            # ties (and an empty other half) go to the first method in ``search``
            best = max(avail, key=lambda m: (values[m][choose_on].mean() if choose_on.any() else 0.0,
                                             -avail.index(m)))
            diff[report] = values[best][report] - values["best_of_n"][report]
            chosen.append(best)
        mean, lo, hi, p = analysis.bootstrap_test(diff, n_boot=n_boot)
        rows.append({**dict(zip(keys, key, strict=True)), "search": "/".join(dict.fromkeys(chosen)),
                     "diff": mean, "lo": lo, "hi": hi, "p": p, "problems": len(per)})
    return pd.DataFrame(rows)

def prm_quality(prms: Sequence[str], report_path: str | None = None, paper_order: Sequence[str] = ()) -> pd.Series:
    """A quality score per PRM, shown beside F1 (the weak/strong split itself is pre-registered
    in the profile, never computed here).

    Tiny world: the step-level error-detection F1 (ProcessBench style) measured when the world was
    built (data/tinyworld/report.json). Paper world: no measurement of ours exists, so the
    paper's own grouping is used (``paper_order``, weakest first).
    """
    if report_path:
        report = json.loads(open(report_path).read())
        f1 = {name: r["eval"]["processbench"]["f1"] for name, r in report["prms"].items() if r.get("eval")}
        missing = [p for p in prms if p not in f1]
        if missing:
            raise KeyError(f"{report_path} has no PRM quality for {missing}")
        return pd.Series({p: f1[p] for p in prms}).sort_values()
    order = [p for p in paper_order if p in prms]
    return pd.Series({p: i for i, p in enumerate(order)}, dtype=float)


def _label(row: pd.Series | dict, several_datasets: bool) -> str:
    return f"{row['dataset']}: " if several_datasets and "dataset" in row else ""


# --------------------------------------------------------------------------- F1

_SEARCH_MINUS_BON = ("(search - Best-of-N) per problem, each problem's correctness averaged over the grid's "
                     "budgets N and seeds; the search method (beam search or DVTS) chosen on the other half "
                     "of the problems (cross-fitting)")
F1_RULE = (f"F1: one part per (dataset, PRM): {_SEARCH_MINUS_BON}; expected < 0 for the weak PRMs and > 0 for "
           "the strong ones, the split named in the profile before any outcome")

def finding_strategy_vs_prm(acc: pd.DataFrame, weak_prms: Sequence[str], strong_prms: Sequence[str],
                            n_boot: int = N_BOOT) -> tuple[pd.DataFrame, dict]:
    """F1: with weak PRMs Best-of-N wins, with strong PRMs search (beam, DVTS) wins.

    The split into weak and strong PRMs is pre-registered (the profile names them), never taken
    from the outcome. Per (dataset, PRM) the effect is (search - BoN), the search method chosen by
    cross-fitting (``search_minus_bon``). Weak PRMs are expected below 0, strong ones above.
    """
    weak, strong = list(weak_prms), list(strong_prms)
    if not weak or not strong or set(weak) & set(strong):
        raise ValueError(f"F1 needs disjoint, non-empty weak and strong PRM lists, got {weak} and {strong}")
    if "dataset" not in acc:
        acc = acc.assign(dataset="")
    diffs = search_minus_bon(acc[acc["prm"].isin(weak + strong)], ["dataset", "prm"], n_boot=n_boot)
    missing = sorted(set(weak + strong) - set(diffs["prm"]))
    if missing:
        raise KeyError(f"F1: no BoN and search results for PRM(s) {missing}")
    diffs["group"] = diffs["prm"].map(lambda p: "weak" if p in weak else "strong")
    several = diffs["dataset"].nunique() > 1
    parts = []
    for _, d in diffs.iterrows():
        stats = (d["diff"], d["lo"], d["hi"], d["p"])
        if d["group"] == "weak":
            parts.append(claim_part(f"{_label(d, several)}weak PRM {d['prm']}: BoN beats search", stats, -1,
                               f"search = {d['search']}"))
        else:
            parts.append(claim_part(f"{_label(d, several)}strong PRM {d['prm']}: search beats BoN", stats, +1,
                               f"search = {d['search']}"))
    return diffs, summarize(parts, n_boot, rule=F1_RULE)


# --------------------------------------------------------------------------- F2

F2_RULE = (f"F2: two parts per dataset, for the smallest and the largest policy by registry size: "
           f"{_SEARCH_MINUS_BON}; expected > 0 for the smallest, < 0 for the largest")

def finding_policy_size(acc: pd.DataFrame, params: dict[str, float], n_boot: int = N_BOOT) -> tuple[pd.DataFrame, dict]:
    """F2: search wins for small policies, Best-of-N for large ones.

    Effect per (dataset, policy): (search - BoN), cross-fitted choice of search method. Expected
    > 0 for the smallest policy, < 0 for the largest (sizes from the registry: pre-registered).
    """
    if "dataset" not in acc:
        acc = acc.assign(dataset="")
    diffs = search_minus_bon(acc, ["dataset", "policy"], n_boot=n_boot)
    diffs["params"] = diffs["policy"].map(params)
    diffs = diffs.sort_values(["dataset", "params"]).reset_index(drop=True)
    several = diffs["dataset"].nunique() > 1
    parts = []
    for _, g in diffs.groupby("dataset", sort=False):
        small, large = g.iloc[0], g.iloc[-1]
        parts.append(claim_part(f"{_label(small, several)}smallest policy {small['policy']}: search beats BoN",
                           (small["diff"], small["lo"], small["hi"], small["p"]), +1, f"search = {small['search']}"))
        parts.append(claim_part(f"{_label(large, several)}largest policy {large['policy']}: BoN beats search",
                           (large["diff"], large["lo"], large["hi"], large["p"]), -1, f"search = {large['search']}"))
    return diffs, summarize(parts, n_boot, rule=F2_RULE)


# --------------------------------------------------------------------------- F3

F3_RULE = ("F3: two parts per small policy, every small policy smaller than the grid's largest policy (F2's "
           "large one): beam search - Best-of-N per problem of the easy bin (expected < 0) and of the hard bin "
           "(expected > 0), bins from the policy's independent pass@1 samples with the paper's thresholds, each "
           "problem's correctness averaged over the grid's budgets N and seeds; the effect at each N is reported "
           "beside each part, not tested")


def finding_difficulty(acc: pd.DataFrame, small_policies: Sequence[str], params: dict[str, float],
                       n_boot: int = N_BOOT) -> tuple[pd.DataFrame, dict]:
    """F3: for small policies, BoN is best on easy problems and beam search on hard ones.

    ``acc`` carries a ``difficulty`` column (analysis.with_difficulty, from the independent
    pass@1 sample set). Effect per (policy, bin): beam search - BoN, paired over the bin's
    problems. Easy: expected < 0; hard: expected > 0. Policies and bins are pre-registered, and
    the small policies must all be smaller than the largest of ``params`` (the grid's policy
    sizes): the policy F2 tests as large, for which Best-of-N should win everywhere. The table
    has the averaged effect (``n`` = "all") and the effect at each N.
    """
    small = list(small_policies)
    if not small:
        raise ValueError("F3 needs at least one small policy")
    unknown = [p for p in small if p not in params]
    if unknown:
        raise KeyError(f"F3: no size for small policies {unknown}; sizes known for {sorted(params)}")
    largest = max(params, key=params.get)
    too_large = [p for p in small if params[p] >= params[largest]]
    if too_large:
        raise ValueError(f"F3's small policies must be smaller than the grid's largest policy {largest!r} "
                         f"(F2's large policy), got {too_large}")
    sub = acc[acc["policy"].isin(small)]
    diffs = search_minus_bon(sub, ["policy", "difficulty"], search=("beam_search",), n_boot=n_boot).assign(n="all")
    by_n = search_minus_bon(sub, ["policy", "difficulty", "n"], search=("beam_search",), n_boot=n_boot)
    parts = []
    for _, d in diffs.iterrows():
        if d["difficulty"] not in ("easy", "hard"):
            continue
        at = by_n[(by_n["policy"] == d["policy"]) & (by_n["difficulty"] == d["difficulty"])]
        each_n = ", ".join(f"N={int(r['n'])}: {r['diff']:+.2f}" for _, r in at.iterrows())
        detail = f"{d['problems']} problems; at each N: {each_n}"
        stats = (d["diff"], d["lo"], d["hi"], d["p"])
        if d["difficulty"] == "easy":
            parts.append(claim_part(f"{d['policy']}, easy: BoN beats beam search", stats, -1, detail))
        else:
            parts.append(claim_part(f"{d['policy']}, hard: beam search beats BoN", stats, +1, detail))
    table = pd.concat([diffs, by_n], ignore_index=True)
    return table, summarize(parts, n_boot, rule=F3_RULE)

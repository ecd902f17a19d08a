"""The study's findings (docs/DESIGN.md, "Findings"), one function each, for the thin notebooks.

Each ``finding_*`` takes the per-problem accuracy table of ``analysis.vote_accuracy`` (and the
candidate/run tables where it needs tokens) and returns the table its figure draws plus a
verdict dict: {"claim", "effect", "lo", "hi", "verdict", "detail"} with the verdict computed
from the data by ``analysis.verdict`` (agrees / disagrees / inconclusive at the shown CI).

Effects are paired over problems: search minus Best-of-N is measured on the same problems and
bootstrapped over problems, averaging each problem's correctness over the budgets N of the grid
(the claims are about the curves, not one N).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from tts_utils import analysis
from tts_utils.models import get_model
from tts_utils.search import get_method

# What every notebook collects, in table order: the baselines, the TTS methods, and the independent
# difficulty sample set (pass@1 per problem, analysis.pass1_by_problem). Shared, so the cache is
# shared. What each method is (uses a PRM, ...) comes from the method registry.
GRID_METHODS = ("cot", "majority", "best_of_n", "beam_search", "dvts", "pass1_samples")
TTS_METHODS = tuple(m for m in GRID_METHODS if get_method(m).uses_prm)  # the methods a PRM steers
SEARCH = tuple(m for m in TTS_METHODS if m != "best_of_n")  # the paper's "search methods", vs BoN


# --------------------------------------------------------------------------- collection

def grid_config(results_dir: str, dataset: str, policies: Sequence[str], prms: Sequence[str],
                methods: Sequence[str], budgets: Sequence[int], seeds: Sequence[int] = (0,),
                limit: int | None = None, **options) -> dict:
    """A tts_utils.collect config; ``options`` are further collect fields (max_step_tokens, ...)."""
    cfg = {"out": results_dir, "datasets": [dataset], "policies": list(policies), "prms": list(prms),
           "methods": list(methods), "n": sorted(budgets), "seeds": list(seeds), **options}
    if limit:
        cfg["limit"] = limit
    return cfg


def collect_grid(config: dict, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Run (or load from cache) a grid and return (candidates, runs, per-problem accuracy)."""
    from tts_utils.collect import collect, load_results

    paths = collect(config, progress=progress)
    cands, runs = load_results(config["out"])
    # Voting over every candidate set is the slowest step of a warm rerun: keep its result beside
    # the tables, keyed by the candidate table's bytes (merge writes them deterministically).
    import hashlib

    digest = hashlib.sha256(paths["candidates"].read_bytes()).hexdigest()[:20]
    cache = paths["candidates"].parent / f"votes-{digest}.parquet"
    if cache.exists():
        return cands, runs, pd.read_parquet(cache)
    acc = analysis.vote_accuracy(cands)
    tmp = cache.with_name(cache.name + ".tmp")
    acc.to_parquet(tmp, index=False)
    tmp.replace(cache)
    return cands, runs, acc


class NotebookData(NamedTuple):
    cands: pd.DataFrame    # candidates table (tts_utils.collect)
    runs: pd.DataFrame     # runs table
    acc_all: pd.DataFrame  # per-problem correctness under every voting rule (analysis.vote_accuracy)
    acc: pd.DataFrame      # the same under the notebook's rule (with_rule)


def setup_notebook(results_dir: str, dataset: str, policies: Sequence[str], prms: Sequence[str],
                   budgets: Sequence[int], seeds: Sequence[int] = (0,), limit: int = 0,
                   rule: str = "prm_last_vote", methods: Sequence[str] = GRID_METHODS, progress: bool = True,
                   **collect_options) -> NotebookData:
    """The first cell of every finding notebook: the figure style, the grid collected (cached: a
    rerun generates nothing) and voted, and a one-line summary. ``limit`` 0 means every problem;
    ``collect_options`` are further collect fields (max_step_tokens, chunk_size, backend, ...)."""
    from tts_utils import plots

    plots.set_style()
    grid = grid_config(results_dir, dataset, policies, prms, methods=methods, budgets=budgets, seeds=seeds,
                       limit=limit or None, **collect_options)
    cands, runs, acc_all = collect_grid(grid, progress=progress)
    print(f"{cands['problem_id'].nunique()} problems, {len(cands)} candidates, {len(acc_all)} per-problem votes")
    return NotebookData(cands, runs, acc_all, with_rule(acc_all, rule))


def with_rule(acc: pd.DataFrame, rule: str) -> pd.DataFrame:
    """One row per (method, problem ...): PRM methods read ``rule``; CoT and majority voting have
    only the majority rule (they use no PRM)."""
    uses_prm = acc["prm"].astype(bool)
    return acc[(uses_prm & (acc["rule"] == rule)) | (~uses_prm & (acc["rule"] == "majority"))]


# --------------------------------------------------------------------------- helpers

def _per_problem(acc: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    """Each problem's correctness averaged over seeds and budgets, indexed by keys + problem_id."""
    return acc.groupby([*keys, "problem_id"], observed=True)["correct"].mean()


def search_minus_bon(acc: pd.DataFrame, keys: Sequence[str], search: Sequence[str] = SEARCH) -> pd.DataFrame:
    """Per ``keys`` group: mean over problems of (best search method - Best-of-N), paired, with CI.

    "Best search method" is the better of beam search and DVTS on the group (by mean accuracy);
    the effect is then that method's paired difference to BoN.
    """
    rows = []
    for key, g in acc.groupby(list(keys), observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        per = g.groupby(["method", "problem_id"])["correct"].mean().unstack("method")
        avail = [m for m in search if m in per.columns]
        if "best_of_n" not in per.columns or not avail:
            continue
        best = max(avail, key=lambda m: per[m].mean())
        both = per[[best, "best_of_n"]].dropna()
        mean, lo, hi = analysis.paired_bootstrap_diff(both[best], both["best_of_n"])
        rows.append({**dict(zip(keys, key, strict=True)), "search": best, "diff": mean, "lo": lo, "hi": hi,
                     "problems": len(both)})
    return pd.DataFrame(rows)


def _verdict_row(claim: str, effect: float, lo: float, hi: float, sign: int, detail: str = "") -> dict:
    return {"claim": claim, "effect": effect, "lo": lo, "hi": hi, "verdict": analysis.verdict(lo, hi, sign),
            "detail": detail}


def summarize(rows: list[dict]) -> dict:
    return {"verdict": analysis.combine_verdicts([r["verdict"] for r in rows]), "parts": rows}


def prm_quality(prms: Sequence[str], report_path: str | None = None, paper_order: Sequence[str] = ()) -> pd.Series:
    """A quality score per PRM to split weak from strong.

    Tiny world: the step-level error-detection F1 (ProcessBench style) measured when the world was
    built (data/tinyworld/report.json). Paper world: no measurement of ours exists, so the
    paper's own grouping is used (``paper_order``, weakest first) and the notebook says so.
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


# --------------------------------------------------------------------------- F1

def finding_strategy_vs_prm(acc: pd.DataFrame, quality: pd.Series) -> tuple[pd.DataFrame, dict]:
    """F1: with weak PRMs Best-of-N wins, with strong PRMs search (beam, DVTS) wins.

    PRMs are split at the median of ``quality`` (weakest half vs strongest half); per PRM the
    effect is (best search - BoN). Weak PRMs are expected below 0, strong ones above.
    """
    diffs = search_minus_bon(acc, ["prm"]).set_index("prm").loc[quality.index]
    half = len(quality) // 2
    weak, strong = list(quality.index[:half]), list(quality.index[len(quality) - half:])
    rows = []
    for prm in weak:
        d = diffs.loc[prm]
        rows.append(_verdict_row(f"weak PRM {prm}: BoN beats search", d["diff"], d["lo"], d["hi"], -1,
                                 f"best search = {d['search']}"))
    for prm in strong:
        d = diffs.loc[prm]
        rows.append(_verdict_row(f"strong PRM {prm}: search beats BoN", d["diff"], d["lo"], d["hi"], +1,
                                 f"best search = {d['search']}"))
    return diffs.reset_index(), summarize(rows)


# --------------------------------------------------------------------------- F2

def finding_policy_size(acc: pd.DataFrame, params: dict[str, float]) -> tuple[pd.DataFrame, dict]:
    """F2: search wins for small policies, Best-of-N for large ones.

    Effect per policy: (best search - BoN). Expected > 0 for the smallest policy, < 0 for the
    largest; the table is ordered by parameter count.
    """
    diffs = search_minus_bon(acc, ["policy"])
    diffs["params"] = diffs["policy"].map(params)
    diffs = diffs.sort_values("params").reset_index(drop=True)
    small, large = diffs.iloc[0], diffs.iloc[-1]
    rows = [_verdict_row(f"smallest policy {small['policy']}: search beats BoN", small["diff"], small["lo"],
                         small["hi"], +1),
            _verdict_row(f"largest policy {large['policy']}: BoN beats search", large["diff"], large["lo"],
                         large["hi"], -1)]
    return diffs, summarize(rows)


# --------------------------------------------------------------------------- F3

def finding_difficulty(acc: pd.DataFrame, small_policies: Sequence[str]) -> tuple[pd.DataFrame, dict]:
    """F3: for small policies, BoN is best on easy problems and beam search on hard ones.

    ``acc`` carries a ``difficulty`` column (analysis.with_difficulty). Effect per (policy, bin):
    beam search - BoN, paired over the bin's problems. Easy: expected < 0; hard: expected > 0.
    """
    sub = acc[acc["policy"].isin(small_policies)]
    diffs = search_minus_bon(sub, ["policy", "difficulty"], search=("beam_search",))
    rows = []
    for _, d in diffs.iterrows():
        if d["difficulty"] == "easy":
            rows.append(_verdict_row(f"{d['policy']}, easy: BoN beats beam search", d["diff"], d["lo"], d["hi"], -1,
                                     f"{d['problems']} problems"))
        elif d["difficulty"] == "hard":
            rows.append(_verdict_row(f"{d['policy']}, hard: beam search beats BoN", d["diff"], d["lo"], d["hi"], +1,
                                     f"{d['problems']} problems"))
    return diffs, summarize(rows)


# --------------------------------------------------------------------------- F4

def finding_length_bias(cands: pd.DataFrame, short_prm: str, long_prm: str,
                        method: str = "beam_search") -> tuple[pd.DataFrame, dict]:
    """F4: a PRM trained on longer solutions makes search produce longer outputs.

    Effect: log of the ratio of mean tokens per candidate (long-trained PRM / short-trained PRM)
    under ``method``, paired over problems and pooled over policies and budgets; expected > 0.
    The paper's RLHFlow-Deepseek / RLHFlow-Mistral ratio is about 2.
    """
    c = cands[(cands["method"] == method) & cands["prm"].isin([short_prm, long_prm])].copy()
    c["chars"] = c["steps"].map(lambda s: sum(len(x) for x in s))
    per = (c.groupby(["prm", "policy", "n", "problem_id"])[["policy_tokens", "chars", "num_steps"]].mean())
    table = per.groupby(["prm", "policy"]).mean().reset_index()
    tok = per["policy_tokens"].unstack("prm").dropna()
    log_ratio = np.log(tok[long_prm]) - np.log(tok[short_prm])
    mean, lo, hi = analysis.bootstrap_ci(log_ratio.to_numpy())
    row = _verdict_row(f"{long_prm} makes {method} longer than {short_prm}", math.exp(mean), math.exp(lo),
                       math.exp(hi), +1, "effect = ratio of tokens per candidate")
    row["verdict"] = analysis.verdict(lo, hi, +1)  # judged on the log ratio (0 = no difference)
    return table, summarize([row])


# --------------------------------------------------------------------------- F5

def voting_table(acc: pd.DataFrame, method: str = "best_of_n") -> pd.DataFrame:
    """Accuracy (with CI) of every voting rule per PRM for one method, pooled over budgets."""
    sub = acc[acc["method"] == method]
    return analysis.accuracy_table(sub, ["prm", "rule"])


def finding_voting(acc: pd.DataFrame, sensitive_prm: str, insensitive_prm: str,
                   method: str = "best_of_n", tolerance: float = 0.02) -> tuple[pd.DataFrame, dict]:
    """F5: PRMs differ in sensitivity to the voting rule: for a Skywork-type PRM, PRM-Vote beats
    PRM-Max; a Qwen2.5-Math-PRM-type PRM is insensitive.

    Effect: mean over the three aggregations of (PRM-*-Vote - PRM-*-Max), paired over problems.
    Sensitive PRM: expected > 0. Insensitive PRM: "agrees" when the whole CI lies within
    +-``tolerance`` (the paper's Qwen spread is 0.4 points), "disagrees" when it lies outside.
    """
    sub = acc[acc["method"] == method]
    per = sub.groupby(["prm", "rule", "problem_id"])["correct"].mean().unstack("rule")
    vote = per[[f"prm_{a}_vote" for a in ("min", "last", "avg")]].mean(axis=1)
    mx = per[[f"prm_{a}_max" for a in ("min", "last", "avg")]].mean(axis=1)
    diff = (vote - mx).rename("vote_minus_max")
    rows = []
    m, lo, hi = analysis.bootstrap_ci(diff.loc[sensitive_prm].to_numpy())
    rows.append(_verdict_row(f"{sensitive_prm}: PRM-Vote beats PRM-Max", m, lo, hi, +1))
    m, lo, hi = analysis.bootstrap_ci(diff.loc[insensitive_prm].to_numpy())
    within = -tolerance <= lo and hi <= tolerance
    outside = lo > tolerance or hi < -tolerance
    rows.append({"claim": f"{insensitive_prm}: insensitive to the rule (|Vote - Max| <= {tolerance:.0%})",
                 "effect": m, "lo": lo, "hi": hi,
                 "verdict": "agrees" if within else "disagrees" if outside else "inconclusive", "detail": ""})
    return voting_table(acc, method), summarize(rows)


# --------------------------------------------------------------------------- F6 / F7

def compute_optimal_curve(acc: pd.DataFrame, policy: str, mode: str = "oracle",
                          methods: Sequence[str] = TTS_METHODS) -> pd.DataFrame:
    """Per-problem rows of the compute-optimal choice of (method, PRM) at each N for one policy.

    The choice is made per budget N over every (method, PRM) pair collected, as the paper's
    Table 5 does; ``mode`` is "oracle" (the paper) or "heldout" (choose on one half of the
    problems, report on the other).
    """
    sub = acc[(acc["policy"] == policy) & acc["method"].isin(methods)].copy()
    sub["method"] = sub["method"] + "|" + sub["prm"]
    per = sub.groupby(["n", "method", "problem_id"])["correct"].mean().reset_index()
    choices = sorted(per["method"].unique())
    return analysis.compute_optimal(per, ["n"], choices, mode=mode)


def flops_table(runs: pd.DataFrame, rows: Sequence[tuple[str, str, str, str, int]]) -> pd.DataFrame:
    """Training and inference FLOPs of (label, policy, method, prm, n) configurations.

    Training: 6 * params * training tokens of the policy (the PRM's training is not counted, as in
    the paper's Table 4). Inference: 2 * params * tokens over the benchmark, policy tokens
    generated plus PRM tokens processed (prompt tokens not counted), summed over problems of the
    configuration's run.
    """
    from tts_utils.flops import inference_flops, training_flops

    out = []
    for label, policy, method, prm, n in rows:
        r = runs[(runs["policy"] == policy) & (runs["method"] == method) & (runs["prm"] == prm) & (runs["n"] == n)]
        if r.empty:
            raise KeyError(f"no runs for {label}: {policy} {method} {prm!r} N={n}")
        pspec = get_model(policy)
        prm_params = get_model(prm).params if prm else 0.0
        inf = inference_flops(pspec.params, float(r["policy_tokens"].sum()), prm_params, float(r["prm_tokens"].sum()))
        train = training_flops(pspec.params, pspec.train_tokens or 0.0)
        out.append({"config": label, "policy": policy, "params": pspec.params, "pretraining": train,
                    "inference": inf.total, "total": train + inf.total})
    return pd.DataFrame(out)


def _at_largest_n(curve: pd.DataFrame) -> tuple[int, pd.Series]:
    """The largest budget of a compute-optimal curve and its per-problem correctness there."""
    top_n = int(curve["n"].max())
    return top_n, curve[curve["n"] == top_n].set_index("problem_id")["correct"].astype(float)


def table5(acc: pd.DataFrame, policies: Sequence[str], mode: str = "oracle",
           curves: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """The paper's Table 5 for our policies: CoT, majority voting (best N), compute-optimal TTS
    (at the largest N), performance gain and efficiency gain, with CIs on the accuracies.
    ``curves`` are the policies' compute_optimal_curve results, when the caller has them."""
    rows = []
    for pol in policies:
        sub = acc[acc["policy"] == pol]
        cot = analysis.bootstrap_ci(_per_problem(sub[sub["method"] == "cot"], []).to_numpy())
        maj = analysis.accuracy_table(sub[sub["method"] == "majority"], ["n"])
        co = curves[pol] if curves else compute_optimal_curve(acc, pol, mode=mode)
        co_tab = analysis.accuracy_table(co, ["n"])
        top = co_tab.iloc[-1]
        best_maj = maj.loc[maj["acc"].idxmax()]
        gain, lower = analysis.efficiency_gain(maj["n"], maj["acc"], co_tab["n"], co_tab["acc"])
        rows.append({"policy": pol, "cot": cot[0], "cot_lo": cot[1], "cot_hi": cot[2],
                     "majority": best_maj["acc"], "majority_n": int(best_maj["n"]),
                     "majority_lo": best_maj["lo"], "majority_hi": best_maj["hi"],
                     "compute_optimal": top["acc"], "co_lo": top["lo"], "co_hi": top["hi"], "co_n": int(top["n"]),
                     "co_choice": co[co["n"] == top["n"]]["method"].iloc[0],
                     "performance_gain": analysis.performance_gain(top["acc"], cot[0]),
                     "efficiency_gain": gain, "efficiency_lower_bound": lower})
    return pd.DataFrame(rows)


def finding_table5(acc: pd.DataFrame, policies: Sequence[str], mode: str = "oracle") -> tuple[pd.DataFrame, dict]:
    """F7: compute-optimal TTS beats CoT and majority voting for every policy (paired CIs of
    C-O TTS - CoT and C-O TTS - best majority, at the largest N). Whether the gains shrink with
    size is shown in the table, not judged."""
    curves = {pol: compute_optimal_curve(acc, pol, mode=mode) for pol in policies}
    table = table5(acc, policies, mode, curves)
    rows = []
    for pol in policies:
        sub = acc[acc["policy"] == pol]
        _, co_pp = _at_largest_n(curves[pol])
        cot_pp = _per_problem(sub[sub["method"] == "cot"], []).reindex(co_pp.index)
        m, lo, hi = analysis.paired_bootstrap_diff(co_pp, cot_pp)
        rows.append(_verdict_row(f"{pol}: compute-optimal TTS beats CoT", m, lo, hi, +1))
        maj = sub[sub["method"] == "majority"]
        best_n = maj.groupby("n")["correct"].mean().idxmax()
        maj_pp = maj[maj["n"] == best_n].groupby("problem_id")["correct"].mean().reindex(co_pp.index)
        m, lo, hi = analysis.paired_bootstrap_diff(co_pp, maj_pp)
        rows.append(_verdict_row(f"{pol}: compute-optimal TTS beats majority voting", m, lo, hi, +1))
    return table, summarize(rows)


def finding_small_beats_large(acc: pd.DataFrame, small: str, large: str, mode: str = "oracle") -> tuple[dict, dict]:
    """F6: the small policy with compute-optimal TTS (largest N) beats the large one with CoT."""
    co = compute_optimal_curve(acc, small, mode=mode)
    top_n, co_pp = _at_largest_n(co)
    big = acc[(acc["policy"] == large) & (acc["method"] == "cot")]
    cot_pp = _per_problem(big, []).reindex(co_pp.index)
    m, lo, hi = analysis.paired_bootstrap_diff(co_pp, cot_pp)
    choice = co[co["n"] == top_n]["method"].iloc[0]
    info = {"small": small, "large": large, "n": top_n, "choice": choice,
            "small_tts": float(co_pp.mean()), "large_cot": float(cot_pp.mean())}
    return info, summarize([_verdict_row(f"{small} with compute-optimal TTS (N={top_n}) beats {large} with CoT",
                                         m, lo, hi, +1, f"choice: {choice}")])


def verdict_markdown(summary: dict, title: str) -> str:
    """A markdown block stating the computed verdict and each part's effect with its CI."""
    lines = [f"**{title}: {summary['verdict'].upper()}** (computed from the data at 95% bootstrap CIs)", ""]
    for p in summary["parts"]:
        extra = f"; {p['detail']}" if p.get("detail") else ""
        lines.append(f"* {p['claim']}: effect {p['effect']:+.3f} [{p['lo']:+.3f}, {p['hi']:+.3f}] -> "
                     f"{p['verdict']}{extra}")
    return "\n".join(lines)


def save_verdict(summary: dict, finding: str, title: str, figures_dir: str, figure: str) -> None:
    """Write the verdict next to the figure (``<figure>.verdict.json``) so the README's findings
    table is generated from the data (tts_utils.run_notebooks --readme), never typed by hand."""
    from pathlib import Path

    doc = {"finding": finding, "title": title, "figure": figure, "verdict": summary["verdict"],
           "parts": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in p.items()}
                     for p in summary["parts"]]}
    path = Path(figures_dir) / f"{figure}.verdict.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")

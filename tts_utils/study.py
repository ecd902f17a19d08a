"""The study's findings (docs/DESIGN.md, "Findings"), one function each, for the thin notebooks.

Each ``finding_*`` takes the per-problem accuracy table of ``analysis.vote_accuracy`` (and the
candidate/run tables where it needs tokens) and returns the table its figure draws plus a
summary {"verdict", "rule", "parts"}; each part is {"claim", "effect", "lo", "hi", "p",
"verdict", "detail"}.

The statistics are fixed before any outcome is seen (``verdict_rule`` says them in words, and
every notebook prints it beside the verdict):

* effects are paired over problems (search minus Best-of-N on the same problems), each
  problem's correctness averaged over the budgets N and seeds of the grid (the claims are about
  the curves, not one N), and bootstrapped over problems;
* every split is pre-registered: weak/strong PRMs and small policies are named in the profile,
  small/large policies come from the registry's sizes, easy/hard from the independent pass@1
  sample set with the paper's fixed thresholds; every choice made from outcomes (which search
  method, which compute-optimal configuration) is made on one half of the problems and judged
  on the other (cross-fitting, ``analysis.split_of``);
* a finding's parts are one family: Holm at family-wise 5% decides which parts agree or
  disagree, and the finding agrees only if all of them do.
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
    """A tts_utils.collect config; ``options`` are further collect fields (max_step_tokens, ...).

    In a notebook it first checks the notebook's parameters (``tts_utils.notebook_params``):
    unknown names and bad values fail here, naming the parameter."""
    from tts_utils.notebook_params import check_notebook, check_values

    check_notebook()
    check_values({"policies": policies, "prms": prms, "budgets": budgets, "seeds": seeds})
    cfg = {"out": results_dir, "datasets": [dataset], "policies": list(policies), "prms": list(prms),
           "methods": list(methods), "n": sorted(budgets), "seeds": list(seeds), **options}
    if limit:
        cfg["limit"] = limit
    return cfg


def hard_grid(grid: dict, dataset: str, limit: int = 0, prms: Sequence[str] | None = None) -> dict:
    """``grid`` on a hard set (the paper's AIME24 panels): every problem, or the first ``limit``;
    ``prms`` instead of the grid's when given; without the difficulty samples (``pass1_samples``),
    which only the main benchmark's analyses read."""
    out = {**grid, "datasets": [dataset], "methods": [m for m in grid["methods"] if m != "pass1_samples"]}
    out.pop("limit", None)
    if limit:
        out["limit"] = limit
    if prms:
        out["prms"] = list(prms)
    return out


def collect_grid(config: dict, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Run (or load from cache) a grid and return (candidates, runs, per-problem accuracy)."""
    from tts_utils.collect import collect
    from tts_utils.collect.cache import atomic_parquet

    # This grid's own tables: the directory's copies may already be another notebook's grid.
    paths = collect(config, progress=progress)
    cands, runs = pd.read_parquet(paths["candidates"]), pd.read_parquet(paths["runs"])
    # Voting over every candidate set is the slowest step of a warm rerun: keep its result beside
    # the tables, keyed by the candidate table's bytes (merge writes them deterministically).
    import hashlib

    digest = hashlib.sha256(paths["candidates"].read_bytes()).hexdigest()[:20]
    cache = paths["candidates"].parent / f"votes-{digest}.parquet"
    if cache.exists():
        return cands, runs, pd.read_parquet(cache)
    acc = analysis.vote_accuracy(cands)
    atomic_parquet(acc, cache)  # a temporary of this process's own: notebooks may run side by side
    return cands, runs, acc


class NotebookData(NamedTuple):
    cands: pd.DataFrame    # candidates table (tts_utils.collect)
    runs: pd.DataFrame     # runs table
    acc_all: pd.DataFrame  # per-problem correctness under every voting rule (analysis.vote_accuracy)
    acc: pd.DataFrame      # the same under the notebook's rule (with_rule)
    grid: dict             # the collect config (a notebook derives further grids from it)


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
    return NotebookData(cands, runs, acc_all, with_rule(acc_all, rule), grid)


def with_rule(acc: pd.DataFrame, rule: str) -> pd.DataFrame:
    """One row per (method, problem ...): PRM methods read ``rule``; CoT and majority voting have
    only the majority rule (they use no PRM)."""
    from tts_utils.notebook_params import check_values

    check_values({"rule": rule})
    if acc.empty:  # a grid with no voting method (e.g. only the pass@1 samples of notebook 09)
        return acc
    uses_prm = acc["prm"].astype(bool)
    return acc[(uses_prm & (acc["rule"] == rule)) | (~uses_prm & (acc["rule"] == "majority"))]


# --------------------------------------------------------------------------- statistics

N_BOOT = 2000
FAMILY_ALPHA = 0.05


def verdict_rule(n_parts: int, n_boot: int = N_BOOT, alpha: float = FAMILY_ALPHA) -> str:
    """The pre-registered decision rule every finding's verdict follows, in words."""
    return (f"paired bootstrap over problems ({n_boot} resamples; seeds and budgets averaged within a "
            f"problem first); each part's two-sided bootstrap p-value; Holm across the {n_parts} part(s) "
            f"at family-wise {alpha:.0%}: a part agrees or disagrees only if Holm rejects its null; the "
            "finding agrees if every part agrees, disagrees if any part disagrees, else inconclusive")


def _per_problem(acc: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    """Each problem's correctness averaged over seeds and budgets, indexed by keys + problem_id."""
    return acc.groupby([*keys, "problem_id"], observed=True)["correct"].mean()


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


def _part(claim: str, stats: Sequence[float], sign: int, detail: str = "") -> dict:
    """One part of a finding: an effect (mean, lo, hi, p) and the sign the paper claims for it."""
    mean, lo, hi, p = (float(x) for x in stats)
    direction = None if math.isnan(mean) or mean == 0 else ("agrees" if sign * mean > 0 else "disagrees")
    return {"claim": claim, "effect": mean, "lo": lo, "hi": hi, "p": p, "direction": direction, "detail": detail}


def summarize(parts: list[dict], n_boot: int = N_BOOT, alpha: float = FAMILY_ALPHA) -> dict:
    """Holm across the parts, then one verdict (see ``verdict_rule``)."""
    rejected = analysis.holm([p["p"] for p in parts], alpha)
    out = []
    for p, rej in zip(parts, rejected, strict=True):
        p = dict(p)
        direction = p.pop("direction")
        p["verdict"] = direction if rej and direction else "inconclusive"
        out.append(p)
    return {"verdict": analysis.combine_verdicts([p["verdict"] for p in out]), "parts": out,
            "rule": verdict_rule(len(out), n_boot, alpha)}


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
            parts.append(_part(f"{_label(d, several)}weak PRM {d['prm']}: BoN beats search", stats, -1,
                               f"search = {d['search']}"))
        else:
            parts.append(_part(f"{_label(d, several)}strong PRM {d['prm']}: search beats BoN", stats, +1,
                               f"search = {d['search']}"))
    return diffs, summarize(parts, n_boot)


# --------------------------------------------------------------------------- F2

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
        parts.append(_part(f"{_label(small, several)}smallest policy {small['policy']}: search beats BoN",
                           (small["diff"], small["lo"], small["hi"], small["p"]), +1, f"search = {small['search']}"))
        parts.append(_part(f"{_label(large, several)}largest policy {large['policy']}: BoN beats search",
                           (large["diff"], large["lo"], large["hi"], large["p"]), -1, f"search = {large['search']}"))
    return diffs, summarize(parts, n_boot)


# --------------------------------------------------------------------------- F3

def finding_difficulty(acc: pd.DataFrame, small_policies: Sequence[str], n_boot: int = N_BOOT) -> tuple[pd.DataFrame, dict]:
    """F3: for small policies, BoN is best on easy problems and beam search on hard ones.

    ``acc`` carries a ``difficulty`` column (analysis.with_difficulty, from the independent
    pass@1 sample set). Effect per (policy, bin): beam search - BoN, paired over the bin's
    problems. Easy: expected < 0; hard: expected > 0. Policies and bins are pre-registered.
    """
    sub = acc[acc["policy"].isin(small_policies)]
    diffs = search_minus_bon(sub, ["policy", "difficulty"], search=("beam_search",), n_boot=n_boot)
    parts = []
    for _, d in diffs.iterrows():
        stats = (d["diff"], d["lo"], d["hi"], d["p"])
        if d["difficulty"] == "easy":
            parts.append(_part(f"{d['policy']}, easy: BoN beats beam search", stats, -1, f"{d['problems']} problems"))
        elif d["difficulty"] == "hard":
            parts.append(_part(f"{d['policy']}, hard: beam search beats BoN", stats, +1, f"{d['problems']} problems"))
    return diffs, summarize(parts, n_boot)


# --------------------------------------------------------------------------- F4

def finding_length_bias(cands: pd.DataFrame, short_prm: str, long_prm: str,
                        method: str = "beam_search", n_boot: int = N_BOOT) -> tuple[pd.DataFrame, dict]:
    """F4: a PRM trained on longer solutions makes search produce longer outputs.

    Effect: log of the ratio of mean tokens per candidate (long-trained PRM / short-trained PRM)
    under ``method``, averaged per problem over policies, budgets and seeds, then bootstrapped
    over problems (the unit: rows of one problem are not independent); expected > 0. Shown as the
    ratio; the paper's RLHFlow-Deepseek / RLHFlow-Mistral ratio is about 2.
    """
    c = cands[(cands["method"] == method) & cands["prm"].isin([short_prm, long_prm])].copy()
    c["chars"] = c["steps"].map(lambda s: sum(len(x) for x in s))
    per = (c.groupby(["prm", "policy", "n", "seed", "problem_id"])[["policy_tokens", "chars", "num_steps"]].mean())
    table = per.groupby(["prm", "policy"]).mean().reset_index()
    tok = per["policy_tokens"].unstack("prm").dropna()
    log_ratio = (np.log(tok[long_prm]) - np.log(tok[short_prm])).groupby("problem_id").mean()
    mean, lo, hi, p = analysis.bootstrap_test(log_ratio.to_numpy(), n_boot=n_boot)
    part = _part(f"{long_prm} makes {method} longer than {short_prm}", (mean, lo, hi, p), +1,
                 f"ratio of tokens per candidate {math.exp(mean):.2f} [{math.exp(lo):.2f}, {math.exp(hi):.2f}]"
                 f" over {len(log_ratio)} problems")
    part["effect_name"] = "log ratio"
    return table, summarize([part], n_boot)


# --------------------------------------------------------------------------- F5

def voting_table(acc: pd.DataFrame, method: str = "best_of_n", n_boot: int = N_BOOT) -> pd.DataFrame:
    """Accuracy (with CI) of every voting rule per PRM for one method, pooled over budgets."""
    sub = acc[acc["method"] == method]
    return analysis.accuracy_table(sub, ["prm", "rule"], n_boot=n_boot)


def equivalence_part(claim: str, values: Sequence[float], tolerance: float, n_boot: int = N_BOOT) -> dict:
    """A part claiming "no effect beyond +-tolerance", by the bootstrap form of two one-sided tests.

    Estimate within the tolerance: it agrees if both one-sided tests reject, so its p is the
    larger of P(mean >= tol) and P(mean <= -tol) over the bootstrap. Estimate beyond it: it
    disagrees if "the effect is within the tolerance" is rejected, p = twice the bootstrap share
    on the tolerance's side (two-sided, as the sign parts).
    """
    x = np.asarray(values, dtype=float)
    mean, lo, hi, _ = analysis.bootstrap_test(x, n_boot=n_boot)
    boot = analysis.bootstrap_means(x, n_boot)
    if abs(mean) <= tolerance:
        p = max(float(np.mean(boot >= tolerance)), float(np.mean(boot <= -tolerance)))
        direction = "agrees"
    else:
        inside = np.mean(boot <= tolerance) if mean > 0 else np.mean(boot >= -tolerance)
        p, direction = min(1.0, 2 * float(inside)), "disagrees"
    return {"claim": claim, "effect": mean, "lo": lo, "hi": hi, "p": p, "direction": direction,
            "detail": f"equivalence at +-{tolerance:.0%}"}


def finding_voting(acc: pd.DataFrame, sensitive_prm: str, insensitive_prm: str,
                   method: str = "best_of_n", tolerance: float = 0.02, n_boot: int = N_BOOT) -> tuple[pd.DataFrame, dict]:
    """F5: PRMs differ in sensitivity to the voting rule: for a Skywork-type PRM, PRM-Vote beats
    PRM-Max; a Qwen2.5-Math-PRM-type PRM is insensitive.

    Effect: mean over the three aggregations of (PRM-*-Vote - PRM-*-Max), paired over problems.
    Sensitive PRM: expected > 0. Insensitive PRM: an equivalence test at +-``tolerance`` (the
    paper's Qwen spread is 0.4 points), see ``equivalence_part``.
    """
    sub = acc[acc["method"] == method]
    per = sub.groupby(["prm", "rule", "problem_id"])["correct"].mean().unstack("rule")
    vote = per[[f"prm_{a}_vote" for a in ("min", "last", "avg")]].mean(axis=1)
    mx = per[[f"prm_{a}_max" for a in ("min", "last", "avg")]].mean(axis=1)
    diff = (vote - mx).rename("vote_minus_max")
    parts = [_part(f"{sensitive_prm}: PRM-Vote beats PRM-Max",
                   analysis.bootstrap_test(diff.loc[sensitive_prm].to_numpy(), n_boot=n_boot), +1),
             equivalence_part(f"{insensitive_prm}: insensitive to the rule (|Vote - Max| <= {tolerance:.0%})",
                              diff.loc[insensitive_prm].to_numpy(), tolerance, n_boot)]
    return voting_table(acc, method, n_boot), summarize(parts, n_boot)


# --------------------------------------------------------------------------- F6 / F7

def compute_optimal_curve(acc: pd.DataFrame, policy: str, mode: str = "oracle",
                          methods: Sequence[str] = TTS_METHODS, by: Sequence[str] = ("n",)) -> pd.DataFrame:
    """Per-problem rows of the reward-aware compute-optimal choice for one policy.

    The choice is made per ``by`` group: ("n",) chooses the best (method, PRM) pair at each budget;
    ("difficulty", "n") chooses per difficulty bin and budget (the paper's reward-aware choice by
    size and difficulty; ``acc`` then carries a ``difficulty`` column from the independent pass@1
    set); with "prm" in ``by`` the PRM is given and only the method is chosen. ``mode`` is
    "oracle" (the paper: chosen and reported on the same problems) or "heldout" (chosen on one
    half of each group's problems, reported on the other, both ways).
    Rows: by..., problem_id, method (``method|prm`` unless prm is in ``by``), correct.
    """
    by = list(by)
    sub = acc[(acc["policy"] == policy) & acc["method"].isin(methods)].copy()
    if "prm" not in by:
        sub["method"] = sub["method"] + "|" + sub["prm"]
    per = sub.groupby([*by, "method", "problem_id"], observed=True)["correct"].mean().reset_index()
    choices = sorted(per["method"].unique())
    # a held-out group with no other half (a bin of one problem) falls back to Best-of-N, fixed here
    fallback = next((c for c in choices if c.startswith("best_of_n")), choices[0] if choices else None)
    return analysis.compute_optimal(per, by, choices, mode=mode, fallback=fallback)


def choice_table(acc: pd.DataFrame, policies: Sequence[str], by: Sequence[str] = ("prm", "difficulty", "n"),
                 mode: str = "oracle") -> pd.DataFrame:
    """Which method is compute-optimal per (policy, *by), with its accuracy there (the paper's
    reward-aware choice, Table 5's basis). With ``mode="heldout"`` each half's choice is listed."""
    out = []
    for pol in policies:
        co = compute_optimal_curve(acc, pol, mode, by=by)
        if co.empty:
            continue
        t = (co.groupby([*by, "method"], observed=True)
               .agg(acc=("correct", "mean"), problems=("problem_id", "nunique")).reset_index())
        out.append(t.assign(policy=pol))
    if not out:
        return pd.DataFrame(columns=["policy", *by, "method", "acc", "problems"])
    return pd.concat(out, ignore_index=True)[["policy", *by, "method", "acc", "problems"]]


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
    its chosen (method, PRM) spent on it."""
    from tts_utils.flops import inference_flops, training_flops

    pspec = get_model(policy)
    chosen = curve[curve["n"] == n].drop_duplicates("problem_id").set_index("problem_id")["method"]
    inf = 0.0
    for config, pids in chosen.groupby(chosen).groups.items():
        method, prm = config.split("|")
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


def _by(acc: pd.DataFrame) -> list[str]:
    """Choose per difficulty bin and budget when the table has bins, per budget otherwise."""
    return ["difficulty", "n"] if "difficulty" in acc else ["n"]


def table5(acc: pd.DataFrame, policies: Sequence[str], mode: str = "oracle",
           curves: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """The paper's Table 5 for our policies: CoT, majority voting (best N), compute-optimal TTS
    (at the largest N; chosen per difficulty bin and N when ``acc`` has bins), performance gain
    and efficiency gain ("efficiency" is its printed form: "x", ">= x" or "not reached"), with CIs
    on the accuracies. ``curves`` are the policies' compute_optimal_curve results, if at hand."""
    rows = []
    for pol in policies:
        sub = acc[acc["policy"] == pol]
        cot = analysis.bootstrap_ci(_per_problem(sub[sub["method"] == "cot"], []).to_numpy())
        maj = analysis.accuracy_table(sub[sub["method"] == "majority"], ["n"])
        co = curves[pol] if curves else compute_optimal_curve(acc, pol, mode=mode, by=_by(acc))
        co_tab = analysis.accuracy_table(co, ["n"])
        top = co_tab.iloc[-1]
        best_maj = maj.loc[maj["acc"].idxmax()]
        gain, lower = analysis.efficiency_gain(maj["n"], maj["acc"], co_tab["n"], co_tab["acc"])
        chosen = co[co["n"] == top["n"]]["method"]
        rows.append({"policy": pol, "cot": cot[0], "cot_lo": cot[1], "cot_hi": cot[2],
                     "majority": best_maj["acc"], "majority_n": int(best_maj["n"]),
                     "majority_lo": best_maj["lo"], "majority_hi": best_maj["hi"],
                     "compute_optimal": top["acc"], "co_lo": top["lo"], "co_hi": top["hi"], "co_n": int(top["n"]),
                     "co_choice": ", ".join(chosen.value_counts().index),
                     "performance_gain": analysis.performance_gain(top["acc"], cot[0]),
                     "efficiency_gain": gain, "efficiency_lower_bound": lower,
                     "efficiency": analysis.efficiency_text(gain, lower)})
    return pd.DataFrame(rows)


def finding_table5(acc: pd.DataFrame, policies: Sequence[str], mode: str = "oracle",
                   n_boot: int = N_BOOT, with_table: bool = True) -> tuple[pd.DataFrame | None, dict]:
    """F7: compute-optimal TTS beats CoT and majority voting for every policy.

    The table uses ``mode`` (the paper's oracle choice by default). The verdict never does: it
    judges the held-out choice (chosen on one half of the problems, reported on the other), at
    the largest N, against CoT and against majority voting at the same N (pre-registered: no
    choice of majority's best N either), paired over problems, Holm across the 2 x policies parts.
    ``with_table=False`` skips the table (None), e.g. for the null calibration of the verdict.
    """
    held = {pol: compute_optimal_curve(acc, pol, "heldout", by=_by(acc)) for pol in policies}
    table = None
    if with_table:
        curves = held if mode == "heldout" else {pol: compute_optimal_curve(acc, pol, mode=mode, by=_by(acc))
                                                 for pol in policies}
        table = table5(acc, policies, mode, curves)
    parts = []
    for pol in policies:
        sub = acc[acc["policy"] == pol]
        top_n, co_pp = _at_largest_n(held[pol])
        cot_pp = _per_problem(sub[sub["method"] == "cot"], []).reindex(co_pp.index)
        parts.append(_part(f"{pol}: compute-optimal TTS beats CoT",
                           analysis.paired_bootstrap_test(co_pp, cot_pp, n_boot=n_boot), +1, f"held out, N={top_n}"))
        maj = sub[(sub["method"] == "majority") & (sub["n"] == top_n)]
        maj_pp = _per_problem(maj, []).reindex(co_pp.index)
        parts.append(_part(f"{pol}: compute-optimal TTS beats majority voting",
                           analysis.paired_bootstrap_test(co_pp, maj_pp, n_boot=n_boot), +1, f"held out, N={top_n}"))
    return table, summarize(parts, n_boot)


def finding_small_beats_large(acc: pd.DataFrame, small: str, large: str, mode: str = "oracle",
                              n_boot: int = N_BOOT) -> tuple[dict, dict]:
    """F6: the small policy with compute-optimal TTS (largest N) beats the large one with CoT.

    ``info`` reports ``mode``'s choice (the paper's oracle by default); the verdict judges the
    held-out choice, as F7 does."""
    by = _by(acc)
    co = compute_optimal_curve(acc, small, mode=mode, by=by)
    top_n, co_pp = _at_largest_n(co)
    held = co if mode == "heldout" else compute_optimal_curve(acc, small, "heldout", by=by)
    _, held_pp = _at_largest_n(held)
    big = acc[(acc["policy"] == large) & (acc["method"] == "cot")]
    cot_pp = _per_problem(big, []).reindex(held_pp.index)
    choice = ", ".join(co[co["n"] == top_n]["method"].value_counts().index)
    info = {"small": small, "large": large, "n": top_n, "choice": choice,
            "small_tts": float(co_pp.mean()), "small_tts_heldout": float(held_pp.mean()),
            "large_cot": float(cot_pp.mean())}
    part = _part(f"{small} with compute-optimal TTS (N={top_n}) beats {large} with CoT",
                 analysis.paired_bootstrap_test(held_pp, cot_pp, n_boot=n_boot), +1, f"held out; {mode}: {choice}")
    return info, summarize([part], n_boot)


def verdict_markdown(summary: dict, title: str) -> str:
    """A markdown block stating the computed verdict, the rule it follows, and each part's effect
    with its 95% CI and p-value."""
    rule = summary.get("rule") or "each part's 95% bootstrap interval against the claimed sign (no family-wise rule)"
    lines = [f"**{title}: {summary['verdict'].upper()}**", "", f"Rule (pre-registered): {rule}.", ""]
    for p in summary["parts"]:
        extra = f"; {p['detail']}" if p.get("detail") else ""
        pval = f", p = {p['p']:.3f}" if "p" in p else ""
        lines.append(f"* {p['claim']}: effect {p['effect']:+.3f} [{p['lo']:+.3f}, {p['hi']:+.3f}]{pval} -> "
                     f"{p['verdict']}{extra}")
    return "\n".join(lines)


def save_verdict(summary: dict, finding: str, title: str, figures_dir: str, figure: str) -> None:
    """Write the verdict next to the figure (``<figure>.verdict.json``) so the README's findings
    table is generated from the data (tts_utils.run_notebooks --readme), never typed by hand."""
    from pathlib import Path

    doc = {"finding": finding, "title": title, "figure": figure, "verdict": summary["verdict"],
           "rule": summary.get("rule", ""),
           "parts": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in p.items()}
                     for p in summary["parts"]]}
    path = Path(figures_dir) / f"{figure}.verdict.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")

"""The grid every finding notebook collects, and the notebook's first cell (``setup_notebook``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import pandas as pd

from tts_utils import analysis
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

    In a notebook it first checks the notebook's parameters (``tts_utils.study.notebook_params``):
    unknown names and bad values fail here, naming the parameter."""
    from tts_utils.study.notebook_params import check_notebook, check_values

    check_notebook()
    check_values({"policies": policies, "prms": prms, "budgets": budgets, "seeds": seeds})
    cfg = {"out": results_dir, "datasets": [dataset], "policies": list(policies), "prms": list(prms),
           "methods": list(methods), "n": sorted(budgets), "seeds": list(seeds), **options}
    if limit:
        cfg["limit"] = limit
    return cfg


def hard_grid(grid: dict, dataset: str, limit: int = 0, prms: Sequence[str] | None = None,
              budgets: Sequence[int] | None = None) -> dict:
    """``grid`` on a hard set (the paper's AIME24 panels): every problem, or the first ``limit``;
    ``prms`` and ``budgets`` instead of the grid's when given (a hard problem's solutions are
    several times longer, so a profile may stop its hard set at a smaller N); without the
    difficulty samples (``pass1_samples``), which only the main benchmark's analyses read."""
    out = {**grid, "datasets": [dataset], "methods": [m for m in grid["methods"] if m != "pass1_samples"]}
    out.pop("limit", None)
    if limit:
        out["limit"] = limit
    if prms:
        out["prms"] = list(prms)
    if budgets:
        from tts_utils.study.notebook_params import check_values

        check_values({"budgets": budgets})
        out["n"] = sorted(budgets)
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
    from tts_utils.analysis import plots

    plots.set_style()
    grid = grid_config(results_dir, dataset, policies, prms, methods=methods, budgets=budgets, seeds=seeds,
                       limit=limit or None, **collect_options)
    cands, runs, acc_all = collect_grid(grid, progress=progress)
    print(f"{cands['problem_id'].nunique()} problems, {len(cands)} candidates, {len(acc_all)} per-problem votes")
    return NotebookData(cands, runs, acc_all, with_rule(acc_all, rule), grid)


def with_rule(acc: pd.DataFrame, rule: str) -> pd.DataFrame:
    """One row per (method, problem ...): PRM methods read ``rule``; CoT and majority voting have
    only the majority rule (they use no PRM)."""
    from tts_utils.study.notebook_params import check_values

    check_values({"rule": rule})
    if acc.empty:  # a grid with no voting method (e.g. only the pass@1 samples of notebook 09)
        return acc
    uses_prm = acc["prm"].astype(bool)
    return acc[(uses_prm & (acc["rule"] == rule)) | (~uses_prm & (acc["rule"] == "majority"))]

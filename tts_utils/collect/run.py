"""Run the missing work units of a grid (models loaded once per pair), then merge; and the CLI."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from tts_utils.collect.cache import (
    Unit,
    grid_id,
    grid_lock,
    manifest,
    merge,
    merge_plan,
    model_fingerprint,
    plan,
    remove_stale_temporaries,
    unit_frames,
    unit_state,
    write_manifest,
    write_unit,
)
from tts_utils.collect.config import (
    ConfigError,
    GridConfig,
    check_models,
    check_out,
    import_loader,
    parse_config,
    parse_shard,
    policy_search,
)
from tts_utils.collect.pool import groups, run_parallel
from tts_utils.problems.datasets import DataError, load_dataset
from tts_utils.progress import Progress
from tts_utils.search import derive, run_method
from tts_utils.threads import study_threads, study_workers, torch_threads


def _load_model(cfg: GridConfig, kind: str, name: str):
    if cfg.loader is not None:
        return import_loader(cfg.loader)(kind, name)
    if kind == "policy":
        from tts_utils.models.policy import load_policy

        return load_policy(name, backend=cfg.backend, **cfg.backend_options)
    from tts_utils.models.prm import load_prm

    return load_prm(name, **cfg.prm_options)


def collect(config: dict | str | Path, shard: str | None = None, out: str | Path | None = None,
            progress: bool = True, workers: int | None = None) -> dict[str, Path] | None:
    """Run (the missing part of) a grid; returns the final table paths, or None when this shard
    finished its part but other shards have not. ``workers``: processes that run work units in
    parallel (default ``TTS_WORKERS``, else 1; see tts_utils.collect.pool)."""
    cfg = parse_config(config)
    if out is not None:
        cfg.out = str(out)
    shard_spec = parse_shard(shard)
    check_models(cfg)
    data = {}
    for i, ds in enumerate(cfg.datasets):
        try:
            data[ds] = load_dataset(ds, limit=cfg.limit)
        except DataError as e:
            raise ConfigError(f"config field 'datasets'[{i}]: {e}") from None
        if not data[ds]:
            raise ConfigError(f"config field 'datasets'[{i}]: {ds!r} has no problems")
    out_dir = check_out(cfg.out)  # created only once the rest is checked: a failed check leaves no folder
    fingerprints = {("policy", p): model_fingerprint(cfg, "policy", p) for p in cfg.policies}
    fingerprints.update({("prm", p): model_fingerprint(cfg, "prm", p) for p in cfg.prms})
    units = plan(cfg, data, fingerprints)
    doc = manifest(cfg, units)
    with grid_lock(out_dir, grid_id(doc)):
        write_manifest(out_dir, doc)
        remove_stale_temporaries(out_dir / "chunks")
        mine = [u for u in units if shard_spec is None or u.chunk % shard_spec[1] == shard_spec[0]]
        todo, to_run = [], []
        for u in mine:
            damage, held = unit_state(u, out_dir)
            if damage not in (None, "missing"):
                warnings.warn(f"collect: the chunk of {u.describe()} is damaged ({damage}); recomputing it",
                              stacklevel=2)
            if damage is not None or not set(u.budgets) <= set(held):
                todo.append(u)
                # A chunk another grid wrote for fewer budgets is redone for both grids' budgets (seeded:
                # the budgets it held come out the same), so neither grid's use of it breaks.
                to_run.append(replace(u, budgets=tuple(sorted({*u.budgets, *held}))))
        by_id = {ds: {p.id: p for p in probs} for ds, probs in data.items()}
        positions = {ds: {p.id: i for i, p in enumerate(probs)} for ds, probs in data.items()}
        # A fixed thread count per process (TTS_THREADS), and TTS_WORKERS processes: see tts_utils.threads.
        if todo:  # a cached rerun neither starts workers nor imports torch
            _run_units(cfg, to_run, by_id, positions, out_dir, progress, total=sum(len(u.problem_ids) for u in mine),
                       done=sum(len(u.problem_ids) for u in mine if u not in todo),
                       workers=study_workers() if workers is None else workers)
        try:
            return merge_plan(doc, out_dir)  # this grid's plan, whatever another process wrote since
        except FileNotFoundError:
            if shard_spec is None:
                raise
            return None  # other shards still running; the last one to finish merges


class _SampleMemo:
    """Wraps a policy so that identical whole-solution sampling calls are generated once.

    Majority voting and Best-of-N with every PRM draw exactly the same samples (same prompts,
    seeds and sampling parameters), so within one collect call they are generated once per
    (policy, chunk) and reused: with k PRMs this saves k of every k + 1 sampling passes. Step
    calls (beam search, DVTS) differ per PRM after the first round and are not memoized.
    The memo lives as long as the policy is loaded (units run grouped by policy): at most one
    N_max sample set per chunk, e.g. about 10 MB for 500 tiny-world problems at N = 64.
    """

    def __init__(self, policy):
        self.policy = policy
        self._memo: dict = {}

    def __getattr__(self, name):  # name, family, tokenizer, build_prompt ... of the real policy
        return getattr(self.policy, name)

    def generate(self, prompts, params, seeds):
        if params.stop:  # one step of a tree search
            return self.policy.generate(prompts, params, seeds)
        key = (tuple(prompts), params, tuple(seeds))
        if key not in self._memo:
            self._memo[key] = self.policy.generate(prompts, params, seeds)
        return self._memo[key]


def _run_units(cfg: GridConfig, todo: list[Unit], by_id: dict, positions: dict, out_dir: Path, progress: bool,
               total: int, done: int, workers: int) -> None:
    bar = Progress(total=total, initial=done, desc=f"collect {Path(cfg.out).name}", enabled=progress)
    quiet = None if progress else _weight_bars(False)  # workers keep them off themselves (pool._init)
    try:
        jobs = groups(todo)
        if workers > 1 and len(jobs) > 1:
            # each job carries only its own dataset's problems to its worker (a group has one dataset)
            jobs = [(cfg, units, {units[0].dataset: by_id[units[0].dataset]},
                     {units[0].dataset: positions[units[0].dataset]}, out_dir) for units in jobs]
            run_parallel(_run_group, jobs, min(workers, len(jobs)), study_threads(),
                         grid_id=(os.getpid(), next(_GRIDS)), on_unit=bar.update)
        else:
            with torch_threads():
                _run_group(cfg, todo, by_id, positions, out_dir, on_unit=bar.update)
    finally:
        bar.close()
        if quiet is not None:
            _weight_bars(quiet)


def _weight_bars(on: bool) -> bool | None:
    """Turn transformers' weight-loading bars on or off; returns whether they were on (None without
    transformers). --no-progress means no bar at all, not only the grid's own."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return None
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar() if on else hf_logging.disable_progress_bar()
    return was


_GRIDS = itertools.count()


def _run_group(cfg: GridConfig, todo: list[Unit], by_id: dict, positions: dict, out_dir: Path, *,
               on_unit: Callable[[int, int], None], models: dict | None = None) -> None:
    """Run units and write their chunk files; ``on_unit(problems, generated tokens)`` after each.
    ``models``: loaded models to reuse and add to (a worker's); None loads each model when needed
    and frees it after."""
    def load(kind: str, name: str):
        if models is None:
            return _load_model(cfg, kind, name)
        if (kind, name) not in models:
            models[kind, name] = _load_model(cfg, kind, name)
        return models[kind, name]

    # Execution order groups units by model pair so each pair is loaded once (table order is
    # fixed by merge, not by this order).
    pairs: dict[tuple[str, str], list[Unit]] = {}
    for u in todo:
        pairs.setdefault((u.policy, u.prm), []).append(u)
    policy_name, policy = None, None
    for (pol_name, prm_name), units in sorted(pairs.items(), key=lambda kv: (cfg.policies.index(kv[0][0]),
                                                                              kv[0][1] != "", kv[0][1])):
        if pol_name != policy_name:
            policy = None  # free the previous policy before loading the next
            policy = _SampleMemo(load("policy", pol_name))
            policy_name = pol_name
        prm = load("prm", prm_name) if prm_name else None
        for u in units:
            problems = [by_id[u.dataset][pid] for pid in u.problem_ids]
            t0 = time.perf_counter()
            search = policy_search(cfg, u.policy)
            result = run_method(u.method, policy, prm, problems, u.n_run, u.seed, search)
            wall = time.perf_counter() - t0
            results = [derive(result, n, search) if n != u.n_run else result for n in u.budgets]
            cands, runs = unit_frames(u, results, problems, positions[u.dataset], wall)
            write_unit(u, cands, runs, out_dir / "chunks")
            on_unit(len(problems), result.policy_tokens)
        prm = None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "merge":
        ap = argparse.ArgumentParser(prog="python -m tts_utils.collect merge",
                                     description="join finished chunk files into the final tables")
        ap.add_argument("dirs", nargs="+", help="output dir (tables are written here), then extra shard dirs")
        args = ap.parse_args(argv[1:])
        try:
            paths = merge(*args.dirs)
        except (OSError, ValueError) as e:  # missing or damaged chunks, a full disk: one line
            print(f"error: {e}", file=sys.stderr)
            return 2
        print("\n".join(str(p) for p in paths.values()))
        return 0
    ap = argparse.ArgumentParser(prog="python -m tts_utils.collect",
                                 description="Run a grid of searches (dataset x policy x PRM x method x N x seed) "
                                             "into parquet tables; the config is described in tts_utils/collect.")
    ap.add_argument("config", help="grid config (YAML)")
    ap.add_argument("--shard", help="run part i of n (0-based), e.g. 0/4")
    ap.add_argument("--out", help="output directory (overrides the config's `out`)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--workers", type=int, default=None,
                    help="processes running work units in parallel (default: TTS_WORKERS, else 1)")
    args = ap.parse_args(argv)
    try:
        paths = collect(args.config, shard=args.shard, out=args.out, progress=not args.no_progress,
                        workers=args.workers)
    except (ConfigError, OSError) as e:  # a full disk or unwritable --out too: one line, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    if paths is None:
        print("shard done; other shards are still missing (merge when they finish)")
    else:
        print("\n".join(str(p) for p in paths.values()))
    return 0

"""Run a grid of searches (dataset x policy x PRM x method x N x seed) into parquet tables.

Cached, resumable and shardable:

* the grid is cut into **work units** (dataset, policy, PRM, method, N_run, seed, chunk of
  problems). Each unit has a key: a hash of everything that changes its result (model names
  and a fingerprint of their local weights, the chunk's problem content, the method and its
  parameters, sampling parameters, seed, ``CODE_VERSION``). A finished unit is a pair of files
  ``OUT/chunks/<key>.{candidates,runs}.parquet``, each written to a temporary name and
  ``os.replace``d, so a crash or SIGKILL at any moment leaves either a whole file or none;
  a rerun skips units whose files exist and redoes the rest, and being deterministic it writes
  the same rows. Rerunning a finished grid generates nothing and loads no model.
* ``pass1_samples`` is the difficulty sample set, not a TTS method: ``pass1_samples`` plain
  samples per (policy, problem) at T = 0.7 with the seed ``pass1_seed`` and a seed namespace of
  their own, so that pass@1 (``analysis.pass1_by_problem``) is estimated from samples that no
  method's candidates reuse. Its rows have method "pass1_samples", prm "", n = pass1_samples and
  seed = pass1_seed; ``analysis.vote_accuracy`` leaves them out.
* BoN, majority and DVTS run once at the largest N of the grid and every smaller N is derived
  from it at merge time (``tts_utils.search.derive``); beam search runs once per N; CoT once
  (N = 1). CoT and majority use no PRM: they run once per policy, with ``prm == ""``.
* ``--shard i/n`` (0 <= i < n) runs only the chunks with ``chunk_index % n == i`` (SLURM array:
  ``--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``), all shards writing into one OUT
  (or several, merged later). ``merge`` joins the chunk files into the final tables
  ``OUT/candidates.parquet`` and ``OUT/runs.parquet`` in a fixed order; an unsharded run
  merges itself at the end, a shard merges when it finds every chunk done.
* models are loaded once per (policy, PRM) pair, only if some unit of the pair is not cached.

Tables (row order: dataset, policy, prm, method, n, seed in config order, then problem order,
then candidate index):

* candidates: one row per candidate: dataset, policy, prm, method, n, seed, problem_id,
  problem_index, level, candidate, subtree, lineage, steps, rewards, step_tokens, num_steps,
  policy_tokens (of its own steps), prm_tokens (its final scoring pass), finish_reason,
  answer, correct;
* runs: one row per (dataset, policy, prm, method, n, seed, problem): problem_index, level,
  gold, num_candidates, policy_tokens (everything generated for the problem, pruned beams
  included), prm_tokens (everything the PRM processed, re-scoring included), n_run (the run it
  was derived from), wall_s. ``wall_s`` is the unit's wall time divided among its problems
  (searches are batched across problems, so per-problem time is not measured) and scaled by
  N / N_run for derived rows; it is the only column that differs between two runs of a grid.

Config (YAML file or dict; unknown keys are errors)::

    out: results/tiny_cpu          # output directory (--out overrides)
    datasets: [tinymath500]        # names of tts_utils.data.DATASETS or paths to .jsonl files
    limit: 100                     # optional: first `limit` problems of each dataset
    policies: [tiny-policy-2m]     # registry names (tts_utils.models)
    prms: [tiny-prm-shepherd]      # registry names; may be empty if only cot/majority run
    methods: [cot, majority, best_of_n, beam_search, dvts, pass1_samples]
    n: [4, 16, 64]                 # budgets (positive ints; multiples of beam_width for beam/DVTS)
    seeds: [0]
    pass1_samples: 16              # samples per problem of the difficulty set (method pass1_samples)
    pass1_seed: 1000003            # its own run seed (and seed namespace): never a TTS candidate
    beam_width: 4                  # M
    max_depth: 40
    temperature: 0.7               # every TTS method; CoT is always greedy
    top_p: 1.0
    max_step_tokens: 2048
    max_solution_tokens: 8192
    finished_paths: ranked         # beam search / DVTS: "ranked" (the paper's code) or "kept"
    chunk_size: 64                 # problems per work unit (the unit of caching and resume)
    backend: transformers          # policy backend: transformers | vllm | openai
    backend_options: {}            # keyword arguments of policy.load_policy (e.g. device, base_url)
    loader: null                   # optional "module:function" (kind, name) -> model, replacing
                                   # the registry (test doubles; custom servers); a function
                                   # attribute `fingerprint(kind, name) -> str` is used if present

CLI::

    python -m tts_utils.collect CONFIG.yaml [--shard i/n] [--out DIR] [--no-progress]
    python -m tts_utils.collect merge DIR [MORE_DIRS ...]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd

from tts_utils.data import DataError, Problem, load_dataset
from tts_utils.search import METHODS, USES_PRM, SearchConfig, SearchResult, run_method, validate_budget
from tts_utils.search.pass1_samples import DEFAULT_SEED as PASS1_SEED
from tts_utils.search.pass1_samples import MIN_SAMPLES as PASS1_MIN_SAMPLES
from tts_utils.threads import torch_threads

# Bump when a change to the search or grading code changes results: it invalidates the cache.
CODE_VERSION = "collect-2"  # 2: beam search ranks finished paths with live ones (finished_paths)

CANDIDATE_COLUMNS = ["dataset", "policy", "prm", "method", "n", "seed", "problem_id", "problem_index", "level",
                     "candidate", "subtree", "lineage", "steps", "rewards", "step_tokens", "num_steps",
                     "policy_tokens", "prm_tokens", "finish_reason", "answer", "correct"]
RUN_COLUMNS = ["dataset", "policy", "prm", "method", "n", "seed", "problem_id", "problem_index", "level", "gold",
               "num_candidates", "policy_tokens", "prm_tokens", "n_run", "wall_s"]

_SEARCH_KEYS = ("beam_width", "max_depth", "temperature", "top_p", "max_step_tokens", "max_solution_tokens",
                "finished_paths")
_KEYS = {"out", "datasets", "limit", "policies", "prms", "methods", "n", "seeds", "chunk_size", "backend",
         "backend_options", "loader", "pass1_samples", "pass1_seed", *_SEARCH_KEYS}


class ConfigError(ValueError):
    """A grid config that cannot run; the message names the field."""


@dataclass
class GridConfig:
    datasets: list[str]
    policies: list[str]
    prms: list[str]
    methods: list[str]
    n: list[int]
    seeds: list[int]
    search: SearchConfig
    out: str | None = None
    limit: int | None = None
    chunk_size: int = 64
    backend: str = "transformers"
    backend_options: dict = field(default_factory=dict)
    loader: str | None = None
    pass1_samples: int = PASS1_MIN_SAMPLES
    pass1_seed: int = PASS1_SEED


@dataclass(frozen=True)
class Unit:
    """One cacheable piece of work: one method run on one chunk of problems."""

    dataset: str
    policy: str
    prm: str          # "" for methods without a PRM
    method: str
    n_run: int        # the budget actually run
    budgets: tuple[int, ...]  # the budgets written from it (derived below n_run)
    seed: int
    chunk: int
    problem_ids: tuple[str, ...]
    key: str

    @property
    def files(self) -> tuple[str, str]:
        return f"{self.key}.candidates.parquet", f"{self.key}.runs.parquet"


# ----------------------------------------------------------------------------------- validation

def _as_list(raw: dict, name: str, kind: type, required: bool = True) -> list:
    if name not in raw or raw[name] is None:
        if required:
            raise ConfigError(f"config field {name!r} is missing")
        return []
    v = raw[name]
    items = v if isinstance(v, list | tuple) else [v]
    for i, x in enumerate(items):
        if kind is int and (isinstance(x, bool) or not isinstance(x, int)):
            raise ConfigError(f"config field {name!r}[{i}] must be an integer, got {x!r}")
        if kind is str and not isinstance(x, str):
            raise ConfigError(f"config field {name!r}[{i}] must be a string, got {x!r}")
    if len(set(items)) != len(items):
        raise ConfigError(f"config field {name!r} has duplicates: {items}")
    return list(items)


def _positive_int(raw: dict, name: str, default):
    v = raw.get(name, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ConfigError(f"config field {name!r} must be a positive integer, got {v!r}")
    return v


def parse_config(config: dict | str | Path) -> GridConfig:
    """Read and check a grid config (dict or YAML path); ConfigError names the bad field."""
    if isinstance(config, str | Path):
        import yaml

        path = Path(config)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        raw = yaml.safe_load(path.read_text())
    else:
        raw = dict(config)
    if not isinstance(raw, dict):
        raise ConfigError("a grid config must be a mapping of fields")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigError(f"unknown config field(s) {unknown}; known: {sorted(_KEYS)}")
    methods = _as_list(raw, "methods", str)
    for i, m in enumerate(methods):
        if m not in METHODS:
            raise ConfigError(f"config field 'methods'[{i}]: unknown method {m!r}; known: {', '.join(METHODS)}")
    try:
        search = SearchConfig(**{k: raw[k] for k in _SEARCH_KEYS if k in raw})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"config: {e}") from None
    needs_n = [m for m in methods if m not in ("cot", "pass1_samples")]
    budgets = _as_list(raw, "n", int, required=bool(needs_n))
    for m in needs_n:
        for n in budgets:
            try:
                validate_budget(m, n, search)
            except ValueError as e:
                raise ConfigError(f"config field 'n': {e}") from None
    prms = _as_list(raw, "prms", str, required=False)
    if any(USES_PRM[m] for m in methods) and not prms:
        raise ConfigError("config field 'prms' is empty but methods "
                          f"{[m for m in methods if USES_PRM[m]]} need a PRM")
    backend_options = raw.get("backend_options") or {}
    if not isinstance(backend_options, dict):
        raise ConfigError("config field 'backend_options' must be a mapping")
    loader = raw.get("loader")
    if loader is not None and (not isinstance(loader, str) or ":" not in loader):
        raise ConfigError(f"config field 'loader' must be 'module:function', got {loader!r}")
    if not isinstance(raw.get("backend", "transformers"), str):
        raise ConfigError("config field 'backend' must be a string")
    pass1_n = _positive_int(raw, "pass1_samples", PASS1_MIN_SAMPLES)
    if pass1_n < PASS1_MIN_SAMPLES:
        raise ConfigError(f"config field 'pass1_samples' must be at least {PASS1_MIN_SAMPLES} (pass@1 of a "
                          f"problem needs that many samples to bin it), got {pass1_n}")
    pass1_seed = raw.get("pass1_seed", PASS1_SEED)
    if isinstance(pass1_seed, bool) or not isinstance(pass1_seed, int) or pass1_seed < 0:
        raise ConfigError(f"config field 'pass1_seed' must be a non-negative integer, got {pass1_seed!r}")
    out = raw.get("out")
    if out is not None and not isinstance(out, str | Path):
        raise ConfigError(f"config field 'out' must be a path, got {out!r}")
    return GridConfig(
        datasets=_as_list(raw, "datasets", str), policies=_as_list(raw, "policies", str), prms=prms,
        methods=methods, n=sorted(budgets), seeds=_as_list(raw, "seeds", int), search=search,
        out=None if out is None else str(out), limit=_positive_int(raw, "limit", None),
        chunk_size=_positive_int(raw, "chunk_size", 64), backend=raw.get("backend", "transformers"),
        backend_options=backend_options, loader=loader, pass1_samples=pass1_n, pass1_seed=pass1_seed)


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """"i/n" with 0 <= i < n, or None for the whole grid."""
    if spec is None:
        return None
    try:
        i, n = (int(x) for x in str(spec).split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like 'i/n' (e.g. 0/4), got {spec!r}") from None
    if n <= 0 or not 0 <= i < n:
        raise ConfigError(f"--shard {spec!r}: need 0 <= i < n (shards are numbered from 0)")
    return i, n


def _check_out(out: str | Path | None) -> Path:
    if out is None:
        raise ConfigError("config field 'out' is missing (or pass --out DIR)")
    path = Path(out)
    try:
        (path / "chunks").mkdir(parents=True, exist_ok=True)
        probe = path / "chunks" / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"config field 'out': cannot create or write {path}: {e.strerror or e}") from None
    return path


# ------------------------------------------------------------------------------- models and keys

def _import(spec: str):
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"config field 'loader': cannot import {spec!r}: {e}") from None


def _check_models(cfg: GridConfig) -> None:
    if cfg.loader is not None:
        if not callable(_import(cfg.loader)):
            raise ConfigError(f"config field 'loader': {cfg.loader!r} is not callable")
        return
    from tts_utils.models import get_model

    for field_name, kind, names in (("policies", "policy", cfg.policies), ("prms", "prm", cfg.prms)):
        for i, name in enumerate(names):
            try:
                get_model(name, kind=kind)
            except (KeyError, ValueError) as e:
                msg = e.args[0] if e.args else str(e)
                raise ConfigError(f"config field {field_name!r}[{i}]: {msg}") from None


def _file_digest(path: Path, h) -> None:
    """Whole content of small files; size + first and last 16 MiB of big ones (weights of 7B+
    models would take minutes to hash, and a changed checkpoint changes its size or its ends)."""
    size = path.stat().st_size
    h.update(f"{path.name}:{size}".encode())
    chunk = 16 << 20
    with path.open("rb") as f:
        if size <= 4 * chunk:
            h.update(f.read())
        else:
            h.update(f.read(chunk))
            f.seek(size - chunk)
            h.update(f.read(chunk))


def model_fingerprint(cfg: GridConfig, kind: str, name: str) -> str:
    """What identifies a model's weights: file digests for local weights, the hub id otherwise."""
    if cfg.loader is not None:
        fn = _import(cfg.loader)
        custom = getattr(fn, "fingerprint", None)
        return f"{cfg.loader}|{name}|{custom(kind, name) if custom else ''}"
    from tts_utils.models import get_model

    spec = get_model(name, kind=kind)
    desc = f"{spec.name}|{spec.family}|{spec.prm_format}|"
    local = spec.local_path() if not Path(spec.source).exists() else Path(spec.source)
    if local.is_dir():
        h = hashlib.sha256(desc.encode())
        for f in sorted(p for p in local.rglob("*") if p.is_file()):
            _file_digest(f, h)
        return h.hexdigest()
    # a hub id: revisions are not pinned, so a new upload on the hub is not detected
    return desc + "hub:" + spec.source


def _problems_digest(problems: list[Problem]) -> str:
    h = hashlib.sha256()
    for p in problems:
        h.update(json.dumps([p.id, p.problem, p.answer], ensure_ascii=False).encode())
    return h.hexdigest()


def policy_search(cfg: GridConfig, policy: str) -> SearchConfig:
    """The grid's search settings, with the sampling the registry gives this policy (the R1
    distills' T = 0.6, top-p 0.95, 32k tokens) in place of the grid's."""
    from tts_utils.models import registry

    spec = registry().get(policy)
    return replace(cfg.search, **dict(spec.sampling)) if spec is not None and spec.sampling else cfg.search


def plan(cfg: GridConfig, data: dict[str, list[Problem]], fingerprints: dict[tuple[str, str], str]) -> list[Unit]:
    """Every work unit of the grid, in the final table order."""
    units = []
    for ds in cfg.datasets:
        problems = data[ds]
        chunks = [problems[i:i + cfg.chunk_size] for i in range(0, len(problems), cfg.chunk_size)]
        for pol in cfg.policies:
            search = asdict(policy_search(cfg, pol))
            for prm in [""] + cfg.prms:
                for method in cfg.methods:
                    if USES_PRM[method] != bool(prm):
                        continue
                    seeds = cfg.seeds
                    if method == "cot":
                        runs = [(1, (1,))]
                    elif method == "pass1_samples":
                        runs, seeds = [(cfg.pass1_samples, (cfg.pass1_samples,))], [cfg.pass1_seed]
                    elif method == "beam_search":
                        runs = [(n, (n,)) for n in cfg.n]
                    else:  # one run at N_max, smaller N derived
                        runs = [(cfg.n[-1], tuple(cfg.n))]
                    for n_run, budgets in runs:
                        for seed in seeds:
                            for c, chunk in enumerate(chunks):
                                ident = {
                                    "code": CODE_VERSION, "dataset": ds, "problems": _problems_digest(chunk),
                                    "policy": pol, "policy_fp": fingerprints["policy", pol],
                                    "prm": prm, "prm_fp": fingerprints["prm", prm] if prm else "",
                                    "method": method, "n_run": n_run, "seed": seed, "search": search,
                                    "backend": cfg.backend,
                                }
                                key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]
                                units.append(Unit(ds, pol, prm, method, n_run, budgets, seed, c,
                                                  tuple(p.id for p in chunk), key))
    return units


# ---------------------------------------------------------------------------------------- tables

def _atomic_parquet(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    df.to_parquet(tmp, index=False)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _unit_frames(unit: Unit, result: SearchResult, problems: list[Problem], index: dict[str, int],
                 wall_s: float):
    base = {"dataset": unit.dataset, "policy": unit.policy, "prm": unit.prm, "method": unit.method,
            "seed": unit.seed}
    level = {p.id: p.level for p in problems}
    cands = pd.DataFrame([{
        **base, "n": unit.n_run, "problem_id": c.problem_id, "problem_index": index[c.problem_id],
        "level": level[c.problem_id], "candidate": c.index, "subtree": c.subtree, "lineage": c.lineage,
        "steps": c.steps, "rewards": c.rewards, "step_tokens": c.step_tokens, "num_steps": len(c.steps),
        "policy_tokens": c.policy_tokens, "prm_tokens": c.prm_tokens, "finish_reason": c.finish_reason,
        "answer": c.answer, "correct": bool(c.correct)} for c in result.candidates], columns=CANDIDATE_COLUMNS)
    per_problem = wall_s / max(len(problems), 1)
    gold = {p.id: p.answer for p in problems}
    runs = pd.DataFrame([{
        **base, "n": unit.n_run, "problem_id": r.problem_id, "problem_index": index[r.problem_id],
        "level": level[r.problem_id], "gold": gold[r.problem_id],
        "group_policy_tokens": r.group_policy_tokens, "group_prm_tokens": r.group_prm_tokens,
        "wall_s": per_problem} for r in result.runs])
    return cands, runs


def _derive_frames(unit: Unit, cands: pd.DataFrame, runs: pd.DataFrame, n: int, group: int):
    """Rows of budget n from the unit's N_run rows: the first n/group groups of each problem."""
    keep = n // group
    c = cands[cands["subtree"] < keep].copy()
    c["n"] = n
    r = runs.copy()
    r["n"] = n
    r["num_candidates"] = c.groupby("problem_id").size().reindex(r["problem_id"]).fillna(0).astype(int).values
    r["policy_tokens"] = [int(sum(x[:keep])) for x in r["group_policy_tokens"]]
    r["prm_tokens"] = [int(sum(x[:keep])) for x in r["group_prm_tokens"]]
    r["n_run"] = unit.n_run
    r["wall_s"] = r["wall_s"] * n / unit.n_run
    return c.reset_index(drop=True), r[RUN_COLUMNS]


def _manifest_path(out: Path) -> Path:
    return out / "manifest.json"


def _seed_order(cfg: GridConfig) -> list[int]:
    return cfg.seeds + ([cfg.pass1_seed] if cfg.pass1_seed not in cfg.seeds else [])


def _write_manifest(out: Path, cfg: GridConfig, units: list[Unit]) -> None:
    doc = {"code_version": CODE_VERSION, "beam_width": cfg.search.beam_width,
           "order": {"dataset": cfg.datasets, "policy": cfg.policies, "prm": [""] + cfg.prms,
                     "method": cfg.methods, "seed": _seed_order(cfg)},
           "units": [asdict(u) for u in units]}
    path = _manifest_path(out)
    tmp = path.with_name(f"manifest.json.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)


def _find_chunk(name: str, dirs: list[Path]) -> Path | None:
    for d in dirs:
        p = d / "chunks" / name
        if p.exists():
            return p
    return None


def merge(out: str | Path, *more: str | Path) -> dict[str, Path]:
    """Join the chunk files of the grid in ``out`` (and of shards copied elsewhere, ``more``) into
    ``out/candidates.parquet`` and ``out/runs.parquet``. Errors if any chunk is missing."""
    out = Path(out)
    dirs = [out, *map(Path, more)]
    mpath = _manifest_path(out)
    if not mpath.exists():
        raise FileNotFoundError(f"{mpath} not found: run the grid (python -m tts_utils.collect CONFIG) first")
    doc = json.loads(mpath.read_text())
    units = [Unit(**{**u, "budgets": tuple(u["budgets"]), "problem_ids": tuple(u["problem_ids"])})
             for u in doc["units"]]
    missing = [u for u in units if any(_find_chunk(f, dirs) is None for f in u.files)]
    if missing:
        example = missing[0]
        raise FileNotFoundError(
            f"{len(missing)} of {len(units)} work units are not done (e.g. {example.method} N={example.n_run} "
            f"seed={example.seed} chunk {example.chunk} of {example.dataset}); run the missing shards first")
    order = doc["order"]
    rank = {k: {v: i for i, v in enumerate(vals)} for k, vals in order.items()}
    pieces = []
    for u in units:
        cands = pd.read_parquet(_find_chunk(u.files[0], dirs))
        runs = pd.read_parquet(_find_chunk(u.files[1], dirs))
        group = doc["beam_width"] if u.method == "dvts" else 1
        for n in u.budgets:
            c, r = _derive_frames(u, cands, runs, n, group)
            sort_key = (rank["dataset"][u.dataset], rank["policy"][u.policy], rank["prm"][u.prm],
                        rank["method"][u.method], n, rank["seed"][u.seed], u.chunk)
            pieces.append((sort_key, c, r))
    pieces.sort(key=lambda x: x[0])
    cand_df = pd.concat([c for _, c, _ in pieces], ignore_index=True) if pieces else \
        pd.DataFrame(columns=CANDIDATE_COLUMNS)
    runs_df = pd.concat([r for _, _, r in pieces], ignore_index=True) if pieces else \
        pd.DataFrame(columns=RUN_COLUMNS)
    paths = {"candidates": out / "candidates.parquet", "runs": out / "runs.parquet"}
    _atomic_parquet(cand_df, paths["candidates"])
    _atomic_parquet(runs_df, paths["runs"])
    return paths


def load_results(out: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(candidates, runs) tables of a finished grid, for notebooks."""
    out = Path(out)
    paths = [out / "candidates.parquet", out / "runs.parquet"]
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"{p} not found: run the grid, or `python -m tts_utils.collect merge {out}`")
    return pd.read_parquet(paths[0]), pd.read_parquet(paths[1])


# ------------------------------------------------------------------------------------------ run

def _load_model(cfg: GridConfig, kind: str, name: str):
    if cfg.loader is not None:
        return _import(cfg.loader)(kind, name)
    if kind == "policy":
        from tts_utils.policy import load_policy

        return load_policy(name, backend=cfg.backend, **cfg.backend_options)
    from tts_utils.prm import load_prm

    return load_prm(name)


def collect(config: dict | str | Path, shard: str | None = None, out: str | Path | None = None,
            progress: bool = True) -> dict[str, Path] | None:
    """Run (the missing part of) a grid; returns the final table paths, or None when this shard
    finished its part but other shards have not."""
    cfg = parse_config(config)
    if out is not None:
        cfg.out = str(out)
    shard_spec = parse_shard(shard)
    out_dir = _check_out(cfg.out)
    _check_models(cfg)
    data = {}
    for i, ds in enumerate(cfg.datasets):
        try:
            data[ds] = load_dataset(ds, limit=cfg.limit)
        except DataError as e:
            raise ConfigError(f"config field 'datasets'[{i}]: {e}") from None
        if not data[ds]:
            raise ConfigError(f"config field 'datasets'[{i}]: {ds!r} has no problems")
    fingerprints = {("policy", p): model_fingerprint(cfg, "policy", p) for p in cfg.policies}
    fingerprints.update({("prm", p): model_fingerprint(cfg, "prm", p) for p in cfg.prms})
    units = plan(cfg, data, fingerprints)
    _write_manifest(out_dir, cfg, units)

    mine = [u for u in units if shard_spec is None or u.chunk % shard_spec[1] == shard_spec[0]]
    todo = [u for u in mine if any(_find_chunk(f, [out_dir]) is None for f in u.files)]
    by_id = {ds: {p.id: p for p in probs} for ds, probs in data.items()}
    positions = {ds: {p.id: i for i, p in enumerate(probs)} for ds, probs in data.items()}
    with torch_threads():  # a fixed thread count (TTS_THREADS): see tts_utils.threads
        _run_units(cfg, todo, by_id, positions, out_dir, progress, total=sum(len(u.problem_ids) for u in mine),
                   done=sum(len(u.problem_ids) for u in mine if u not in todo))
    try:
        return merge(out_dir)
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
               total: int, done: int) -> None:
    from tts_utils.progress import Progress

    bar = Progress(total=total, initial=done, desc=f"collect {Path(cfg.out).name}", enabled=progress)
    # Execution order groups units by model pair so each pair is loaded once (table order is
    # fixed by merge, not by this order).
    pairs: dict[tuple[str, str], list[Unit]] = {}
    for u in todo:
        pairs.setdefault((u.policy, u.prm), []).append(u)
    policy_name, policy = None, None
    try:
        for (pol_name, prm_name), units in sorted(pairs.items(), key=lambda kv: (cfg.policies.index(kv[0][0]),
                                                                                  kv[0][1] != "", kv[0][1])):
            if pol_name != policy_name:
                policy = None  # free the previous policy before loading the next
                policy = _SampleMemo(_load_model(cfg, "policy", pol_name))
                policy_name = pol_name
            prm = _load_model(cfg, "prm", prm_name) if prm_name else None
            for u in units:
                problems = [by_id[u.dataset][pid] for pid in u.problem_ids]
                t0 = time.perf_counter()
                result = run_method(u.method, policy, prm, problems, u.n_run, u.seed,
                                    policy_search(cfg, u.policy))
                wall = time.perf_counter() - t0
                cands, runs = _unit_frames(u, result, problems, positions[u.dataset], wall)
                # runs file first: a unit counts as done only when both files exist
                _atomic_parquet(runs, out_dir / "chunks" / u.files[1])
                _atomic_parquet(cands, out_dir / "chunks" / u.files[0])
                bar.update(len(problems), result.policy_tokens)
            prm = None
    finally:
        bar.close()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "merge":
        ap = argparse.ArgumentParser(prog="python -m tts_utils.collect merge",
                                     description="join finished chunk files into the final tables")
        ap.add_argument("dirs", nargs="+", help="output dir (tables are written here), then extra shard dirs")
        args = ap.parse_args(argv[1:])
        try:
            paths = merge(*args.dirs)
        except FileNotFoundError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print("\n".join(str(p) for p in paths.values()))
        return 0
    ap = argparse.ArgumentParser(prog="python -m tts_utils.collect", description=__doc__.split("\n")[0])
    ap.add_argument("config", help="grid config (YAML)")
    ap.add_argument("--shard", help="run part i of n (0-based), e.g. 0/4")
    ap.add_argument("--out", help="output directory (overrides the config's `out`)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        paths = collect(args.config, shard=args.shard, out=args.out, progress=not args.no_progress)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if paths is None:
        print("shard done; other shards are still missing (merge when they finish)")
    else:
        print("\n".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

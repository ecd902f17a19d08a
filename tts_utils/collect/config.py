"""A grid config, read and checked before anything runs: every error names the field."""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from tts_utils.search import SearchConfig, get_method, method_names, validate_budget
from tts_utils.search.pass1_samples import DEFAULT_SEED as PASS1_SEED
from tts_utils.search.pass1_samples import MIN_SAMPLES as PASS1_MIN_SAMPLES

_SEARCH_KEYS = ("beam_width", "max_depth", "temperature", "top_p", "max_step_tokens", "max_solution_tokens",
                "finished_paths")
# load_prm's keyword arguments that a grid may set (prm_options), e.g. {device: auto} for a PRM
# spread over several GPUs or {dtype: float32}
PRM_OPTIONS = ("device", "dtype", "batch_size")
_KEYS = {"out", "datasets", "limit", "policies", "prms", "methods", "n", "seeds", "chunk_size", "backend",
         "backend_options", "prm_options", "loader", "pass1_samples", "pass1_seed", *_SEARCH_KEYS}


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
    prm_options: dict = field(default_factory=dict)
    loader: str | None = None
    pass1_samples: int = PASS1_MIN_SAMPLES
    pass1_seed: int = PASS1_SEED


# ----------------------------------------------------------------------------------- validation

def _as_list(raw: dict, name: str, kind: type, required: bool = True) -> list:
    """A list field (a single value counts as a list of one); a required one must not be empty:
    an empty grid would "succeed" with empty tables."""
    if name not in raw or raw[name] is None:
        if required:
            raise ConfigError(f"config field {name!r} is missing")
        return []
    v = raw[name]
    items = v if isinstance(v, list | tuple) else [v]
    if required and not items:
        raise ConfigError(f"config field {name!r} is empty")
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
        if m not in method_names():
            raise ConfigError(f"config field 'methods'[{i}]: unknown method {m!r}; known: {', '.join(method_names())}")
    try:
        search = SearchConfig(**{k: raw[k] for k in _SEARCH_KEYS if k in raw})
    except (TypeError, ValueError) as e:
        # SearchConfig names the field as "SearchConfig.<name>"; a grid config calls it a config field
        raise ConfigError(re.sub(r"^SearchConfig\.(\w+)", r"config field '\1'", str(e))) from None
    needs_n = [m for m in methods if get_method(m).budgets == "grid"]
    budgets = _as_list(raw, "n", int, required=bool(needs_n))
    for m in needs_n:
        for n in budgets:
            try:
                validate_budget(m, n, search)
            except ValueError as e:
                raise ConfigError(f"config field 'n': {e}") from None
    prms = _as_list(raw, "prms", str, required=False)
    if any(get_method(m).uses_prm for m in methods) and not prms:
        raise ConfigError("config field 'prms' is empty but methods "
                          f"{[m for m in methods if get_method(m).uses_prm]} need a PRM")
    backend_options = raw.get("backend_options") or {}
    if not isinstance(backend_options, dict):
        raise ConfigError("config field 'backend_options' must be a mapping")
    prm_options = raw.get("prm_options") or {}
    if not isinstance(prm_options, dict):
        raise ConfigError("config field 'prm_options' must be a mapping")
    unknown = set(prm_options) - set(PRM_OPTIONS)
    if unknown:
        raise ConfigError(f"config field 'prm_options': unknown key(s) {sorted(unknown)}; known: {list(PRM_OPTIONS)}")
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
        backend_options=backend_options, prm_options=prm_options, loader=loader, pass1_samples=pass1_n, pass1_seed=pass1_seed)


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


def check_out(out: str | Path | None) -> Path:
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

def import_loader(spec: str):
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"config field 'loader': cannot import {spec!r}: {e}") from None


def check_models(cfg: GridConfig) -> None:
    if cfg.loader is not None:
        if not callable(import_loader(cfg.loader)):
            raise ConfigError(f"config field 'loader': {cfg.loader!r} is not callable")
        return
    from tts_utils.models.catalog import get_model

    for field_name, kind, names in (("policies", "policy", cfg.policies), ("prms", "prm", cfg.prms)):
        for i, name in enumerate(names):
            try:
                get_model(name, kind=kind)
            except (KeyError, ValueError) as e:
                msg = e.args[0] if e.args else str(e)
                raise ConfigError(f"config field {field_name!r}[{i}]: {msg}") from None


def policy_search(cfg: GridConfig, policy: str) -> SearchConfig:
    """The grid's search settings, with the sampling the registry gives this policy (the R1
    distills' T = 0.6, top-p 0.95, 32k tokens) in place of the grid's."""
    from tts_utils.models.catalog import registry

    spec = registry().get(policy)
    return replace(cfg.search, **dict(spec.sampling)) if spec is not None and spec.sampling else cfg.search

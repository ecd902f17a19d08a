"""Shared pieces of the bench: model loading, timing, the machine's description."""

from __future__ import annotations

import importlib
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

POLICIES = ("tiny-policy-xs", "tiny-policy-s", "tiny-policy-m", "tiny-policy-l")
PRMS = ("tiny-prm-shepherd", "tiny-prm-rlhflow-terse", "tiny-prm-rlhflow-verbose", "tiny-prm-skywork",
        "tiny-prm-qwen")
SECTIONS = ("ceiling", "policy", "prm", "search", "grid", "busy")
SEARCH_METHODS = ("best_of_n", "beam_search", "dvts")


class BenchError(RuntimeError):
    """A bench that cannot run as asked (models missing, ...); the message says what to do."""



def median_run(fn: Callable[[], object], repeats: int, warmup: int = 0) -> tuple[float, object]:
    """(median wall seconds over ``repeats`` calls, the last call's result)."""
    for _ in range(warmup):
        fn()
    times, out = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def model_params(obj) -> int | None:
    model = getattr(obj, "model", None)
    return n_params(model) if isinstance(model, torch.nn.Module) else None


def model_dtype(obj) -> torch.dtype | None:
    """The dtype of a local model's weights (``obj.model``), None for anything else."""
    model = getattr(obj, "model", None)
    return next(model.parameters()).dtype if isinstance(model, torch.nn.Module) else None


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def share(tokens_per_s: float, params: int | None, ceiling_flops: float) -> float | None:
    """Achieved parameter FLOPs (2P a token) over the ceiling."""
    if not params or not ceiling_flops:
        return None
    return tokens_per_s * 2 * params / ceiling_flops


def spread(problems, k: int):
    """``k`` problems spread evenly over the set (tiny-world sets are ordered by level)."""
    if k >= len(problems):
        return list(problems)
    return [problems[i * len(problems) // k] for i in range(k)]


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M %Z")}


def check_registered(kind: str, name: str) -> None:
    """BenchError (saying what to do) unless ``name`` is a registered model of ``kind``."""
    from tts_utils.models.catalog import TINY_MANIFEST, registry

    known = registry()
    if name not in known or known[name].kind != kind:
        hint = (f"the tiny world is not built ({TINY_MANIFEST} is missing): run `make tinyworld` first"
                if not TINY_MANIFEST.exists() else
                f"known {kind}s: {', '.join(n for n, s in known.items() if s.kind == kind)}")
        raise BenchError(f"unknown {kind} {name!r}: {hint}")


def registry_loader(kind: str, name: str):
    """Models from the registry; a clear error when the tiny world is not built."""
    check_registered(kind, name)
    if kind == "policy":
        from tts_utils.models.policy import load_policy

        return load_policy(name)
    from tts_utils.models.prm import load_prm

    return load_prm(name)


def resolve_loader(spec: str | None) -> Callable[[str, str], object]:
    if not spec:
        return registry_loader
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def cpu_profile_lengths() -> dict:
    """The cpu profile's step and solution token budgets, so that the bench times the searches
    `make figures` runs (the tiny world's solutions are as long as its text format makes them)."""
    from tts_utils.run_notebooks import load_profile

    d = load_profile("cpu")["defaults"]
    return {"max_step_tokens": int(d["max_step_tokens"]), "max_solution_tokens": int(d["max_solution_tokens"])}

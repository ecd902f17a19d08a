"""Whole-study timings: `make figures` cold and warm (in a fresh copy of the working tree), and a
small slice of it on a quiet and on a busy machine."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tts_utils import paths
from tts_utils.bench.common import cpu_profile_lengths

_NOT_COPIED = (".git", ".venv", "runs", "__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache",
               ".ipynb_checkpoints")


def bench_figures(profile: str = "cpu", cold: bool = True, keep: bool = False,
                  timeout_s: float | None = None) -> list[dict]:
    """Wall time of ``python -m tts_utils.run_notebooks --profile PROFILE``, cold then warm.

    Runs in a fresh copy of the working tree (without runs/, .venv, .git), so cold means no cached
    results, and nothing of this tree (its caches, its figures/) is touched; warm is the second run
    in the same copy. With ``cold=False`` only the warm figure is taken (after one untimed run).
    """
    import tempfile

    cmd = [sys.executable, "-m", "tts_utils.run_notebooks", "--profile", profile]
    tmp = Path(tempfile.mkdtemp(prefix="tts-bench-figures-"))
    copy = tmp / "repo"
    shutil.copytree(paths.REPO_ROOT, copy, ignore=shutil.ignore_patterns(*_NOT_COPIED), symlinks=True)
    rows = []
    try:
        for mode in ("cold", "warm"):
            start = time.perf_counter()
            try:
                proc = subprocess.run(cmd, cwd=copy, capture_output=True, text=True, timeout=timeout_s)
                ok, error = proc.returncode == 0, (proc.stderr or proc.stdout)[-2000:]
            except subprocess.TimeoutExpired:
                ok, error = False, f"stopped after the {timeout_s:.0f} s timeout"
            wall = time.perf_counter() - start
            if cold or mode == "warm" or not ok:
                rows.append({"mode": mode, "profile": profile, "wall_s": wall, "ok": ok,
                             "error": None if ok else error})
            if not ok:
                break
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return rows



def proxy_grid() -> dict:
    """A small slice of the study (`make figures`' work, minutes -> seconds): the largest policy
    with a PRM, Best-of-N and beam search, with the cpu profile's lengths, cold (a fresh output
    directory each run). A function, not a constant: the profile is read when the bench runs, not
    when it is imported."""
    return {"datasets": ["tinymath500"], "policies": ["tiny-policy-l"], "prms": ["tiny-prm-skywork"],
            "methods": ["best_of_n", "beam_search"], "n": [16], "seeds": [0], "limit": 8, "chunk_size": 4,
            **cpu_profile_lengths()}


def _busy_loop() -> subprocess.Popen:
    """Another CPU-bound process on the machine (one core's worth, normal priority)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def bench_busy(configs: tuple[tuple[int, int], ...] = ((1, 1), (2, 1), (1, 2)), grid: dict | None = None,
               timeout_s: float = 1800.0, competitor: Callable[[], subprocess.Popen] = _busy_loop) -> list[dict]:
    """The figures proxy's wall time on a quiet machine and with one other CPU-bound process, for
    each (torch threads, worker processes) in ``configs`` (``TTS_THREADS``, ``TTS_WORKERS``): one
    process on the study's 1 thread, one on 2 threads (torch's default on 2 cores), and 2 worker
    processes of 1 thread (what `make figures` runs on 2 cores). The proxy has two chunks, so two
    workers have a group each. Each run is a fresh ``python -m tts_utils.collect`` process with a
    fresh output directory.
    """
    import json
    import os
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="tts-bench-busy-"))
    rows = []
    try:
        for n, workers in configs:
            for busy in (False, True):
                out = tmp / f"t{n}-w{workers}-{'busy' if busy else 'quiet'}"
                config = tmp / f"{out.name}.json"  # JSON is YAML
                config.write_text(json.dumps({**(grid or proxy_grid()), "out": str(out)}))
                env = {**os.environ, "TTS_THREADS": str(n), "OMP_NUM_THREADS": str(n), "TTS_WORKERS": str(workers)}
                other = competitor() if busy else None
                start = time.perf_counter()
                try:
                    proc = subprocess.run([sys.executable, "-m", "tts_utils.collect", str(config), "--no-progress"],
                                          cwd=paths.REPO_ROOT, env=env, capture_output=True, text=True,
                                          timeout=timeout_s)
                    ok, error = proc.returncode == 0, (proc.stderr or proc.stdout)[-2000:]
                except subprocess.TimeoutExpired:
                    ok, error = False, f"stopped after the {timeout_s:.0f} s timeout"
                finally:
                    if other is not None:
                        other.kill()
                        other.wait()
                rows.append({"threads": n, "workers": workers, "busy": busy, "wall_s": time.perf_counter() - start, "ok": ok,
                             "error": None if ok else error})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows

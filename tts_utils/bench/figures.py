"""Whole-study timings: `make figures` cold and warm, in a fresh copy of the working tree."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from tts_utils import paths

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


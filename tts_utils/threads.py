"""How many threads torch uses in the study's processes.

torch starts one OpenMP thread per core. For the tiny world's small tensors that buys little, and
on a machine where another process keeps a core busy those threads spin waiting for each other:
4-5x slower on 2 cores (``make bench`` measures it, "busy machine"). So the study computes on a
fixed number of threads, ``TTS_THREADS`` (default 1), and uses more cores with more processes:
``TTS_WORKERS`` worker processes run a grid's work units (tts_utils.collect.pool; `make figures`
starts one per ``TTS_THREADS`` cores). Fixed also means reproducible: the thread count sets the
order of float reductions, so another count can move a score in its last bits.
"""

from __future__ import annotations

import contextlib
import os

ENV = "TTS_THREADS"
WORKERS_ENV = "TTS_WORKERS"


def _positive(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return n


def study_threads() -> int:
    """The thread count of the study's computations: ``TTS_THREADS`` if set, else 1."""
    return _positive(ENV, 1)


def study_workers() -> int:
    """Worker processes of a grid (``collect``): ``TTS_WORKERS`` if set, else 1. ``make figures``
    sets it to the cores available per ``TTS_THREADS`` (``default_workers``)."""
    return _positive(WORKERS_ENV, 1)


def default_workers() -> int:
    """One worker per ``study_threads()`` cores this process may use."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // study_threads())


@contextlib.contextmanager
def torch_threads(n: int | None = None):
    """Run the block on ``n`` torch threads (default: ``study_threads()``), then restore."""
    import torch

    n = study_threads() if n is None else n
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)

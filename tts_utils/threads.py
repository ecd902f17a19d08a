"""How many threads torch uses in the study's processes.

torch starts one OpenMP thread per core. For the tiny world's small tensors that buys little, and
on a machine where another process keeps a core busy those threads spin waiting for each other:
4-5x slower on 2 cores (``make bench`` measures it, "busy machine"). So the study computes on a
fixed number of threads, ``TTS_THREADS`` (default 1): more cores are better used by more
processes than by more threads. Fixed also means reproducible: the thread count sets the order of
float reductions, so another count can move a score in its last bits.
"""

from __future__ import annotations

import contextlib
import os

ENV = "TTS_THREADS"
DEFAULT = 1


def study_threads() -> int:
    """The thread count of the study's computations: ``TTS_THREADS`` if set, else 1."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return DEFAULT
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{ENV} must be a positive integer, got {raw!r}")
    return n


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

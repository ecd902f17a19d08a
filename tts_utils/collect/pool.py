"""Work units in parallel processes: each on the study's fixed thread count, all cores busy.

The tiny world's models are far too small for torch's threads to pay (and those threads spin on a
busy machine, see tts_utils.threads), so a grid uses the cores by running several groups of work
units at once, each group in a worker process. A group is one (dataset, policy, seed, chunk): all
its methods and PRMs, so Best-of-N's samples are still drawn once and shared by every PRM and
majority voting within it (run.py's sample memo). Results are per unit and seeded, so they do not
depend on which process ran them; each worker writes its units' chunk files as the serial path does.

The pool is started by the first grid that has work for it (spawned processes import torch: a few
seconds) and reused by later grids of the same process, e.g. the other grids of a notebook. A
worker exits when the process that started it dies (SIGKILL, SIGTERM, a notebook kernel that is
shut down), instead of computing on for nobody, parented to init.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import queue as queue_lib
import signal
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

_POOL: tuple[int, ProcessPoolExecutor, object] | None = None
_QUEUE = None          # in a worker: where it reports finished units
_MODELS: dict = {}     # in a worker: models loaded by the current grid, reused across its groups
_GRID: object = None   # in a worker: the grid whose models _MODELS holds


def groups(units: list) -> list[list]:
    """Units split into independent groups: one per (dataset, policy, seed, chunk), in a fixed order."""
    out: dict[tuple, list] = {}
    for u in units:
        out.setdefault((u.dataset, u.policy, u.seed, u.chunk), []).append(u)
    return [out[k] for k in sorted(out)]


def _watch_parent(parent: int, poll_s: float = 0.5) -> None:
    """In a worker: exit as soon as ``parent`` is no longer its parent (it died; the worker was
    reparented). Not prctl's PR_SET_PDEATHSIG: that fires when the *thread* that spawned the
    worker ends, and the pool outlives the thread whose grid first started it."""
    import time

    while os.getppid() == parent:
        time.sleep(poll_s)
    os._exit(1)  # the parent is gone: nobody is left to read what this worker would compute


def _init(q, parent: int) -> None:
    global _QUEUE
    _QUEUE = q
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watch").start()
    # Ctrl-C reaches every process of the terminal's group, and a notebook kernel's shutdown
    # interrupts its group: the parent decides what stops (it shuts the pool down, or dies and the
    # watch above ends the worker), so a worker must not die mid-unit with a KeyboardInterrupt
    # traceback on the terminal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker's stderr is the terminal of `make figures`: keep transformers' per-model loading
    # bars off it (the grid's own bar, in the parent, shows progress).
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _run_group(fn: Callable, grid_id: object, threads: int, args: tuple) -> tuple[int, int]:
    """In a worker: run one group with ``fn(*args, on_unit=..., models=...)`` on ``threads`` threads;
    returns the (problems, tokens) it reported."""
    global _GRID
    from tts_utils.threads import torch_threads

    if grid_id != _GRID:  # another grid (its models may differ): forget the last one's
        _MODELS.clear()
        _GRID = grid_id
    total = [0, 0]

    def report(n: int, tokens: int) -> None:
        total[0] += n
        total[1] += tokens
        _QUEUE.put((grid_id, n, tokens))

    with torch_threads(threads):
        fn(*args, on_unit=report, models=_MODELS)
    return total[0], total[1]


def _pool(workers: int) -> tuple[ProcessPoolExecutor, object]:
    global _POOL
    if _POOL is not None and _POOL[0] != workers:
        shutdown()
    if _POOL is None:
        ctx = multiprocessing.get_context("spawn")  # fork would copy a notebook kernel's threads and sockets
        q = ctx.Queue()
        _POOL = (workers, ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init,
                                             initargs=(q, os.getpid())), q)
    return _POOL[1], _POOL[2]


def shutdown() -> None:
    global _POOL
    if _POOL is not None:
        _POOL[1].shutdown(wait=True, cancel_futures=True)
        _POOL = None


atexit.register(shutdown)


def run_parallel(fn: Callable, jobs: list[tuple], workers: int, threads: int, grid_id: object,
                 on_unit: Callable[[int, int], None]) -> None:
    """Run ``fn(*job, on_unit=..., models=...)`` for every job on ``workers`` processes; ``fn`` is a
    module-level function (it is sent to the workers by name). ``on_unit(problems, tokens)`` is
    called here, in this process, as the workers finish units. The first error is raised here."""
    executor, q = _pool(workers)
    futures = [executor.submit(_run_group, fn, grid_id, threads, job) for job in jobs]
    seen = [0, 0]

    def drain() -> None:
        while True:
            try:
                grid, n, tokens = q.get_nowait()
            except queue_lib.Empty:
                return
            if grid == grid_id:  # a late report of an earlier grid is dropped (it was reconciled)
                seen[0] += n
                seen[1] += tokens
                on_unit(n, tokens)

    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
            drain()
            for f in done:
                f.result()  # raises the worker's error
    except BaseException:
        for f in futures:
            f.cancel()
        if any(f.running() for f in futures):
            shutdown()  # do not leave workers computing a grid that failed or was interrupted
        raise
    drain()
    # Reports still in the queue's pipe: count them from the workers' own totals instead.
    n, tokens = (sum(f.result()[i] for f in futures) - seen[i] for i in (0, 1))
    if n or tokens:
        on_unit(n, tokens)

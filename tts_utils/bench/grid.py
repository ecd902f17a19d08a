"""The grid section: a slice of the cpu profile's own grid, run in this process, its wall time split
into policy prefill, policy decode, PRM scoring, model loading and the rest.

The slice is what `make figures` runs, smaller: the cpu profile's policies, PRMs, methods, token
limits and budgets on the first ``limit`` problems of each of its datasets, cold (a fresh output
directory), one worker process. The split comes from timers put around the functions that do
each part (``phase_timers``), so it shows where a grid's time goes, not what a synthetic batch
could reach.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections import defaultdict

PHASES = ("prefill", "decode", "prm", "load", "rest")
PHASE_LABELS = {"prefill": "policy prefill", "decode": "policy decode", "prm": "PRM scoring",
                "load": "model loading", "rest": "the rest (search bookkeeping, grading, tables)"}


@contextlib.contextmanager
def phase_timers(seconds: dict[str, float]):
    """Add the wall time of the study's own prefill and decode steps, PRM scoring and model loading
    to ``seconds`` while inside; this process only (the grid runs with one worker)."""
    from tts_utils.collect import run as collect_run
    from tts_utils.models import decoder, prm_base

    patched = []

    def timed(owner, name: str, phase) -> None:
        inner = getattr(owner, name)

        def wrapper(*args, **kw):
            start = time.perf_counter()
            try:
                return inner(*args, **kw)
            finally:
                seconds[phase(args)] += time.perf_counter() - start

        patched.append((owner, name, inner))
        setattr(owner, name, wrapper)

    # forward(self, ids [rows, T], ...): T > 1 is a prefill, T == 1 a decode step
    timed(decoder.LlamaFamilyForward, "forward", lambda a: "prefill" if a[1].shape[1] > 1 else "decode")
    timed(prm_base.TransformersPRM, "score", lambda a: "prm")
    timed(collect_run, "_load_model", lambda a: "load")
    try:
        yield
    finally:
        for owner, name, inner in reversed(patched):
            setattr(owner, name, inner)


def grid_configs(limit: int, out: str) -> list[dict]:
    """The cpu profile's grid (its defaults: policies, PRMs, PRM options, token limits) on ``limit``
    problems of tinymath500 at its budgets and of tinyhard30 at its hard-set budgets."""
    from tts_utils.run_notebooks import load_profile
    from tts_utils.study.grid import GRID_METHODS

    d = load_profile("cpu")["defaults"]
    common = {"out": out, "limit": limit, "policies": d["policies"], "prms": d["prms"], "methods": list(GRID_METHODS),
              "seeds": d["seeds"], "max_step_tokens": d["max_step_tokens"],
              "max_solution_tokens": d["max_solution_tokens"], "prm_options": d.get("prm_options") or {},
              "chunk_size": limit}
    return [{**common, "datasets": ["tinymath500"], "n": d["budgets"]},
            {**common, "datasets": ["tinyhard30"], "n": d.get("hard_budgets") or d["budgets"]}]


def bench_grid(limit: int = 4, configs: list[dict] | None = None) -> dict:
    """Run the grid cold (each dataset's part in turn) and return its wall time and each phase's
    seconds and share."""
    from tts_utils.collect import collect

    seconds: dict[str, float] = defaultdict(float)
    with tempfile.TemporaryDirectory() as out:
        cfgs = [dict(c, out=out) for c in (configs or grid_configs(limit, out))]
        start = time.perf_counter()
        with phase_timers(seconds):
            for cfg in cfgs:
                collect(cfg, progress=False, workers=1)
        wall = time.perf_counter() - start
    seconds["rest"] = max(wall - sum(seconds[p] for p in PHASES if p != "rest"), 0.0)
    return {"limit": cfgs[0]["limit"], "policies": cfgs[0]["policies"], "prms": cfgs[0]["prms"],
            "parts": [{"dataset": c["datasets"][0], "n": c["n"]} for c in cfgs],
            "prm_options": cfgs[0]["prm_options"], "wall_s": wall,
            "phases": [{"phase": p, "seconds": seconds[p], "share": seconds[p] / wall if wall else 0.0}
                       for p in PHASES]}


def grid_markdown(r: dict) -> list[str]:
    parts = " and ".join(f"{p['dataset']} at N = {', '.join(map(str, p['n']))}" for p in r["parts"])
    dtype = (r.get("prm_options") or {}).get("dtype")
    out = ["", f"**Where a grid's time goes**: the cpu profile's grid ({len(r['policies'])} policies, PRMs "
               f"{', '.join(r['prms'])}{f' in {dtype}' if dtype else ''}, every method) on the first {r['limit']} "
               f"problems of {parts}, cold, one process: {r['wall_s']:.0f} s.", "",
           "| part | seconds | share |", "| --- | ---: | ---: |"]
    out += [f"| {PHASE_LABELS[p['phase']]} | {p['seconds']:.1f} | {100 * p['share']:.0f}% |" for p in r["phases"]]
    return out

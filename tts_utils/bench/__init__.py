"""`make bench`: what generation and PRM scoring cost on this machine, against its physical limit.

    make bench                                      # everything: --figures (`make figures` cold and warm)
    python -m tts_utils.bench                       # the tiny world, every section but the figures
    python -m tts_utils.bench --sections search --search-policy tiny-policy-m --n 16

Sections (each figure the median of ``--repeats`` runs; every ratio taken within one run):

* ``ceiling``: fp32 ``torch.matmul`` FLOP/s of a large square product: the most this machine's
  dense linear algebra gives. A model of P parameters needs 2P FLOPs a token, so it caps a policy
  at ceiling / 2P generated tokens per second ("share" = achieved / cap). Also the memory read
  bandwidth, the other cap: a decode step reads the whole KV cache, which for the tiny models at
  batch 256 is far more bytes than their weights (the table "what bounds decoding" shows both).
* ``policy``: each policy's generated tokens per second at batch 1, 16, 64, 256 (whole solutions
  of tiny-world problems, temperature 0.7, fixed seeds, ``TransformersPolicy``), and at the
  largest batch what torch's kernels alone allow: a decode step's attention and weight matmuls at
  the policy's shapes, with nothing else (``kernels_alone_s``).
* ``prm``: each PRM's scored tokens per second (the problems' reference solutions, one forward per
  solution batch) and share of the ceiling, and at its best batch what torch's kernels alone allow.
* ``search``: Best-of-N, beam search and DVTS at the same N on the same problems: wall time (and
  its policy / PRM parts), policy tokens, PRM tokens, wall time per generated token relative to
  BoN, PRM tokens per generated token.
* ``grid``: the cpu profile's own grid (its policies, PRMs, methods, budgets and limits) on the
  first ``--grid-problems`` problems of each dataset, cold, in this process, its wall time split
  into policy prefill, policy decode, PRM scoring, model loading and the rest (``grid``).
* ``busy``: a small slice of the study (the figures proxy: ``python -m tts_utils.collect`` on 8
  problems, Best-of-N and beam search at N = 16, cold) alone and beside one other CPU-bound
  process, at 1 torch thread (the study's ``TTS_THREADS`` default) and at 2 (torch's default on 2
  cores): how much a busy machine slows the study.
* ``figures`` (``--figures``; ``--no-figures`` skips it, e.g. ``make bench BENCH_ARGS=--no-figures``): ``python -m tts_utils.run_notebooks --profile cpu`` (``make
  figures``) cold and warm, in a fresh copy of the working tree (this tree is not touched).

The table is printed and written to ``runs/bench/bench.md`` and ``bench.json``. Model names are
registry names (tiny-world defaults); ``--loader module:function`` builds models from (kind, name)
instead (test doubles, custom servers).

Owns the benchmarks: the machine's ceilings (``measure``), the search methods' cost (``search``),
`make figures` cold and warm (``figures``), the goals and docs/performance.md's table (``report``, ``cli``).
May import every layer (it times them) and ``run_notebooks``; nothing in the library imports it.
"""


from tts_utils.bench.cli import main, parser, run
from tts_utils.bench.common import (
    POLICIES,
    PRMS,
    SEARCH_METHODS,
    SECTIONS,
    BenchError,
    machine,
    median_run,
    spread,
)
from tts_utils.bench.figures import bench_busy, bench_figures, proxy_grid
from tts_utils.bench.measure import (
    bench_bandwidth,
    bench_ceiling,
    bench_policy,
    bench_prm,
    decode_bytes,
    kernels_alone_s,
    prm_flops_per_token,
)
from tts_utils.bench.report import DOCS_END, DOCS_START, goals, to_markdown, update_docs
from tts_utils.bench.search import bench_search

__all__ = ["POLICIES", "PRMS", "DOCS_END", "DOCS_START", "SEARCH_METHODS", "SECTIONS", "BenchError",
           "bench_bandwidth", "bench_busy", "bench_ceiling", "bench_figures", "bench_policy", "bench_prm", "bench_search",
           "decode_bytes", "goals", "kernels_alone_s", "machine", "main", "median_run", "parser", "prm_flops_per_token", "proxy_grid", "run", "spread", "to_markdown",
           "update_docs"]

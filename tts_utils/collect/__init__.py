"""Run a grid of searches (dataset x policy x PRM x method x N x seed) into parquet tables.

Cached, resumable and shardable:

* the grid is cut into **work units** (dataset, policy, PRM, method, N_run, seed, chunk of
  problems). Each unit has a key: a hash of everything that changes its result (model names
  and a fingerprint of their local weights, the chunk's problem content, the method and its
  parameters, sampling parameters, seed, ``CODE_VERSION``). A finished unit is a pair of files
  ``OUT/chunks/<key>.{candidates,runs}.parquet``, each written to a temporary name and
  ``os.replace``d, so a crash or SIGKILL at any moment leaves either a whole file or none;
  a rerun skips units whose files match their done-marker and hold every budget asked of them
  (the key leaves the budget list out, so grids with other budgets share a unit: one that lacks a
  budget is redone for both grids' budgets) and redoes the rest, and being deterministic it writes
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
  merges itself at the end, a shard merges when it finds every chunk done. Each grid's own tables
  stay in ``OUT/grids/GRID/`` (what ``collect`` returns), so that a rerun reads them back instead
  of every chunk, and grids that share an OUT (the notebooks' slices) each keep theirs; a grid
  waits while a different one runs into the same OUT.
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
    datasets: [tinymath500]        # names of tts_utils.problems.datasets.DATASETS or paths to .jsonl files
    limit: 100                     # optional: first `limit` problems of each dataset
    policies: [tiny-policy-2m]     # registry names (tts_utils.models.catalog)
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
    finished_paths: slot           # beam search / DVTS: "slot" (the paper's code: N/M paths), "ranked" or "kept" (N)
    chunk_size: 64                 # problems per work unit (the unit of caching and resume)
    backend: transformers          # policy backend: transformers | vllm | openai
    backend_options: {}            # keyword arguments of policy.load_policy (e.g. device, base_url)
    prm_options: {}                # keyword arguments of prm.load_prm: device (default: cuda if there
                                   # is a GPU, else cpu; "auto" spreads a PRM over the GPUs), dtype,
                                   # batch_size
    loader: null                   # optional "module:function" (kind, name) -> model, replacing
                                   # the registry (test doubles; custom servers); a function
                                   # attribute `fingerprint(kind, name) -> str` is used if present

Code: ``config`` reads and checks a grid config; ``cache`` plans the work units, keys them,
reads and writes their chunk files and merges them into the tables; ``run`` executes the
missing units and holds the CLI.

CLI::

    python -m tts_utils.collect CONFIG.yaml [--shard i/n] [--out DIR] [--no-progress]
    python -m tts_utils.collect merge DIR [MORE_DIRS ...]

Owns the grid config (``config``), work units and their cache (``cache``), the worker pool
(``pool``) and the run (``run``). May import ``search``, ``models``, ``problems`` and the
top-level utilities; ``analysis`` and ``study`` read its tables, it never imports them.
"""

from tts_utils.collect.cache import (
    CANDIDATE_COLUMNS,
    CODE_VERSION,
    RUN_COLUMNS,
    Unit,
    load_results,
    merge,
    model_fingerprint,
    plan,
)
from tts_utils.collect.config import (
    PASS1_SEED,
    ConfigError,
    GridConfig,
    parse_config,
    parse_shard,
    policy_search,
)
from tts_utils.collect.run import collect, main

__all__ = ["CANDIDATE_COLUMNS", "CODE_VERSION", "PASS1_SEED", "RUN_COLUMNS", "ConfigError", "GridConfig", "Unit",
           "collect", "load_results", "main", "merge", "model_fingerprint", "parse_config", "parse_shard", "plan",
           "policy_search"]

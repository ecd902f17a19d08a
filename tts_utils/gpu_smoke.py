"""The GPU smoke check: what to run first on a borrowed GPU (``make gpu-smoke``), in a few minutes.

On a few problems of the tiny world (its models are in ``data/``: nothing is downloaded) it runs
Best-of-N with a PRM twice: the policy and the PRM on the transformers backend on CUDA, then the
policy on vLLM if vLLM is installed (the PRM stays on transformers). It prints what ran (device,
versions, models) and how fast (load and search time, tokens per second) and how many problems the
PRM's choice got right, and exits non-zero if a stage failed, so that a broken GPU setup shows
before a long paper-profile run.

It also measures what a cached study on this device can rely on: whether the transformers
backend's samples repeat exactly when the same batch runs twice, and whether a sample stays the
same when the batch around it changes (on the CPU in float32 it does; in bfloat16 on CUDA a
different batch can select a different matrix-product kernel, whose rounding can flip a sampled
token, so a cell's samples can change with the batch it shares, that is with N or with the
problems run together). A changed sample is reported, not failed: results stay reproducible run
to run at the same settings.

Without a GPU it stops at once with exit status 2 and says why. ``--device cpu`` runs the
transformers stage on the CPU instead (vLLM is skipped): that is how the check itself is tested on
machines without a GPU.

    python -m tts_utils.gpu_smoke                 # CUDA: transformers, then vLLM if installed
    python -m tts_utils.gpu_smoke --device cpu    # the same path on the CPU, no vLLM
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
import traceback

import torch

NO_GPU = 2


def tiny_models() -> tuple[str, str]:
    """The largest tiny-world policy and a tiny-world PRM, from the registry (the manifest)."""
    from tts_utils.models.catalog import registry

    tiny = [s for s in registry().values() if s.world == "tiny"]
    policies = sorted((s for s in tiny if s.kind == "policy"), key=lambda s: s.params)
    prms = [s for s in tiny if s.kind == "prm"]
    if not policies or not prms:
        raise SystemExit("gpu-smoke: the tiny world is not built (data/tinyworld/models.json); run `make tinyworld`")
    return policies[-1].name, prms[0].name


def cuda_problem() -> str | None:
    """Why CUDA cannot be used here, or None if it can."""
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        return (f"no CUDA GPU is visible (torch {torch.__version__} is {build}; CUDA_VISIBLE_DEVICES="
                f"{os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}). Run this in the GPU "
                "environment (environment.yml) on a machine with a GPU, or pass --device cpu to check the "
                "code path on the CPU.")
    return None


def describe_device(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    return f"CPU, torch {torch.__version__}"


def run_stage(label: str, load, prm, problems, n: int, config) -> tuple[dict, object]:
    """Load a policy (``load()``), run Best-of-N on ``problems`` and measure it; the measurements
    and the loaded policy."""
    from tts_utils.search import run_method
    from tts_utils.search.voting import select_index

    t0 = time.perf_counter()
    policy = load()
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = run_method("best_of_n", policy, prm, problems, n, seed=0, config=config)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    search_s = time.perf_counter() - t0
    right = 0
    for p in problems:
        cands = [c for c in result.candidates if c.problem_id == p.id]
        i = select_index([c.answer for c in cands], [c.rewards for c in cands], "prm_last_max")
        right += i is not None and bool(cands[i].correct)
    return {"stage": label, "load_s": load_s, "search_s": search_s, "policy_tokens": result.policy_tokens,
            "prm_tokens": result.prm_tokens, "tok_s": result.policy_tokens / search_s if search_s else 0.0,
            "right": right, "problems": len(problems), "candidates": len(result.candidates)}, policy


def batch_invariance(policy, problems, rows: int = 32, others: int = 96) -> dict:
    """Sample ``rows`` prompts alone, again alone, and behind ``others`` more prompts (other seeds,
    and other problems where there are); count the samples that come out identical."""
    from tts_utils.models.policy import SamplingParams

    params = SamplingParams(temperature=0.7, max_tokens=512, stop=None)
    prompts = [policy.build_prompt(problems[i % len(problems)].problem, []) for i in range(rows + others)]
    seeds = list(range(rows + others))
    alone = [g.text for g in policy.generate(prompts[:rows], params, seeds[:rows])]
    again = [g.text for g in policy.generate(prompts[:rows], params, seeds[:rows])]
    # the larger batch puts the same prompts and seeds in other positions
    mixed = policy.generate(prompts[rows:] + prompts[:rows], params, seeds[rows:] + seeds[:rows])
    among = [g.text for g in mixed[others:]]
    return {"rows": rows, "others": others, "repeat_same": sum(a == b for a, b in zip(alone, again, strict=True)),
            "batch_same": sum(a == b for a, b in zip(alone, among, strict=True))}


def report_invariance(label: str, row: dict) -> str:
    line = (f"  {label} samples: {row['repeat_same']}/{row['rows']} identical when the same batch runs again, "
            f"{row['batch_same']}/{row['rows']} identical among {row['others']} other prompts")
    if row["batch_same"] < row["rows"]:
        line += ("\n    (a sample can change with the batch it shares on this device: compare cached results "
                 "only at the same settings: N, problems, batch size)")
    return line


def report(row: dict) -> str:
    return (f"  {row['stage']}: load {row['load_s']:.1f} s, search {row['search_s']:.1f} s, "
            f"{row['candidates']} candidates, {row['policy_tokens']} policy tokens ({row['tok_s']:.0f} tok/s), "
            f"{row['prm_tokens']} PRM tokens; PRM-Last-Max right on {row['right']}/{row['problems']} problems")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (no vLLM then)")
    ap.add_argument("--problems", type=int, default=5, help="first problems of the dataset (default 5)")
    ap.add_argument("--n", type=int, default=4, help="Best-of-N budget (default 4)")
    ap.add_argument("--dataset", default="tinymath500")
    ap.add_argument("--policy", help="registry name (default: the largest tiny-world policy)")
    ap.add_argument("--prm", help="registry name (default: a tiny-world PRM)")
    args = ap.parse_args(argv)
    if args.problems < 1 or args.n < 1:
        ap.error("--problems and --n must be positive")

    from tts_utils.models.policy import load_policy
    from tts_utils.models.prm import load_prm
    from tts_utils.problems.datasets import load_dataset
    from tts_utils.search import SearchConfig

    device = args.device
    if device.startswith("cuda") and (why := cuda_problem()):
        print(f"gpu-smoke: {why}", file=sys.stderr)
        return NO_GPU
    if not device.startswith(("cuda", "cpu")):
        ap.error(f"--device must be cuda or cpu, got {device!r}")
    policy_name, prm_name = tiny_models()
    policy_name, prm_name = args.policy or policy_name, args.prm or prm_name
    problems = load_dataset(args.dataset, limit=args.problems)
    # The cpu profile's lengths: the tiny world's solutions are short.
    config = SearchConfig(max_step_tokens=96, max_solution_tokens=512)
    print(f"gpu-smoke on {describe_device(device)}: best_of_n N={args.n} with {policy_name} + {prm_name} "
          f"on the first {len(problems)} problems of {args.dataset}")

    rows, failed = [], []
    t0 = time.perf_counter()
    prm = load_prm(prm_name, device=device)
    print(f"  PRM {prm_name} loaded on {device} in {time.perf_counter() - t0:.1f} s")
    stages = [(f"transformers on {device}", lambda: load_policy(policy_name, device=device))]
    if not device.startswith("cuda"):
        print("  vLLM: skipped (it needs CUDA)")
    elif importlib.util.find_spec("vllm") is None:
        print("  vLLM: skipped (not installed; it comes with environment.yml)")
    else:
        # Small and eager: a tiny model needs little memory, and CUDA-graph capture would cost more
        # start-up time than this whole check.
        stages.append(("vLLM", lambda: load_policy(policy_name, backend="vllm", enforce_eager=True,
                                                   gpu_memory_utilization=0.2, seed=0)))
    for label, load in stages:
        try:
            row, policy = run_stage(label, load, prm, problems, args.n, config)
            print(report(row))
            row["invariance"] = batch_invariance(policy, problems)
            print(report_invariance(label, row["invariance"]))
        except Exception as e:  # report every stage, then fail: one broken backend must not hide the other
            failed.append(label)
            print(f"  {label}: FAILED: {type(e).__name__}: {e}")
            traceback.print_exc(limit=3, file=sys.stderr)
            continue
        rows.append(row)
    if failed:
        print(f"gpu-smoke: FAILED ({', '.join(failed)})")
        return 1
    print(f"gpu-smoke: ok ({len(rows)} stage{'s' if len(rows) != 1 else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

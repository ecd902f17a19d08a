"""`python -m tts_utils.bench`: parse the options, run the chosen sections, write the report."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from tts_utils import paths
from tts_utils.bench.common import (
    POLICIES,
    PRMS,
    SECTIONS,
    BenchError,
    check_registered,
    cpu_profile_lengths,
    dtype_name,
    machine,
    model_dtype,
    registry_loader,
    resolve_loader,
    spread,
)
from tts_utils.bench.figures import bench_busy, bench_figures
from tts_utils.bench.grid import PHASE_LABELS, bench_grid
from tts_utils.bench.measure import (
    bench_bandwidth,
    bench_ceiling,
    bench_kv_heads,
    bench_policy,
    bench_prm,
    kernels_alone_s,
    prm_flops_per_token,
)
from tts_utils.bench.report import to_markdown, update_docs
from tts_utils.bench.search import bench_search
from tts_utils.problems.datasets import load_dataset
from tts_utils.search import SearchConfig
from tts_utils.threads import study_threads


def run(args, loader: Callable[[str, str], object] | None = None, log=print) -> dict:
    loader = loader or resolve_loader(args.loader)
    sections = set(args.sections)
    if loader is registry_loader:  # fail before measuring anything
        wanted = [("policy", n) for n in args.policies if "policy" in sections]
        wanted += [("prm", n) for n in args.prms if "prm" in sections]
        if "search" in sections:
            wanted += [("policy", args.search_policy), ("prm", args.search_prm)]
        for kind, name in wanted:
            check_registered(kind, name)
    report: dict = {"machine": machine(), "note": args.note, "args": vars(args).copy()}
    report["args"].pop("func", None)
    problems = load_dataset(args.dataset)
    if not problems:
        raise BenchError(f"dataset {args.dataset!r} is empty")
    ceiling = None
    if sections & {"ceiling", "policy", "prm"}:
        ceiling = bench_ceiling(args.matmul_size, max(args.repeats, 5))
        report["ceiling"] = ceiling
        report["bandwidth"] = bench_bandwidth()
        log(f"ceiling: {ceiling['flops'] / 1e9:.1f} GFLOP/s fp32 matmul, "
            f"{report['bandwidth']['bytes_per_s'] / 1e9:.1f} GB/s memory read")
    flops = ceiling["flops"] if ceiling else 0.0
    if "policy" in sections:
        _policy_section(args, loader, problems, flops, report, log)
    if "prm" in sections:
        _prm_section(args, loader, problems, flops, report, log)
    if "search" in sections:
        cfg = SearchConfig(beam_width=args.beam_width, max_depth=args.max_depth,
                           max_step_tokens=args.max_step_tokens, max_solution_tokens=args.max_solution_tokens)
        pool = spread(problems, args.search_problems)
        policy, prm = loader("policy", args.search_policy), loader("prm", args.search_prm)
        report["search_setup"] = {"policy": args.search_policy, "prm": args.search_prm, "dataset": args.dataset,
                                  "problems": len(pool), "beam_width": args.beam_width,
                                  "max_step_tokens": args.max_step_tokens,
                                  "max_solution_tokens": args.max_solution_tokens, "seed": args.seed}
        report["search"] = bench_search(policy, prm, pool, args.n, args.repeats, args.seed, cfg)
        for r in report["search"]:
            log(f"search N={r['n']} {r['method']}: {r['wall_s']:.2f} s, x{r['rel_s_per_token']:.2f} BoN per token")
    if "grid" in sections:
        log(f"grid: the cpu profile's grid on {args.grid_problems} problems a dataset, cold, split by part ...")
        report["grid"] = bench_grid(args.grid_problems)
        log(f"  {report['grid']['wall_s']:.0f} s: " + ", ".join(
            f"{PHASE_LABELS[p['phase']]} {100 * p['share']:.0f}%" for p in report["grid"]["phases"]))
    if "busy" in sections:
        log("busy machine: the figures proxy quiet and beside one CPU-bound process (threads, workers) ...")
        report["busy"] = bench_busy(timeout_s=args.figures_timeout)
        for r in report["busy"]:
            log(f"  {r['threads']} thread(s), {r['workers']} worker(s), {'busy' if r['busy'] else 'quiet'}: "
                f"{r['wall_s']:.1f} s")
    if args.figures and not args.no_figures:
        log(f"figures: timing `make figures` ({args.figures_profile} profile), {args.figures} ...")
        report["figures"] = bench_figures(args.figures_profile, cold=args.figures == "cold+warm",
                                          timeout_s=args.figures_timeout)
    return report


def _policy_section(args, loader, problems, flops: float, report: dict, log) -> None:
    """Each policy's decoding, what torch's kernels alone allow it, and for the last one the KV-heads
    lever and --compile; --bf16 for each. Into ``report``."""
    report["policy"] = []
    for name in args.policies:
        policy = loader("policy", name)
        rows = bench_policy(policy, problems, args.batches, args.repeats, args.policy_max_tokens,
                            ceiling_flops=flops)
        report["policy"] += rows
        log("policy " + name + ": " + ", ".join(f"@{r['batch']} {r['tokens_per_s']:.0f} tok/s" for r in rows))
        top = max(rows, key=lambda r: r["batch"])
        if top["bytes"]:  # a local model: what torch's kernels alone allow at its batch and context
            t = kernels_alone_s(policy.model, top["batch"], 1, round(top["bytes"]["mean_context"]), args.repeats)
            top["kernels_alone_tokens_per_s"] = top["batch"] / t
            log(f"policy {name}: @{top['batch']} torch's kernels alone allow {top['batch'] / t:.0f} tok/s")
        if name == args.policies[-1] and getattr(policy, "decoder", None) is not None:
            report["kv_heads"] = bench_kv_heads(policy, batch=max(args.batches), repeats=args.repeats)
            log("kv heads lever: " + ", ".join(f"{r['kv_heads']} KV heads {r['tokens_per_s']:.0f} tok/s"
                                               for r in report["kv_heads"]))
        net = getattr(getattr(policy, "decoder", None), "net", None)
        if args.compile and name == args.policies[-1] and net is not None:
            net.forward = torch.compile(net.forward, dynamic=True)
            start = time.perf_counter()
            bench_policy(policy, problems, [max(args.batches)], 1, args.policy_max_tokens)  # compiles
            first = time.perf_counter() - start
            [row] = bench_policy(policy, problems, [max(args.batches)], args.repeats, args.policy_max_tokens,
                                 ceiling_flops=flops)
            row["first_run_s"] = first
            report["policy_compiled"] = row
            del net.forward  # back to the eager method
            log(f"policy {name} compiled: @{row['batch']} {row['tokens_per_s']:.0f} tok/s "
                f"(first run, compiling, {first:.0f} s)")
        if args.bf16 and isinstance(getattr(policy, "model", None), torch.nn.Module):
            policy.model.to(torch.bfloat16)
            [row] = bench_policy(policy, problems, [max(args.batches)], args.repeats, args.policy_max_tokens,
                                 ceiling_flops=flops)
            report.setdefault("policy_bf16", []).append(row)
            log(f"policy {name} bf16: @{row['batch']} {row['tokens_per_s']:.0f} tok/s")
        del policy


def _prm_section(args, loader, problems, flops: float, report: dict, log) -> None:
    """Each PRM at its best batch size, against the matmul ceiling of the dtype it runs in, and what
    torch's kernels alone allow it there. Into ``report``."""
    report["prm"] = []
    pool = spread(problems, args.prm_solutions)
    ceilings = {"float32": flops} if flops else {}
    for name in args.prms:
        prm = loader("prm", name)
        dtype = model_dtype(prm)
        key = dtype and dtype_name(dtype)
        if dtype is not None and dtype.is_floating_point and key not in ceilings:
            ceilings[key] = bench_ceiling(args.matmul_size, max(args.repeats, 5), dtype)["flops"]
            report.setdefault("ceilings", {})[key] = ceilings[key]
            log(f"ceiling: {ceilings[key] / 1e9:.1f} GFLOP/s {key} matmul")
        rows = []
        for b in args.prm_batches:
            prm.batch_size = b
            rows.append(bench_prm(prm, pool, args.repeats, flops, ceilings))
        row = max(rows, key=lambda r: r["tokens_per_s"])  # at its best batch size
        if "flop_share" in row:  # what torch's kernels alone allow at that batch and the mean length
            length = round(row["tokens"] / row["solutions"])
            t = kernels_alone_s(prm.model, row["batch"], length, length, args.repeats)
            per_token = prm_flops_per_token(prm, [length] * row["batch"])["total"]
            row["kernels_alone"] = {"length": length,
                                    "share": row["batch"] * length * per_token / ceilings[row["dtype"]] / t}
        report["prm"].append(row)
        log(f"prm {name}: " + ", ".join(f"@{r['batch']} {r['tokens_per_s']:.0f} tok/s" for r in rows)
            + ("" if "kernels_alone" not in row else
               f"; torch's kernels alone allow {row['kernels_alone']['share']:.0%} of its own cap at @{row['batch']}"))
        del prm


def parser() -> argparse.ArgumentParser:
    import tts_utils.bench as package  # its docstring is the overview

    ap = argparse.ArgumentParser(prog="python -m tts_utils.bench", description=package.__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    ap.add_argument("--policies", nargs="+", default=list(POLICIES))
    ap.add_argument("--prms", nargs="+", default=list(PRMS))
    ap.add_argument("--dataset", default="tinymath500")
    ap.add_argument("--repeats", type=int, default=3, help="runs per figure (the median is reported)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the study's, TTS_THREADS or 1)")
    ap.add_argument("--matmul-size", type=int, default=2048)
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 16, 64, 256])
    ap.add_argument("--policy-max-tokens", type=int, default=512, help="solution budget in the policy bench")
    ap.add_argument("--bf16", action="store_true",
                    help="also each policy in bfloat16 at the largest batch (not the study's default: it changes "
                         "samples)")
    ap.add_argument("--compile", action="store_true",
                    help="also the last policy under torch.compile at the largest batch (with its compile time)")
    ap.add_argument("--prm-solutions", type=int, default=256, help="reference solutions scored per PRM")
    ap.add_argument("--prm-batches", nargs="+", type=int, default=[2, 4, 8, 32],
                    help="PRM batch sizes tried (the best is reported)")
    ap.add_argument("--search-policy", default="tiny-policy-l")
    ap.add_argument("--search-prm", default="tiny-prm-skywork")
    ap.add_argument("--search-problems", type=int, default=32)
    ap.add_argument("--grid-problems", type=int, default=4,
                    help="grid section: the first problems of each of the cpu profile's datasets")
    ap.add_argument("--n", nargs="+", type=int, default=[16, 64])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--beam-width", type=int, default=4)
    ap.add_argument("--max-depth", type=int, default=40)
    lengths = cpu_profile_lengths()
    ap.add_argument("--max-step-tokens", type=int, default=lengths["max_step_tokens"], help="the cpu profile's")
    ap.add_argument("--max-solution-tokens", type=int, default=lengths["max_solution_tokens"],
                    help="the cpu profile's")
    ap.add_argument("--figures", nargs="?", const="cold+warm", choices=["cold+warm", "warm"], default=None,
                    help="also time `make figures` cold and warm (in a fresh copy of the tree; `make bench` does)")
    ap.add_argument("--no-figures", action="store_true",
                    help="skip the `make figures` timing even if --figures is given (make bench BENCH_ARGS=--no-figures)")
    ap.add_argument("--figures-profile", default="cpu")
    ap.add_argument("--figures-timeout", type=float, default=3600.0, help="seconds per run of the notebooks")
    ap.add_argument("--loader", help="'module:function' (kind, name) -> model, instead of the registry")
    ap.add_argument("--out", default=str(paths.RUNS_DIR / "bench"), help="writes bench.md and bench.json here")
    ap.add_argument("--note", default=None, help="a line for the report (e.g. what else was running)")
    ap.add_argument("--docs", action="store_true", help="also put the table into docs/performance.md (between its markers)")
    return ap



def main(argv: list[str] | None = None, loader: Callable[[str, str], object] | None = None) -> int:
    args = parser().parse_args(argv)
    # The study's thread count (TTS_THREADS, default 1), so caps and shares are those of the cores it uses.
    torch.set_num_threads(args.threads or study_threads())
    try:
        report = run(args, loader, log=lambda s: print(s, file=sys.stderr, flush=True))
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    md = to_markdown(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.md").write_text(md + "\n")
    (out / "bench.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(md)
    print(f"\n(written to {out / 'bench.md'} and bench.json)")
    if args.docs:
        print("docs/performance.md table updated" if update_docs(md) else "docs/performance.md has no bench markers: not updated")
    return 0


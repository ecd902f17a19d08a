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
  of tiny-world problems, temperature 0.7, fixed seeds, ``TransformersPolicy``).
* ``prm``: each PRM's scored tokens per second (the problems' reference solutions, one forward per
  solution batch) and share of the ceiling.
* ``search``: Best-of-N, beam search and DVTS at the same N on the same problems: wall time (and
  its policy / PRM parts), policy tokens, PRM tokens, wall time per generated token relative to
  BoN, PRM tokens per generated token.
* ``figures`` (``--figures``): ``python -m tts_utils.run_notebooks --profile cpu`` (``make
  figures``) cold and warm, in a fresh copy of the working tree (this tree is not touched).

The table is printed and written to ``runs/bench/bench.md`` and ``bench.json``. Model names are
registry names (tiny-world defaults); ``--loader module:function`` builds models from (kind, name)
instead (test doubles, custom servers).
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from tts_utils import paths
from tts_utils.data import load_dataset
from tts_utils.policy import SamplingParams
from tts_utils.prompts import split_steps
from tts_utils.search import SearchConfig, run_method

POLICIES = ("tiny-policy-xs", "tiny-policy-s", "tiny-policy-m", "tiny-policy-l")
PRMS = ("tiny-prm-shepherd", "tiny-prm-rlhflow-terse", "tiny-prm-rlhflow-verbose", "tiny-prm-skywork",
        "tiny-prm-qwen")
SECTIONS = ("ceiling", "policy", "prm", "search")
SEARCH_METHODS = ("best_of_n", "beam_search", "dvts")


class BenchError(RuntimeError):
    """A bench that cannot run as asked (models missing, ...); the message says what to do."""


# ------------------------------------------------------------------------------------- helpers

def median_run(fn: Callable[[], object], repeats: int, warmup: int = 0) -> tuple[float, object]:
    """(median wall seconds over ``repeats`` calls, the last call's result)."""
    for _ in range(warmup):
        fn()
    times, out = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def model_params(obj) -> int | None:
    model = getattr(obj, "model", None)
    return n_params(model) if isinstance(model, torch.nn.Module) else None


def share(tokens_per_s: float, params: int | None, ceiling_flops: float) -> float | None:
    """Achieved parameter FLOPs (2P a token) over the ceiling."""
    if not params or not ceiling_flops:
        return None
    return tokens_per_s * 2 * params / ceiling_flops


def spread(problems, k: int):
    """``k`` problems spread evenly over the set (tiny-world sets are ordered by level)."""
    if k >= len(problems):
        return list(problems)
    return [problems[i * len(problems) // k] for i in range(k)]


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M %Z")}


def check_registered(kind: str, name: str) -> None:
    """BenchError (saying what to do) unless ``name`` is a registered model of ``kind``."""
    from tts_utils.models import TINY_MANIFEST, registry

    known = registry()
    if name not in known or known[name].kind != kind:
        hint = (f"the tiny world is not built ({TINY_MANIFEST} is missing): run `make tinyworld` first"
                if not TINY_MANIFEST.exists() else
                f"known {kind}s: {', '.join(n for n, s in known.items() if s.kind == kind)}")
        raise BenchError(f"unknown {kind} {name!r}: {hint}")


def registry_loader(kind: str, name: str):
    """Models from the registry; a clear error when the tiny world is not built."""
    check_registered(kind, name)
    if kind == "policy":
        from tts_utils.policy import load_policy

        return load_policy(name)
    from tts_utils.prm import load_prm

    return load_prm(name)


def resolve_loader(spec: str | None) -> Callable[[str, str], object]:
    if not spec:
        return registry_loader
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


# ------------------------------------------------------------------------------------- sections

def bench_ceiling(size: int = 2048, repeats: int = 5) -> dict:
    """fp32 matmul FLOP/s of a ``size`` x ``size`` product (median)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    t, _ = median_run(lambda: torch.matmul(a, b), repeats, warmup=2)
    return {"size": size, "flops": 2 * size**3 / t}


def bench_bandwidth(mbytes: int = 256, repeats: int = 5) -> dict:
    """Memory read bandwidth (bytes/s): summing an fp32 tensor far larger than the caches."""
    x = torch.ones(mbytes * 2**20 // 4)
    t, _ = median_run(lambda: x.sum(), repeats, warmup=1)
    return {"mbytes": mbytes, "bytes_per_s": x.numel() * 4 / t}


def decode_bytes(policy, prompts: list[str], generations) -> dict | None:
    """What a decode step reads per generated token, for the memory bound: the KV cache (every
    layer's keys and values for the whole context so far) and the weights (read once per step,
    shared by the step's rows). None if the policy is not a local transformers model."""
    model, tok = getattr(policy, "model", None), getattr(policy, "tokenizer", None)
    cfg = getattr(model, "config", None)
    if not isinstance(model, torch.nn.Module) or tok is None or cfg is None:
        return None
    heads = getattr(cfg, "num_attention_heads", 1)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    elem = next(model.parameters()).element_size()
    per_ctx_token = cfg.num_hidden_layers * 2 * getattr(cfg, "num_key_value_heads", heads) * head_dim * elem
    lengths = [len(x) for x in tok(list(prompts), add_special_tokens=False)["input_ids"]]
    ctx = sum(g.num_tokens * p + g.num_tokens * (g.num_tokens - 1) / 2 for g, p in zip(generations, lengths,
                                                                                     strict=True))
    n = max(1, sum(g.num_tokens for g in generations))
    return {"mean_context": ctx / n, "kv_bytes_per_token": per_ctx_token * ctx / n,
            "weight_bytes": sum(p.numel() * p.element_size() for p in model.parameters())}


def bench_policy(policy, problems, batches=(1, 16, 64, 256), repeats: int = 3, max_tokens: int = 512,
                 min_sequences: int = 16, ceiling_flops: float = 0.0) -> list[dict]:
    """Generated tokens/s at each batch size: ``max(batch, min_sequences)`` whole solutions in
    generate calls of ``batch`` prompts (distinct problems, fixed seeds)."""
    params = SamplingParams(temperature=0.7, top_p=1.0, max_tokens=max_tokens, stop=None)
    p = model_params(policy)
    old_bs = getattr(policy, "batch_size", None)
    rows = []
    try:
        for b in batches:
            total = max(b, min_sequences)
            # the same mix of levels at every batch size (the sets are ordered by level)
            prompts = [policy.build_prompt(p.problem, []) for p in spread(problems, total)]
            prompts = [prompts[i % len(prompts)] for i in range(total)]
            if old_bs is not None:
                policy.batch_size = b

            def run(prompts=prompts, b=b):
                gens = []
                for s in range(0, len(prompts), b):
                    chunk = prompts[s:s + b]
                    gens += policy.generate(chunk, params, list(range(s, s + len(chunk))))
                return gens

            t, gens = median_run(run, repeats)
            tokens = sum(g.num_tokens for g in gens)
            tps = tokens / t
            rows.append({"policy": policy.name, "params": p, "batch": b, "sequences": total, "tokens": tokens,
                         "wall_s": t, "tokens_per_s": tps, "share": share(tps, p, ceiling_flops),
                         "bytes": decode_bytes(policy, prompts, gens)})
    finally:
        if old_bs is not None:
            policy.batch_size = old_bs
    return rows


def bench_prm(prm, problems, repeats: int = 3, ceiling_flops: float = 0.0) -> dict:
    """Scored tokens/s over the problems' reference solutions (one ``score`` call)."""
    solved = [p for p in problems if p.solution]
    if not solved:
        raise BenchError("the PRM bench needs problems with reference solutions")
    questions = [p.problem for p in solved]
    solutions = [split_steps(p.solution) for p in solved]
    t, scores = median_run(lambda: prm.score(questions, solutions), repeats, warmup=1)
    tokens = sum(s.num_tokens for s in scores)
    p = model_params(prm)
    return {"prm": prm.name, "params": p, "solutions": len(solved), "batch": getattr(prm, "batch_size", None),
            "tokens": tokens, "wall_s": t, "tokens_per_s": tokens / t,
            "share": share(tokens / t, p, ceiling_flops)}


class _Timed:
    """Wraps a policy or PRM; adds the wall time of its generate/score calls to ``seconds``."""

    def __init__(self, inner, method: str):
        self._inner, self._method, self.seconds = inner, method, 0.0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def _call(self, *args, **kw):
        start = time.perf_counter()
        try:
            return getattr(self._inner, self._method)(*args, **kw)
        finally:
            self.seconds += time.perf_counter() - start

    def generate(self, *args, **kw):
        return self._call(*args, **kw)

    def score(self, *args, **kw):
        return self._call(*args, **kw)


def bench_search(policy, prm, problems, budgets=(16, 64), repeats: int = 3, seed: int = 0,
                 config: SearchConfig | None = None, methods=SEARCH_METHODS) -> list[dict]:
    """One row per (N, method); ratios relative to BoN at the same N, within this run."""
    cfg = config or SearchConfig()
    rows = []
    for n in budgets:
        group = []
        for method in methods:
            runs = []
            for _ in range(max(1, repeats)):
                pol, rm = _Timed(policy, "generate"), _Timed(prm, "score")
                before = getattr(prm, "tokens_processed", None)
                res = run_method(method, pol, rm, problems, n, seed, cfg)
                ran = None if before is None else prm.tokens_processed - before
                runs.append((res.wall_s, pol.seconds, rm.seconds, res, ran))
            runs.sort(key=lambda r: r[0])
            wall, pol_s, prm_s, res, ran = runs[len(runs) // 2]
            if len({(r[3].policy_tokens, r[3].prm_tokens) for r in runs}) != 1:
                raise BenchError(f"{method} at N={n} is not deterministic: token counts differ between repeats")
            gen = max(res.policy_tokens, 1)
            group.append({"method": method, "n": n, "problems": len(problems), "wall_s": wall, "policy_s": pol_s,
                          "prm_s": prm_s, "policy_tokens": res.policy_tokens, "prm_tokens": res.prm_tokens,
                          "policy_calls": res.policy_calls, "prm_calls": res.prm_calls,
                          "prm_tokens_run": ran, "s_per_token": wall / gen, "prm_per_token": res.prm_tokens / gen,
                          "prm_run_per_token": None if ran is None else ran / gen,
                          "pass_at_n": sum(any(c.correct for c in res.candidates if c.problem_id == p.id)
                                           for p in problems) / max(len(problems), 1)})
        base = next((r for r in group if r["method"] == "best_of_n"), group[0])["s_per_token"]
        for r in group:
            r["rel_s_per_token"] = r["s_per_token"] / base if base > 0 else float("nan")
        rows += group
    return rows


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


# ------------------------------------------------------------------------------------- report

def _fmt(x, spec: str = ".0f") -> str:
    return "-" if x is None else format(x, spec)


def _decode_bound_table(report: dict) -> list[str]:
    """Each policy at the largest batch against both caps: FLOPs (weights) and memory (KV cache + weights)."""
    rows, ceiling, bw = report.get("policy") or [], report.get("ceiling"), report.get("bandwidth")
    if not rows or not ceiling or not bw:
        return []
    top = max(r["batch"] for r in rows)
    out = ["", f"What bounds decoding at batch {top}: bytes read per generated token (the KV cache of the whole "
               "context, every layer, plus the weights once per step shared by the batch) against the memory cap, "
               "and parameter FLOPs against the matmul cap.", "",
           "| policy | mean context tok | KV KB / tok | weights KB / tok | memory cap tok/s | FLOP cap tok/s | "
           "achieved tok/s | achieved / lower cap |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        b = r.get("bytes")
        if r["batch"] != top or not b or not r["params"]:
            continue
        per_tok = b["kv_bytes_per_token"] + b["weight_bytes"] / top
        mem_cap, flop_cap = bw["bytes_per_s"] / per_tok, ceiling["flops"] / (2 * r["params"])
        out.append(f"| {r['policy']} | {b['mean_context']:.0f} | {b['kv_bytes_per_token'] / 1e3:.1f} | "
                   f"{b['weight_bytes'] / top / 1e3:.1f} | {mem_cap:.0f} | {flop_cap:.0f} | {r['tokens_per_s']:.0f} | "
                   f"{100 * r['tokens_per_s'] / min(mem_cap, flop_cap):.0f}% |")
    return out if len(out) > 4 else []


def goals(report: dict) -> list[dict]:
    """The performance goals (issue: search costs what sampling costs), each with its measured value."""
    out = []
    search = report.get("search") or []
    steps = [r for r in search if r["method"] != "best_of_n"]
    if steps:
        worst = max(steps, key=lambda r: r["rel_s_per_token"])
        out.append({"goal": "beam search and DVTS: wall time per generated token <= 1.5x BoN's",
                    "value": f"{worst['rel_s_per_token']:.2f}x ({worst['method']}, N={worst['n']})",
                    "met": worst["rel_s_per_token"] <= 1.5})
    bon = [r for r in search if r["method"] == "best_of_n"]
    if bon:
        worst = max(bon, key=lambda r: r["prm_per_token"])
        out.append({"goal": "BoN: PRM tokens per generated token <= 1.5",
                    "value": f"{worst['prm_per_token']:.2f} (N={worst['n']})", "met": worst["prm_per_token"] <= 1.5})
    beams = [r for r in search if r["method"] == "beam_search" and r.get("prm_run_per_token") is not None]
    if beams:
        out.append({"goal": "beam search re-scores no more of the prefix than it must (PRM tokens run per "
                            "generated token; the FLOPs count re-reads every prefix)",
                    "value": ", ".join(f"N={r['n']}: {r['prm_run_per_token']:.2f} run vs {r['prm_per_token']:.2f} counted"
                                       for r in beams), "met": None})
    pol = report.get("policy") or []
    if pol:
        top = max(r["batch"] for r in pol)
        largest = max((r for r in pol if r["batch"] == top and r["share"] is not None),
                      key=lambda r: r["params"] or 0, default=None)
        if largest:
            out.append({"goal": f"largest policy at batch {top}: >= 50% of the matmul ceiling",
                        "value": f"{100 * largest['share']:.0f}% ({largest['policy']})", "met": largest["share"] >= 0.5})
    for r in report.get("figures") or []:
        limit = 1200 if r["mode"] == "cold" else 60
        out.append({"goal": f"`make figures` {r['mode']} under {limit // 60} min",
                    "value": f"{r['wall_s']:.0f} s" + ("" if r["ok"] else " (FAILED)"),
                    "met": r["ok"] and r["wall_s"] < limit})
    return out


def to_markdown(report: dict) -> str:
    m = report["machine"]
    out = [f"Measured {m['date']} on {m['cpu']}, torch {m['torch']}, torch threads: {m['threads']}."]
    if report.get("note"):
        out.append(report["note"])
    ceiling = report.get("ceiling")
    if ceiling:
        out += ["", f"**Ceiling**: fp32 matmul {ceiling['size']}x{ceiling['size']}: "
                    f"{ceiling['flops'] / 1e9:.0f} GFLOP/s (caps a model of P parameters at ceiling / 2P tokens/s)."]
        bw = report.get("bandwidth")
        if bw:
            out[-1] += (f" Memory read: {bw['bytes_per_s'] / 1e9:.1f} GB/s (sum of a {bw['mbytes']} MB tensor; "
                        "caps decoding at bandwidth / bytes read per token).")
    if report.get("policy"):
        batches = sorted({r["batch"] for r in report["policy"]})
        out += ["", "| policy | params | cap tok/s | " + " | ".join(f"tok/s @{b} (share)" for b in batches) + " |",
                "| --- | ---: | ---: | " + " | ".join("---:" for _ in batches) + " |"]
        bf16 = {r["policy"]: r for r in report.get("policy_bf16") or []}
        if bf16:
            out[-2] += f" bf16 tok/s @{max(batches)} (share of fp32 ceiling) |"
            out[-1] += " ---: |"
        for name in dict.fromkeys(r["policy"] for r in report["policy"]):
            rs = {r["batch"]: r for r in report["policy"] if r["policy"] == name}
            p = next(iter(rs.values()))["params"]
            cap = ceiling["flops"] / (2 * p) if ceiling and p else None
            cells = [f"{rs[b]['tokens_per_s']:.0f} ({_fmt(rs[b]['share'] and 100 * rs[b]['share'])}%)"
                     if b in rs else "-" for b in batches]
            if bf16:
                r = bf16.get(name)
                cells.append("-" if r is None else f"{r['tokens_per_s']:.0f} ({_fmt(r['share'] and 100 * r['share'])}%)")
            out.append(f"| {name} | {_fmt(p, ',d')} | {_fmt(cap)} | " + " | ".join(cells) + " |")
    if report.get("policy_compiled"):
        r = report["policy_compiled"]
        out.append(f"\n`torch.compile` (dynamic shapes) of {r['policy']} at batch {r['batch']}: {r['tokens_per_s']:.0f} tok/s "
                   f"({_fmt(r['share'] and 100 * r['share'])}% of the ceiling) after a first run of {r['first_run_s']:.0f} s "
                   "that compiles; not the study's default (compiling costs more than most runs save).")
    out += _decode_bound_table(report)
    if report.get("prm"):
        out += ["", "| PRM | params | batch | tokens | tok/s | share |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for r in report["prm"]:
            out.append(f"| {r['prm']} | {_fmt(r['params'], ',d')} | {_fmt(r['batch'], 'd')} | {r['tokens']} | "
                       f"{r['tokens_per_s']:.0f} | {_fmt(r['share'] and 100 * r['share'], '.1f')}% |")
    if report.get("search"):
        s = report["search_setup"]
        out += ["", f"Search: policy {s['policy']}, PRM {s['prm']}, {s['problems']} problems of {s['dataset']}, "
                    f"M={s['beam_width']}, max {s['max_step_tokens']} tokens a step / "
                    f"{s['max_solution_tokens']} a solution, seed {s['seed']}.", "",
                "| N | method | wall s | policy s | PRM s | policy tok | PRM tok | s/gen tok vs BoN | "
                "PRM tok / gen tok (run) | gen calls | pass@N |",
                "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in report["search"]:
            run = "" if r.get("prm_run_per_token") is None else f" ({r['prm_run_per_token']:.2f})"
            out.append(f"| {r['n']} | {r['method']} | {r['wall_s']:.2f} | {r['policy_s']:.2f} | {r['prm_s']:.2f} | "
                       f"{r['policy_tokens']} | {r['prm_tokens']} | {r['rel_s_per_token']:.2f} | "
                       f"{r['prm_per_token']:.2f}{run} | {r['policy_calls']} | {r['pass_at_n']:.2f} |")
        out.append("\nPRM tok: the FLOPs count (every candidate's whole input, every re-scoring pass); "
                   "(run): tokens actually run through the PRM (identical inputs once, siblings' common prefix once).")
    if report.get("figures") is not None:
        out += ["", "| make figures | wall s | ok |", "| --- | ---: | --- |"]
        for r in report["figures"]:
            out.append(f"| {r['mode']} ({r['profile']} profile) | {r['wall_s']:.1f} | {'yes' if r['ok'] else 'FAILED'} |")
        for r in report["figures"]:
            if not r["ok"]:
                out.append(f"\n{r['mode']} run failed:\n```\n{r['error']}\n```")
    table = goals(report)
    if table:
        out += ["", "| goal | measured | met |", "| --- | --- | --- |"]
        out += [f"| {g['goal']} | {g['value']} | {'-' if g['met'] is None else 'yes' if g['met'] else 'no'} |"
                for g in table]
    return "\n".join(out)


# ------------------------------------------------------------------------------------- CLI

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
        report["policy"] = []
        for name in args.policies:
            policy = loader("policy", name)
            rows = bench_policy(policy, problems, args.batches, args.repeats, args.policy_max_tokens,
                                ceiling_flops=flops)
            report["policy"] += rows
            log("policy " + name + ": " + ", ".join(f"@{r['batch']} {r['tokens_per_s']:.0f} tok/s" for r in rows))
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
    if "prm" in sections:
        report["prm"] = []
        pool = spread(problems, args.prm_solutions)
        for name in args.prms:
            prm = loader("prm", name)
            if args.prm_batch:
                prm.batch_size = args.prm_batch
            row = bench_prm(prm, pool, args.repeats, flops)
            report["prm"].append(row)
            log(f"prm {name}: {row['tokens_per_s']:.0f} tok/s")
            del prm
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
    if args.figures:
        log(f"figures: timing `make figures` ({args.figures_profile} profile), {args.figures} ...")
        report["figures"] = bench_figures(args.figures_profile, cold=args.figures == "cold+warm",
                                          timeout_s=args.figures_timeout)
    return report


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    ap.add_argument("--policies", nargs="+", default=list(POLICIES))
    ap.add_argument("--prms", nargs="+", default=list(PRMS))
    ap.add_argument("--dataset", default="tinymath500")
    ap.add_argument("--repeats", type=int, default=3, help="runs per figure (the median is reported)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--matmul-size", type=int, default=2048)
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 16, 64, 256])
    ap.add_argument("--policy-max-tokens", type=int, default=512, help="solution budget in the policy bench")
    ap.add_argument("--bf16", action="store_true",
                    help="also each policy in bfloat16 at the largest batch (not the study's default: it changes "
                         "samples)")
    ap.add_argument("--compile", action="store_true",
                    help="also the last policy under torch.compile at the largest batch (with its compile time)")
    ap.add_argument("--prm-solutions", type=int, default=256, help="reference solutions scored per PRM")
    ap.add_argument("--prm-batch", type=int, default=None, help="PRM batch size (default: the loader's)")
    ap.add_argument("--search-policy", default="tiny-policy-l")
    ap.add_argument("--search-prm", default="tiny-prm-skywork")
    ap.add_argument("--search-problems", type=int, default=32)
    ap.add_argument("--n", nargs="+", type=int, default=[16, 64])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--beam-width", type=int, default=4)
    ap.add_argument("--max-depth", type=int, default=40)
    ap.add_argument("--max-step-tokens", type=int, default=96, help="the cpu profile's")
    ap.add_argument("--max-solution-tokens", type=int, default=512, help="the cpu profile's")
    ap.add_argument("--figures", nargs="?", const="cold+warm", choices=["cold+warm", "warm"], default=None,
                    help="also time `make figures` cold and warm (in a fresh copy of the tree; `make bench` does)")
    ap.add_argument("--figures-profile", default="cpu")
    ap.add_argument("--figures-timeout", type=float, default=3600.0, help="seconds per run of the notebooks")
    ap.add_argument("--loader", help="'module:function' (kind, name) -> model, instead of the registry")
    ap.add_argument("--out", default=str(paths.RUNS_DIR / "bench"), help="writes bench.md and bench.json here")
    ap.add_argument("--note", default=None, help="a line for the report (e.g. what else was running)")
    ap.add_argument("--readme", action="store_true", help="also put the table into README.md (between its markers)")
    return ap


README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def update_readme(markdown: str, readme: Path = paths.README) -> bool:
    """Put ``markdown`` between the README's bench markers; False if it has none."""
    from tts_utils.run_notebooks import replace_section

    return replace_section(readme, README_START, README_END, markdown)


def main(argv: list[str] | None = None, loader: Callable[[str, str], object] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
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
    if args.readme:
        print("README.md table updated" if update_readme(md) else "README.md has no bench markers: not updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())

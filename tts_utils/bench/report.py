"""The bench's report: markdown tables, the goals with their measured values, docs/performance.md's section."""

from __future__ import annotations

from pathlib import Path

from tts_utils import paths

DOCS_START, DOCS_END = "<!-- bench:start -->", "<!-- bench:end -->"
DOCS_PAGE = paths.DOCS_DIR / "performance.md"


def update_docs(markdown: str, page: Path = DOCS_PAGE) -> bool:
    """Put ``markdown`` between the bench markers of docs/performance.md; False if it has none."""
    return paths.replace_section(page, DOCS_START, DOCS_END, markdown)


def _fmt(x, spec: str = ".0f") -> str:
    return "-" if x is None else format(x, spec)


def decode_caps(row: dict, report: dict) -> tuple[float, float] | None:
    """(memory cap, FLOP cap) in tokens/s of a policy row: bandwidth over the bytes a generated token
    reads (its KV cache, plus its share of the weights read once per step), and the matmul ceiling
    over 2P FLOPs."""
    b, ceiling, bw = row.get("bytes"), report.get("ceiling"), report.get("bandwidth")
    if not b or not row.get("params") or not ceiling or not bw:
        return None
    per_tok = b["kv_bytes_per_token"] + b["weight_bytes"] / row["batch"]
    return bw["bytes_per_s"] / per_tok, ceiling["flops"] / (2 * row["params"])


def _of_cap(tokens_per_s: float | None, row: dict, report: dict) -> float | None:
    """``tokens_per_s`` over a policy row's binding cap (the lower of ``decode_caps``), None where
    either is not measured."""
    caps = decode_caps(row, report)
    return None if caps is None or tokens_per_s is None else tokens_per_s / min(caps)


def _live_share(row: dict, report: dict) -> float | None:
    """A KV-heads lever row's share of its binding cap, None for rows from before the lever recorded
    its weights."""
    if "weight_bytes" not in row:
        return None
    shaped = {"bytes": {"kv_bytes_per_token": row["kv_bytes_per_token"], "weight_bytes": row["weight_bytes"]},
              "params": row["params"], "batch": row["batch"]}
    return _of_cap(row["tokens_per_s"], shaped, report)


def _kernels_alone_share(row: dict, report: dict) -> float | None:
    """A policy row's kernels-alone tokens/s (torch's attention and weight matmuls only, every row
    live) over its binding cap, None where not measured."""
    return _of_cap(row.get("kernels_alone_tokens_per_s"), row, report)


def _decode_bound_table(report: dict) -> list[str]:
    """Each policy at the largest batch against both caps: FLOPs (weights) and memory (KV cache + weights)."""
    rows = report.get("policy") or []
    if not rows:
        return []
    top = max(r["batch"] for r in rows)
    out = ["", f"What bounds decoding at batch {top}: bytes read per generated token (the KV cache of the whole "
               "context, every layer, plus the weights once per step shared by the batch) against the memory cap, "
               "and parameter FLOPs against the matmul cap.", "",
           "| policy | mean context tok | KV KB / tok | weights KB / tok | memory cap tok/s | FLOP cap tok/s | "
           "achieved tok/s | achieved / lower cap | kernels alone / lower cap |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        caps = decode_caps(r, report)
        if r["batch"] != top or caps is None:
            continue
        b = r["bytes"]
        out.append(f"| {r['policy']} | {b['mean_context']:.0f} | {b['kv_bytes_per_token'] / 1e3:.1f} | "
                   f"{b['weight_bytes'] / top / 1e3:.1f} | {caps[0]:.0f} | {caps[1]:.0f} | {r['tokens_per_s']:.0f} | "
                   f"{100 * r['tokens_per_s'] / min(caps):.0f}% | {_fmt(_kernels_alone_share(r, report), '.0%')} |")
    if len(out) == 4:
        return []
    return out + ["", "Kernels alone: a decode step's attention and weight matmuls only (torch's kernels, the "
                      "policy's shapes at its mean context, random inputs, every row live, no norms, activations, "
                      "sampling or Python): the most these kernels allow the whole step on this machine."]


def _config(row: dict) -> tuple[int, int]:
    """A busy-section row's (torch threads, worker processes); rows from before workers had one."""
    return row["threads"], row.get("workers", 1)


def _busy_table(report: dict) -> list[str]:
    rows = report.get("busy") or []
    if not rows:
        return []
    out = ["", "Busy machine: the figures proxy (tiny-policy-l + tiny-prm-skywork, Best-of-N and beam search, N = 16, "
               "8 problems in 2 chunks, cold) alone and beside one other CPU-bound process, per torch thread count "
               "and worker processes (`TTS_THREADS`, `TTS_WORKERS`; `make figures` runs 1 thread and one worker per "
               "core).", "",
           "| torch threads | workers | quiet s | busy s | busy / quiet |", "| ---: | ---: | ---: | ---: | ---: |"]
    for n, w in dict.fromkeys(map(_config, rows)):
        quiet = next((r for r in rows if _config(r) == (n, w) and not r["busy"]), None)
        busy = next((r for r in rows if _config(r) == (n, w) and r["busy"]), None)
        cells = ["-" if r is None else f"{r['wall_s']:.1f}" + ("" if r["ok"] else " (FAILED)") for r in (quiet, busy)]
        ratio = f"{busy['wall_s'] / quiet['wall_s']:.2f}x" if quiet and busy and quiet["ok"] and busy["ok"] else "-"
        out.append(f"| {n} | {w} | {cells[0]} | {cells[1]} | {ratio} |")
    return out


def _prm_share(row: dict) -> float | None:
    """A PRM's share of its binding cap: with attention, in its own dtype, where measured."""
    return row.get("flop_share", row.get("share"))


def goals(report: dict) -> list[dict]:
    """The performance goals, each with its measured value and whether it is met."""
    out = []
    pol = [r for r in report.get("policy") or [] if decode_caps(r, report) is not None]
    if pol:
        top = max(r["batch"] for r in pol)
        at_top = sorted((r for r in pol if r["batch"] == top), key=lambda r: r["params"])
        for row, need, which in ((at_top[-1], 0.5, "largest"), (at_top[0], 0.3, "smallest")):
            got = row["tokens_per_s"] / min(decode_caps(row, report))
            alone = _kernels_alone_share(row, report)
            out.append({"goal": f"{which} policy at batch {top}: >= {need:.0%} of its binding cap (the lower of the "
                                "memory and FLOP caps)",
                        "value": f"{got:.0%} ({row['policy']}"
                                 + ("" if alone is None else f"; torch's kernels alone allow {alone:.0%}") + ")",
                        "met": got >= need})
    prms = [r for r in report.get("prm") or [] if _prm_share(r) is not None]
    if prms:
        # A PRM scores whole inputs in one forward (no KV cache to re-read): its binding cap is the
        # FLOP cap, counted with attention against the matmul ceiling of the dtype it runs in.
        worst = min(prms, key=_prm_share)
        what = f"{worst['dtype']} ceiling, with attention" if "flop_share" in worst else "fp32 ceiling, parameters only"
        value = f"lowest {_prm_share(worst):.0%} ({worst['prm']}, batch {worst['batch']}; {what})"
        bounded = [r for r in prms if "kernels_alone" in r]
        if bounded:
            under = [r["prm"] for r in bounded if r["kernels_alone"]["share"] < 0.5]
            value += (f"; torch's kernels alone allow {worst['kernels_alone']['share']:.0%} for it"
                      if "kernels_alone" in worst else "") + f", and under 50% for {len(under)} of {len(bounded)} PRMs"
        out.append({"goal": "every PRM at its best batch size: >= 50% of its binding cap (FLOPs)",
                    "value": value, "met": _prm_share(worst) >= 0.5})
    search = report.get("search") or []
    steps = [r for r in search if r["method"] != "best_of_n"]
    if steps:
        worst = max(steps, key=lambda r: r["rel_s_per_token"])
        out.append({"goal": "beam search and DVTS: wall time per generated token <= 1.15x BoN's",
                    "value": f"{worst['rel_s_per_token']:.2f}x ({worst['method']}, N={worst['n']})",
                    "met": worst["rel_s_per_token"] <= 1.15})
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
    busy = report.get("busy") or []
    # judged on what `make figures` runs here: 1 thread, and the most worker processes measured
    study = max((w for n, w in map(_config, busy) if n == 1), default=1)
    quiet = next((r for r in busy if _config(r) == (1, study) and not r["busy"] and r["ok"]), None)
    loaded = next((r for r in busy if _config(r) == (1, study) and r["busy"]), None)
    if quiet and loaded:
        ratio = loaded["wall_s"] / quiet["wall_s"]
        out.append({"goal": f"busy machine: the figures proxy ({study} worker(s) of 1 thread, as `make figures`) beside "
                            "one CPU-bound process within 1.5x of its quiet time",
                    "value": f"{ratio:.2f}x ({quiet['wall_s']:.1f} s quiet, {loaded['wall_s']:.1f} s busy)"
                             + ("" if loaded["ok"] else " (FAILED)"),
                    "met": loaded["ok"] and ratio <= 1.5})
    for r in report.get("figures") or []:
        limit = 1800 if r["mode"] == "cold" else 30  # the cpu profile draws N = 4, 16 and 64 within 30 min
        out.append({"goal": f"`make figures` {r['mode']} under {limit // 60} min" if limit >= 60 else
                            f"`make figures` {r['mode']} under {limit} s",
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
    if report.get("grid"):
        from tts_utils.bench.grid import grid_markdown

        out += grid_markdown(report["grid"])
    rows = report.get("kv_heads") or []
    if rows:
        r0 = rows[0]
        out += ["", f"Lever, grouped-query attention: decode steps of {r0['policy']}'s shape (random weights) at batch "
                    f"{r0['batch']} and a {r0['context']}-token context, with its own KV heads and with one shared "
                    "by all query heads. Every row stays live (no batch tail, no sampling), so the first row's "
                    "share is the most that refilling finished rows (continuous batching) could reach.", "",
                "| KV heads / query heads | KV KB / tok | decode tok/s | vs own | of binding cap |",
                "| ---: | ---: | ---: | ---: | ---: |"]
        for r in rows:
            out.append(f"| {r['kv_heads']} / {r['heads']} | {r['kv_bytes_per_token'] / 1e3:.1f} | "
                       f"{r['tokens_per_s']:.0f} | {r['tokens_per_s'] / r0['tokens_per_s']:.2f}x | "
                       f"{_fmt(_live_share(r, report), '.0%')} |")
    out += _busy_table(report)
    if report.get("prm"):
        ceilings = ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in (report.get("ceilings") or {}).items())
        out += ["", "PRMs at their best batch size (of " + ", ".join(map(str, (report.get("args") or {}).get("prm_batches") or []))
                + "), scoring reference solutions. Share: parameter FLOPs (2P a token) over the fp32 ceiling, as "
                "for the policies; of own cap: all the FLOPs of a token (2P plus attention, 4 d_attn per layer and "
                "per earlier token) over the matmul ceiling of the dtype the PRM runs in"
                + (f" ({ceilings})" if ceilings else "") + ".", "",
                "| PRM | params | dtype | batch | tokens | mean context | tok/s | share | attention / all FLOPs | "
                "of own cap | kernels alone |", "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in report["prm"]:
            f = r.get("flops_per_token") or {}
            attn = f and 100 * f["attention"] / f["total"]
            out.append(f"| {r['prm']} | {_fmt(r['params'], ',d')} | {r.get('dtype', '-')} | {_fmt(r['batch'], 'd')} | "
                       f"{r['tokens']} | {_fmt(f.get('mean_context'), '.0f')} | {r['tokens_per_s']:.0f} | "
                       f"{_fmt(r['share'] and 100 * r['share'], '.1f')}% | {_fmt(attn or None, '.0f')}% | "
                       f"{_fmt(r.get('flop_share') and 100 * r['flop_share'], '.0f')}% | "
                       f"{_fmt((r.get('kernels_alone') or {}).get('share'), '.0%')} |")
        if any("kernels_alone" in r for r in report["prm"]):
            out.append("\nKernels alone: a forward's attention and weight matmuls only (torch's kernels, the PRM's "
                       "shapes at its batch and mean input length, random inputs in its dtype, no norms, activations "
                       "or heads), against its own cap: the most these kernels allow on this machine.")
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


"""`make bench` (tts_utils.bench) end to end on tiny random models: every section runs and reports.

A smoke test of the script's plumbing, never a timed assertion: the figures it prints are measured,
not checked here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import KnownPRM, ScriptedPolicy, make_problems, write_jsonl

from tts_utils import bench, paths
from tts_utils.models.policy import TransformersPolicy
from tts_utils.models.prm import MathShepherdPRM, SkyworkPRM
from tts_utils.tinyworld.tokenizer import VOCAB_SIZE, build_tokenizer


def _backbone(**kw):
    return dict(vocab_size=VOCAB_SIZE, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024, **kw)


def random_models(kind: str, name: str):
    """Tiny random models in the tiny world's shapes (its tokenizers, its PRM formats)."""
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    from tts_utils.models.value_head import Qwen2ValueHeadConfig, Qwen2ValueHeadModel

    torch.manual_seed(0)
    if kind == "policy" and name == "rand-policy":
        tok = build_tokenizer("tiny")
        model = LlamaForCausalLM(LlamaConfig(**_backbone(), pad_token_id=tok.pad_token_id,
                                             eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id))
        return TransformersPolicy(model.eval(), tok, "tiny", name=name)
    if kind == "prm" and name == "rand-shepherd":
        tok = build_tokenizer("math-shepherd")
        return MathShepherdPRM(MistralForCausalLM(MistralConfig(**_backbone(), pad_token_id=tok.pad_token_id)),
                               tok, name=name)
    if kind == "prm" and name == "rand-skywork":
        tok = build_tokenizer("skywork")
        return SkyworkPRM(Qwen2ValueHeadModel(Qwen2ValueHeadConfig(**_backbone(), pad_token_id=tok.pad_token_id)),
                          tok, name=name)
    raise KeyError(f"{kind} {name}")


def test_every_section_runs_on_tiny_random_models(tmp_path, capsys):
    argv = ["--sections", "ceiling", "policy", "prm", "search", "--policies", "rand-policy", "--prms", "rand-shepherd", "rand-skywork", "--search-policy", "rand-policy",
            "--search-prm", "rand-skywork", "--batches", "1", "4", "--repeats", "1", "--matmul-size", "64",
            "--policy-max-tokens", "12", "--prm-solutions", "6", "--prm-batches", "2", "8", "--search-problems", "3", "--n", "4", "8",
            "--max-step-tokens", "6", "--max-solution-tokens", "16", "--max-depth", "3", "--bf16", "--out", str(tmp_path)]
    assert bench.main(argv, loader=random_models) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "bench.json").read_text())
    assert (tmp_path / "bench.md").read_text().strip() in out
    assert report["ceiling"]["flops"] > 0
    assert [(r["policy"], r["batch"]) for r in report["policy"]] == [("rand-policy", 1), ("rand-policy", 4)]
    for r in report["policy"]:
        assert r["tokens"] > 0 and r["share"] > 0 and r["sequences"] == 16  # max(batch, 16)
    assert [(r["policy"], r["batch"]) for r in report["policy_bf16"]] == [("rand-policy", 4)]
    assert [r["prm"] for r in report["prm"]] == ["rand-shepherd", "rand-skywork"]
    assert all(r["tokens"] > 0 and r["solutions"] == 6 for r in report["prm"])
    for r in report["prm"]:  # fp32 models here: their own cap is the fp32 ceiling, with attention
        assert r["dtype"] == "float32" and r["ceiling_dtype_flops"] == report["ceiling"]["flops"]
        assert r["flop_share"] > r["share"] > 0
    rows = report["search"]
    assert [(r["n"], r["method"]) for r in rows] == [(n, m) for n in (4, 8) for m in bench.SEARCH_METHODS]
    for r in rows:
        assert r["policy_tokens"] > 0 and r["prm_tokens"] > 0 and r["policy_s"] <= r["wall_s"] + 1e-6
    assert [r["rel_s_per_token"] for r in rows if r["method"] == "best_of_n"] == [1.0, 1.0]
    assert report["bandwidth"]["bytes_per_s"] > 0
    assert all(r["bytes"]["kv_bytes_per_token"] > 0 for r in report["policy"])
    assert [r["kv_heads"] for r in report["kv_heads"]] == [2, 1]  # its own, then one shared KV head
    assert report["kv_heads"][1]["kv_bytes_per_token"] * 2 == report["kv_heads"][0]["kv_bytes_per_token"]
    # every row live: its share of the binding cap, as the policy rows' (memory or FLOPs, the lower)
    r0 = report["kv_heads"][0]
    from tts_utils.bench.report import decode_caps

    caps = decode_caps({"bytes": r0, "params": r0["params"], "batch": r0["batch"]}, report)
    assert f"| {r0['tokens_per_s'] / min(caps):.0%} |" in out
    # torch's kernels alone, at the largest batch and at the PRMs' best batch and mean length
    [top] = [r for r in report["policy"] if r["batch"] == 4]
    assert top["kernels_alone_tokens_per_s"] > 0 and "kernels_alone_tokens_per_s" not in report["policy"][0]
    for r in report["prm"]:
        assert r["kernels_alone"]["length"] == round(r["tokens"] / r["solutions"]) and r["kernels_alone"]["share"] > 0
    assert "torch's kernels alone allow" in out and "of 2 PRMs" in out  # the PRM goal counts both
    for line in ("Ceiling", "| rand-policy |", "Lever, grouped-query attention", "| rand-skywork |", "| 8 | dvts |", "What bounds decoding at batch 4",
                 "| goal | measured | met |", "BoN: PRM tokens per generated token <= 1.5"):
        assert line in out


def test_decode_bytes_counts_the_context_each_token_reads():
    from tts_utils.models.policy import Generation

    policy = random_models("policy", "rand-policy")  # 1 layer, 2 kv heads of 8 dims, fp32
    prompt = policy.tokenizer.decode([5, 6], skip_special_tokens=False)
    assert len(policy.tokenizer(prompt, add_special_tokens=False)["input_ids"]) == 2
    b = bench.decode_bytes(policy, [prompt], [Generation("abc", 3, "eos")])
    assert b["mean_context"] == 3  # contexts 2, 3, 4
    assert b["kv_bytes_per_token"] == 3 * (1 * 2 * 2 * 8 * 4)
    assert b["weight_bytes"] == 4 * sum(p.numel() for p in policy.model.parameters())


def test_prm_flops_count_parameters_and_causal_attention():
    prm = random_models("prm", "rand-skywork")
    cfg = prm.model.config
    d_attn = cfg.num_attention_heads * (getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)
    f = bench.prm_flops_per_token(prm, [3, 1])  # contexts 1, 2, 3 and 1: mean 7/4
    assert f["mean_context"] == 7 / 4
    assert f["params"] == 2 * sum(p.numel() for p in prm.model.parameters())
    assert f["attention"] == 4 * cfg.num_hidden_layers * d_attn * 7 / 4
    assert f["total"] == f["params"] + f["attention"]


def test_goals_judge_each_measured_figure():
    report = {"search": [{"method": "best_of_n", "n": 16, "rel_s_per_token": 1.0, "prm_per_token": 1.2},
                         {"method": "beam_search", "n": 16, "rel_s_per_token": 1.7, "prm_per_token": 3.0,
                          "prm_run_per_token": 0.9},
                         {"method": "dvts", "n": 16, "rel_s_per_token": 1.1, "prm_per_token": 3.0}],
              "ceiling": {"flops": 1e9, "size": 64}, "bandwidth": {"bytes_per_s": 1e9, "mbytes": 1},
              # a: memory cap 1e9 / (1000 + 256000 / 256) = 5e5 tok/s binds (FLOP cap 5e6): 40%
              # b: memory cap 1e9 / (4000 + 1000) = 2e5 binds (FLOP cap 5e5): 25%
              "policy": [{"policy": "a", "batch": 256, "params": 100, "tokens_per_s": 2e5,
                          "bytes": {"kv_bytes_per_token": 1000, "weight_bytes": 256000, "mean_context": 10}},
                         {"policy": "b", "batch": 256, "params": 1000, "tokens_per_s": 5e4,
                          "bytes": {"kv_bytes_per_token": 4000, "weight_bytes": 256000, "mean_context": 10}}],
              "prm": [{"prm": "p", "batch": 8, "share": 0.6}, {"prm": "q", "batch": 32, "share": 0.3}],
              "busy": [{"threads": 1, "busy": False, "wall_s": 10.0, "ok": True},
                       {"threads": 1, "busy": True, "wall_s": 14.0, "ok": True},
                       {"threads": 2, "busy": False, "wall_s": 8.0, "ok": True},
                       {"threads": 2, "busy": True, "wall_s": 40.0, "ok": True}],
              "figures": [{"mode": "cold", "wall_s": 1000.0, "ok": True}, {"mode": "warm", "wall_s": 35.0, "ok": True}]}
    table = bench.goals(report)
    # largest and smallest policy, PRMs, step search, BoN PRM tokens, beam re-scoring (reported, not
    # judged), busy machine (the study's 1 thread), cold, warm
    assert [g["met"] for g in table] == [False, True, False, False, True, None, True, True, False]
    assert table[0]["value"] == "25% (b)" and table[1]["value"] == "40% (a)"  # by parameters, not speed
    assert table[2]["value"] == "lowest 30% (q, batch 32; fp32 ceiling, parameters only)"
    # where measured, a PRM's own cap: all its FLOPs against the ceiling of the dtype it runs in
    report["prm"][0].update(dtype="float64", flop_share=0.2)
    assert bench.goals(report)[2]["value"] == "lowest 20% (p, batch 8; float64 ceiling, with attention)"
    # torch's kernels alone, where measured: beside each goal's value
    report["policy"][1]["kernels_alone_tokens_per_s"] = 1.2e5  # of b's memory cap 2e5: 60%
    report["prm"][0]["kernels_alone"] = {"length": 100, "share": 0.3}
    report["prm"][1]["kernels_alone"] = {"length": 80, "share": 0.7}
    judged = bench.goals(report)
    assert judged[0]["value"] == "25% (b; torch's kernels alone allow 60%)" and judged[1]["value"] == "40% (a)"
    assert judged[2]["value"].endswith("torch's kernels alone allow 30% for it, and under 50% for 1 of 2 PRMs")
    assert table[3]["value"] == "1.70x (beam_search, N=16)"
    assert table[6]["value"].startswith("1.40x")
    assert "| 2 | 1 | 8.0 | 40.0 | 5.00x |" in bench.to_markdown({"machine": bench.machine(), "busy": report["busy"]})


def test_kernels_alone_times_each_layers_matmuls_and_attention(monkeypatch):
    import torch.nn.functional as F

    from tts_utils.bench import measure

    policy = random_models("policy", "rand-policy")
    cfg = policy.model.config
    layers = measure._layer_linears(policy.model)
    # q, k, v, o and the MLP's gate, up, down in every decoder layer; the LM head is not one of them
    assert len(layers) == cfg.num_hidden_layers and all(len(ls) == 7 for ls in layers)
    assert all(policy.model.lm_head is not m for ls in layers for m in ls)
    calls = []
    real_linear, real_attention = F.linear, F.scaled_dot_product_attention
    monkeypatch.setattr(F, "linear", lambda x, w, b=None: calls.append(("linear", x.shape[0])) or real_linear(x, w, b))
    monkeypatch.setattr(F, "scaled_dot_product_attention",
                        lambda q, k, v, **kw: calls.append(("attention", q.shape, k.shape, kw)) or real_attention(q, k, v, **kw))
    kv, heads = cfg.num_key_value_heads, cfg.num_attention_heads
    head_dim = cfg.hidden_size // heads
    assert measure.kernels_alone_s(policy.model, 3, 1, 10, repeats=1) > 0
    per_forward = cfg.num_hidden_layers * 8
    assert len(calls) == 2 * per_forward  # a warm-up and one timed forward
    assert {c[1] for c in calls if c[0] == "linear"} == {3}  # one row a sequence in a decode step
    assert {c[1:3] for c in calls if c[0] == "attention"} == {((3, kv, heads // kv, head_dim), (3, kv, 10, head_dim))}
    calls.clear()
    assert measure.kernels_alone_s(policy.model, 2, 5, 5, repeats=1) > 0
    assert {c[1] for c in calls if c[0] == "linear"} == {10}  # every token of the whole inputs
    attention = [c[1:] for c in calls if c[0] == "attention"]
    assert attention == [((2, heads, 5, head_dim), (2, kv, 5, head_dim), {"is_causal": True, "enable_gqa": kv != heads})
                         ] * len(attention)
    with pytest.raises(ValueError, match="new must be 1"):
        measure.kernels_alone_s(policy.model, 2, 3, 5)


def test_search_section_with_scripted_doubles():
    problems = make_problems(4)
    rows = bench.bench_search(ScriptedPolicy(), KnownPRM(), problems, budgets=(8,), repeats=2)
    assert [r["method"] for r in rows] == list(bench.SEARCH_METHODS)
    assert rows[0]["rel_s_per_token"] == 1.0
    assert rows[0]["policy_calls"] == 1 < rows[1]["policy_calls"]
    assert all(r["prm_per_token"] > 0 for r in rows)


def test_loader_by_name_and_dataset_path(tmp_path, tests_on_path, capsys):
    ds = write_jsonl(make_problems(4), tmp_path / "p.jsonl")
    assert bench.main(["--sections", "search", "--search-policy", "scripted", "--search-prm", "known",
                       "--dataset", str(ds), "--n", "8", "--repeats", "1", "--loader", "conftest:load_model",
                       "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "| 8 | beam_search |" in out and "Ceiling" not in out


def test_missing_models_fail_clearly(tmp_path, monkeypatch, capsys):
    import tts_utils.models.catalog as models

    monkeypatch.setattr(models, "TINY_MANIFEST", tmp_path / "nope.json")
    monkeypatch.setattr(models, "_tiny_models", lambda: {})
    assert bench.main(["--sections", "policy", "--policies", "tiny-policy-xs", "--matmul-size", "32",
                       "--out", str(tmp_path)]) == 2
    assert "make tinyworld" in capsys.readouterr().err


def test_figures_row_reports_a_failure_instead_of_raising(monkeypatch):
    import subprocess

    class Done:
        returncode, stdout, stderr = 1, "", "notebook 03 failed"

    seen = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, cwd, **k: seen.append(Path(cwd)) or Done())
    rows = bench.bench_figures("smoke")
    assert [(r["mode"], r["ok"], r["error"]) for r in rows] == [("cold", False, "notebook 03 failed")]
    assert seen[0] != paths.REPO_ROOT and (seen[0] / "tts_utils").is_dir() is False  # a copy, removed afterwards
    assert "FAILED" in bench.to_markdown({"machine": bench.machine(), "figures": rows})


def test_figures_row_reports_a_timeout(monkeypatch):
    import subprocess

    def slow(cmd, cwd, timeout=None, **k):
        raise subprocess.TimeoutExpired(cmd, timeout)

    monkeypatch.setattr(subprocess, "run", slow)
    [row] = bench.bench_figures("smoke", timeout_s=5)
    assert row["mode"] == "cold" and not row["ok"] and "5 s timeout" in row["error"]


def test_the_docs_table_goes_between_the_markers(tmp_path):
    page = tmp_path / "performance.md"
    page.write_text(f"# x\n\n{bench.DOCS_START}\nold\n{bench.DOCS_END}\n\nrest\n")
    assert bench.update_docs("| new |", page)
    assert page.read_text() == f"# x\n\n{bench.DOCS_START}\n| new |\n{bench.DOCS_END}\n\nrest\n"
    page.write_text("no markers")
    assert not bench.update_docs("| new |", page)
    assert bench.DOCS_START in (paths.DOCS_DIR / "performance.md").read_text()


def test_busy_machine_rows_start_and_stop_a_competitor(monkeypatch):
    import subprocess

    class Done:
        returncode, stdout, stderr = 0, "", ""

    runs, others = [], []

    class Competitor:
        def __init__(self):
            self.killed = False
            others.append(self)

        def kill(self):
            self.killed = True

        def wait(self):
            return 0

    def run(cmd, cwd, env, **k):
        runs.append((env["TTS_THREADS"], env["TTS_WORKERS"], len(others), all(o.killed for o in others)))
        return Done()

    monkeypatch.setattr(subprocess, "run", run)
    rows = bench.bench_busy(configs=((1, 1), (1, 2)), competitor=Competitor)
    assert [(r["threads"], r["workers"], r["busy"], r["ok"]) for r in rows] == [
        (1, 1, False, True), (1, 1, True, True), (1, 2, False, True), (1, 2, True, True)]
    # each busy run has a live competitor, killed afterwards
    assert runs == [("1", "1", 0, True), ("1", "1", 1, False), ("1", "2", 1, True), ("1", "2", 2, False)]
    assert all(o.killed for o in others)


def test_the_bench_searches_with_the_cpu_profiles_lengths():
    # The bench times the searches `make figures` runs: its lengths come from the cpu profile, so a
    # change of the profile cannot leave the bench timing another workload.
    from tts_utils.bench.cli import parser
    from tts_utils.run_notebooks import load_profile

    profile = load_profile("cpu")["defaults"]
    args = parser().parse_args([])
    for key in ("max_step_tokens", "max_solution_tokens"):
        assert getattr(args, key) == bench.proxy_grid()[key] == profile[key]


def test_the_grid_timers_put_each_call_in_its_part_and_leave_nothing_patched(monkeypatch):
    import torch

    from tts_utils.bench import grid
    from tts_utils.collect import run as collect_run
    from tts_utils.models import decoder, prm_base

    calls = []
    monkeypatch.setattr(decoder.LlamaFamilyForward, "forward", lambda self, ids, *a: calls.append(ids.shape[1]))
    monkeypatch.setattr(prm_base.TransformersPRM, "score", lambda self, q, s: calls.append("prm"))
    monkeypatch.setattr(collect_run, "_load_model", lambda *a: calls.append("load"))
    before = (decoder.LlamaFamilyForward.forward, prm_base.TransformersPRM.score, collect_run._load_model)
    seconds = dict.fromkeys(grid.PHASES, 0.0)
    with grid.phase_timers(seconds):
        decoder.LlamaFamilyForward.forward(None, torch.zeros(2, 7))   # a prefill of 7 tokens
        decoder.LlamaFamilyForward.forward(None, torch.zeros(2, 1))   # a decode step
        prm_base.TransformersPRM.score(None, [], [])
        collect_run._load_model("policy", "p")
    assert calls == [7, 1, "prm", "load"]
    assert all(seconds[p] > 0 for p in ("prefill", "decode", "prm", "load")) and seconds["rest"] == 0
    assert (decoder.LlamaFamilyForward.forward, prm_base.TransformersPRM.score, collect_run._load_model) == before
    main, hard = grid.grid_configs(3, "out")
    assert main["limit"] == hard["limit"] == 3 and "pass1_samples" in main["methods"]
    assert (main["datasets"], hard["datasets"]) == (["tinymath500"], ["tinyhard30"])
    from tts_utils.run_notebooks import load_profile

    cpu = load_profile("cpu")["defaults"]
    assert main["n"] == cpu["budgets"] and hard["n"] == (cpu.get("hard_budgets") or cpu["budgets"])
    md = "\n".join(grid.grid_markdown({"limit": 3, "policies": ["a"], "prms": ["b"], "prm_options": {"dtype": "float32"},
                                       "parts": [{"dataset": "d", "n": [4, 16]}, {"dataset": "h", "n": [4]}],
                                       "wall_s": 10.0, "phases": [{"phase": "decode", "seconds": 4.0, "share": 0.4}]}))
    assert "| policy decode | 4.0 | 40% |" in md and "d at N = 4, 16 and h at N = 4" in md and "in float32" in md

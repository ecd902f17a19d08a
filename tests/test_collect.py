"""collect: grid tables, caching, sharding + merge, validation, and kill/resume of the CLI."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import KnownPRM, ScriptedPolicy, make_problems, write_jsonl

from tts_utils import collect as C
from tts_utils.paths import REPO_ROOT
from tts_utils.search import best_of_n, dvts

TESTS = Path(__file__).resolve().parent


def grid(tmp_path: Path, **over) -> dict:
    ds = tmp_path / "probs.jsonl"
    if not ds.exists():
        write_jsonl(make_problems(7), ds)
    cfg = {"out": str(tmp_path / "out"), "datasets": [str(ds)], "policies": ["scripted"], "prms": ["known"],
           "methods": ["cot", "majority", "best_of_n", "beam_search", "dvts"], "n": [4, 8], "seeds": [0, 1],
           "chunk_size": 3, "max_depth": 8, "loader": "conftest:load_model"}
    cfg.update(over)
    return cfg


def frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal in every column but wall_s (the only measured, hence nondeterministic, column)."""
    a = a.drop(columns=[c for c in ("wall_s",) if c in a])
    b = b.drop(columns=[c for c in ("wall_s",) if c in b])
    pd.testing.assert_frame_equal(a, b)


def test_grid_tables_have_every_candidate_in_order(tmp_path, calls, tests_on_path):
    paths = C.collect(grid(tmp_path), progress=False)
    cands, runs = C.load_results(tmp_path / "out")
    assert paths["candidates"].parent.parent == tmp_path / "out" / "grids"  # the grid's own tables
    assert paths["candidates"].read_bytes() == (tmp_path / "out" / "candidates.parquet").read_bytes()
    problems = make_problems(7)
    expect_rows = {("cot", 1): 1, ("majority", 4): 4, ("majority", 8): 8, ("best_of_n", 4): 4,
                   ("best_of_n", 8): 8, ("beam_search", 4): 1, ("beam_search", 8): 2, ("dvts", 4): 1, ("dvts", 8): 2}
    # beam search and DVTS return N/M paths (the paper's rule, SearchConfig.finished_paths "slot")
    counts = cands.groupby(["method", "n"]).size().to_dict()
    assert counts == {k: v * len(problems) * 2 for k, v in expect_rows.items()}
    assert len(runs) == len(expect_rows) * len(problems) * 2
    assert set(cands.loc[cands.method.isin(["cot", "majority"]), "prm"]) == {""}
    assert set(cands.loc[~cands.method.isin(["cot", "majority"]), "prm"]) == {"known"}
    # row order: method in config order, then n, seed, problem, candidate
    order = ["cot", "majority", "best_of_n", "beam_search", "dvts"]
    key = cands[["method", "n", "seed", "problem_index", "candidate"]].assign(
        method=cands.method.map(order.index))
    assert key.equals(key.sort_values(list(key.columns), kind="stable"))
    # the rows are the search's own results: BoN and DVTS at N=4 equal direct runs at N=4
    for method, fn in (("best_of_n", best_of_n), ("dvts", dvts)):
        direct = fn(ScriptedPolicy(), KnownPRM(), problems, 4, seed=1,
                    config=C.parse_config(grid(tmp_path)).search)
        rows = cands[(cands.method == method) & (cands.n == 4) & (cands.seed == 1)]
        assert [list(s) for s in rows.steps] == [c.steps for c in direct.candidates]
        assert list(rows.correct) == [c.correct for c in direct.candidates]
        r = runs[(runs.method == method) & (runs.n == 4) & (runs.seed == 1)]
        assert list(r.policy_tokens) == [x.policy_tokens for x in direct.runs]
        assert list(r.prm_tokens) == [x.prm_tokens for x in direct.runs]
    tree = runs.method.isin(["beam_search", "dvts"])
    assert (runs.num_candidates == runs.n.where(~tree, runs.n // 4)).all()
    assert runs.gold.tolist()[:7] == [p.answer for p in problems]
    # CoT / majority never loaded or called a PRM for themselves; models loaded once per pair
    assert calls["policy_loads"] == 1 and calls["prm_loads"] == 1


def test_rerun_generates_nothing_and_changes_invalidate_only_what_they_touch(tmp_path, calls, tests_on_path):
    C.collect(grid(tmp_path), progress=False)
    first = C.load_results(tmp_path / "out")
    for k in calls:
        calls[k] = 0
    C.collect(grid(tmp_path), progress=False)
    assert calls == {"policy_generate": 0, "prm_score": 0, "policy_loads": 0, "prm_loads": 0}
    second = C.load_results(tmp_path / "out")
    frames_equal(first[0], second[0])
    frames_equal(first[1], second[1])
    # a sampling change reruns everything that samples (CoT is greedy but its key holds the
    # sampling params too: simple and safe)
    C.collect(grid(tmp_path, temperature=0.5), progress=False)
    assert calls["policy_generate"] > 0
    # editing one problem reruns only the units of its chunk
    for k in calls:
        calls[k] = 0
    probs = make_problems(7)
    probs[6] = probs[6].__class__(**{**probs[6].to_dict(), "answer": "999"})
    write_jsonl(probs, tmp_path / "probs.jsonl")
    before = {p.name for p in (tmp_path / "out" / "chunks").iterdir()}
    C.collect(grid(tmp_path), progress=False)
    new = {p.name for p in (tmp_path / "out" / "chunks").iterdir()} - before
    units = 2 * (1 + 1 + 1 + 2 + 1)  # seeds x (cot, majority, bon, beam x2, dvts) for chunk 3 only
    assert len(new) == 3 * units  # two chunk files and a done-marker each
    cands, runs = C.load_results(tmp_path / "out")
    assert set(runs.loc[runs.problem_id == "p6", "gold"]) == {"999"}


def test_sharded_runs_merge_to_the_unsharded_tables(tmp_path, calls, tests_on_path):
    whole = C.collect(grid(tmp_path), progress=False)
    ref = C.load_results(whole["candidates"].parent)
    shared = tmp_path / "shared"
    assert C.collect(grid(tmp_path), shard="0/2", out=shared, progress=False) is None  # not all done yet
    paths = C.collect(grid(tmp_path), shard="1/2", out=shared, progress=False)  # last shard merges
    got = C.load_results(paths["candidates"].parent)
    frames_equal(ref[0], got[0])
    frames_equal(ref[1], got[1])
    # shards on separate machines: separate dirs joined by merge (CLI entry point)
    a, b = tmp_path / "a", tmp_path / "b"
    for i, d in enumerate((a, b)):
        C.collect(grid(tmp_path), shard=f"{i}/2", out=d, progress=False)
    with pytest.raises(FileNotFoundError, match="not done"):
        C.merge(a)
    assert C.main(["merge", str(a), str(b)]) == 0
    got = C.load_results(a)
    frames_equal(ref[0], got[0])
    frames_equal(ref[1], got[1])


@pytest.mark.parametrize("over,message", [
    ({"methods": ["best_of_n", "mcts"]}, "'methods'\\[1\\]: unknown method 'mcts'"),
    ({"n": [4, -8]}, "'n'.*positive"),
    ({"n": [4, 2.5]}, "'n'\\[1\\] must be an integer"),
    ({"n": [4, 6]}, "'n'.*not divisible"),
    ({"seeds": ["zero"]}, "'seeds'\\[0\\] must be an integer"),
    ({"datasets": ["no-such-set"]}, "'datasets'\\[0\\]: unknown dataset"),
    ({"chunk_size": 0}, "'chunk_size'"),
    ({"prms": []}, "'prms' is empty"),
    ({"colour": "blue"}, "unknown config field"),
    ({"loader": "no_such_module:f"}, "'loader'"),
    ({"prm_options": ["cuda"]}, "'prm_options' must be a mapping"),
    ({"prm_options": {"devise": "cuda"}}, "'prm_options': unknown key\\(s\\) \\['devise'\\]"),
    ({"beam_width": 0}, "beam_width"),
    ({"temperature": float("inf")}, "config field 'temperature' must be a finite number"),
    ({"temperature": float("nan")}, "config field 'temperature' must be a finite number"),
    ({"temperature": "hot"}, "config field 'temperature' must be a number, got 'hot'"),
    ({"top_p": "all"}, "config field 'top_p' must be a number"),
    ({"methods": []}, "'methods' is empty"),
    ({"policies": []}, "'policies' is empty"),
    ({"datasets": []}, "'datasets' is empty"),
    ({"seeds": []}, "'seeds' is empty"),
    ({"n": []}, "'n' is empty"),
])
def test_config_errors_name_the_field_before_any_generation(tmp_path, calls, tests_on_path, over, message):
    with pytest.raises(C.ConfigError, match=message):
        C.collect(grid(tmp_path, **over), progress=False)
    assert calls["policy_generate"] == calls["policy_loads"] == 0


def test_a_problem_with_an_empty_answer_is_a_config_error(tmp_path, calls, tests_on_path):
    rows = [{"unique_id": p.id, "problem": p.problem, "answer": p.answer} for p in make_problems(3)]
    rows[1]["answer"] = " "
    (tmp_path / "empty.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(C.ConfigError, match="'datasets'\\[0\\]: .*empty.jsonl:2: 'answer' is empty"):
        C.collect(grid(tmp_path, datasets=[str(tmp_path / "empty.jsonl")]), progress=False)
    assert calls["policy_generate"] == 0


def test_unknown_model_shard_and_out_errors(tmp_path, calls, tests_on_path):
    cfg = grid(tmp_path, loader=None, policies=["no-such-policy"])
    with pytest.raises(C.ConfigError, match="'policies'\\[0\\]: unknown model 'no-such-policy'"):
        C.collect(cfg, progress=False)
    for bad in ("2/2", "a/b", "1", "-1/3"):
        with pytest.raises(C.ConfigError, match="--shard"):
            C.collect(grid(tmp_path), shard=bad, progress=False)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(C.ConfigError, match="'out': cannot create"):
        C.collect(grid(tmp_path, out=str(blocker / "sub")), progress=False)
    with pytest.raises(C.ConfigError, match="'out' is missing"):
        C.collect({k: v for k, v in grid(tmp_path).items() if k != "out"}, progress=False)
    assert C.main([str(tmp_path / "missing.yaml")]) == 2
    assert calls["policy_generate"] == 0


def _cli(config: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tts_utils.collect", str(config)], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, what: str, deadline_s: float = 120.0) -> None:
    """Poll ``condition`` until it holds; the deadline is generous (a loaded machine is slow, and
    nothing here depends on how slow)."""
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_cli_killed_at_random_points_resumes_to_identical_tables(tmp_path, tests_on_path):
    cfg = grid(tmp_path, policies=["scripted-slow"], methods=["best_of_n", "beam_search", "dvts"], seeds=[0])
    ref = C.collect({**cfg, "out": str(tmp_path / "ref")}, progress=False)
    ref_tables = C.load_results(ref["candidates"].parent)
    total = len(json.loads((tmp_path / "ref" / "manifest.json").read_text())["units"])

    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump({**cfg, "out": str(tmp_path / "killed")}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(TESTS)])}
    chunks = tmp_path / "killed" / "chunks"
    rng = random.Random(1234)
    # Killed once the k-th unit is done (k at random, increasing), not after a random sleep: a
    # sleep landed before the first unit or after the last on a loaded machine (3 failures in 6).
    for k in sorted(rng.sample(range(1, total), 3)):
        proc = _cli(config, env)
        wait_for(lambda: proc.poll() is not None or len(list(chunks.glob("*.done.json"))) >= k,  # noqa: B023
                 f"unit {k} of {total}")
        assert proc.poll() is None, "the run ended before its kill"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert 0 < len(list(chunks.glob("*.done.json"))) < total  # the kills left the grid part done
    proc = _cli(config, env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "problem" in err  # tqdm progress line
    got = C.load_results(tmp_path / "killed")
    frames_equal(ref_tables[0], got[0])
    frames_equal(ref_tables[1], got[1])


def test_majority_and_best_of_n_share_one_sampling_pass(tmp_path):
    """Within one collect call, BoN with every PRM reuses majority voting's samples."""
    from tts_utils.collect.run import _SampleMemo

    calls = []

    class Recorder:
        name, family = "rec", "tiny"

        def generate(self, prompts, params, seeds):
            calls.append(params.stop)
            return [f"x{s}" for s in seeds]

    memo = _SampleMemo(Recorder())
    from tts_utils.models.policy import SamplingParams

    whole = SamplingParams(stop=None)
    assert memo.generate(["a", "b"], whole, [1, 2]) == ["x1", "x2"]
    assert memo.generate(["a", "b"], whole, [1, 2]) == ["x1", "x2"]
    assert memo.generate(["a", "b"], whole, [1, 3]) == ["x1", "x3"]
    step = SamplingParams()
    memo.generate(["a"], step, [1])
    memo.generate(["a"], step, [1])
    assert calls == [None, None, ("\n\n",), ("\n\n",)]
    assert memo.name == "rec"


def test_r1_distills_sample_with_the_papers_settings(tmp_path):
    """The registry's per-policy sampling replaces the grid's (and so enters the cache key)."""
    cfg = C.parse_config(grid(tmp_path, loader=None, policies=["DeepSeek-R1-Distill-Qwen-7B", "Qwen2.5-7B-Instruct"],
                              prms=[], methods=["majority"], temperature=0.7, top_p=1.0, max_solution_tokens=8192))
    r1 = C.policy_search(cfg, "DeepSeek-R1-Distill-Qwen-7B")
    assert (r1.temperature, r1.top_p, r1.max_solution_tokens) == (0.6, 0.95, 32768)
    assert r1.max_step_tokens == cfg.search.max_step_tokens
    assert C.policy_search(cfg, "Qwen2.5-7B-Instruct") == cfg.search
    assert C.policy_search(cfg, "scripted") == cfg.search  # not in the registry (a test double)
    data = {d: make_problems(7) for d in cfg.datasets}
    fps = {("policy", p): p for p in cfg.policies}
    keys = {(u.policy, u.seed, u.chunk): u.key for u in C.plan(cfg, data, fps)}
    # A grid already at R1's settings: the R1 units are the same work (same keys), the others are not.
    at_r1 = C.parse_config(grid(tmp_path, loader=None, policies=cfg.policies, prms=[], methods=["majority"],
                                temperature=0.6, top_p=0.95, max_solution_tokens=32768))
    keys_r1 = {(u.policy, u.seed, u.chunk): u.key for u in C.plan(at_r1, data, fps)}
    assert len(keys) == len(keys_r1) == 2 * 2 * 3
    for k, key in keys.items():
        assert (keys_r1[k] == key) == (k[0] == "DeepSeek-R1-Distill-Qwen-7B")


def test_pass1_sample_set_is_disjoint_from_every_methods_candidates(tmp_path, calls, tests_on_path):
    """The difficulty set (pass@1) shares no sample with any TTS method's candidates: the scripted
    policy writes each step's seed into its text, so the seeds behind every row are visible."""
    import re

    from tts_utils import analysis

    methods = ["cot", "majority", "best_of_n", "beam_search", "dvts", "pass1_samples"]
    C.collect(grid(tmp_path, methods=methods), progress=False)
    cands, _ = C.load_results(tmp_path / "out")
    p1 = cands[cands.method == "pass1_samples"]
    assert set(p1.prm) == {""} and set(p1.n) == {16} and set(p1.seed) == {C.PASS1_SEED}
    assert p1.groupby("problem_id").size().eq(16).all() and p1.problem_id.nunique() == 7

    def seeds(rows):
        return {(pid, int(s)) for pid, steps in zip(rows.problem_id, rows.steps, strict=True)
                for step in steps for s in re.findall(r" s(\d+)", step)}

    mine, others = seeds(p1), seeds(cands[cands.method != "pass1_samples"])
    assert len(mine) >= 7 * 16 and others
    assert not mine & others
    p1_texts = {(pid, "".join(s)) for pid, s in zip(p1.problem_id, p1.steps, strict=True)}
    rest = cands[cands.method != "pass1_samples"]
    assert not p1_texts & {(pid, "".join(s)) for pid, s in zip(rest.problem_id, rest.steps, strict=True)}
    # pass@1 is read from this set, and voting never sees it
    pass1 = analysis.pass1_by_problem(cands)
    expect = p1.groupby("problem_id")["correct"].mean()
    assert pass1.set_index("problem_id")["pass1"].to_dict() == expect.to_dict()
    assert set(pass1["samples"]) == {16}
    assert "pass1_samples" not in set(analysis.vote_accuracy(cands, rules=["prm_last_max"]).method)


@pytest.mark.parametrize(("over", "message"), [({"pass1_samples": 8}, "at least 16"),
                                               ({"pass1_seed": -1}, "'pass1_seed'")])
def test_pass1_config_errors(tmp_path, over, message):
    with pytest.raises(C.ConfigError, match=message):
        C.parse_config(grid(tmp_path, **over))


def test_worker_processes_give_the_same_tables_as_one_process(tmp_path, tests_on_path):
    from tts_utils.collect import pool

    serial = C.collect(grid(tmp_path, out=str(tmp_path / "serial")), progress=False, workers=1)
    try:
        parallel = C.collect(grid(tmp_path, out=str(tmp_path / "parallel")), progress=False, workers=2)
        # a second grid reuses the running pool (another seed: new units)
        more = C.collect(grid(tmp_path, out=str(tmp_path / "more"), seeds=[2]), progress=False, workers=2)
    finally:
        pool.shutdown()
    for name in ("candidates", "runs"):
        frames_equal(pd.read_parquet(serial[name]), pd.read_parquet(parallel[name]))
    assert len(pd.read_parquet(more["runs"])) == len(pd.read_parquet(serial["runs"])) // 2


def test_worker_progress_adds_up_to_the_grid(tmp_path, tests_on_path):
    from tts_utils.collect import pool

    seen = []
    try:
        pool.run_parallel(_count_units, [(3,), (4,), (5,)], workers=2, threads=1, grid_id="g",
                          on_unit=lambda n, t: seen.append((n, t)))
        with pytest.raises(ValueError, match="unit 13 failed"):
            pool.run_parallel(_count_units, [(2,), (13,)], workers=2, threads=1, grid_id="h",
                              on_unit=lambda n, t: None)
    finally:
        pool.shutdown()
    assert sum(n for n, _ in seen) == 12 and sum(t for _, t in seen) == 120


def _count_units(k: int, *, on_unit, models) -> None:
    """A job for the pool: k units of one problem and 10 tokens each (13 fails)."""
    if k == 13:
        raise ValueError("unit 13 failed")
    for _ in range(k):
        on_unit(1, 10)


def _small(tmp_path: Path, **over) -> dict:
    return grid(tmp_path, methods=["majority", "best_of_n"], n=[4], seeds=[0], **over)  # 7 problems, 3 chunks


def test_damaged_chunks_are_recomputed_with_a_warning(tmp_path, calls, tests_on_path):
    ref = C.load_results(C.collect(_small(tmp_path), progress=False)["candidates"].parent)
    chunks = sorted((tmp_path / "out" / "chunks").glob("*.candidates.parquet"))
    runs_files = sorted((tmp_path / "out" / "chunks").glob("*.runs.parquet"))
    assert len(chunks) == 6
    chunks[0].write_bytes(b"")                                  # emptied
    runs_files[1].write_bytes(runs_files[1].read_bytes()[:100])  # truncated
    chunks[3].write_bytes(chunks[4].read_bytes())                # another unit's valid chunk copied over it
    with pytest.raises(FileNotFoundError, match="3 of 6 work units are not done.*damaged.*rerun the grid"):
        C.merge(tmp_path / "out")
    before = calls["policy_generate"]
    with pytest.warns(UserWarning, match="is damaged") as warned:
        C.collect(_small(tmp_path), progress=False)
    assert len(warned) == 3
    assert calls["policy_generate"] > before
    got = C.load_results(tmp_path / "out")
    frames_equal(ref[0], got[0])
    frames_equal(ref[1], got[1])


def test_killed_writers_temporaries_are_removed(tmp_path, calls, tests_on_path):
    from tts_utils.collect.cache import _host

    chunks = tmp_path / "out" / "chunks"
    chunks.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = chunks / f"abc.candidates.parquet.tmp-{_host()}-{dead.pid}"
    live = chunks / f"abc.runs.parquet.tmp-{_host()}-{os.getppid()}"
    elsewhere = chunks / f"abc.runs.parquet.tmp-another-host-{dead.pid}"
    for f in (stale, live, elsewhere):
        f.write_bytes(b"partial")
    C.collect(_small(tmp_path), progress=False)
    assert not stale.exists()
    assert live.exists() and elsewhere.exists()  # a live writer's, or one on a machine we cannot see


def test_a_second_grid_into_a_busy_output_directory_waits_for_it(tmp_path, calls, tests_on_path):
    # Two grids into one --out used to both exit 0, the first one's tables holding the second's
    # problems (merge re-read the manifest the other had overwritten). Now the second waits.
    import json as json_
    import threading

    from tts_utils.collect.cache import grid_id, grid_lock

    out = tmp_path / "out"
    C.collect(_small(tmp_path, limit=6), progress=False)
    this_grid = grid_id(json_.loads((out / "manifest.json").read_text()))
    second: dict = {}
    with grid_lock(out, "a-running-grid"):  # another grid's process, still running
        waiter = threading.Thread(target=lambda: second.update(C.collect(_small(tmp_path, limit=3), progress=False)))
        waiter.start()
        waiter.join(timeout=2.0)
        assert waiter.is_alive() and not second  # still waiting while the other grid runs
    waiter.join(timeout=60)
    assert not waiter.is_alive()
    assert pd.read_parquet(second["runs"])["problem_id"].nunique() == 3  # ran once the other finished
    with grid_lock(out, this_grid):  # a shard of the same grid: shares the directory
        six = C.collect(_small(tmp_path, limit=6), progress=False)
    assert C.load_results(out)[1]["problem_id"].nunique() == 6
    three = C.collect(_small(tmp_path, limit=3), progress=False)
    assert pd.read_parquet(three["runs"])["problem_id"].nunique() == 3
    assert pd.read_parquet(six["runs"])["problem_id"].nunique() == 6  # each grid keeps its own tables


def test_a_rerun_reads_its_merged_tables_until_a_chunk_changes(tmp_path, calls, tests_on_path, monkeypatch):
    first = C.collect(_small(tmp_path), progress=False)
    ref = frames_of(first)
    reads = []
    real = pd.read_parquet
    monkeypatch.setattr(pd, "read_parquet", lambda p, *a, **k: reads.append(Path(p)) or real(p, *a, **k))
    assert C.collect(_small(tmp_path), progress=False) == first
    assert not any("chunks" in p.parts for p in reads)  # no chunk read: the grid's tables were kept
    sorted((tmp_path / "out" / "chunks").glob("*.candidates.parquet"))[0].write_bytes(b"")  # damaged
    with pytest.warns(UserWarning, match="is damaged"):
        assert C.collect(_small(tmp_path), progress=False) == first  # recomputed ...
    assert any("chunks" in p.parts for p in reads)  # ... and merged again
    got = frames_of(first)
    frames_equal(ref[0], got[0])
    frames_equal(ref[1], got[1])


def frames_of(paths: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(paths["candidates"]), pd.read_parquet(paths["runs"])


def test_prm_options_reach_load_prm_and_key_only_the_units_that_score(tmp_path, monkeypatch):
    """prm_options go to load_prm as they are; they enter the cache key of PRM units only, and a
    grid without them keeps the keys it had (caches made before the field existed stay valid)."""
    import inspect

    import tts_utils.models.prm
    from tts_utils.collect import config as config_mod
    from tts_utils.collect import run as run_mod

    assert set(config_mod.PRM_OPTIONS) <= set(inspect.signature(tts_utils.models.prm.load_prm).parameters)
    seen = []
    monkeypatch.setattr(tts_utils.models.prm, "load_prm", lambda name, **kw: seen.append((name, kw)))
    cfg = C.parse_config(grid(tmp_path, loader=None, policies=["Qwen2.5-7B-Instruct"],
                              prms=["Qwen2.5-Math-PRM-7B"], prm_options={"device": "auto", "dtype": "bfloat16"}))
    run_mod._load_model(cfg, "prm", "Qwen2.5-Math-PRM-7B")
    assert seen == [("Qwen2.5-Math-PRM-7B", {"device": "auto", "dtype": "bfloat16"})]

    data = {d: make_problems(7) for d in cfg.datasets}
    fps = {("policy", "Qwen2.5-7B-Instruct"): "p", ("prm", "Qwen2.5-Math-PRM-7B"): "r"}

    def keys(**over):
        c = C.parse_config(grid(tmp_path, loader=None, policies=["Qwen2.5-7B-Instruct"],
                                prms=["Qwen2.5-Math-PRM-7B"], **over))
        return {(u.method, u.n_run, u.seed, u.chunk): (u.key, bool(u.prm)) for u in C.plan(c, data, fps)}

    plain, empty, bf16 = keys(), keys(prm_options={}), keys(prm_options={"dtype": "bfloat16"})
    assert plain == empty
    for k, (key, uses_prm) in plain.items():
        assert (bf16[k][0] != key) == uses_prm
    assert any(uses for _, uses in plain.values()) and not all(uses for _, uses in plain.values())

    # On a GPU machine the models run there in bf16: every unit gets other keys than on the CPU
    # (the policy's and, where a PRM scores, the PRM's device), so a cache never mixes the two.
    import tts_utils.models.catalog

    monkeypatch.setattr(tts_utils.models.catalog, "default_device", lambda: "cuda")
    on_gpu = keys()
    assert all(on_gpu[k][0] != key for k, (key, _) in plain.items())
    on_gpu_cpu_policy = keys(backend_options={"device": "cpu"})
    for k, (key, uses_prm) in plain.items():
        assert (on_gpu_cpu_policy[k][0] != key) == uses_prm

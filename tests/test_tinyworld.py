"""The tiny world: generator, checker, tokenizer, deterministic training, and (once built) the
shipped models and their measured properties on a small sample. Fast (< 30 s)."""

from __future__ import annotations

import json
import random

import pytest
import torch

from tts_utils.tinyworld import task
from tts_utils.tinyworld.common import DATA
from tts_utils.tinyworld.tokenizer import LLAMA3, MS_TAG, QWEN, SPECIALS, build_tokenizer

MANIFEST = DATA / "models.json"
built = pytest.mark.skipif(not MANIFEST.exists(), reason="tiny world not built (python -m tts_utils.tinyworld.build)")


# ---------------------------------------------------------------------------------- generator

def test_generator_is_deterministic():
    a, b = task.make_test_sets(), task.make_test_sets()
    assert a == b
    r1, r2 = random.Random(3), random.Random(3)
    assert [task.random_problem(r1, 5) for _ in range(20)] == [task.random_problem(r2, 5) for _ in range(20)]


def test_test_sets_shape_and_shipped_files_match():
    m500, hard = task.make_test_sets()
    assert len(m500) == 500 and len(hard) == 30
    assert {lv: sum(r["level"] == lv for r in m500) for lv in range(1, 6)} == {lv: 100 for lv in range(1, 6)}
    assert set(m500[0]) == {"unique_id", "problem", "answer", "solution", "subject", "level"}
    assert all(r["subject"] == "arithmetic" for r in m500 + hard)
    ops = lambda r: task.num_ops(task.parse_problem(r["problem"]))  # noqa: E731
    assert min(ops(r) for r in hard) > max(ops(r) for r in m500)  # longer chains than any level
    for lv in range(1, 5):  # difficulty comes from the chain's length: it grows level by level
        assert max(ops(r) for r in m500 if r["level"] == lv) < min(ops(r) for r in m500 if r["level"] == lv + 1)
    shipped = DATA / "tinymath500.jsonl"
    if shipped.exists():
        assert [json.loads(x) for x in shipped.read_text().splitlines()] == m500
        assert [json.loads(x) for x in (DATA / "tinyhard30.jsonl").read_text().splitlines()] == hard


def test_solutions_pass_the_checker():
    rng = random.Random(0)
    for level in (1, 2, 3, 4, 5, 6):
        for _ in range(30):
            p = task.random_problem(rng, level)
            assert all(0 <= v <= task.MAX_VALUE for v in task.values(p))
            q = task.problem_text(p)
            assert task.parse_problem(q) == p
            for style in ("terse", "verbose", "mixed"):
                steps = task.solve(p, style, rng)
                assert len(steps) == task.num_ops(p)
                assert all(s.endswith("\n\n") for s in steps[:-1]) and "\\boxed{" in steps[-1]
                assert all(task.check_solution(q, steps)) and task.first_error(q, steps) == -1
                assert task.is_correct("".join(steps), str(task.value(p)))
                if style != "mixed":
                    assert all(task.step_style(s) == style for s in steps)


def test_checker_rejects_wrong_steps():
    q = "Start at 7 and apply a+5 b*3 c-4."
    good = ["a) 7+5=12\n\n", "b) Multiply by 3: 12 * 3 = 36.\n\n", "c) 36-4=32 \\boxed{32}"]
    assert task.check_solution(q, good) == [True, True, True]
    assert task.check_solution(q, ["a) 7+5=13\n\n"]) == [False]              # arithmetic
    assert task.check_solution(q, ["a) 7+6=13\n\n"]) == [False]              # wrong operand
    assert task.check_solution(q, ["a) 8+5=13\n\n"]) == [False]              # wrong start value
    assert task.check_solution(q, ["b) 7*3=21\n\n"]) == [False]              # skipped an operation
    assert task.check_solution(q, ["a) Add 5: 7 * 5 = 12.\n\n"]) == [False]  # words and sign disagree
    assert task.check_solution(q, [good[0], "b) 13*3=39\n\n"]) == [True, False]  # carried the wrong value
    assert task.check_solution(q, [good[0], good[1], "c) 36-4=32 \\boxed{31}"]) == [True, True, False]
    assert task.check_solution(q, [good[0], "b) 12*3=36 \\boxed{36}"]) == [True, False]  # premature answer
    assert task.check_solution(q, [good[0], "nonsense\n\n", good[2]]) == [True, False, False]
    assert task.check_solution(q, good + ["d) 32+1=33"]) == [True, True, True, False]  # after the answer
    assert task.first_error(q, [good[0], "b) 12*3=37\n\n", "c) 37-4=33 \\boxed{33}"]) == 1
    assert task.first_error(q, good[:2]) == 2  # no answer: the missing last step is the error
    with pytest.raises(ValueError):
        task.parse_problem("Start at 7 and apply a+5 c*3.")  # labels out of order


def test_restyle_keeps_content_and_mistakes():
    rng = random.Random(1)
    for _ in range(50):
        p = task.random_problem(rng, rng.randint(1, 5))
        q = task.problem_text(p)
        assert [task.restyle(s, "verbose") for s in task.solve(p, "terse")] == task.solve(p, "verbose")
        assert [task.restyle(s, "terse") for s in task.solve(p, "verbose")] == task.solve(p, "terse")
        wrong = task.solve(p, "terse")
        wrong[0] = wrong[0].replace("=", "=1", 1)
        for style in ("terse", "verbose"):
            assert task.check_solution(q, [task.restyle(s, style) for s in wrong]) == task.check_solution(q, wrong)


def test_no_train_test_overlap():
    test = task.test_problems()
    assert len(test) == 530
    train = task.train_problems(3000, seed=99)
    assert not {task.problem_text(p) for _, p in train} & test
    # the exclusion is real: level 1 has few distinct problems, so unfiltered draws do hit the test set
    rng = random.Random(99)
    draws = {task.problem_text(task.random_problem(rng, 1)) for _ in range(20000)}
    assert draws & test


# ---------------------------------------------------------------------------------- tokenizer

@pytest.mark.parametrize("kind", ["tiny", "rlhflow", "qwen-prm", "math-shepherd", "skywork"])
def test_tokenizer_roundtrip_and_special_tokens(kind, tmp_path):
    from transformers import AutoTokenizer

    build_tokenizer(kind).save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    text = "Start at 12 and apply a*7 b-5.\n\na) Multiply by 7: 12 * 7 = 84.\n\nb) 84-5=79 \\boxed{79}"
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    for t in SPECIALS + LLAMA3 + QWEN + [MS_TAG, "+", "-", "\n"]:
        ids = tok.encode(t, add_special_tokens=False)
        assert len(ids) == 1 and tok.convert_ids_to_tokens(ids[0]) == t, t
    assert tok.pad_token and tok.eos_token


def test_tiny_chat_template_continues_partial_solution():
    tok = build_tokenizer("tiny")
    msgs = [{"role": "user", "content": "Start at 3 and apply a+4 b*2."},
            {"role": "assistant", "content": "a) 3+4=7\n\n"}]
    text = tok.apply_chat_template(msgs, tokenize=False, continue_final_message=True)
    assert text.endswith("<|assistant|>a) 3+4=7\n\n")
    gen = tok.apply_chat_template(msgs[:1], tokenize=False, add_generation_prompt=True)
    assert gen == "<s><|user|>Start at 3 and apply a+4 b*2.<|end|><|assistant|>"


# ---------------------------------------------------------------------------------- training

def test_training_is_bit_reproducible():
    from tts_utils.tinyworld.common import train_causal_lm
    from tts_utils.tinyworld.train_policy import build_policy, make_examples

    tok = build_tokenizer("tiny")
    ex = make_examples(tok, n=64, seed=5)
    spec = dict(hidden=16, layers=1, heads=2, inter=32)
    states, threads = [], torch.get_num_threads()
    try:
        for _ in range(2):
            model = build_policy("t", spec, tok, seed=3)
            train_causal_lm(model, ex, steps=3, batch_size=8, lr=1e-2, pad_id=tok.pad_token_id, seed=5,
                            curve_every=1)
            states.append(model.state_dict())
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(False)
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_best_of_n_curves_never_select_a_sample_without_an_answer():
    from tts_utils.tinyworld.prm_eval import best_of_n_curves

    def rec(sample, text, correct):
        return {"policy": "p", "unique_id": "q", "sample": sample, "steps": [text], "correct": correct}

    # four samples: the best-scored has no answer, the next one is right
    recs = [rec(0, "a) 1+1=2", False), rec(1, "a) 1+1=2 \\boxed{2}", True),
            rec(2, "a) 1+1=3 \\boxed{3}", False), rec(3, "a) 1+1=3 \\boxed{3}", False)]
    rewards = [[0.99], [0.9], [0.5], [0.1]]
    curves = best_of_n_curves(recs, rewards)
    assert curves["last"]["p"]["4"] == curves["min"]["p"]["4"] == 1.0
    assert curves["last"]["p"]["1"] == 0.25  # N = 1: each sample alone, right in one group of four


def test_best_of_n_rise_is_paired_over_problems_with_an_interval():
    """The rise from N = 4 to N = 64 is the per-problem difference of the curve's points, with a
    bootstrap interval over problems around it."""
    from tts_utils.tinyworld.prm_eval import best_of_n_curves

    recs, rewards = [], []
    for q in range(6):
        for j in range(64):
            right = j == 63 - q  # one right sample a problem, the PRM scores it highest
            recs.append({"policy": "p", "unique_id": f"q{q}", "sample": j, "correct": right,
                         "steps": [f"a) 1+1={2 if right else 3} \\boxed{{{2 if right else 3}}}"]})
            rewards.append([0.9 if right else 0.1 + 0.001 * j])
    curves = best_of_n_curves(recs, rewards)
    rise = curves["rise"]["last"]["p"]
    c = curves["last"]["p"]
    assert c["64"] == 1.0 and c["4"] == 0.0625
    assert rise["n"] == 64 and rise["problems"] == 6
    assert rise["diff"] == round(c["64"] - c["4"], 4)
    assert rise["ci95"][0] <= rise["diff"] <= rise["ci95"][1] and rise["p"] < 0.05


def test_build_seconds_counts_slowest_lane_cpu():
    from tts_utils.tinyworld.report import build_seconds

    t = {"test-sets": 1.0, "policies": 100.0, "policies:lane_cpu": [80.0, 60.0], "report": 2.0}
    assert build_seconds(t) == {"wall_s": 103.0, "two_idle_cores_s": 83.0,
                                "stages_wall_s": {"test-sets": 1.0, "policies": 100.0, "report": 2.0}}
    assert build_seconds({}) is None
    # a build that retrained one model counts every model's own seconds, lane by lane
    lanes, secs = [["a", "b"], ["c"]], {"a": 50.0, "b": 40.0, "c": 70.0}
    assert build_seconds(t, lanes, secs)["two_idle_cores_s"] == 93.0


# ---------------------------------------------------------------------------------- shipped

def _manifest():
    return json.loads(MANIFEST.read_text())


@built
def test_manifest_and_weights():
    from tts_utils.models.catalog import get_model

    recs = _manifest()
    pols = [r for r in recs if r["kind"] == "policy"]
    prms = [r for r in recs if r["kind"] == "prm"]
    assert len(pols) >= 4 and max(r["params"] for r in pols) >= 10 * min(r["params"] for r in pols)
    assert {r["prm_format"] for r in prms} == {"math-shepherd", "rlhflow", "skywork", "qwen-prm"}
    total = 0
    for r in recs:
        spec = get_model(r["name"])
        d = spec.local_path()
        assert (d / "model.safetensors").exists() and (d / "config.json").exists()
        assert (d / "model.safetensors").stat().st_mode & 0o044 == 0o044  # readable by all
        total += (d / "model.safetensors").stat().st_size
    total += (DATA / "tiny-judge" / "model.safetensors").stat().st_size  # no model of the study, shipped
    assert total < 50e6


@built
def test_shipped_policies_reproduce_their_report_and_targets():
    """The shipped weights, re-measured here (greedy on all of levels 1, 2 and 5; ~10 s), give exactly
    the report's accuracies, so the targets the report computes from them (see the next test) hold
    for the weights; and accuracy on the easy levels rises with size."""
    from tts_utils.tinyworld.evaluate import _generate, load_policy, load_sets

    report = json.loads((DATA / "report.json").read_text())
    pols = sorted([r["name"] for r in _manifest() if r["kind"] == "policy"],
                  key=lambda n: report["policies"][n]["train"]["params"])
    m500, _ = load_sets()
    greedy = {}
    for name in pols:
        model, tok = load_policy(name)
        for lv in (1, 2, 5):
            probs = [r for r in m500 if r["level"] == lv]
            outs = _generate(model, tok, probs, 1, temperature=0.0, seed=0, batch_size=128)
            greedy[name, lv] = sum(task.is_correct(o, r["answer"]) for o, r in zip(outs, probs, strict=True)) / len(probs)
            assert greedy[name, lv] == report["policies"][name]["eval"]["greedy"][f"L{lv}"], (name, lv)
    easy = [greedy[n, 1] + greedy[n, 2] for n in pols]
    assert easy == sorted(easy), easy


@built
def test_report_targets_are_computed_from_its_measurements():
    """Every target of the report is recomputed from the report's own measurements: a "met" can only
    come from the numbers beside it."""
    from tts_utils.tinyworld.report import targets

    report = json.loads((DATA / "report.json").read_text())
    prms = {n: p for n, p in report["prms"].items() if p["eval"]}
    judge = next((j["eval"] for j in report["judge"].values()), None)
    assert targets(report["policies"], prms, report["total_weight_bytes"], report["build_s"], judge) == report["targets"]
    assert len(report["targets"]) >= 12


TOKENIZER_PROBE = ("Start at 12 and apply a*7 b-5.\n\na) Multiply by 7: 12 * 7 = 84.\n\nb) 84-5=79 \\boxed{79}"
                   " ки\n<extra_0><|im_start|><|eot_id|>")


@built
def test_shipped_models_tokenize_at_inference_as_in_training():
    """Each shipped model's tokenizer, loaded the way inference loads it (load_prm / the policy
    loader), gives the ids its training used (build_tokenizer of its kind) and the same chat
    template: under transformers 5, AutoTokenizer turned the Qwen-format PRM's tokenizer into a
    Qwen2Tokenizer that dropped every space and newline."""
    from tts_utils.models.catalog import get_model, load_tokenizer
    from tts_utils.models.prm import load_prm

    for r in _manifest():
        kind = "tiny" if r["kind"] == "policy" else r["prm_format"]
        want = build_tokenizer(kind)
        src = str(get_model(r["name"]).local_path())
        got = load_prm(r["name"]).tokenizer if r["kind"] == "prm" else load_tokenizer(src)
        assert got.encode(TOKENIZER_PROBE, add_special_tokens=False) == \
            want.encode(TOKENIZER_PROBE, add_special_tokens=False), r["name"]
        assert got.encode("a) 1+2=3") == want.encode("a) 1+2=3"), r["name"]  # BOS handling too
        assert got.chat_template == want.chat_template, r["name"]


@built
def test_shipped_prms_load_and_score():
    from tts_utils.models.prm import load_prm

    q = "Start at 7 and apply a+5 b*3 c-4."
    good = ["a) 7+5=12\n\n", "b) Multiply by 3: 12 * 3 = 36.\n\n", "c) 36-4=32 \\boxed{32}"]
    for r in [r for r in _manifest() if r["kind"] == "prm"]:
        prm = load_prm(r["name"])
        (s,) = prm.score([q], [good])
        assert len(s.rewards) == 3 and all(0 <= x <= 1 for x in s.rewards)


@pytest.mark.parametrize("name", ["tiny-prm-shepherd", "tiny-prm-rlhflow-terse", "tiny-prm-skywork", "tiny-prm-qwen"])
def test_shipped_prms_score_the_same_bits_alone_and_in_a_batch(name):
    """Every real format on real weights and many read positions: a reward is the same bits whether
    its solution is scored alone or among 32 others. (Skywork's sigmoid, taken in float32, moved
    about 1 reward in 40 by a last bit with the batch: torch's vectorized and scalar float32 paths
    differ, and an element's place in the tensor picks one.)"""
    from tts_utils.models.prm import load_prm
    from tts_utils.problems.datasets import load_dataset
    from tts_utils.problems.prompts import split_steps

    problems = load_dataset("tinymath500")[::8]
    questions, solutions = [p.problem for p in problems], [split_steps(p.solution) for p in problems]
    prm = load_prm(name)
    prm.share_prefixes = False
    runs = []
    for batch_size in (1, 32):
        prm.batch_size = batch_size
        runs.append([s.rewards for s in prm.score(questions, solutions)])
    assert sum(len(r) for r in runs[0]) > 300
    moved = [(i, a, b) for i, (a, b) in enumerate(zip(*runs, strict=True)) if a != b]
    assert not moved, moved[:3]


def test_every_prm_is_trained_and_evaluated_once_in_the_build_lanes():
    from tts_utils.tinyworld.build import PRM_EVAL_LANES, PRM_LANES
    from tts_utils.tinyworld.train_prm import PRMS

    for lanes in (PRM_LANES, PRM_EVAL_LANES):
        names = [n for lane in lanes for n in lane]
        assert sorted(names) == sorted(PRMS)


@built
def test_the_auxiliary_target_reads_every_step_where_each_format_put_it():
    """The PRMs' training-only target (train_prm.policy_char_probs) is placed on each step's own
    characters in every format's input: the positions found hold exactly the step's text, in
    order, each step before its own read position and after the previous one's."""
    from tts_utils.models.prm import load_prm
    from tts_utils.tinyworld.train_prm import step_text_positions

    q = "Start at 7 and apply a+5 b*3 c-4."
    steps = ["a) 7+5=12\n\n", "b) Multiply by 3: 12 * 3 = 36.\n\n", "c) 36-4=32 \\boxed{32}"]
    for r in [r for r in _manifest() if r["kind"] == "prm"]:
        prm = load_prm(r["name"])
        ids, reads = prm.encode(q, steps)
        where = step_text_positions(prm.tokenizer, ids, reads, steps)
        prev = -1
        for st, w, read in zip(steps, where, reads, strict=True):
            assert prm.tokenizer.decode([ids[i] for i in w]) == st.strip(), r["name"]
            assert prev < w[0] and w[-1] < read, r["name"]
            prev = read


@built
def test_the_auxiliary_target_singles_out_a_slipped_character():
    """The target is the starting policy's probability of each character: on right solutions and
    the same solutions with one result off by one, the slipped digit gets a lower probability
    than the right digit had, and the characters before the slip keep theirs."""
    from tts_utils.tinyworld.train_prm import policy_char_probs

    rng = random.Random(3)
    right, slipped = [], []
    for _ in range(30):
        p = task.random_problem(rng, 2)
        steps = task.solve(p, "terse")
        bad = list(steps)
        label, a, op, k, c, _ = task.parse_step(bad[1])
        bad[1] = task.format_step(1, a, op, k, c + 1, len(steps) == 2, "terse") + bad[1][len(bad[1].rstrip()):]
        q = task.problem_text(p)
        right.append({"problem": q, "steps": steps})
        slipped.append({"problem": q, "steps": bad})
    ok, bad_ = policy_char_probs("tiny-policy-l", right), policy_char_probs("tiny-policy-l", slipped)
    lower = 0
    for r, s, a, b in zip(right, slipped, ok, bad_, strict=True):
        assert [len(x) for x in a] == [len(st.strip()) for st in r["steps"]]
        assert all(0 < x <= 1 for x in a[0] + b[0])
        assert a[0] == b[0]  # a step before the slip is untouched
        i = next(j for j, (x, y) in enumerate(zip(r["steps"][1], s["steps"][1], strict=False)) if x != y)
        lower += b[1][i] < a[1][i]
    assert lower >= 27, lower


@built
def test_the_prm_ladder_holds_on_fresh_samples():
    """The report's strongest PRM finds first errors that its weakest misses, on samples neither
    was trained or evaluated on: tiny-policy-m's T = 0.7 samples of problems drawn with a seed of
    this test's own (ProcessBench's first-error F1, as the report measures it)."""
    from tts_utils.models.prm import load_prm
    from tts_utils.tinyworld.common import generate
    from tts_utils.tinyworld.evaluate import load_policy
    from tts_utils.tinyworld.prm_eval import processbench_f1
    from tts_utils.tinyworld.train_policy import prompt

    report = json.loads((DATA / "report.json").read_text())
    f1 = {n: p["eval"]["processbench"]["f1"] for n, p in report["prms"].items()}
    strongest, weakest = max(f1, key=f1.get), min(f1, key=f1.get)
    problems = [task.problem_text(p) for _, p in task.train_problems(24, seed=99, levels=(2, 3, 4))]
    model, tok = load_policy("tiny-policy-m")
    questions = [q for q in problems for _ in range(8)]
    texts = generate(model, tok, [prompt(tok, q) for q in questions], temperature=0.7, max_new_tokens=400, seed=5)
    recs = [{"problem": q, "steps": task.split_steps(t)} for q, t in zip(questions, texts, strict=True)]
    recs = [dict(r, exact=task.check_solution(r["problem"], r["steps"])) for r in recs if r["steps"]]
    got = {}
    for name in (strongest, weakest):
        rewards = [s.rewards for s in load_prm(name).score([r["problem"] for r in recs], [r["steps"] for r in recs])]
        got[name] = processbench_f1(recs, rewards)["f1"]
    assert got[strongest] >= got[weakest] + 0.2, got


def test_the_build_reruns_a_changed_stage_and_what_reads_it_nothing_else(tmp_path, monkeypatch):
    from tts_utils.tinyworld import build

    ran, digests = [], dict.fromkeys(build.STAGES, "v1")
    monkeypatch.setattr(build, "RUNS", tmp_path)
    monkeypatch.setattr(build, "log", lambda *a, **k: None)
    monkeypatch.setattr(build, "code_digest", lambda st, without_specs=False: digests[st])
    monkeypatch.setattr(build, "RUN", {st: (lambda *a, st=st: ran.append(st)) for st in build.STAGES})
    build.main([])
    assert ran == build.STAGES  # nothing recorded: everything
    ran.clear()
    build.main([])
    assert ran == []  # up to date
    digests["prm-train"] = "v2"
    build.main([])
    assert ran == ["prm-train", "evaluate-prms", "report"]  # not the policies, samples or rollouts
    ran.clear()
    digests["evaluate-policies"] = "v2"
    build.main(["--only", "report"])
    assert ran == ["report"]  # --only / --from run what they name, changed or not
    ran.clear()
    build.main([])
    assert ran == ["evaluate-policies", "report"]


def test_the_build_retrains_only_the_model_whose_row_changed(tmp_path, monkeypatch):
    """Changing one row of the table of shapes retrains that model and reruns what reads the
    policies; a change to the training code itself retrains every model."""
    from tts_utils.tinyworld import build, train_policy

    trained, digests = [], dict.fromkeys(build.STAGES, "v1")
    monkeypatch.setattr(build, "RUNS", tmp_path)
    monkeypatch.setattr(build, "log", lambda *a, **k: None)
    monkeypatch.setattr(build, "code_digest", lambda st, without_specs=False: digests[st])
    run = {st: (lambda *a: None) for st in build.STAGES}
    run["policies"] = lambda models=None: trained.append(models)
    monkeypatch.setattr(build, "RUN", run)
    build.main([])
    assert trained == [[*train_policy.POLICIES, *train_policy.JUDGE]]  # nothing recorded: every model
    trained.clear()
    monkeypatch.setitem(train_policy.POLICIES, "tiny-policy-s", dict(train_policy.POLICIES["tiny-policy-s"], steps=1))
    build.main([])
    assert trained == [["tiny-policy-s"]]
    trained.clear()
    digests["policies"] = "v2"
    build.main([])
    assert trained == [[*train_policy.POLICIES, *train_policy.JUDGE]]


def test_the_specs_leave_the_code_digest_and_nothing_else_does():
    from tts_utils.tinyworld.build import _without_spec_tables

    src = "A = 1\nPOLICIES = {'x': 1}\nJUDGE = {'j': 2}\ndef f():\n    return A\n"
    assert _without_spec_tables(src) == _without_spec_tables(src.replace("'x': 1", "'x': 2") + "# a comment\n")
    assert _without_spec_tables(src) != _without_spec_tables(src.replace("A = 1", "A = 2"))


def test_a_stages_code_is_its_module_and_what_that_imports():
    from tts_utils.tinyworld import build

    files = {str(p.relative_to(build.ROOT)) for p in build.code_files(["prm_eval"])}
    assert {"tts_utils/tinyworld/prm_eval.py", "tts_utils/tinyworld/train_prm.py", "tts_utils/models/prm.py",
            "tts_utils/tinyworld/task.py"} <= files
    assert "tts_utils/tinyworld/report.py" not in files and "tts_utils/study/grid.py" not in files
    assert build.code_files(["task"]) == [build.ROOT / "tts_utils/tinyworld/task.py"]


def test_the_format_lesson_trains_on_the_solution_in_the_prms_own_layout():
    """train_prm.format_example: a right solution in the Qwen-PRM format, the loss on the solution
    (from its first character, separators included), never on the system prompt or question."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from tts_utils.models.prm import PRM_CLASSES
    from tts_utils.tinyworld.train_prm import format_example

    tok = build_tokenizer("qwen-prm")
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=8, intermediate_size=8,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1))
    prm = PRM_CLASSES["qwen-prm"](model, tok)
    q, steps = "a) 3 + 4\nb) ...", ["a) 3+4=7\n\n", "b) 7*2=14 \\boxed{14}"]
    ids, mask = format_example(prm, q, steps)
    trained = tok.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert trained.startswith("a) 3+4=7<extra_0>b) 7*2=14") and q not in trained
    assert mask == sorted(mask) and len(ids) == len(mask)  # one contiguous trained tail

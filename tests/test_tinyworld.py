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
    assert [task.random_expression(r1, 5) for _ in range(20)] == [task.random_expression(r2, 5) for _ in range(20)]


def test_test_sets_shape_and_shipped_files_match():
    m500, hard = task.make_test_sets()
    assert len(m500) == 500 and len(hard) == 30
    assert {lv: sum(r["level"] == lv for r in m500) for lv in range(1, 6)} == {lv: 100 for lv in range(1, 6)}
    assert set(m500[0]) == {"unique_id", "problem", "answer", "solution", "subject", "level"}
    assert all(r["subject"] == "arithmetic" for r in m500 + hard)
    ops = lambda r: task.num_ops(task.expression_of(r["problem"]))  # noqa: E731
    assert min(ops(r) for r in hard) > max(ops(r) for r in m500)  # harder than any training level
    assert [ops(r) for r in m500 if r["level"] == 1] == [1] * 100
    shipped = DATA / "tinymath500.jsonl"
    if shipped.exists():
        assert [json.loads(x) for x in shipped.read_text().splitlines()] == m500
        assert [json.loads(x) for x in (DATA / "tinyhard30.jsonl").read_text().splitlines()] == hard


def test_solutions_pass_the_checker():
    rng = random.Random(0)
    for level in (1, 2, 3, 4, 5, 6):
        for _ in range(30):
            t = task.random_expression(rng, level)
            assert all(v >= 0 for v in task.all_values(t))
            q = task.problem_text(t)
            assert task.parse(task.render(t)) == t and task.parse(task.render(t, spaced=True)) == t
            for style in ("terse", "verbose"):
                steps = task.solve(t, style, rng if rng.random() < 0.5 else None)
                assert len(steps) == task.num_ops(t)
                assert all(s.endswith("\n\n") for s in steps[:-1]) and "\\boxed{" in steps[-1]
                assert all(task.check_solution(q, steps)) and task.first_error(q, steps) == -1
                assert task.is_correct("".join(steps), str(task.value(t)))
                assert all(task.step_style(s) == style for s in steps)


def test_checker_rejects_wrong_steps():
    q = "Compute 3+4*5-7."
    good = ["4*5=20: 3+20-7\n\n", "3+20=23: 23-7\n\n", "23-7=16: \\boxed{16}"]
    assert task.check_solution(q, good) == [True, True, True]
    assert task.check_solution(q, ["3+4=7: 7*5-7\n\n"]) == [False]            # not a ready operation
    assert task.check_solution(q, ["4*5=21: 3+21-7\n\n"]) == [False]          # arithmetic
    assert task.check_solution(q, ["4*5=20: 3+20-8\n\n"]) == [False]          # copy error in the rewrite
    assert task.check_solution(q, ["4*5=20: \\boxed{20}"]) == [False]        # premature answer
    assert task.check_solution(q, [good[0], good[1], "23-7=16: \\boxed{15}"]) == [True, True, False]
    assert task.check_solution(q, [good[0], "Add 3 and 20: 3 + 20 = 23. Now we have 23 - 7.\n\n", good[2]]) \
        == [True, True, True]
    assert task.check_solution(q, ["4*5=20: 3+20-7\n\n", "nonsense\n\n", good[2]]) == [True, False, False]
    assert task.first_error(q, ["4*5=20: 3+20-7\n\n", "3+20=24: 24-7\n\n", "24-7=17: \\boxed{17}"]) == 1
    assert task.first_error(q, good[:2]) == 2  # no answer: the missing last step is the error
    # any ready operation may go first
    q2 = "Compute 2*3+4*5."
    assert task.check_solution(q2, ["4*5=20: 2*3+20\n\n", "2*3=6: 6+20\n\n", "6+20=26: \\boxed{26}"]) == [True] * 3


def test_restyle_keeps_content_and_mistakes():
    rng = random.Random(1)
    for _ in range(50):
        t = task.random_expression(rng, rng.randint(1, 5))
        q = task.problem_text(t)
        assert [task.restyle(s, "verbose") for s in task.solve(t, "terse")] == task.solve(t, "verbose")
        assert [task.restyle(s, "terse") for s in task.solve(t, "verbose")] == task.solve(t, "terse")
        wrong = task.solve(t, "terse")
        wrong[0] = wrong[0].replace("=", "=1", 1)
        for style in ("terse", "verbose"):
            assert task.check_solution(q, [task.restyle(s, style) for s in wrong]) == task.check_solution(q, wrong)


def test_no_train_test_overlap():
    test = task.test_expressions()
    assert len(test) == 530
    train = task.train_problems(3000, seed=99)
    assert not {task.problem_text(t) for _, t in train} & test
    # the exclusion is real: level 1 has few distinct problems, so unfiltered draws do hit the test set
    rng = random.Random(99)
    draws = {task.problem_text(task.random_expression(rng, 1)) for _ in range(3000)}
    assert draws & test


# ---------------------------------------------------------------------------------- tokenizer

@pytest.mark.parametrize("kind", ["tiny", "rlhflow", "qwen-prm", "math-shepherd", "skywork"])
def test_tokenizer_roundtrip_and_special_tokens(kind, tmp_path):
    from transformers import AutoTokenizer

    build_tokenizer(kind).save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    text = "Compute 12*(3+4)-5.\n\nMultiply 12 by 7: 12 * 7 = 84. Now we have 84 - 5.\n\n84-5=79: \\boxed{79}"
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    for t in SPECIALS + LLAMA3 + QWEN + [MS_TAG, "+", "-", "\n"]:
        ids = tok.encode(t, add_special_tokens=False)
        assert len(ids) == 1 and tok.convert_ids_to_tokens(ids[0]) == t, t
    assert tok.pad_token and tok.eos_token


def test_tiny_chat_template_continues_partial_solution():
    tok = build_tokenizer("tiny")
    msgs = [{"role": "user", "content": "Compute 3+4."}, {"role": "assistant", "content": "3+4=7: \\boxed{7}\n\n"}]
    text = tok.apply_chat_template(msgs, tokenize=False, continue_final_message=True)
    assert text.endswith("<|assistant|>3+4=7: \\boxed{7}\n\n")
    gen = tok.apply_chat_template(msgs[:1], tokenize=False, add_generation_prompt=True)
    assert gen == "<s><|user|>Compute 3+4.<|end|><|assistant|>"


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


def test_falls_with_level_tolerates_floor_ties_only():
    from tts_utils.tinyworld.report import falls_within_noise, fisher_greater

    assert fisher_greater(1, 100, 0, 100) == pytest.approx(0.5)  # one problem of 100 is noise
    assert fisher_greater(5, 100, 0, 100) < 0.05
    assert falls_within_noise([10, 3, 1, 0, 1], 100)       # 0/100 then 1/100 at the floor
    assert not falls_within_noise([5, 5, 5, 5, 5], 100)    # flat: L1 not above L5
    assert not falls_within_noise([30, 10, 25, 5, 0], 100)  # L3 clearly above L2


def test_build_seconds_counts_slowest_lane_cpu():
    from tts_utils.tinyworld.report import build_seconds

    t = {"test-sets": 1.0, "policies": 100.0, "policies:lane_cpu": [80.0, 60.0], "report": 2.0}
    assert build_seconds(t) == {"wall_s": 103.0, "two_idle_cores_s": 83.0,
                                "stages_wall_s": {"test-sets": 1.0, "policies": 100.0, "report": 2.0}}
    assert build_seconds({}) is None


# ---------------------------------------------------------------------------------- shipped

def _manifest():
    return json.loads(MANIFEST.read_text())


@built
def test_manifest_and_weights():
    from tts_utils.models import get_model

    recs = _manifest()
    pols = [r for r in recs if r["kind"] == "policy"]
    prms = [r for r in recs if r["kind"] == "prm"]
    assert len(pols) >= 4 and max(r["params"] for r in pols) >= 30 * min(r["params"] for r in pols)
    assert {r["prm_format"] for r in prms} == {"math-shepherd", "rlhflow", "skywork", "qwen-prm"}
    total = 0
    for r in recs:
        spec = get_model(r["name"])
        d = spec.local_path()
        assert (d / "model.safetensors").exists() and (d / "config.json").exists()
        assert (d / "model.safetensors").stat().st_mode & 0o044 == 0o044  # readable by all
        total += (d / "model.safetensors").stat().st_size
    assert total < 30e6


@built
def test_shipped_policies_reproduce_their_report_and_properties():
    """The shipped weights, re-measured here (greedy on all of levels 1, 2 and 5, sampling on 20
    level-2 problems; ~5 s), give exactly the report's accuracies and still have the issue's
    properties: accuracy rises with size and falls with level, the largest policy stays below 60%
    on level 5, and sampling finds answers greedy decoding misses at every size."""
    from tts_utils.tinyworld.evaluate import _generate, load_policy, load_sets

    report = json.loads((DATA / "report.json").read_text())
    pols = sorted([r["name"] for r in _manifest() if r["kind"] == "policy"],
                  key=lambda n: report["policies"][n]["train"]["params"])
    m500, _ = load_sets()

    def accuracy(probs, outs, k=1):
        return sum(any(task.is_correct(outs[i * k + j], r["answer"]) for j in range(k))
                   for i, r in enumerate(probs)) / len(probs)

    greedy, sampled = {}, {}
    few = [r for r in m500 if r["level"] == 2][:20]
    for name in pols:
        model, tok = load_policy(name)
        for lv in (1, 2, 5):
            probs = [r for r in m500 if r["level"] == lv]
            greedy[name, lv] = accuracy(probs, _generate(model, tok, probs, 1, temperature=0.0, seed=0, batch_size=128))
            assert greedy[name, lv] == report["policies"][name]["eval"]["greedy"][f"L{lv}"], (name, lv)
        sampled[name] = (accuracy(few, _generate(model, tok, few, 8, temperature=0.7, seed=3, batch_size=256), k=8),
                         accuracy(few, _generate(model, tok, few, 1, temperature=0.0, seed=0, batch_size=128)))
    easy = [greedy[n, 1] + greedy[n, 2] for n in pols]
    assert easy == sorted(easy) and len(set(easy)) == len(easy), easy
    assert all(greedy[n, 1] > greedy[n, 5] for n in pols)
    assert greedy[pols[-1], 5] < 0.6
    assert all(passk > g for passk, g in sampled.values()), sampled


@built
def test_shipped_prms_load_and_score():
    from tts_utils.prm import load_prm

    q = "Compute 3+4*5-7."
    good = ["4*5=20: 3+20-7\n\n", "3+20=23: 23-7\n\n", "23-7=16: \\boxed{16}"]
    for r in [r for r in _manifest() if r["kind"] == "prm"]:
        prm = load_prm(r["name"])
        (s,) = prm.score([q], [good])
        assert len(s.rewards) == 3 and all(0 <= x <= 1 for x in s.rewards)

"""Answer extraction and equivalence, on unit cases and on the real benchmark files."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tts_utils.problems import grading
from tts_utils.problems.datasets import load_dataset
from tts_utils.problems.grading import extract_answer, grade, is_equivalent

# --- extract_answer ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("nested: \\boxed{\\sqrt{\\frac{a}{b^{2}}}} done", "\\sqrt{\\frac{a}{b^{2}}}"),
        ("first \\boxed{1}, then \\boxed{2}", "2"),  # the last box wins
        ("escaped braces \\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("one-sided \\boxed{\\left\\{ x \\right.}", "\\left\\{ x \\right."),
        ("no braces: \\boxed 5.", "5"),
        ("\\fbox{7}", "7"),
        ("AoPS style $\\framebox{204}$ minutes", "204"),
        ("The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}"),
        ("Therefore the answer is: 42.", "42"),
        ("Answer: 3.5", "3.5"),
        ("The answer is 12. Next, something else", "12"),
    ],
)
def test_extract_answer_cases(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "\\boxed{12",  # truncated: the answer itself is incomplete
        "\\boxed{3} and then \\boxed{\\frac{1}{2}",  # last box truncated: no earlier fallback
        "\\boxed{}",
        "\\boxed",
        "\\boxedfoo{3}",  # another command, not a box
        "no answer here",
        "",
        "}}}{{{",
        None,
        17,
        ["\\boxed{1}"],
        b"\\boxed{1}",
    ],
)
def test_extract_answer_none_and_never_raises(text):
    assert extract_answer(text) is None


# --- is_equivalent ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("\\frac{1}{2}", "\\frac{1}{2}"),
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),
        ("0.5", "\\frac12"),
        ("\\frac{\\sqrt3}2", "\\frac{\\sqrt{3}}{2}"),
        ("045", "45"),  # AIME-style zero padding, fast path
        ("\\textbf{(073)}", "73"),  # AoPS style; math-verify alone reads \text{073} as a symbol
        ("2.50", "2.5"),
        ("[1, 2)", "[1,2)"),
        ("\\{2, 1\\}", "\\{1,2\\}"),
        ("\\text{(B)}", "B"),
        ("(B)", "\\text{(B)}"),
        ("$\\frac{1}{2}$", "\\frac{1}{2}"),
        ("\\boxed{204}", "204"),
        ("1,000", "1000"),
        (5, "5"),
        (5, 5.0),
    ],
)
def test_equivalent_pairs(pred, gold):
    assert is_equivalent(pred, gold)


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("\\frac{1}{3}", "\\frac{1}{2}"),
        ("0.5", "0.6"),
        ("[1,2)", "(1,2]"),  # same end points, other interval
        ("(1,2)", "[1,2]"),
        ("\\text{(B)}", "\\text{(C)}"),
        ("3", "-3"),
        (None, "1"),
        ("1", None),
        (None, None),
        (True, "1"),  # a bool is not an answer
        ("", ""),
        ("   ", "1"),
        (["1"], "1"),
        ("\\boxed{12", "12"),
        ("}{garbage\\frac{", "1"),
    ],
)
def test_not_equivalent_pairs(pred, gold):
    assert not is_equivalent(pred, gold)


def test_grade_composes_extraction_and_equivalence():
    assert grade("... so $x = \\boxed{\\dfrac{1}{2}}$.", "0.5")
    assert not grade("... so $x = \\boxed{\\dfrac{1}{3}}$.", "0.5")
    assert not grade(None, "0.5")


def test_works_off_the_main_thread():
    # math-verify's signal timeout raises off the main thread; the grader must switch it off.
    # Fresh strings, so that the cache cannot answer for the worker thread.
    results: list[bool] = []
    pairs = [("\\frac{7}{14}", "\\dfrac{1}{2}"), ("\\sqrt{16}", "4"), ("\\frac{2}{7}", "\\frac{3}{7}")]
    worker = threading.Thread(target=lambda: results.extend(is_equivalent(p, g) for p, g in pairs))
    worker.start()
    worker.join(timeout=60)
    assert results == [True, True, False]


def _warm_worker() -> None:
    # Start the math-verify worker outside the timed part (its start imports sympy); past
    # is_equivalent's cache, which would answer without a worker.
    assert grading._math_verify_equal("\\frac{3}{9}", "\\dfrac{1}{3}")


def _timed(fn, *args) -> tuple[object, float]:
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def test_time_is_bounded_in_the_main_thread(monkeypatch):
    # A power tower sympy tries to evaluate for ever; the worker's timeout must cut it off.
    _warm_worker()
    monkeypatch.setattr(grading, "TIMEOUT_S", 1)
    result, elapsed = _timed(is_equivalent, "9^{9^{9^{9}}}", "1")
    assert result is False
    assert elapsed < 4 * grading.TIMEOUT_S, elapsed


def test_time_is_bounded_off_the_main_thread(monkeypatch):
    # Off the main thread math-verify has no timeout of its own (signal.alarm); this tower took
    # 118 s and 3.4 GB there before grading moved math-verify into a worker process.
    _warm_worker()
    monkeypatch.setattr(grading, "TIMEOUT_S", 1)
    timed: list = []
    worker = threading.Thread(target=lambda: timed.append(_timed(is_equivalent, "2^{2^{2^{2^{2^{2}}}}}", "1")))
    worker.start()
    worker.join(timeout=60)
    assert timed and timed[0][0] is False
    assert timed[0][1] < 4 * grading.TIMEOUT_S, timed
    assert is_equivalent("\\sqrt{25}", "5")  # a fresh worker answers the next comparison


def test_long_blank_runs_grade_in_linear_time(monkeypatch):
    # Degenerate generations hold long runs of blanks; quadratic regexes took 9 s (40k) and over
    # 90 s (200k) to extract, and 28 s to compare a \text{...} answer.
    blanks = " " * 200_000
    answer, elapsed = _timed(extract_answer, "Answer: a" + blanks + "b")
    assert answer == "a" + blanks + "b"
    assert elapsed < 1.0, elapsed
    answer, elapsed = _timed(extract_answer, "The answer is 7" + blanks + "I hope it is correct.")
    assert answer == "7"
    assert elapsed < 1.0, elapsed
    dressed, elapsed = _timed(grading._as_answer, "\\text{" + blanks + "x}")
    assert dressed.startswith("\\text{") and elapsed < 1.0, elapsed
    assert grading._as_answer("\\textbf{ ( 073 ) }") == "073"
    # math-verify itself is slow on such an answer: the worker's timeout bounds it
    _warm_worker()
    monkeypatch.setattr(grading, "TIMEOUT_S", 1)
    result, elapsed = _timed(is_equivalent, "\\text{" + " " * 40_000 + "x}", "1")
    assert result is False
    assert elapsed < 4 * grading.TIMEOUT_S, elapsed


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_worker():
    # A child sharing its parent's worker pipes would read the parent's answers, and the parent the child's.
    _warm_worker()
    parent_worker = grading._WORKER.proc.pid
    pid = os.fork()
    if pid == 0:  # the child: grade, then leave at once, whatever happens (no atexit, no pytest)
        code = 1
        try:
            ok = grading._math_verify_equal("\\frac{4}{8}", "\\dfrac{1}{2}")
            code = 0 if ok and grading._WORKER.proc.pid != parent_worker else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert grading._WORKER.proc.pid == parent_worker
    assert grading._math_verify_equal("\\frac{6}{8}", "\\dfrac{3}{4}")


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="reads the limit from Linux's /proc")
def test_worker_memory_is_limited():
    _warm_worker()
    limits = Path(f"/proc/{grading._WORKER.proc.pid}/limits").read_text()
    line = next(x for x in limits.splitlines() if x.startswith("Max address space"))
    assert line.split()[3] == str(grading.MEMORY_LIMIT_BYTES), line


# --- the benchmark files ----------------------------------------------------------------------


def test_math500_reference_solutions_self_consistent():
    """Share of MATH-500 reference solutions whose boxed answer grades equal to `answer`.

    Measured (math-verify 0.9.0): 500/500 through `grade`, and 500/500 through math-verify
    alone. In this file the last \\boxed{} of every solution is character-identical to the
    `answer` field, so `grade` passes on its string shortcut; the math-verify-only share is
    the real check that every gold answer parses to something equal to itself, and the
    \\dfrac rewrite checks that differently written equal answers match.
    """
    problems = load_dataset("math500")
    start = time.perf_counter()
    extracted = [extract_answer(p.solution) for p in problems]
    graded = [grade(p.solution, p.answer) for p in problems]
    via_math_verify = [grading._math_verify_equal(x, p.answer) if x else False
                       for x, p in zip(extracted, problems, strict=True)]
    seconds = time.perf_counter() - start
    exceptions = [(p.id, p.answer, x) for p, x, ok in zip(problems, extracted, graded, strict=True) if not ok]
    mv_exceptions = [(p.id, p.answer, x) for p, x, ok in zip(problems, extracted, via_math_verify, strict=True)
                     if not ok]
    share, mv_share = sum(graded) / len(problems), sum(via_math_verify) / len(problems)
    print(f"\nMATH-500 self-consistency: grade {share:.1%}, math-verify only {mv_share:.1%} "
          f"({seconds:.1f} s); exceptions: {exceptions or 'none'}; math-verify: {mv_exceptions or 'none'}")
    assert len(problems) == 500
    assert share >= 0.99, exceptions
    assert mv_share >= 0.99, mv_exceptions

    # Equal answers written differently: \frac -> \dfrac must not change the verdict.
    with_frac = [p for p in problems if "\\frac" in p.answer]
    assert len(with_frac) > 20  # the check below must have something to check
    rewritten_ok = [is_equivalent(p.answer.replace("\\frac", "\\dfrac"), p.answer) for p in with_frac]
    assert all(rewritten_ok), [p.answer for p, ok in zip(with_frac, rewritten_ok, strict=True) if not ok]


def test_math500_answers_discriminate():
    # Each gold answer against the next problem's: string-different answers must almost never
    # match, or the grader would be accepting everything. Known legitimate match: "5" vs "x=5"
    # (math-verify reads an assignment "x=5" as its value, which is what graders want).
    answers = [p.answer for p in load_dataset("math500")]
    pairs = [(a, b) for a, b in zip(answers, answers[1:], strict=False) if a.strip() != b.strip()]
    matched = [(a, b) for a, b in pairs if is_equivalent(a, b)]
    print(f"\ncross-problem matches: {len(matched)}/{len(pairs)}: {matched}")
    assert len(pairs) > 400
    assert len(matched) <= 0.01 * len(pairs), matched


def test_aime24_answers():
    problems = load_dataset("aime24")
    assert len(problems) == 30
    for p in problems:
        assert is_equivalent(f"\\boxed{{{p.answer}}}", p.answer), p.id
        assert is_equivalent(p.answer.zfill(3), p.answer), p.id  # "045" as AIME answers are written
        assert not is_equivalent(str(int(p.answer) + 1), p.answer), p.id
    # The AoPS solution texts end each solution with a box (\boxed or \framebox, sometimes
    # around \textbf{(073)} or with a trailing "."); the last one of every file is the answer.
    # Measured: 30/30 (II-1's \textbf{(073)} needed the number-dressed-as-text rule in grading).
    extracted = {p.id: extract_answer(p.solution) for p in problems}
    wrong = {pid: x for pid, x in extracted.items()
             if not is_equivalent(x, next(p.answer for p in problems if p.id == pid))}
    assert not wrong, wrong

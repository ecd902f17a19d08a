"""The tiny world's task: a chain of labelled integer operations, solved one operation per step.

A problem starts from a number and lists operations to apply in order, each with a letter label::

    Start at 7 and apply a+5 b*3 c-4 d+9 e*2.

A solution applies one operation per step, in label order, carrying the running value; steps are
separated by ``"\\n\\n"`` and the last one ends in ``\\boxed{answer}``. Every step is written in one
of two styles, chosen step by step (the policies write both, so a PRM's taste for length can steer
search):

* terse:    ``b) 12*3=36``                    ... last: ``e) 41*2=82 \\boxed{82}``
* verbose:  ``b) Multiply by 3: 12 * 3 = 36.`` ... last: ``e) Multiply by 2: 41 * 2 = 82. The answer is \\boxed{82}.``

Difficulty comes mostly from the length of the chain (levels 1-5 have 1-2 up to 12-16 operations,
the hard set 18-22; values stay in 0..99 and operands are one digit): each step is a small
computation a tiny model can learn, but it can slip
(wrong operand, wrong carried value, wrong arithmetic), one slip spoils the answer, and a slip is
visible in the step's own text, so sampling can avoid it and a PRM can see it.

``check_solution`` verifies every step exactly: a step is right when it is the canonical step of
its style for the next operation (right label, carried value, operation, operand and result).
"""

from __future__ import annotations

import random
import re
import string

STEP_SEP = "\n\n"
OPS = ("+", "-", "*")
LABELS = string.ascii_lowercase

# A problem: (start, ((op, operand), ...)).


def apply_op(v: int, op: str, k: int) -> int:
    return v + k if op == "+" else v - k if op == "-" else v * k


def values(problem) -> list[int]:
    """The running value before the first and after every operation."""
    v, out = problem[0], [problem[0]]
    for op, k in problem[1]:
        v = apply_op(v, op, k)
        out.append(v)
    return out


def value(problem) -> int:
    return values(problem)[-1]


def num_ops(problem) -> int:
    return len(problem[1])


# ----------------------------------------------------------------------------------- levels

# Every level computes the same small steps: running values 0..99, + and - a digit 1..9, * 2 or 3.
# Only the length of the chain grows (difficulty from length, not from operands a model of this
# size cannot compute).
MAX_VALUE, MAX_ADD, MAX_MUL = 99, 9, 3
# level -> the number of operations, drawn uniformly in [lo, hi]
LEVELS: dict[int, tuple[int, int]] = {
    1: (1, 2),
    2: (3, 4),
    3: (5, 7),
    4: (8, 11),
    5: (12, 16),
    6: (18, 22),  # the hard set (AIME24's role): longer chains than any level of tinymath500
}
TRAIN_LEVELS = (1, 2, 3, 4, 5, 6)


def random_problem(rng: random.Random, level: int):
    """A problem of ``level``: every running value stays within 0..MAX_VALUE."""
    n = rng.randint(*LEVELS[level])
    v = rng.randint(2, MAX_VALUE)
    start, ops = v, []
    for _ in range(n):
        choices = [op for op, ok in (("+", v < MAX_VALUE), ("-", v >= 2), ("*", 2 <= v and 2 * v <= MAX_VALUE)) if ok]
        op = rng.choice(choices)
        if op == "+":
            k = rng.randint(1, min(MAX_ADD, MAX_VALUE - v))
        elif op == "-":
            k = rng.randint(1, min(MAX_ADD, v - 1))
        else:
            k = rng.randint(2, min(MAX_MUL, MAX_VALUE // v))
        ops.append((op, k))
        v = apply_op(v, op, k)
    return start, tuple(ops)


# ---------------------------------------------------------------------------------- solutions

_VERB = {"+": "Add {k}", "-": "Subtract {k}", "*": "Multiply by {k}"}


def format_step(i: int, a: int, op: str, k: int, c: int, final: bool, style: str) -> str:
    """Step ``i`` (0-based) applying ``op k`` to the carried value ``a`` with result ``c``."""
    label = LABELS[i]
    if style == "terse":
        return f"{label}) {a}{op}{k}={c}" + (f" \\boxed{{{c}}}" if final else "")
    head = f"{label}) {_VERB[op].format(k=k)}: {a} {op} {k} = {c}."
    return head + (f" The answer is \\boxed{{{c}}}." if final else "")


def solve(problem, style="terse", rng: random.Random | None = None, p_verbose: float = 0.5) -> list[str]:
    """Steps of the correct solution, each but the last ending in STEP_SEP. ``style`` is "terse",
    "verbose", or "mixed" (each step verbose with probability ``p_verbose``, drawn from ``rng``)."""
    vals, ops = values(problem), problem[1]
    steps = []
    for i, (op, k) in enumerate(ops):
        st = style if style != "mixed" else ("verbose" if rng.random() < p_verbose else "terse")
        steps.append(format_step(i, vals[i], op, k, vals[i + 1], i == len(ops) - 1, st))
    return [s + STEP_SEP for s in steps[:-1]] + [steps[-1]]


def problem_text(problem) -> str:
    start, ops = problem
    return f"Start at {start} and apply " + " ".join(f"{LABELS[i]}{op}{k}" for i, (op, k) in enumerate(ops)) + "."


_PROBLEM = re.compile(r"Start at (\d+) and apply ((?:[a-z][+\-*]\d+ ?)+)\.\s*$")
_OP = re.compile(r"([a-z])([+\-*])(\d+)")


def parse_problem(question: str):
    m = _PROBLEM.search(question.strip())
    if not m:
        raise ValueError(f"not a tiny-world question: {question!r}")
    ops = _OP.findall(m.group(2))
    if [lab for lab, _, _ in ops] != list(LABELS[: len(ops)]):
        raise ValueError(f"labels out of order in {question!r}")
    return int(m.group(1)), tuple((op, int(k)) for _, op, k in ops)


# ----------------------------------------------------------------------------------- checking

_STEP = re.compile(r"^([a-z])\)\s*(?:(?:Add|Subtract|Multiply by) (\d+): )?(\d+)\s*([+\-*])\s*(\d+)\s*=\s*(\d+)")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def step_style(step: str) -> str:
    return "verbose" if re.search(r"[A-Za-z]{3,}", step.replace("\\boxed", "")) else "terse"


def parse_step(step: str):
    """(label, a, op, k, c, boxed or None) of a step's text, or None if it has no equation."""
    s = step.strip()
    m = _STEP.match(s)
    if not m:
        return None
    b = _BOXED.search(s)
    return m.group(1), int(m.group(3)), m.group(4), int(m.group(5)), int(m.group(6)), b.group(1) if b else None


def check_step(problem, i: int, step: str) -> bool:
    """Whether ``step`` is exactly the right step ``i`` (0-based), in either style."""
    if i >= num_ops(problem):
        return False
    vals, (op, k) = values(problem), problem[1][i]
    final = i == num_ops(problem) - 1
    want = {format_step(i, vals[i], op, k, vals[i + 1], final, st) for st in ("terse", "verbose")}
    return step.strip() in want


def check_solution(question: str, steps: list[str]) -> list[bool]:
    """Per-step prefix correctness: True while every step so far is right (False from the first
    wrong step on). A solution that is fully correct has all True and ends in the right \\boxed."""
    problem = parse_problem(question)
    out, ok = [], True
    for i, st in enumerate(steps):
        ok = ok and check_step(problem, i, st)
        out.append(ok)
    return out


def first_error(question: str, steps: list[str]) -> int:
    """Index of the first wrong step (ProcessBench's label), -1 if the solution is fully correct."""
    labels = check_solution(question, steps)
    for i, ok in enumerate(labels):
        if not ok:
            return i
    if steps and len(steps) == num_ops(parse_problem(question)):
        return -1
    return len(steps)  # ran out without an answer: the missing next step is the error


def restyle(step: str, style: str) -> str:
    """The same step (the same numbers, right or wrong) written in ``style``; a step without an
    equation is returned unchanged."""
    p = parse_step(step)
    if p is None:
        return step
    label, a, op, k, c, boxed = p
    tail = step[len(step.rstrip()):]
    i = LABELS.index(label)
    text = format_step(i, a, op, k, c, False, style)
    if boxed is not None:
        text += f" \\boxed{{{boxed}}}" if style == "terse" else f" The answer is \\boxed{{{boxed}}}."
    return text + tail


def extract_answer(text: str) -> str | None:
    m = list(_BOXED.finditer(text))
    return m[-1].group(1).strip() if m else None


def is_correct(text: str, answer: str) -> bool:
    return extract_answer(text) == str(answer)


def split_steps(text: str) -> list[str]:
    """Split a solution into steps, each but the last keeping its "\\n\\n"."""
    parts = text.split(STEP_SEP)
    steps = [p + STEP_SEP for p in parts[:-1]] + [parts[-1]]
    return [s for s in steps if s.strip()]


# ---------------------------------------------------------------------------------- test sets

TEST_SEED = 20250205
TRAIN_SEED = 1234


def make_test_sets():
    """tinymath500 (100 problems per level 1-5) and tinyhard30 (18-22 operations)."""
    rng = random.Random(TEST_SEED)
    seen: set[str] = set()
    math500, hard = [], []
    for level in (1, 2, 3, 4, 5):
        k = 0
        while k < 100:
            p = random_problem(rng, level)
            key = problem_text(p)
            if key in seen:
                continue
            seen.add(key)
            math500.append(_record(f"tiny/L{level}/{k:03d}", p, level, rng))
            k += 1
    k = 0
    while k < 30:
        p = random_problem(rng, 6)
        key = problem_text(p)
        if key in seen:
            continue
        seen.add(key)
        hard.append(_record(f"tinyhard/{k:02d}", p, 6, rng))
        k += 1
    # Interleave the levels (L1, L2, ..., L5, L1, ...) so that any prefix of the file, which is
    # what `limit` takes, covers every level equally; MATH-500's own order is not sorted either.
    math500 = [math500[level * 100 + i] for i in range(100) for level in range(5)]
    return math500, hard


def _record(uid, p, level, rng):
    return {"unique_id": uid, "problem": problem_text(p), "answer": str(value(p)),
            "solution": "".join(solve(p, "mixed", rng)), "subject": "arithmetic", "level": level}


def test_problems() -> set[str]:
    m, h = make_test_sets()
    return {r["problem"] for r in m + h}


def train_problems(n: int, seed: int = TRAIN_SEED, levels=TRAIN_LEVELS, weights=None, exclude=None):
    """``n`` training problems (level, problem) drawn by level, never one of the test problems."""
    exclude = test_problems() if exclude is None else exclude
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        level = rng.choices(levels, weights=weights)[0]
        p = random_problem(rng, level)
        if problem_text(p) in exclude:
            continue
        out.append((level, p))
    return out

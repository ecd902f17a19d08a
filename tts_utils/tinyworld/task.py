"""The tiny world's task: integer arithmetic solved one operation per step, written like MATH.

An expression is a binary tree of ``+``, ``-`` and ``*`` over non-negative integers (every
intermediate value is non-negative, so no negative numbers ever appear in text). A solution reduces
one *ready* operation (both operands are numbers) per step and rewrites the remaining expression;
steps are separated by ``"\\n\\n"`` and the last one ends in ``\\boxed{answer}``. Two styles:

* terse:    ``4*5=20: 3+20-7``            ... last: ``3+13=16: \\boxed{16}``
* verbose:  ``Multiply 4 by 5: 4 * 5 = 20. Now we have 3 + 20 - 7.``
            ... last: ``Add 3 and 13: 3 + 13 = 16. The final answer is \\boxed{16}.``

``check_solution`` verifies every step exactly: the stated operation must be a ready operation of
the current expression, its result must be right, and the rewritten expression must be the current
one with that operation replaced by its result (any ready operation may go first).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

STEP_SEP = "\n\n"
PREC = {"+": 1, "-": 1, "*": 2}
OPS = ("+", "-", "*")

# Tree: an int (leaf) or a tuple (op, left, right).


def value(t) -> int:
    if isinstance(t, int):
        return t
    op, a, b = t
    a, b = value(a), value(b)
    return a + b if op == "+" else a - b if op == "-" else a * b


def render(t, spaced: bool = False) -> str:
    """Text of a tree with the minimal parentheses that parse back to the same tree."""
    if isinstance(t, int):
        return str(t)
    op, a, b = t
    sa, sb = render(a, spaced), render(b, spaced)
    if not isinstance(a, int) and PREC[a[0]] < PREC[op]:
        sa = f"({sa})"
    if not isinstance(b, int) and PREC[b[0]] <= PREC[op]:
        sb = f"({sb})"
    return f"{sa} {op} {sb}" if spaced else f"{sa}{op}{sb}"


_TOKEN = re.compile(r"\s*(\d+|[()+\-*])")


def parse(text: str):
    """Parse an expression (left-associative, * before +/-); raises ValueError."""
    pos, toks = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"bad expression {text!r}")
        toks.append(m.group(1))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    i = 0

    def peek():
        return toks[i] if i < len(toks) else None

    def atom():
        nonlocal i
        t = peek()
        if t is None:
            raise ValueError("unexpected end")
        if t == "(":
            i += 1
            e = expr()
            if peek() != ")":
                raise ValueError("missing )")
            i += 1
            return e
        if t.isdigit():
            i += 1
            if len(t) > 1 and t[0] == "0":
                raise ValueError("leading zero")
            return int(t)
        raise ValueError(f"unexpected {t!r}")

    def term():
        nonlocal i
        e = atom()
        while peek() == "*":
            i += 1
            e = ("*", e, atom())
        return e

    def expr():
        nonlocal i
        e = term()
        while peek() in ("+", "-"):
            op = peek()
            i += 1
            e = (op, e, term())
        return e

    if not toks:
        raise ValueError("empty expression")
    e = expr()
    if i != len(toks):
        raise ValueError(f"trailing tokens in {text!r}")
    return e


def ready_ops(t, path=()):
    """(path, op, a, b) for every operation whose operands are both numbers, left to right."""
    if isinstance(t, int):
        return []
    op, a, b = t
    if isinstance(a, int) and isinstance(b, int):
        return [(path, op, a, b)]
    return ready_ops(a, path + (1,)) + ready_ops(b, path + (2,))


def reduce_at(t, path):
    if not path:
        return value(t)
    op, a, b = t
    if path[0] == 1:
        return (op, reduce_at(a, path[1:]), b)
    return (op, a, reduce_at(b, path[1:]))


def num_ops(t) -> int:
    return 0 if isinstance(t, int) else 1 + num_ops(t[1]) + num_ops(t[2])


def all_values(t):
    if isinstance(t, int):
        return [t]
    return all_values(t[1]) + all_values(t[2]) + [value(t)]


# ----------------------------------------------------------------------------------- levels

@dataclass(frozen=True)
class LevelSpec:
    ops: tuple[int, ...]      # number of operations (one drawn at random)
    leaf_max: int             # leaves are 1..leaf_max
    mul_leaf_max: int         # a leaf operand of * is at most this
    mul_max: int              # any product is at most this
    max_value: int            # any intermediate value is at most this
    parens: bool              # whether parentheses may appear


LEVELS: dict[int, LevelSpec] = {
    1: LevelSpec((1,), 20, 9, 81, 99, False),
    2: LevelSpec((2,), 30, 12, 144, 400, False),
    3: LevelSpec((3,), 50, 12, 600, 999, True),
    4: LevelSpec((4,), 99, 15, 1500, 2500, True),
    5: LevelSpec((5,), 99, 20, 5000, 9999, True),
    # the hard set (AIME24's role): more operations and larger numbers than any training level
    6: LevelSpec((6, 7), 199, 30, 20000, 30000, True),
}
TRAIN_LEVELS = (1, 2, 3, 4, 5)


def _random_tree(rng: random.Random, n: int, spec: LevelSpec):
    if n == 0:
        return rng.randint(1, spec.leaf_max)
    k = rng.randint(0, n - 1)
    op = rng.choice(OPS)
    return (op, _random_tree(rng, k, spec), _random_tree(rng, n - 1 - k, spec))


def _ok(t, spec: LevelSpec) -> bool:
    if isinstance(t, int):
        return True
    op, a, b = t
    if not (_ok(a, spec) and _ok(b, spec)):
        return False
    va, vb, v = value(a), value(b), value(t)
    if v < 0 or v > spec.max_value:
        return False
    if op == "*":
        if v > spec.mul_max or va < 2 or vb < 2:
            return False
        if (isinstance(a, int) and a > spec.mul_leaf_max) and (isinstance(b, int) and b > spec.mul_leaf_max):
            return False
        if isinstance(a, int) != isinstance(b, int):  # leaf times subexpression: bound the leaf
            leaf = a if isinstance(a, int) else b
            if leaf > spec.mul_leaf_max:
                return False
    if op == "-" and v == 0 and isinstance(a, int) and isinstance(b, int):
        return False
    return True


def random_expression(rng: random.Random, level: int):
    spec = LEVELS[level]
    while True:
        n = rng.choice(spec.ops)
        t = _random_tree(rng, n, spec)
        if not _ok(t, spec):
            continue
        if not spec.parens and "(" in render(t):
            continue
        return t


# ---------------------------------------------------------------------------------- solutions

_VERB = {"+": "Add {a} and {b}", "-": "Subtract {b} from {a}", "*": "Multiply {a} by {b}"}


def format_step(op: str, a: int, b: int, c: int, rest, style: str) -> str:
    """One step; ``rest`` is the reduced tree (an int at the last step)."""
    final = isinstance(rest, int)
    if style == "terse":
        head = f"{a}{op}{b}={c}"
        return f"{head}: \\boxed{{{c}}}" if final else f"{head}: {render(rest)}"
    head = f"{_VERB[op].format(a=a, b=b)}: {a} {op} {b} = {c}."
    if final:
        return f"{head} The final answer is \\boxed{{{c}}}."
    return f"{head} Now we have {render(rest, spaced=True)}."


def solve(t, style: str = "terse", rng: random.Random | None = None) -> list[str]:
    """Steps of a correct solution (each but the last ending in STEP_SEP). Reduces the leftmost
    ready operation, or a random one when ``rng`` is given."""
    steps = []
    while not isinstance(t, int):
        cands = ready_ops(t)
        path, op, a, b = cands[0] if rng is None else rng.choice(cands)
        t = reduce_at(t, path)
        steps.append(format_step(op, a, b, value((op, a, b)), t, style))
    return [s + STEP_SEP for s in steps[:-1]] + [steps[-1]]


def problem_text(t) -> str:
    return f"Compute {render(t)}."


_PROBLEM = re.compile(r"Compute (.+)\.\s*$")


def expression_of(question: str):
    m = _PROBLEM.search(question.strip())
    if not m:
        raise ValueError(f"not a tiny-world question: {question!r}")
    return parse(m.group(1))


# ----------------------------------------------------------------------------------- checking

_EQ = re.compile(r"(\d+)\s*([+\-*])\s*(\d+)\s*=\s*(\d+)")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_REST = re.compile(r"([\d(][\d+\-*() ]*?)\s*\.?\s*$")


def step_style(step: str) -> str:
    return "verbose" if re.search(r"[A-Za-z]{3,}", step.replace("\\boxed", "")) else "terse"


def check_step(t, step: str):
    """Check one step against the current tree ``t``. Returns (ok, new_tree, reason)."""
    s = step.strip()
    m = _EQ.search(s)
    if not m:
        return False, t, "no equation"
    a, op, b, c = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
    match = [p for p, o, x, y in ready_ops(t) if (o, x, y) == (op, a, b)]
    if not match:
        return False, t, "not a ready operation"
    if value((op, a, b)) != c:
        return False, t, "arithmetic error"
    expected = [reduce_at(t, p) for p in match]
    boxed = _BOXED.search(s)
    if boxed:
        if not isinstance(expected[0], int):
            return False, t, "premature answer"
        if boxed.group(1).strip() != str(c):
            return False, t, "boxed answer differs"
        return True, expected[0], "ok"
    if isinstance(expected[0], int):
        return False, t, "no boxed answer at the last operation"
    rest = _REST.search(s[m.end():])
    if not rest:
        return False, t, "no rewritten expression"
    try:
        new = parse(rest.group(1))
    except ValueError:
        return False, t, "unparsable rewritten expression"
    if new not in expected:
        return False, t, "wrong rewritten expression"
    return True, new, "ok"


def restyle(step: str, style: str) -> str:
    """The same step (the same numbers, right or wrong) written in ``style``; a step without an
    equation is returned unchanged."""
    s = step.strip()
    tail = step[len(step.rstrip()):]
    m = _EQ.search(s)
    if not m:
        return step
    a, op, b, c = m.group(1), m.group(2), m.group(3), m.group(4)
    boxed = _BOXED.search(s)
    rest = None if boxed else _REST.search(s[m.end():])
    if not boxed and not rest:
        return step
    if style == "terse":
        head = f"{a}{op}{b}={c}"
        body = f"\\boxed{{{boxed.group(1)}}}" if boxed else re.sub(r"\s+", "", rest.group(1))
        return f"{head}: {body}{tail}"
    head = f"{_VERB[op].format(a=a, b=b)}: {a} {op} {b} = {c}."
    if boxed:
        return f"{head} The final answer is \\boxed{{{boxed.group(1)}}}.{tail}"
    expr = re.sub(r"\s*([+\-*])\s*", r" \1 ", re.sub(r"\s+", "", rest.group(1)))
    return f"{head} Now we have {expr}.{tail}"


def check_solution(question: str, steps: list[str]) -> list[bool]:
    """Per-step prefix correctness: True while every step so far is right (False from the first
    wrong step on). A solution that is fully correct has all True and ends in the right \\boxed."""
    t = expression_of(question)
    out, ok = [], True
    for st in steps:
        if ok:
            if isinstance(t, int):
                ok = False  # anything after the final answer is wrong
            else:
                ok, t, _ = check_step(t, st)
        out.append(ok)
    return out


def first_error(question: str, steps: list[str]) -> int:
    """Index of the first wrong step (ProcessBench's label), -1 if the solution is fully correct."""
    labels = check_solution(question, steps)
    for i, ok in enumerate(labels):
        if not ok:
            return i
    if steps and extract_answer("".join(steps)) is not None:
        return -1
    return len(steps)  # ran out without an answer: the missing final step is the error


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
    """tinymath500 (100 problems per level 1-5) and tinyhard30 (6-7 operations, larger numbers)."""
    rng = random.Random(TEST_SEED)
    seen: set[str] = set()
    math500, hard = [], []
    for level in (1, 2, 3, 4, 5):
        k = 0
        while k < 100:
            t = random_expression(rng, level)
            key = render(t)
            if key in seen:
                continue
            seen.add(key)
            style = rng.choice(("terse", "verbose"))
            math500.append(_record(f"tiny/L{level}/{k:03d}", t, level, style))
            k += 1
    k = 0
    while k < 30:
        t = random_expression(rng, 6)
        key = render(t)
        if key in seen:
            continue
        seen.add(key)
        hard.append(_record(f"tinyhard/{k:02d}", t, 6, rng.choice(("terse", "verbose"))))
        k += 1
    # Interleave the levels (L1, L2, ..., L5, L1, ...) so that any prefix of the file, which is
    # what `limit` takes, covers every level equally; MATH-500's own order is not sorted either.
    math500 = [math500[level * 100 + i] for i in range(100) for level in range(5)]
    return math500, hard


def _record(uid, t, level, style):
    return {"unique_id": uid, "problem": problem_text(t), "answer": str(value(t)),
            "solution": "".join(solve(t, style)), "subject": "arithmetic", "level": level}


def test_expressions() -> set[str]:
    m, h = make_test_sets()
    return {r["problem"] for r in m + h}


def train_problems(n: int, seed: int = TRAIN_SEED, levels=TRAIN_LEVELS, weights=None, exclude=None):
    """``n`` training expressions (trees) drawn by level, never one of the test problems."""
    exclude = test_expressions() if exclude is None else exclude
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        level = rng.choices(levels, weights=weights)[0]
        t = random_expression(rng, level)
        if problem_text(t) in exclude:
            continue
        out.append((level, t))
    return out

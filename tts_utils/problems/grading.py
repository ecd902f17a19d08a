"""Answer extraction and mathematical equivalence.

* ``extract_answer(text)``: the content of the last ``\\boxed{...}`` (or ``\\fbox``/``\\framebox``),
  with phrase fallbacks ("The final answer is ...") only when the text has no box at all.
* ``is_equivalent(pred, gold)``: equality of two answers; plain numbers are compared exactly
  here, everything else by math-verify (sympy based).
* ``grade(solution_text, gold)``: ``is_equivalent(extract_answer(solution_text), gold)``.

None of them raises, whatever the input: a grader that raises in the middle of a grid of
thousands of samples loses more than it protects.

Time and memory bound, on every thread: the regular expressions here run in time linear in
the text (a degenerate generation can hold runs of 100,000 spaces), and math-verify runs in a
worker process (``_grading_worker.py``) that the grader kills when one comparison takes over
``TIMEOUT_S`` seconds and that cannot allocate over ``MEMORY_LIMIT_BYTES``. A killed or dead
worker makes that comparison False and is restarted on the next one. (math-verify's own
timeout is ``signal.alarm``: main thread only, and it cannot interrupt sympy's C code, where a
power tower like ``2^{2^{2^{2^{2^{2}}}}}`` spends minutes and gigabytes.)
"""

from __future__ import annotations

import atexit
import json
import os
import re
import select
import subprocess
import sys
import threading
from fractions import Fraction
from functools import lru_cache
from numbers import Number
from pathlib import Path

# Seconds one math-verify comparison (both parses and the check) may take, in whole seconds
# (the worker also passes it to math-verify's signal.alarm timeout).
TIMEOUT_S = 5
# Address space of the math-verify worker; python + sympy need about 0.3 GB of it.
MEMORY_LIMIT_BYTES = 2 << 30
# Seconds the worker may take to start (importing sympy on a loaded machine).
STARTUP_TIMEOUT_S = 120

_BOX_COMMANDS = ("\\boxed", "\\fbox", "\\framebox")
_BOX_RE = re.compile(r"\\(?:boxed|fbox|framebox)(?![A-Za-z])")

# "The final answer is $x$", "the answer is: x", "Answer: x"; used only when nothing is boxed.
_PHRASE_RE = re.compile(r"\b(?:final\s+answer|answer)\s*(?:is\s*:?|:)\s*(?P<ans>[^\n]+)", re.IGNORECASE)
_HOPE = "i hope it is correct"

# A plain integer or decimal, e.g. "-12", "3.50", ".5" (no exponent, no thousands separator).
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_NUMBER_RE = re.compile(_NUMBER)
# A number dressed as text, as AoPS writes AIME answers: \textbf{(073)}. math-verify reads the
# inside of \text{} as a symbol name when it has a leading zero, so "073" would not equal 73.
# Each optional parenthesis takes the blanks after it, so no two \s* are adjacent: adjacent ones
# backtrack quadratically on a long run of blanks.
_TEXT_NUMBER_RE = re.compile(rf"\\(?:text|textbf|mathbf|mathrm)\{{\s*(?:\(\s*)?({_NUMBER})\s*(?:\)\s*)?\}}")


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the brace group opening at ``text[start] == "{"`` and the index after it.

    Escaped braces (``\\{``, ``\\}``) do not count: ``\\boxed{\\left\\{1\\right.}`` is one group.
    Returns None when the group never closes (a truncated generation).
    """
    depth = 0
    i = start
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2  # skip the escaped character, whatever it is
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
        i += 1
    return None


def _last_box(text: str) -> str | None:
    """Content of the last box command; None if there is none or the last one is unbalanced.

    A truncated last box means the answer itself is incomplete, so we do not fall back to an
    earlier (intermediate) box.
    """
    matches = list(_BOX_RE.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :]
    stripped = rest.lstrip()
    if stripped.startswith("{"):
        found = _braced(stripped, 0)
        return None if found is None else (found[0].strip() or None)
    # "\boxed 5": TeX takes the next token; take the run up to whitespace, "$" or a brace.
    token = re.match(r"[^\s${}]*", stripped).group(0).rstrip(".,;")
    return token or None


def _drop_hope(ans: str) -> str:
    """"x. I hope it is correct." -> "x." (string methods: a regex anchored at the end with a
    leading \\s* retries from every blank of a long run, quadratic time)."""
    ans = ans.strip()
    body = ans[:-1] if ans.endswith(".") else ans
    if body.lower().endswith(_HOPE):
        return body[: len(body) - len(_HOPE)].strip()
    return ans


def _clean_phrase(ans: str) -> str | None:
    ans = _drop_hope(ans)
    for open_, close in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if ans.startswith(open_):
            end = ans.find(close, len(open_))
            if end > 0:
                ans = ans[len(open_) : end]
            break
    else:
        # Plain text: the answer ends at the first sentence end (". " keeps "3.5" intact).
        ans = re.split(r"\.\s", ans, maxsplit=1)[0]
    ans = ans.strip().rstrip(".").strip()
    return ans or None


def extract_answer(text: object) -> str | None:
    """The final answer of a solution text, or None if it has none (never raises).

    Order: the content of the last ``\\boxed{...}`` / ``\\fbox{...}`` / ``\\framebox{...}``
    (nested and escaped braces handled), or of ``\\boxed 5`` without braces; if the text has no
    box command at all, the last "final answer is X" / "answer is: X" / "Answer: X" phrase
    (``$...$`` around X removed). Non-string input gives None.
    """
    if not isinstance(text, str):
        return None
    try:
        if _BOX_RE.search(text):
            return _last_box(text)
        phrases = list(_PHRASE_RE.finditer(text))
        return _clean_phrase(phrases[-1].group("ans")) if phrases else None
    except Exception:  # defensive: a grader must not stop a run
        return None


def _as_answer(x: object) -> str | None:
    """Normalise one side of a comparison to a non-empty answer string, or None."""
    if isinstance(x, bool):
        return None  # True/False are not answers, even though bool is an int
    if isinstance(x, Number):
        x = str(x)
    if not isinstance(x, str):
        return None
    s = x.strip()
    if any(cmd in s for cmd in _BOX_COMMANDS):
        s = extract_answer(s) or ""
    s = s.strip().strip("$").strip()
    dressed = _TEXT_NUMBER_RE.fullmatch(s)
    if dressed:
        s = dressed.group(1)
    return s or None


class _Worker:
    """One math-verify worker process, shared by the threads of this process (one request at a
    time); restarted after a timeout or a crash."""

    def __init__(self):
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.owner = os.getpid()

    def _start(self) -> None:
        script = Path(__file__).with_name("_grading_worker.py")
        self.owner = os.getpid()
        self.proc = subprocess.Popen([sys.executable, str(script), str(MEMORY_LIMIT_BYTES)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        if self._read_line(STARTUP_TIMEOUT_S) != "ready":
            self.stop()
            raise RuntimeError("the math-verify worker did not start")

    def _read_line(self, timeout: float) -> str | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline().strip() if ready else None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:  # unsent bytes for a dead worker
                    pass
            self.proc = None

    def equal(self, pred: str, gold: str) -> bool:
        with self.lock:
            if self.owner != os.getpid():  # a forked child: the parent's worker is not ours to use
                self.proc = None
            if self.proc is None or self.proc.poll() is not None:
                self.stop()
                self._start()
            try:
                self.proc.stdin.write(json.dumps([pred, gold, TIMEOUT_S]) + "\n")
                self.proc.stdin.flush()
                answer = self._read_line(TIMEOUT_S)
            except OSError:  # the worker died (e.g. out of its memory limit)
                answer = None
            if answer not in ("0", "1"):  # late or dead: kill it, a fresh one takes the next call
                self.stop()
                return False
            return answer == "1"


_WORKER = _Worker()
atexit.register(lambda: _WORKER.owner == os.getpid() and _WORKER.stop())  # a forked child leaves its parent's


def _math_verify_equal(pred: str, gold: str) -> bool:
    """math-verify's verdict on two answer strings (no shortcuts); False on any failure, and
    after ``TIMEOUT_S`` seconds."""
    try:
        return _WORKER.equal(pred, gold)
    except Exception:
        return False


@lru_cache(maxsize=262144)
def _equivalent(pred: str, gold: str) -> bool:
    if pred == gold:
        return True
    if _NUMBER_RE.fullmatch(pred) and _NUMBER_RE.fullmatch(gold):
        # Fast path: exact rational comparison ("045" == "45", "0.50" == ".5"), no sympy.
        return Fraction(pred) == Fraction(gold)
    return _math_verify_equal(pred, gold)


def is_equivalent(pred: object, gold: object) -> bool:
    """True when ``pred`` and ``gold`` are the same mathematical answer (never raises).

    Strings are answers as in MATH (LaTeX without ``$``; ``$...$`` and a surrounding
    ``\\boxed{}`` are accepted); ints and floats are taken as their decimal strings; anything
    else (None, bools, lists, ...) is never equivalent to anything. Two plain integers or
    decimals are compared exactly; other answers go through math-verify, with ``gold`` in the
    gold role (math-verify is not quite symmetric). Results are cached.
    """
    p, g = _as_answer(pred), _as_answer(gold)
    if p is None or g is None:
        return False
    try:
        return _equivalent(p, g)
    except Exception:
        return False


def grade(solution_text: object, gold: object) -> bool:
    """Whether the final answer of ``solution_text`` equals ``gold`` (never raises)."""
    return is_equivalent(extract_answer(solution_text), gold)

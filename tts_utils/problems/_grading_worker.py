"""The math-verify worker process of ``tts_utils.problems.grading`` (run as a script, not imported).

    python _grading_worker.py MEMORY_LIMIT_BYTES

Reads one JSON request per line on stdin, ``[pred, gold, timeout_s]``, and answers each with
one line on stdout: ``1`` (equal), ``0`` (not equal, or math-verify failed or gave up). It
prints ``ready`` once its imports are done. It imports nothing from ``tts_utils``, so it starts
whatever ``sys.path`` the parent had.

Why a process: sympy can run for minutes and take gigabytes on a degenerate answer (a power
tower, a 40,000-space run), in C code that no signal interrupts. The parent kills this process
when an answer is late (see ``grading._Worker``); the address-space limit set here turns a
runaway allocation into a MemoryError instead of swapping the machine.
"""

from __future__ import annotations

import json
import logging
import sys
from functools import lru_cache


def _limit_memory(limit: int) -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # no such limit on this platform: time still bounds us
        pass


def main() -> None:
    _limit_memory(int(sys.argv[1]))
    from math_verify import parse, verify

    # Timeouts and unparsable answers are expected here; the parent only wants the verdict.
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)

    @lru_cache(maxsize=65536)
    def parsed(answer: str, timeout: int) -> tuple:
        # Wrapped in \boxed so math-verify's LaTeX extraction takes the whole string as one answer
        # (MATH answers are LaTeX without $); its plain-expression extraction still runs as well.
        return tuple(parse(f"\\boxed{{{answer}}}", parsing_timeout=timeout))

    def equal(pred: str, gold: str, timeout: int) -> bool:
        try:
            g, p = parsed(gold, timeout), parsed(pred, timeout)
            return bool(g and p and verify(list(g), list(p), timeout_seconds=timeout))
        except BaseException as e:  # math-verify's TimeoutException is a BaseException
            if isinstance(e, KeyboardInterrupt | SystemExit):
                raise
            return False

    # math-verify builds its parsers on first use (seconds on a loaded machine): do it before
    # "ready", so that the parent's per-comparison timeout never pays for it.
    equal("\\frac{1}{2}", "0.5", 60)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        pred, gold, timeout = json.loads(line)
        sys.stdout.write("1\n" if equal(pred, gold, timeout) else "0\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

"""Progress of long runs, on the terminal that started them.

Inside a notebook kernel (``make figures``, or plain papermill), ``sys.stderr`` is the notebook's
output, which nobody watches while it runs; ``sys.__stderr__`` is the kernel process's own stderr,
inherited from the terminal that runs papermill or the runner. So progress goes there: a live bar
on a terminal, and only a few plain lines (start, each quarter, end) in a log, i.e. when that
stream is not a TTY or ``CI`` is set, so that CI logs stay short.
"""

from __future__ import annotations

import os
import sys
import time


def _stream():
    return sys.__stderr__ or sys.stderr


def _interactive(stream) -> bool:
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """Work units done out of a total (problems), with generated tokens per second and an ETA.

    ``update(n, tokens)``: ``n`` more units done, ``tokens`` more generated. Disabled: does nothing.
    """

    def __init__(self, total: int, initial: int = 0, desc: str = "", enabled: bool = True, stream=None):
        self.total, self.done, self.desc = total, initial, desc
        self.tokens = 0
        self.stream = stream or _stream()
        self.enabled = enabled and total > 0 and initial < total
        self._start = time.perf_counter()
        self._initial = initial
        self._bar = None
        self._quarter = -1
        if not self.enabled:
            return
        if _interactive(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, unit="problem", desc=desc, file=self.stream,
                             dynamic_ncols=True, mininterval=0.5)
        else:
            self._line()

    def _rates(self) -> tuple[float, float | None]:
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        per_s = (self.done - self._initial) / elapsed
        eta = (self.total - self.done) / per_s if per_s > 0 else None
        return self.tokens / elapsed, eta

    def _line(self) -> None:
        tok_s, eta = self._rates()
        quarter = 4 * self.done // self.total
        self._quarter = quarter
        eta_text = "" if eta is None or self.done >= self.total else f", ETA {eta:.0f} s"
        print(f"{self.desc}: {self.done}/{self.total} problems, {tok_s:.0f} tok/s{eta_text}",
              file=self.stream, flush=True)

    def update(self, n: int, tokens: int = 0) -> None:
        if not self.enabled:
            return
        self.done += n
        self.tokens += tokens
        if self._bar is not None:
            self._bar.set_postfix_str(f"{self._rates()[0]:.0f} tok/s", refresh=False)
            self._bar.update(n)
        elif 4 * self.done // self.total > self._quarter:
            self._line()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

"""Progress goes to the terminal that started the run: a live bar on a TTY, a few lines in logs."""

import io
import subprocess
import sys

import nbformat

from tts_utils.progress import Progress


class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_logs_get_a_few_plain_lines(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    out = _Stream(tty=False)
    bar = Progress(total=100, desc="collect cpu", stream=out)
    for _ in range(100):
        bar.update(1, tokens=50)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 5  # the start and each quarter
    assert lines[0].startswith("collect cpu: 0/100 problems") and "\r" not in out.getvalue()
    assert lines[-1].startswith("collect cpu: 100/100 problems") and "tok/s" in lines[-1]
    assert "ETA" in lines[1] and "ETA" not in lines[-1]


def test_ci_is_quiet_even_on_a_terminal(monkeypatch):
    monkeypatch.setenv("CI", "true")
    out = _Stream(tty=True)
    bar = Progress(total=40, initial=10, desc="d", stream=out)
    bar.update(30, tokens=10)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("d: 10/40") and lines[1].startswith("d: 40/40")


def test_a_terminal_gets_a_live_bar_with_tokens_per_second(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    out = _Stream(tty=True)
    bar = Progress(total=4, desc="collect", stream=out)
    for _ in range(4):
        bar.update(1, tokens=1000)
    bar.close()
    text = out.getvalue()
    assert "\r" in text and "4/4" in text and "tok/s" in text


def test_disabled_or_nothing_to_do_is_silent(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    for kw in ({"total": 5, "enabled": False}, {"total": 5, "initial": 5}, {"total": 0}):
        out = _Stream(tty=False)
        bar = Progress(stream=out, **kw)
        bar.update(1, 1)
        bar.close()
        assert out.getvalue() == ""


def test_inside_a_notebook_progress_reaches_the_terminal_not_the_notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from tts_utils.progress import Progress\n"
                                          "bar = Progress(total=2, desc='inside-kernel')\n"
                                          "bar.update(2, tokens=7)\nbar.close()")]
    src, dst = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    proc = subprocess.run([sys.executable, "-m", "papermill", str(src), str(dst), "-k", "python3",
                           "--no-progress-bar"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "inside-kernel: 2/2 problems" in proc.stderr  # papermill's own stderr: not a TTY here
    assert "inside-kernel" not in "".join(str(o) for c in nbformat.read(dst, 4).cells for o in c.get("outputs", []))

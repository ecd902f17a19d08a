"""The papermill runner: profiles resolve per notebook, unknown names and bad values fail before
execution, and a signal stops it with its kernels."""

import json
import os
import signal
import subprocess
import sys

import nbformat
import pytest

from tts_utils import paths
from tts_utils import run_notebooks as rn


def _write_notebook(path, params_src, body_src):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(params_src)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(body_src)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def project(tmp_path, monkeypatch):
    nbdir = tmp_path / "notebooks"
    (nbdir / "params").mkdir(parents=True)
    _write_notebook(nbdir / "01_first.ipynb", "out_file = 'x.txt'  # where to write\nvalue = 1",
                    "open(out_file, 'w').write(str(value * 2))")
    _write_notebook(nbdir / "02_second.ipynb", "label = 'a'", "assert isinstance(label, str)")
    monkeypatch.setattr(rn, "NOTEBOOK_DIR", nbdir)
    monkeypatch.setattr(rn, "PARAMS_DIR", nbdir / "params")
    monkeypatch.setattr(rn, "RUNS_DIR", tmp_path / "runs")
    return tmp_path


def _profile(project, text):
    (project / "notebooks" / "params" / "p.yaml").write_text(text)


def test_unknown_parameter_is_rejected_before_running(project):
    _profile(project, "notebooks:\n  01_first:\n    valu: 3\n")
    with pytest.raises(rn.ProfileError, match="valu"):
        rn.run("p")
    assert not (project / "runs").exists()


def test_default_declared_by_no_notebook_is_rejected(project):
    _profile(project, "defaults:\n  figure_dir: x\n")
    with pytest.raises(rn.ProfileError, match="figure_dir"):
        rn.run("p")


def test_unknown_profile_and_notebook(project):
    with pytest.raises(rn.ProfileError, match="unknown profile"):
        rn.run("nope")
    _profile(project, "{}\n")
    with pytest.raises(rn.ProfileError, match="no notebook matches"):
        rn.run("p", only=["09"])


def test_defaults_go_only_to_notebooks_that_declare_them(project):
    out = project / "result.txt"
    _profile(project, f"defaults:\n  label: b\n  out_file: '{out}'\nnotebooks:\n  01_first:\n    value: 21\n")
    params = rn.resolve_parameters(rn.load_profile("p"), rn.list_notebooks(), rn.list_notebooks())
    assert {nb.stem: p for nb, p in params.items()} == {
        "01_first": {"out_file": str(out), "value": 21}, "02_second": {"label": "b"}}
    rn.run("p", only=["01"])
    assert out.read_text() == "42"
    assert (project / "runs" / "p" / "01_first.ipynb").exists()


def test_a_profile_can_start_from_a_base_profile(project):
    params_dir = project / "notebooks" / "params"
    (params_dir / "b.yaml").write_text("defaults:\n  label: base\n  out_file: x\nnotebooks:\n  01_first:\n"
                                       "    value: 1\n    out_file: y\n")
    _profile(project, "base: b\ndefaults:\n  label: mine\nnotebooks:\n  01_first:\n    value: 2\n")
    params = rn.resolve_parameters(rn.load_profile("p"), rn.list_notebooks(), rn.list_notebooks())
    # its own defaults and notebook keys replace the base's; the rest comes from the base
    assert {nb.stem: p for nb, p in params.items()} == {
        "01_first": {"out_file": "y", "value": 2}, "02_second": {"label": "mine"}}
    (params_dir / "b.yaml").write_text("base: p\n")
    with pytest.raises(rn.ProfileError, match="cycle"):
        rn.load_profile("p")


def test_readme_findings_table_comes_from_the_verdict_files(tmp_path):
    figs = tmp_path / "figures"
    figs.mkdir()
    (figs / "F9_x.verdict.json").write_text(json.dumps({
        "finding": "F9", "title": "a claim", "figure": "F9_x", "verdict": "disagrees",
        "parts": [{"claim": "a | b", "effect": -0.1, "lo": -0.2, "hi": -0.05, "verdict": "disagrees"}]}))
    readme, detail = tmp_path / "README.md", tmp_path / "findings.md"
    readme.write_text(f"intro\n{rn.README_START}\nold table\n{rn.README_END}\nrest\n")
    detail.write_text(f"# d\n{rn.DETAIL_START}\nold\n{rn.DETAIL_END}\n")
    assert rn.update_readme(figs, readme, detail)
    text = readme.read_text()
    assert "old table" not in text and "| F9 | a claim | **disagrees** | ±0.08 | [png](figures/F9_x.png) | - |" in text
    assert text.startswith("intro\n") and text.endswith("rest\n")
    parts = detail.read_text()
    assert "-0.100 [-0.200, -0.050]" in parts and "a \\| b" in parts  # a pipe inside a cell is escaped
    readme.write_text("no markers")
    assert not rn.update_readme(figs, readme, detail)


def test_a_notebook_whose_external_input_is_absent_is_skipped(project, capsys, monkeypatch):
    nbdir = project / "notebooks"
    out = project / "ran.txt"
    _write_notebook(nbdir / "03_external.ipynb", "external_path = 'nowhere/outputs.jsonl'",
                    f"open({str(out)!r}, 'w').write(open(external_path).read())")
    _profile(project, "{}\n")
    assert rn.run("p", only=["03"]) == []
    assert "03_external.ipynb skipped: its input nowhere/outputs.jsonl" in capsys.readouterr().out
    assert not out.exists()
    # Present (the profile's path, relative to the repository root): it runs.
    (project / "here.jsonl").write_text("data")
    monkeypatch.setattr(rn.paths, "REPO_ROOT", project)
    _profile(project, "notebooks:\n  03_external:\n    external_path: here.jsonl\n")
    assert len(rn.run("p", only=["03"])) == 1
    assert out.read_text() == "data"


def test_side_by_side_stops_at_the_first_failure(project, monkeypatch):
    import time

    for k in (3, 4, 5):
        _write_notebook(project / "notebooks" / f"0{k}_more.ipynb", "x = 1", "pass")
    _profile(project, "{}\n")
    started = []

    def fake_run_one(profile_name, nb, out, params, log_output):
        started.append(nb.stem)
        if nb.stem == "02_second":
            raise RuntimeError("02 failed")
        time.sleep(0.5)  # still running when 02 fails

    monkeypatch.setattr(rn, "_run_one", fake_run_one)
    with pytest.raises(RuntimeError, match="02 failed"):
        rn.run("p", jobs=2)
    assert started == ["01_first", "02_second"]  # nothing started after the failure


def test_side_by_side_runs_real_kernels(project):
    result = project / "result.txt"
    _profile(project, f"notebooks:\n  01_first:\n    value: 21\n    out_file: '{result}'\n")
    out = rn.run("p", jobs=2)
    assert [o.name for o in out] == ["01_first.ipynb", "02_second.ipynb"] and all(o.exists() for o in out)
    assert result.read_text() == "42"


@pytest.mark.parametrize("flag", ["--jobs", "--workers"])
def test_zero_jobs_or_workers_is_an_error(project, capsys, flag):
    _profile(project, "{}\n")
    assert rn.main(["--profile", "p", flag, "0"]) == 2
    assert f"{flag} must be >= 1" in capsys.readouterr().err


@pytest.mark.parametrize(("section", "message"), [
    ("budgets: '4,8'", "03_grid: parameter 'budgets' must be a non-empty list of integers"),
    ("weak_prms: [c]", "03_grid: parameter 'weak_prms' has \\['c'\\], which are not in 'prms'"),
    ("strong_prms: [a, z]", "parameter 'strong_prms' has \\['z'\\]"),
    ("limit: '10'", "parameter 'limit' must be of type int like its default 0, got '10'"),
    ("limit: true", "parameter 'limit' must be of type int"),
])
def test_every_notebooks_values_are_checked_before_the_first_runs(project, section, message):
    # a profile with budgets "4,8" ran notebook 00 and wrote its figures before failing; weak_prms
    # outside prms generated for 18 s before a KeyError
    out = project / "first.txt"
    _write_notebook(project / "notebooks" / "03_grid.ipynb",
                    "budgets = [4, 8]\nprms = ['a', 'b']\nweak_prms = ['a']\nstrong_prms = ['b']\nlimit = 0", "pass")
    _profile(project, f"notebooks:\n  01_first:\n    out_file: '{out}'\n  03_grid:\n    {section}\n")
    with pytest.raises(rn.ProfileError, match=message):
        rn.run("p")
    assert not out.exists() and not (project / "runs").exists()
    # a float default takes an int
    _write_notebook(project / "notebooks" / "04_float.ipynb", "tolerance = 0.02", "pass")
    _profile(project, "notebooks:\n  04_float:\n    tolerance: 0\n")
    assert rn.resolve_parameters(rn.load_profile("p"), rn.list_notebooks(["04"]), rn.list_notebooks())


RUNNER = """
import sys
from pathlib import Path
from tts_utils import run_notebooks as rn
root = Path(sys.argv[1])
rn.NOTEBOOK_DIR, rn.PARAMS_DIR, rn.RUNS_DIR = root / "notebooks", root / "notebooks" / "params", root / "runs"
sys.exit(rn.main(["--profile", "p", "--jobs", "2", "--workers", "1"]))
"""

# Each kernel starts a child (as a grid starts its pool workers), notes both pids, and runs on.
FOREVER = """import os, subprocess, time
child = subprocess.Popen(["sleep", "600"])
open(os.path.join(pid_dir, f"{os.getpid()}.{child.pid}"), "w").close()
while True:
    time.sleep(0.1)"""


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for(condition, what: str, deadline_s: float = 120.0) -> None:
    import time

    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_runner_its_kernels_and_their_children(project, sig):
    # Ctrl-C waited for the running notebooks to finish (36 s on smoke, minutes on cpu); SIGTERM
    # left the kernels' worker processes running, parented to init
    pid_dir = project / "pids"
    pid_dir.mkdir()
    for stem in ("01_first", "02_second"):
        _write_notebook(project / "notebooks" / f"{stem}.ipynb", f"pid_dir = {str(pid_dir)!r}", FOREVER)
    _profile(project, "{}\n")
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, str(project)], cwd=paths.REPO_ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: len(list(pid_dir.iterdir())) == 2 or runner.poll() is not None, "both kernels to start")
        assert runner.poll() is None, runner.communicate()
        pids = [int(p) for f in pid_dir.iterdir() for p in f.name.split(".")]
        runner.send_signal(sig)
        _, err = runner.communicate(timeout=120)  # returns once the runner exits
    finally:
        runner.kill()
    assert runner.returncode == 128 + sig, err
    assert err.strip().splitlines()[-1] == f"error: interrupted ({signal.Signals(sig).name}): the running " \
                                           "notebooks were stopped"
    _wait_for(lambda: not any(_alive(p) for p in pids), f"kernels and their children {pids} to exit")


def test_an_executed_copy_is_cleaned_of_what_changes_per_run(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"duration": 12.3, "input_path": "/abs/path.ipynb"}
    cell = nbformat.v4.new_code_cell("x", execution_count=1)
    cell.metadata["papermill"] = {"start_time": "2026-12-07T23:00:00"}
    cell.metadata["execution"] = {"iopub.status.busy": "2026-12-07T23:00:00"}
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="collect 50% 12.3 it/s\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="100 problems\n"),
                    nbformat.v4.new_output("execute_result", {"text/plain": "<Legend at 0x7f3a12bc>"}, execution_count=1)]
    injected = nbformat.v4.new_code_cell("limit = 10")
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells = [cell, injected]
    nbformat.write(nb, tmp_path / "raw.ipynb")
    rn.clean_executed(tmp_path / "raw.ipynb", tmp_path / "clean.ipynb")
    out = nbformat.read(tmp_path / "clean.ipynb", as_version=4)
    assert "papermill" not in out.metadata and out.cells[0].metadata == {}
    assert [o.get("name") for o in out.cells[0].outputs] == ["stdout", None]
    assert out.cells[0].outputs[1].data["text/plain"] == "<Legend>"
    assert out.cells[1].id == "injected-parameters"  # not papermill's random one
    rn.clean_executed(tmp_path / "raw.ipynb", tmp_path / "again.ipynb")
    assert (tmp_path / "again.ipynb").read_bytes() == (tmp_path / "clean.ipynb").read_bytes()


def test_every_verdict_notebook_is_found_and_the_tables_link_it(tmp_path):
    figures = {rn.verdict_figure(nb): nb for nb in rn.list_notebooks()}
    assert "F3_difficulty" in figures and figures["F3_difficulty"].stem == "03_difficulty"
    assert rn.verdict_figure(rn.NOTEBOOK_DIR / "00_tiny_world.ipynb") is None
    (tmp_path / "F3_difficulty.verdict.json").write_text(json.dumps(
        {"finding": "F3", "title": "t", "figure": "F3_difficulty", "verdict": "agrees", "rule": "r",
         "parts": [{"claim": "a | b", "effect": 0.1, "lo": 0.0, "hi": 0.2, "p": 0.01, "verdict": "agrees"}]}))
    table = rn.findings_markdown(tmp_path, relative_to=rn.paths.REPO_ROOT, executed_dir=tmp_path / "none")
    assert "| F3 | t | **agrees** | ±0.10 |" in table and "(notebooks/03_difficulty.ipynb)" in table
    assert rn.half_widths([{"lo": 0.0, "hi": 0.06}, {"lo": -0.1, "hi": 0.06}]) == "±0.03-0.08"
    detail = rn.detail_markdown(tmp_path)
    assert "a \\| b: +0.100 [+0.000, +0.200], p = 0.010 agrees" in detail

"""The papermill runner: profiles resolve per notebook, unknown names fail before execution."""

import nbformat
import pytest

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
    import json

    figs = tmp_path / "figures"
    figs.mkdir()
    (figs / "F9_x.verdict.json").write_text(json.dumps({
        "finding": "F9", "title": "a claim", "figure": "F9_x", "verdict": "disagrees",
        "parts": [{"claim": "a | b", "effect": -0.1, "lo": -0.2, "hi": -0.05, "verdict": "disagrees"}]}))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{rn.README_START}\nold table\n{rn.README_END}\nrest\n")
    assert rn.update_readme(figs, readme)
    text = readme.read_text()
    assert "old table" not in text and "**disagrees**" in text and "-0.100 [-0.200, -0.050]" in text
    assert "a \\| b" in text  # a pipe inside a cell is escaped
    assert text.startswith("intro\n") and text.endswith("rest\n")
    readme.write_text("no markers")
    assert not rn.update_readme(figs, readme)


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

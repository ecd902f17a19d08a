"""Notebook parameters: flat papermill files per profile, and the checks notebooks run on their own
parameters (unknown names, values), on plain papermill's route too."""

from __future__ import annotations

import ast

import nbformat
import papermill
import pytest

from tts_utils import run_notebooks as rn
from tts_utils import study
from tts_utils.paths import REPO_ROOT
from tts_utils.study.notebook_params import (
    NotebookParameterError,
    check_types,
    check_values,
    unknown_injected,
)


def test_flat_parameter_files_are_the_profiles():
    files = rn.flat_parameter_files()
    stale = [str(p) for p, text in files.items() if not p.exists() or p.read_text() != text]
    extra = [str(p) for p in rn.PARAMS_DIR.glob("*/*.yaml") if p not in files]
    assert not stale and not extra, ("the flat parameter files are out of date with the profiles: run "
                                     f"`python -m tts_utils.run_notebooks --write-params` ({stale + extra})")
    assert len(files) == len(list(rn.PARAMS_DIR.glob("*.yaml"))) * len(rn.list_notebooks())


def _defaults(notebook) -> dict:
    out = {}
    for name, p in papermill.inspect_notebook(str(notebook)).items():
        try:
            out[name] = ast.literal_eval(p["default"])
        except (ValueError, SyntaxError):
            pass
    return out


@pytest.mark.parametrize("profile", sorted(p.stem for p in rn.PARAMS_DIR.glob("*.yaml")))
def test_every_profile_passes_the_notebooks_own_checks(profile):
    notebooks = rn.list_notebooks()
    for nb, params in rn.resolve_parameters(rn.load_profile(profile), notebooks, notebooks).items():
        try:
            check_values({**_defaults(nb), **params})
        except NotebookParameterError as e:
            pytest.fail(f"{profile} / {nb.stem}: {e}")


@pytest.mark.parametrize(("params", "message"), [
    ({"prms": ["a", "b"], "prm": "c"}, "parameter 'prm' is 'c', which is not in 'prms'"),
    ({"policies": ["x"], "sensitive_prm": "a", "prms": ["b"]}, "'sensitive_prm'"),
    ({"policies": ["x", "y"], "small_policies": ["y", "z"]}, "'small_policies' has \\['z'\\]"),
    ({"prms": ["a", "b"], "hard_prms": ["b", "c"]}, "'hard_prms' has \\['c'\\]"),
    ({"prms": ["a", "b"], "weak_prms": ["c"]}, "'weak_prms' has \\['c'\\], which are not in 'prms'"),
    ({"prms": ["a", "b"], "strong_prms": ["b", "d"]}, "'strong_prms' has \\['d'\\]"),
    ({"rule": "prm_lst_vote"}, "parameter 'rule' is 'prm_lst_vote', not a voting rule"),
    ({"budgets": "4,8"}, "parameter 'budgets' must be a non-empty list of integers such as \\[4, 8\\], got '4,8'"),
    ({"budgets": []}, "'budgets' must be a non-empty list"),
    ({"hard_budgets": [4, "64"]}, "parameter 'hard_budgets' must be a list of integers"),  # [] is allowed
    ({"seeds": [0, "1"]}, "'seeds'"),
    ({"prms": "tiny-prm-qwen"}, "parameter 'prms' must be a list of names"),
])
def test_bad_values_name_the_parameter(params, message):
    with pytest.raises(NotebookParameterError, match=message):
        check_values(params)


@pytest.mark.parametrize(("default", "value", "ok"), [
    (0, 3, True), (0, "3", False), (0, True, False), (0.02, 0, True), (0.02, "0.1", False), (True, 1, False),
    ("x", "y", True), ("x", 3, False), ([4], [8], True), ([4], "4,8", False), ({}, {"a": 1}, True), (None, 3, True),
])
def test_values_must_have_their_defaults_type(default, value, ok):
    if ok:
        check_types({"p": default}, {"p": value})
    else:
        with pytest.raises(NotebookParameterError, match=f"parameter 'p' must be of type {type(default).__name__}"):
            check_types({"p": default}, {"p": value})


def test_library_entry_points_check_their_parameters():
    # a mistyped rule used to end in "KeyError: 'policy'" from pandas; budgets "4,8" as field n[0]
    with pytest.raises(NotebookParameterError, match="'rule'"):
        study.with_rule(None, "prm_last_votes")
    with pytest.raises(NotebookParameterError, match="'budgets'"):
        study.grid_config("runs/x", "tinymath500", ["p"], ["q"], methods=["best_of_n"], budgets="4,8")


def test_unknown_injected_names_from_the_kernel_history():
    history = ["", "budgets = [4]  # N\nrule = 'prm_last_vote'", "# Parameters\nbudgetz = [8]\nrule = 'x'\n",
               "check()"]
    assert unknown_injected(history) == (["budgetz"], ["budgets", "rule"])
    assert unknown_injected(history[:2]) == ([], [])  # run by hand in Jupyter: nothing injected


@pytest.fixture
def notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("budgets = [4, 8]  # N\nrule = 'prm_last_vote'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("from tts_utils.study.notebook_params import check_notebook\n"
                                                  "check_notebook()\nprint('ran', budgets)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize(("parameters", "message"), [
    # `papermill ... -f notebooks/params/cpu.yaml`: the profile arrives as two unknown names
    ({"defaults": {"budgets": [4]}, "notebooks": {}}, "a run_notebooks profile was passed"),
    ({"budgets": "4,8"}, "parameter 'budgets' must be a non-empty list of integers"),
])
def test_plain_papermill_fails_loudly_in_the_kernel(notebook, tmp_path, parameters, message):
    with pytest.raises(papermill.PapermillExecutionError, match=message):
        papermill.execute_notebook(str(notebook), str(tmp_path / "out.ipynb"), parameters=parameters,
                                   kernel_name="python3", cwd=str(REPO_ROOT), progress_bar=False)

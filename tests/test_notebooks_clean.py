"""Committed notebooks carry no outputs, and each has a `parameters` cell as its first code cell; their
executed copies (notebooks/executed/, written by `make figures`) carry outputs but nothing that
changes from run to run."""

import json
import subprocess
from pathlib import Path

import pytest

from tts_utils.paths import NOTEBOOKS_DIR, REPO_ROOT


def tracked_notebooks() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=REPO_ROOT, capture_output=True, text=True)
    files = {REPO_ROOT / f for f in out.stdout.split() if not f.startswith("notebooks/executed/")}
    return sorted(files | set(NOTEBOOKS_DIR.glob("*.ipynb")))


@pytest.mark.parametrize("nb_path", tracked_notebooks(), ids=lambda p: p.name)
def test_notebook_has_no_outputs_and_a_parameters_cell(nb_path):
    nb = json.loads(nb_path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    dirty = [i for i, c in enumerate(code) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, f"{nb_path.name}: code cells {dirty} carry outputs; clear them before committing"
    assert code and "parameters" in code[0].get("metadata", {}).get("tags", []), \
        f"{nb_path.name}: the first code cell must be tagged 'parameters'"


@pytest.mark.parametrize("nb_path", sorted((NOTEBOOKS_DIR / "executed").glob("*.ipynb")), ids=lambda p: p.name)
def test_executed_copies_have_outputs_and_nothing_that_changes_per_run(nb_path):
    text = nb_path.read_text()
    nb = json.loads(text)
    assert (NOTEBOOKS_DIR / nb_path.name).exists(), f"{nb_path.name} has no source notebook"
    assert any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), "an executed copy shows results"
    assert "papermill" not in nb["metadata"] and '"duration"' not in text and " at 0x" not in text
    streams = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"] if o["output_type"] == "stream"]
    assert all(o["name"] == "stdout" for o in streams), "stderr (progress bars, warnings) is left out"

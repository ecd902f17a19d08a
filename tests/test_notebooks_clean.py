"""Committed notebooks carry no outputs, and each has a `parameters` cell as its first code cell."""

import json
import subprocess
from pathlib import Path

import pytest

from tts_utils.paths import NOTEBOOKS_DIR, REPO_ROOT


def tracked_notebooks() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=REPO_ROOT, capture_output=True, text=True)
    files = {REPO_ROOT / f for f in out.stdout.split()} | set(NOTEBOOKS_DIR.glob("*.ipynb"))
    return sorted(files)


@pytest.mark.parametrize("nb_path", tracked_notebooks(), ids=lambda p: p.name)
def test_notebook_has_no_outputs_and_a_parameters_cell(nb_path):
    nb = json.loads(nb_path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    dirty = [i for i, c in enumerate(code) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, f"{nb_path.name}: code cells {dirty} carry outputs; clear them before committing"
    assert code and "parameters" in code[0].get("metadata", {}).get("tags", []), \
        f"{nb_path.name}: the first code cell must be tagged 'parameters'"

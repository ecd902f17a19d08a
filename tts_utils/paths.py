"""Where things live in the repository (one definition, imported by every module that needs it), and
how a generated section of one of its files is rewritten.

Relative paths in configs and notebook parameters (``runs/results/cpu``, ``figures``) are relative
to ``REPO_ROOT``: the notebook runner executes notebooks with it as the working directory.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"              # benchmarks and the tiny world's sets and weights
RUNS_DIR = REPO_ROOT / "runs"              # everything generated and cached (git-ignored)
FIGURES_DIR = REPO_ROOT / "figures"        # the committed figures (PNG + PDF)
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
DOCS_DIR = REPO_ROOT / "docs"             # the pages the README sends readers to
README = REPO_ROOT / "README.md"

__all__ = ["DATA_DIR", "DOCS_DIR", "FIGURES_DIR", "NOTEBOOKS_DIR", "README", "REPO_ROOT", "RUNS_DIR", "replace_section"]


def replace_section(readme: Path, start: str, end: str, markdown: str) -> bool:
    """Put ``markdown`` between the ``start`` and ``end`` markers of a file; False if it has none."""
    text = readme.read_text()
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{markdown}\n{end}{tail}")
    return True

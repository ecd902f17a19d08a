"""Every citation of the design document in code and notebooks names a section that exists."""

import re

from tts_utils.paths import REPO_ROOT

DESIGN = REPO_ROOT / "docs" / "DESIGN.md"
CITATION = re.compile(r'docs/DESIGN\.md, \\?"([^"\\]+)\\?"')


def test_design_citations_name_existing_sections():
    sections = set(re.findall(r"^## (.+)$", DESIGN.read_text(), flags=re.M))
    files = [*(REPO_ROOT / "tts_utils").rglob("*.py"), *(REPO_ROOT / "notebooks").glob("*.ipynb"),
             *(REPO_ROOT / "tests").glob("*.py"), REPO_ROOT / "README.md"]
    cited = {(f.name, name) for f in files for name in CITATION.findall(f.read_text(encoding="utf-8"))}
    assert len(cited) >= 10  # the pattern still matches how the code cites
    assert {(f, name) for f, name in cited if name not in sections} == set()
    # a bare "DESIGN.md" with a section number is the old, unresolvable style
    stale = [f.name for f in files if re.search(r"DESIGN(\.md)? section \d", f.read_text(encoding="utf-8"))]
    assert stale == []

"""The package's layers (docs/DESIGN.md, "Architecture"): every import points down the stack, and no
module grows past a size a reader can hold."""

import ast

from tts_utils.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "tts_utils"
# Bottom to top: a unit may import its own modules and any unit of an earlier rank, never a later one.
STACK = [
    {"paths", "progress", "threads"},
    {"problems"},
    {"models"},
    {"search"},
    {"collect"},
    {"analysis"},
    {"tinyworld"},
    {"study"},
    {"run_notebooks", "gpu_smoke"},
    {"bench"},
]
RANK = {unit: i for i, units in enumerate(STACK) for unit in units}
MAX_LINES = 500


def _unit(module: str) -> str:
    """'tts_utils.models.prm' -> 'models' (a subpackage or a top-level module)."""
    return module.split(".")[1]


def _imports(path) -> set[str]:
    """Every tts_utils module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("tts_utils.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tts_utils"):
            if node.module == "tts_utils":  # from tts_utils import study, paths
                found |= {f"tts_utils.{a.name}" for a in node.names}
            else:
                found.add(node.module)
    return found


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(REPO_ROOT).with_suffix("")
        yield ".".join(rel.parts), path


def test_every_unit_has_a_rank():
    units = {_unit(name) for name, _ in _modules() if name != "tts_utils.__init__"}
    assert units == set(RANK)


def test_imports_point_down_the_stack():
    upward = []
    for name, path in _modules():
        if name == "tts_utils.__init__":
            continue
        own = _unit(name)
        for imported in _imports(path):
            other = _unit(imported)
            if other != own and RANK[other] >= RANK[own]:
                upward.append(f"{name} imports {imported}")
    assert upward == []


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from tts_utils.study import grid\n    from tts_utils import collect\n")
    assert _imports(bad) == {"tts_utils.study", "tts_utils.collect"}
    assert RANK[_unit("tts_utils.study")] > RANK[_unit("tts_utils.collect")]


def test_few_top_level_modules_and_none_too_long():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 6, top
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_every_subpackage_says_what_it_owns_and_may_import():
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "Owns" in doc and "import" in doc, init

"""Every notebook runs end to end under the `smoke` profile (the tiny world, a few problems) and
writes its figure and computed verdict. This is the CI run of the notebooks."""

import json

import pytest

from tts_utils import paths
from tts_utils import run_notebooks as rn
from tts_utils.models.catalog import TINY_MANIFEST

pytestmark = pytest.mark.skipif(not TINY_MANIFEST.exists(), reason="tiny world not built")


def test_every_notebook_runs_under_the_smoke_profile(tmp_path, monkeypatch):
    monkeypatch.setattr(rn, "RUNS_DIR", tmp_path / "executed")
    profile = rn.load_profile("smoke")
    figures = paths.REPO_ROOT / profile["defaults"]["figures_dir"]
    for old in figures.glob("*.verdict.json"):
        old.unlink()
    outputs = rn.run("smoke", jobs=2)  # side by side, as `make figures` runs them
    assert all(o.exists() for o in outputs)
    params = rn.resolve_parameters(profile, rn.list_notebooks(), rn.list_notebooks())
    runnable = [nb.stem for nb, p in params.items() if not rn.missing_external(nb, p)]
    assert [o.stem for o in outputs] == runnable
    verdicts = sorted(figures.glob("*.verdict.json"))
    # 00 (the tiny world) and 08 (real outputs) test no finding of the paper: no verdict
    assert len(verdicts) == len([nb for nb in outputs if not nb.stem.startswith(("00", "08"))])
    for v in verdicts:
        doc = json.loads(v.read_text())
        assert doc["verdict"] in ("agrees", "disagrees", "inconclusive")
        assert (figures / f"{doc['figure']}.png").stat().st_size > 10_000
        assert (figures / f"{doc['figure']}.pdf").exists()

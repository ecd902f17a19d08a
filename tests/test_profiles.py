"""The notebook profiles: every parameter is declared by the notebooks, every model name is in
the registry (the paper profile cannot run here, so this is its check)."""

from pathlib import Path

import pytest
import yaml

from tts_utils import run_notebooks as rn
from tts_utils.models.catalog import get_model

PROFILES = sorted(p.stem for p in rn.PARAMS_DIR.glob("*.yaml"))
MODEL_KEYS = {"policies": "policy", "prms": "prm", "policy": "policy", "prm": "prm", "small_policies": "policy",
              "short_prm": "prm", "long_prm": "prm", "sensitive_prm": "prm", "insensitive_prm": "prm",
              "small_policy": "policy", "large_policy": "policy", "paper_prm_order": "prm",
              "weak_prms": "prm", "strong_prms": "prm", "hard_prms": "prm", "table6_policy": "policy", "table6_prms": "prm"}


def test_the_three_profiles_exist():
    assert {"smoke", "cpu", "paper"} <= set(PROFILES)


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_parameters_are_declared_by_the_notebooks(profile):
    nbs = rn.list_notebooks()
    params = rn.resolve_parameters(rn.load_profile(profile), nbs, nbs)
    assert params and all(isinstance(p, dict) for p in params.values())


@pytest.mark.parametrize("profile", PROFILES)
def test_every_model_name_is_in_the_registry(profile):
    doc = yaml.safe_load(Path(rn.PARAMS_DIR / f"{profile}.yaml").read_text())
    sections = [doc.get("defaults") or {}, *(doc.get("notebooks") or {}).values()]
    seen = 0
    for sec in sections:
        for key, kind in MODEL_KEYS.items():
            names = sec.get(key)
            if names is None or names == "":
                continue
            for name in names if isinstance(names, list) else [names]:
                assert get_model(name, kind=kind).kind == kind
                seen += 1
    assert seen > 0

"""The model registry: the paper's models, unknown names, local directories, the tiny manifest."""

from __future__ import annotations

import json
import math
import re

import pytest

from tts_utils import paths
from tts_utils.models import catalog as models
from tts_utils.models.catalog import PAPER_MODELS, PRM_BASE_FAMILIES, PRM_FORMATS, PROMPT_FAMILIES, get_model

POLICIES = {
    "Llama-3.2-1B-Instruct": "llama3", "Llama-3.2-3B-Instruct": "llama3", "Llama-3.1-8B-Instruct": "llama3",
    "Llama-3.1-70B-Instruct": "llama3", "Llama-3.1-405B-Instruct": "llama3",
    **{f"Qwen2.5-{s}-Instruct": "qwen2.5" for s in ("0.5B", "1.5B", "3B", "7B", "14B", "32B", "72B")},
    "DeepSeek-R1-Distill-Qwen-1.5B": "deepseek-r1", "DeepSeek-R1-Distill-Qwen-7B": "deepseek-r1",
}
PRMS = {
    "math-shepherd-mistral-7b-prm": "math-shepherd",
    "Llama3.1-8B-PRM-Mistral-Data": "rlhflow", "Llama3.1-8B-PRM-Deepseek-Data": "rlhflow",
    "Skywork-o1-Open-PRM-Qwen-2.5-1.5B": "skywork", "Skywork-o1-Open-PRM-Qwen-2.5-7B": "skywork",
    "Qwen2.5-Math-PRM-7B": "qwen-prm", "Qwen2.5-Math-PRM-72B": "qwen-prm",
}


def nominal_size(name: str) -> float:
    """The size in a model's name: "...-1.5B-..." -> 1.5e9."""
    return float(re.search(r"(\d+(?:\.\d+)?)[Bb]", name).group(1)) * 1e9


def test_every_paper_model_is_registered_with_sane_fields():
    assert set(PAPER_MODELS) == set(POLICIES) | set(PRMS)
    for name, spec in PAPER_MODELS.items():
        assert spec.name == name and spec.world == "paper" and not spec.is_local
        assert spec.source.split("/")[1] == name  # registry names are the hub's model names
        # real counts stay close to the nominal size in the name
        assert 0.9 < spec.params / nominal_size(name) < 1.25, name
        if spec.kind == "policy":
            assert spec.family == POLICIES[name] and spec.family in PROMPT_FAMILIES and spec.prm_format is None
        else:
            assert spec.kind == "prm" and spec.prm_format == PRMS[name] and spec.prm_format in PRM_FORMATS
            assert spec.family in PRM_BASE_FAMILIES


def test_exact_counts_from_the_model_cards():
    assert get_model("Llama-3.2-1B-Instruct").params == 1.24e9
    assert get_model("Qwen2.5-0.5B-Instruct").params == 0.49e9
    assert get_model("Qwen2.5-72B-Instruct").params == 72.7e9
    assert get_model("Llama-3.1-405B-Instruct").params > 400e9


def test_pretraining_tokens_reproduce_the_papers_table4():
    tokens = {n: s.train_tokens for n, s in PAPER_MODELS.items()}
    assert tokens["Llama-3.2-3B-Instruct"] == 9e12 and tokens["Llama-3.1-405B-Instruct"] == 15e12
    assert all(tokens[f"Qwen2.5-{s}-Instruct"] == 18e12 for s in ("0.5B", "7B", "72B"))
    assert tokens["math-shepherd-mistral-7b-prm"] is None  # Mistral never published it
    # Table 4 pre-training FLOPs = 6 * nominal params * tokens (paper_facts.md section 4).
    for name, paper in [("Llama-3.2-3B-Instruct", 1.62e23), ("Llama-3.1-405B-Instruct", 3.65e25),
                        ("DeepSeek-R1-Distill-Qwen-7B", 7.56e23)]:
        assert math.isclose(6 * nominal_size(name) * tokens[name], paper, rel_tol=0.01), name


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="Qwen2.5-7B-Instruct") as err:
        get_model("Qwen2.5-8B-Instruct")
    assert "Qwen2.5-Math-PRM-7B" in str(err.value)
    with pytest.raises(KeyError) as err:
        get_model("no-such-prm", kind="prm")
    assert "Skywork-o1-Open-PRM-Qwen-2.5-7B" in str(err.value) and "Llama-3.2-1B-Instruct" not in str(err.value)


def test_kind_mismatch_is_an_error():
    with pytest.raises(ValueError, match="is a policy, not a prm"):
        get_model("Qwen2.5-7B-Instruct", kind="prm")


def test_local_directory(tmp_path, monkeypatch):
    spec = get_model(str(tmp_path), kind="prm", prm_format="skywork")
    assert (spec.world, spec.kind, spec.prm_format, spec.train_tokens) == ("local", "prm", "skywork", None)
    assert spec.is_local and spec.local_path() == tmp_path and math.isnan(spec.params)
    pol = get_model(str(tmp_path), kind="policy", family="qwen2.5")
    assert pol.family == "qwen2.5" and pol.prm_format is None
    # a relative path is resolved where it is given, not against the repo root
    monkeypatch.chdir(tmp_path.parent)
    assert get_model(tmp_path.name, kind="policy", family="llama3").local_path() == tmp_path
    with pytest.raises(ValueError, match="prm_format"):
        get_model(str(tmp_path), kind="prm")
    with pytest.raises(ValueError, match="prm_format"):
        get_model(str(tmp_path), kind="prm", prm_format="orm")
    with pytest.raises(ValueError, match="family"):
        get_model(str(tmp_path), kind="policy", family="gpt")
    with pytest.raises(ValueError, match="kind"):
        get_model(str(tmp_path))


def test_tiny_manifest_joins_the_registry(tmp_path, monkeypatch):
    manifest = tmp_path / "models.json"
    manifest.write_text(json.dumps([
        {"name": "tiny-prm-x", "kind": "prm", "source": "data/tinyworld/prm_x", "family": "tiny",
         "params": 1e5, "train_tokens": 2e7, "prm_format": "qwen-prm", "train_seconds": 60},
    ]))
    monkeypatch.setattr(models, "TINY_MANIFEST", manifest)
    spec = get_model("tiny-prm-x", kind="prm")
    assert spec.world == "tiny" and spec.is_local and spec.prm_format == "qwen-prm"
    assert spec.local_path() == paths.REPO_ROOT / "data/tinyworld/prm_x"
    assert "tiny-prm-x" in models.registry() and "Qwen2.5-7B-Instruct" in models.registry()
    manifest.write_text(json.dumps([{"name": "broken", "kind": "prm"}]))
    with pytest.raises(ValueError, match="bad record"):
        models.registry()

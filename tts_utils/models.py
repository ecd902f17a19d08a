"""Model registry: every policy and PRM of the paper, and the tiny world's, by name.

A spec says where the weights are (hub id or local dir), which prompt family (system prompt and
chat template) and which PRM input format it uses, and its parameter count and training tokens
(for FLOPs). Tiny-world models are read from the manifest that ``tts_utils.tinyworld`` writes
(data/tinyworld/models.json), so they join the registry as soon as they are built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from tts_utils.data import DATA_DIR

TINY_MANIFEST = DATA_DIR / "tinyworld" / "models.json"

PROMPT_FAMILIES = ("llama3", "qwen2.5", "deepseek-r1", "tiny")
PRM_FORMATS = ("math-shepherd", "rlhflow", "skywork", "qwen-prm")


@dataclass(frozen=True)
class ModelSpec:
    name: str                      # registry name, e.g. "Qwen2.5-1.5B-Instruct"
    kind: str                      # "policy" or "prm"
    source: str                    # hub id, or a local directory (relative paths: to the repo root)
    family: str                    # prompt family (PROMPT_FAMILIES) for policies; base family for PRMs
    params: float                  # parameter count
    train_tokens: float | None     # pre-training tokens (FLOPs); None where unknown
    prm_format: str | None = None  # PRM_FORMATS, for kind == "prm"
    world: str = "paper"           # "paper" or "tiny"

    @property
    def is_local(self) -> bool:
        return self.world == "tiny" or Path(self.source).exists()

    def local_path(self) -> Path:
        p = Path(self.source)
        return p if p.is_absolute() else DATA_DIR.parent / p


# Filled in by the registry of paper models below.
PAPER_MODELS: dict[str, ModelSpec] = {}


def _tiny_models() -> dict[str, ModelSpec]:
    if not TINY_MANIFEST.exists():
        return {}
    specs = {}
    for rec in json.loads(TINY_MANIFEST.read_text()):
        spec = ModelSpec(world="tiny", **rec)
        specs[spec.name] = spec
    return specs


def registry() -> dict[str, ModelSpec]:
    return {**PAPER_MODELS, **_tiny_models()}


def get_model(name: str, *, kind: str | None = None, family: str | None = None,
              prm_format: str | None = None) -> ModelSpec:
    """Look up a model by registry name, or accept a local directory given with its family.

    An unknown name is an error listing the known ones.
    """
    reg = registry()
    if name in reg:
        spec = reg[name]
        if kind is not None and spec.kind != kind:
            raise ValueError(f"{name!r} is a {spec.kind}, not a {kind}")
        return spec
    if Path(name).is_dir():
        if kind is None or (kind == "policy" and family is None) or (kind == "prm" and prm_format is None):
            raise ValueError(f"local model {name!r}: give kind= and family= (policy) or prm_format= (PRM)")
        return ModelSpec(name=name, kind=kind, source=name, family=family or "local", params=float("nan"),
                         train_tokens=None, prm_format=prm_format, world="local")
    known = sorted(n for n, s in reg.items() if kind is None or s.kind == kind)
    raise KeyError(f"unknown model {name!r}; known {kind or 'model'}s: {', '.join(known)}")


__all__ = ["ModelSpec", "PAPER_MODELS", "PROMPT_FAMILIES", "PRM_FORMATS", "get_model", "registry", "replace"]

"""Model registry: every policy and PRM of the paper, and the tiny world's, by name.

A spec says where the weights are (hub id or local dir), which prompt family (system prompt and
chat template) and which PRM input format it uses, and its parameter count and training tokens
(for FLOPs). Tiny-world models are read from the manifest that ``tts_utils.tinyworld`` writes
(data/tinyworld/models.json), so they join the registry as soon as they are built.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from tts_utils.paths import DATA_DIR, REPO_ROOT


def default_device() -> str:
    """Where a model goes when no device is named: the GPU if one is visible, else the CPU."""
    # No GPU driver's device file, no GPU: where torch is not imported yet, a CPU machine skips
    # importing it (1.4 s, which a warm `make figures` would pay in every notebook).
    if "torch" not in sys.modules and not any(os.path.exists(d) for d in ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")):
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


TINY_MANIFEST = DATA_DIR / "tinyworld" / "models.json"
# tokenizer_config classes that mean "exactly the tokenizer.json beside me"
_GENERIC_TOKENIZERS = ("TokenizersBackend", "PreTrainedTokenizerFast")

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
    world: str = "paper"           # "paper", "tiny" (the manifest) or "local" (a directory given by path)
    # Sampling this policy is run with instead of the grid's (SearchConfig field -> value), as
    # (field, value) pairs so that the spec stays hashable; empty: the grid's settings.
    sampling: tuple[tuple[str, float], ...] = ()

    @property
    def is_local(self) -> bool:
        return self.world in ("tiny", "local") or Path(self.source).exists()

    def local_path(self) -> Path:
        p = Path(self.source)
        return p if p.is_absolute() else REPO_ROOT / p


# Base families of the paper's PRMs (informational: a PRM's input format is ``prm_format``).
PRM_BASE_FAMILIES = ("mistral", "llama3", "qwen2.5")

# Pre-training tokens, for training FLOPs (6 * params * tokens).
_LLAMA31_TOKENS = 15e12   # Meta's Llama 3.1 model card: "~15 trillion tokens" (8B, 70B, 405B)
_LLAMA32_TOKENS = 9e12    # Meta's Llama 3.2 model card: "up to 9 trillion tokens" (1B, 3B)
_QWEN25_TOKENS = 18e12    # Qwen2.5 report / model cards: "up to 18 trillion tokens", every size
# Qwen2.5-Math (base of the R1 distills and of the Skywork and Qwen PRMs) continues Qwen2.5 on a
# further ~1T-token math corpus; we count the 18T of Qwen2.5, as the paper's Table 4 does
# (DeepSeek-R1-Distill-7B: 7.56e23 = 6 x 7B x 18T). Distillation/PRM fine-tuning is not counted.
_QWEN25_MATH_TOKENS = _QWEN25_TOKENS

# name: (kind, hub id, family, params, pre-training tokens, prm_format)
# params: the model cards' counts (Qwen2.5 cards list 0.49B ... 72.7B; Meta's safetensors hold
# 1.24B, 3.21B, 8.03B, 70.6B, 406B). The paper's Table 4 uses nominal sizes (3B, 405B, 7B) instead.
_PAPER_TABLE: dict[str, tuple] = {
    # -- policies ----------------------------------------------------------------------------
    "Llama-3.2-1B-Instruct": ("policy", "meta-llama/Llama-3.2-1B-Instruct", "llama3", 1.24e9, _LLAMA32_TOKENS, None),
    "Llama-3.2-3B-Instruct": ("policy", "meta-llama/Llama-3.2-3B-Instruct", "llama3", 3.21e9, _LLAMA32_TOKENS, None),
    "Llama-3.1-8B-Instruct": ("policy", "meta-llama/Llama-3.1-8B-Instruct", "llama3", 8.03e9, _LLAMA31_TOKENS, None),
    "Llama-3.1-70B-Instruct": ("policy", "meta-llama/Llama-3.1-70B-Instruct", "llama3", 70.6e9, _LLAMA31_TOKENS, None),
    "Llama-3.1-405B-Instruct": ("policy", "meta-llama/Llama-3.1-405B-Instruct", "llama3", 406e9, _LLAMA31_TOKENS, None),
    "Qwen2.5-0.5B-Instruct": ("policy", "Qwen/Qwen2.5-0.5B-Instruct", "qwen2.5", 0.49e9, _QWEN25_TOKENS, None),
    "Qwen2.5-1.5B-Instruct": ("policy", "Qwen/Qwen2.5-1.5B-Instruct", "qwen2.5", 1.54e9, _QWEN25_TOKENS, None),
    "Qwen2.5-3B-Instruct": ("policy", "Qwen/Qwen2.5-3B-Instruct", "qwen2.5", 3.09e9, _QWEN25_TOKENS, None),
    "Qwen2.5-7B-Instruct": ("policy", "Qwen/Qwen2.5-7B-Instruct", "qwen2.5", 7.61e9, _QWEN25_TOKENS, None),
    "Qwen2.5-14B-Instruct": ("policy", "Qwen/Qwen2.5-14B-Instruct", "qwen2.5", 14.7e9, _QWEN25_TOKENS, None),
    "Qwen2.5-32B-Instruct": ("policy", "Qwen/Qwen2.5-32B-Instruct", "qwen2.5", 32.5e9, _QWEN25_TOKENS, None),
    "Qwen2.5-72B-Instruct": ("policy", "Qwen/Qwen2.5-72B-Instruct", "qwen2.5", 72.7e9, _QWEN25_TOKENS, None),
    # R1 distills: Qwen2.5-Math-1.5B/7B bases; the 1.5B distill unties its embeddings (1.78B).
    "DeepSeek-R1-Distill-Qwen-1.5B": ("policy", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "deepseek-r1", 1.78e9,
                                      _QWEN25_MATH_TOKENS, None),
    "DeepSeek-R1-Distill-Qwen-7B": ("policy", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "deepseek-r1", 7.62e9,
                                    _QWEN25_MATH_TOKENS, None),
    # -- PRMs ----------------------------------------------------------------------------------
    # Math-Shepherd: Mistral-7B base (7.24B); Mistral never published its pre-training tokens.
    "math-shepherd-mistral-7b-prm": ("prm", "peiyi9979/math-shepherd-mistral-7b-prm", "mistral", 7.24e9, None,
                                     "math-shepherd"),
    # RLHFlow: fine-tuned Llama-3.1-8B-Instruct.
    "Llama3.1-8B-PRM-Mistral-Data": ("prm", "RLHFlow/Llama3.1-8B-PRM-Mistral-Data", "llama3", 8.03e9,
                                     _LLAMA31_TOKENS, "rlhflow"),
    "Llama3.1-8B-PRM-Deepseek-Data": ("prm", "RLHFlow/Llama3.1-8B-PRM-Deepseek-Data", "llama3", 8.03e9,
                                      _LLAMA31_TOKENS, "rlhflow"),
    # Skywork: Qwen2.5-Math-1.5B/7B-Instruct + a Linear(hidden, 1) value head (+1.5k/3.6k params).
    "Skywork-o1-Open-PRM-Qwen-2.5-1.5B": ("prm", "Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B", "qwen2.5", 1.54e9,
                                          _QWEN25_MATH_TOKENS, "skywork"),
    "Skywork-o1-Open-PRM-Qwen-2.5-7B": ("prm", "Skywork/Skywork-o1-Open-PRM-Qwen-2.5-7B", "qwen2.5", 7.61e9,
                                        _QWEN25_MATH_TOKENS, "skywork"),
    # Qwen PRMs: Qwen2.5-Math-7B/72B-Instruct without the LM head, plus a 2-layer 2-class head
    # (computed: 7.61B - 0.55B lm_head + 0.01B head = 7.07B; 72.7B - 1.25B + 0.07B = 71.5B).
    "Qwen2.5-Math-PRM-7B": ("prm", "Qwen/Qwen2.5-Math-PRM-7B", "qwen2.5", 7.07e9, _QWEN25_MATH_TOKENS, "qwen-prm"),
    "Qwen2.5-Math-PRM-72B": ("prm", "Qwen/Qwen2.5-Math-PRM-72B", "qwen2.5", 71.5e9, _QWEN25_MATH_TOKENS, "qwen-prm"),
}

# The paper's code samples the R1 distills at T = 0.6, top-p 0.95, up to 32768 new tokens
# (evaluate.py: "if 'deepseek-r1' in args.LM[0].lower()"), DeepSeek's recommended settings; the
# other policies at the grid's T = 0.7, top-p 1.0. (Its CoT for them samples at T = 0.6 as well;
# our CoT stays greedy for every policy.)
R1_SAMPLING = (("temperature", 0.6), ("top_p", 0.95), ("max_solution_tokens", 32768))

PAPER_MODELS: dict[str, ModelSpec] = {
    name: ModelSpec(name=name, kind=kind, source=hub, family=family, params=params, train_tokens=tokens,
                    prm_format=fmt, world="paper", sampling=R1_SAMPLING if family == "deepseek-r1" else ())
    for name, (kind, hub, family, params, tokens, fmt) in _PAPER_TABLE.items()
}


def _tiny_models() -> dict[str, ModelSpec]:
    if not TINY_MANIFEST.exists():
        return {}
    fields = {f.name for f in dataclasses.fields(ModelSpec)} - {"world"}
    specs = {}
    for rec in json.loads(TINY_MANIFEST.read_text()):
        # The manifest may carry extra metadata (training steps, ...): keep only the spec's fields.
        try:
            spec = ModelSpec(world="tiny", **{k: v for k, v in rec.items() if k in fields})
        except TypeError as e:
            raise ValueError(f"{TINY_MANIFEST}: bad record {rec!r}: {e}") from None
        specs[spec.name] = spec
    return specs


def registry() -> dict[str, ModelSpec]:
    return {**PAPER_MODELS, **_tiny_models()}


def get_model(name: str, *, kind: str | None = None, family: str | None = None,
              prm_format: str | None = None) -> ModelSpec:
    """Look up a model by registry name, or accept a local directory given with its kind and
    family (policy) or prm_format (PRM).

    An unknown name is a KeyError listing the known ones (of ``kind``, when given). A local
    directory's spec has ``world="local"``, an absolute ``source`` and unknown size (``nan``).
    """
    reg = registry()
    if name in reg:
        spec = reg[name]
        if kind is not None and spec.kind != kind:
            raise ValueError(f"{name!r} is a {spec.kind}, not a {kind}")
        return spec
    if Path(name).is_dir():
        if kind not in ("policy", "prm"):
            raise ValueError(f"local model {name!r}: give kind='policy' (with family=) or kind='prm' "
                             f"(with prm_format=)")
        if kind == "policy" and family not in PROMPT_FAMILIES:
            raise ValueError(f"local policy {name!r}: family= must be one of {PROMPT_FAMILIES}, got {family!r}")
        if kind == "prm" and prm_format not in PRM_FORMATS:
            raise ValueError(f"local PRM {name!r}: prm_format= must be one of {PRM_FORMATS}, got {prm_format!r}")
        return ModelSpec(name=name, kind=kind, source=str(Path(name).resolve()), family=family or "local",
                         params=float("nan"), train_tokens=None, prm_format=prm_format if kind == "prm" else None,
                         world="local")
    known = sorted(n for n, s in reg.items() if kind is None or s.kind == kind)
    raise KeyError(f"unknown model {name!r} (and not a local directory); known {kind or 'model'}s: "
                   f"{', '.join(known)}")


__all__ = ["ModelSpec", "PAPER_MODELS", "R1_SAMPLING", "PRM_BASE_FAMILIES", "PRM_FORMATS", "PROMPT_FAMILIES", "get_model", "registry",
           "replace"]


def load_tokenizer(source: str, trust_remote_code: bool = False):
    """The tokenizer of a checkpoint, as its model was trained with.

    ``AutoTokenizer`` except for a local directory whose tokenizer_config declares a generic
    tokenizers-backed class: transformers 5 maps a qwen2 config to ``Qwen2Tokenizer`` whatever the
    tokenizer_config says, and that class re-splits a tokenizer.json that is not Qwen's BPE (the tiny
    world's character-level Qwen-format PRM lost every space and newline, and its rewards moved by up
    to 0.45). Such a directory gets exactly its tokenizer.json."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    cfg = Path(source) / "tokenizer_config.json"
    if cfg.exists() and json.loads(cfg.read_text()).get("tokenizer_class") in _GENERIC_TOKENIZERS:
        return PreTrainedTokenizerFast.from_pretrained(source)
    return AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)


"""Training and inference FLOPs, by the standard dense-transformer approximations.

* Training: ``6 * params * tokens`` (forward 2 + backward 4 FLOPs per parameter per token).
* Inference: ``2 * params * tokens`` for every token a model processes in a forward pass,
  summed over the policy and the PRM.

What is counted, and what is not:

* Only matrix multiplies with the weights; attention over the context (which grows with
  sequence length), embeddings lookups, sampling and the KV-cache bookkeeping are left out.
  For short sequences relative to the model width this is the usual few-percent error.
* Inference counts exactly the tokens passed in. Whether prompt tokens (and, for search, the
  re-read prefixes that a KV cache would save) are included is the caller's choice; say it
  next to the number.
* ``params`` is what takes part in each token's forward pass. For a mixture-of-experts model
  that is the active parameter count; the paper's Table 4 nevertheless uses DeepSeek-R1's
  total 671B for pre-training (see tests/test_flops.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real


def _check(name: str, value: float) -> float:
    # numbers.Real admits numpy scalars (token counts summed in pandas), not strings or bools.
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


def training_flops(params: float, tokens: float) -> float:
    """FLOPs to train a model of ``params`` parameters on ``tokens`` tokens: 6 * P * D."""
    return 6.0 * _check("params", params) * _check("tokens", tokens)


def forward_flops(params: float, tokens: float) -> float:
    """FLOPs of forward passes over ``tokens`` tokens through ``params`` parameters: 2 * P * T."""
    return 2.0 * _check("params", params) * _check("tokens", tokens)


@dataclass(frozen=True)
class InferenceFlops:
    """Inference FLOPs split by model; ``total`` is their sum."""

    policy: float
    prm: float

    @property
    def total(self) -> float:
        return self.policy + self.prm


def inference_flops(
    policy_params: float,
    policy_tokens: float,
    prm_params: float = 0,
    prm_tokens: float = 0,
) -> InferenceFlops:
    """Inference FLOPs of a test-time-scaling run: 2 * P * T for the policy and for the PRM.

    ``policy_tokens``: every token the policy processed (generated tokens, plus prompt and
    prefix tokens if the caller counts them). ``prm_tokens``: every token the PRM read when
    scoring (each scored solution is one forward pass over question + steps). Leave the PRM
    at 0 for CoT and majority voting, which use none.
    """
    return InferenceFlops(
        policy=forward_flops(policy_params, policy_tokens),
        prm=forward_flops(prm_params, prm_tokens),
    )

"""PRM interface: per-step rewards for (question, steps) pairs, every step in one forward pass.

One class per real PRM input format (DESIGN.md section 5): Math-Shepherd, RLHFlow, Skywork
(value head) and Qwen2.5-Math-PRM (2-class head at <extra_0>).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class StepScores:
    rewards: list[float]   # one reward in [0, 1] per step, in order
    num_tokens: int        # tokens the PRM processed for this solution (for FLOPs)


class PRM(ABC):
    name: str

    @abstractmethod
    def score(self, questions: list[str], solutions: list[list[str]]) -> list[StepScores]:
        """Score every step of every solution. ``solutions[i]`` is the list of steps of a solution
        to ``questions[i]`` (as generated, usually each ending in "\\n\\n")."""

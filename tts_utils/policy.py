"""Policy interface: generate continuations of prompts, one step or a whole solution at a time.

Backends (transformers on CPU/GPU, vLLM, any OpenAI-compatible completions server) all implement
``Policy.generate``. Prompts are plain strings already rendered through the model's chat template
(see tts_utils.prompts.build_prompt), so every backend sees exactly the same text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

STEP_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 2048
    # Generation stops right after one of these strings; the stop string is KEPT in the text
    # (the paper's step semantics: a step ends with "\n\n"). None or () means no stop string.
    stop: tuple[str, ...] | None = (STEP_SEPARATOR,)


@dataclass(frozen=True)
class Generation:
    text: str            # the continuation (stop string included when finish_reason == "stop")
    num_tokens: int      # generated tokens
    finish_reason: str   # "stop" (hit a stop string), "eos" (end of sequence/turn), "length" (max_tokens)


class Policy(ABC):
    """A policy model. ``name`` is its registry name; ``family`` selects its system prompt."""

    name: str
    family: str

    @abstractmethod
    def generate(self, prompts: list[str], params: SamplingParams, seeds: list[int]) -> list[Generation]:
        """One continuation per prompt. ``seeds[i]`` makes sample i reproducible on its own,
        whatever else is in the batch (same seed + same prompt -> same text)."""

    @abstractmethod
    def build_prompt(self, question: str, steps: list[str]) -> str:
        """The rendered prompt that continues the partial solution ``steps`` (each ending in
        "\\n\\n"), with no end-of-turn token after them."""

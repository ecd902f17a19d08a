"""Shared test doubles and fixtures.

``ScriptedPolicy`` and ``KnownPRM`` implement the real Policy / PRM interfaces with fully known
behaviour, so search tests can compute the expected choices by hand:

* a scripted step reads ``d<depth> v=<value> s<seed>`` and ends in "\\n\\n"; its value, and
  whether it ends the solution (``... \\boxed{<answer>}`` with finish "eos"), are pure functions
  of (prompt, seed). The step text carries its seed, so a child's lineage is visible in the path;
* ``KnownPRM`` scores a step with the ``v=`` value written in it (0.5 when absent).

Both log every call, so tests can check batching (one call per round) and caching (no calls).
``load_model(kind, name)`` is a model factory that collect configs can name as
``loader: "conftest:load_model"`` (tests put this directory on the import path).
"""

from __future__ import annotations

import random
import re
import sys
import time
from pathlib import Path

import pytest

from tts_utils.models.policy import STEP_SEPARATOR, Generation, Policy, SamplingParams
from tts_utils.models.prm import PRM, StepScores
from tts_utils.problems.datasets import Problem

_PROMPT_SEP = "\x1e"  # between question and partial solution in a scripted prompt
_VALUE_RE = re.compile(r"v=([0-9.]+)")

# Calls made by every double built by load_model in this process, for caching tests.
CALLS = {"policy_generate": 0, "prm_score": 0, "policy_loads": 0, "prm_loads": 0}


class ScriptedPolicy(Policy):
    """Deterministic policy: the next step is a pure function of (prompt, seed).

    ``p_end(depth)`` is the chance that the step at 1-based ``depth`` ends the solution with a
    boxed answer drawn from ``answers``. Greedy calls (temperature 0) ignore the seed.
    """

    family = "tiny"

    def __init__(self, name: str = "scripted", p_end=lambda d: 0.2 + 0.1 * d, answers=("1", "2", "3"),
                 delay_s: float = 0.0):
        self.name = name
        self.p_end = p_end
        self.answers = tuple(answers)
        self.delay_s = delay_s
        self.calls: list[tuple[list[str], SamplingParams, list[int], list[Generation]]] = []

    def build_prompt(self, question: str, steps: list[str]) -> str:
        return question + _PROMPT_SEP + "".join(steps)

    def _step(self, rng: random.Random, depth: int, seed: int) -> tuple[str, bool]:
        value = rng.random()
        if rng.random() < self.p_end(depth):
            return f"d{depth} v={value:.4f} s{seed} so \\boxed{{{rng.choice(self.answers)}}}", True
        return f"d{depth} v={value:.4f} s{seed}{STEP_SEPARATOR}", False

    def generate(self, prompts: list[str], params: SamplingParams, seeds: list[int]) -> list[Generation]:
        if len(prompts) != len(seeds):
            raise ValueError("prompts and seeds differ in length")
        if self.delay_s:
            time.sleep(self.delay_s)
        CALLS["policy_generate"] += 1
        out = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            seed = 0 if params.temperature == 0 else seed
            rng = random.Random(f"{prompt}|{seed}")  # str seeds hash with sha512: stable across runs
            depth = prompt.split(_PROMPT_SEP, 1)[1].count(STEP_SEPARATOR) + 1
            if params.stop:  # one step
                text, ended = self._step(rng, depth, seed)
            else:  # a whole solution: steps until one ends it (or 40 steps)
                parts, ended = [], False
                while not ended and len(parts) < 40:
                    part, ended = self._step(rng, depth + len(parts), seed)
                    parts.append(part)
                text = "".join(parts)
            tokens = len(text.split())
            if tokens > params.max_tokens:
                out.append(Generation(" ".join(text.split()[: params.max_tokens]), params.max_tokens, "length"))
            else:
                out.append(Generation(text, tokens, "eos" if ended else "stop"))
        self.calls.append((list(prompts), params, list(seeds), out))
        return out


class KnownPRM(PRM):
    """A step's reward is the ``v=`` value written in it; tokens = words of question + steps."""

    def __init__(self, name: str = "known"):
        self.name = name
        self.calls: list[tuple[list[str], list[list[str]]]] = []

    def score(self, questions: list[str], solutions: list[list[str]]) -> list[StepScores]:
        CALLS["prm_score"] += 1
        self.calls.append((list(questions), [list(s) for s in solutions]))
        out = []
        for q, steps in zip(questions, solutions, strict=True):
            rewards = []
            for step in steps:
                m = _VALUE_RE.search(step)
                rewards.append(float(m.group(1)) if m else 0.5)
            out.append(StepScores(rewards, len(q.split()) + sum(len(s.split()) for s in steps)))
        return out


def step_value(step: str) -> float:
    return float(_VALUE_RE.search(step).group(1))


def make_problems(k: int, prefix: str = "p") -> list[Problem]:
    return [Problem(id=f"{prefix}{i}", problem=f"question {i}: what is it?", answer=str(1 + i % 3),
                    level=1 + i % 5) for i in range(k)]


def load_model(kind: str, name: str):
    """Model factory for collect configs: "scripted*" policies and "known*" PRMs.

    A name containing "slow" sleeps 0.05 s per call (so a test can kill a run mid-way);
    "scripted-long" ends solutions late (deep searches).
    """
    delay = 0.05 if "slow" in name else 0.0
    if kind == "policy" and name.startswith("scripted"):
        CALLS["policy_loads"] += 1
        p_end = (lambda d: 0.05 * d) if "long" in name else (lambda d: 0.2 + 0.1 * d)
        return ScriptedPolicy(name, p_end=p_end, delay_s=delay)
    if kind == "prm" and name.startswith("known"):
        CALLS["prm_loads"] += 1
        return KnownPRM(name)
    raise KeyError(f"test loader: unknown {kind} {name!r}")


def write_jsonl(problems: list[Problem], path: Path) -> Path:
    from tts_utils.problems.datasets import write_jsonl as _write

    _write(problems, path)
    return path


@pytest.fixture
def calls():
    for k in CALLS:
        CALLS[k] = 0
    return CALLS


@pytest.fixture
def tests_on_path(monkeypatch):
    """Make ``conftest:load_model`` importable by name (as collect's loader option does it)."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        monkeypatch.syspath_prepend(here)
    return here

"""Shared pieces of every search method: budgets, seeds, step splitting, candidate records.

Vocabulary used across ``tts_utils.search``:

* a **candidate** is one complete solution a method ends with (N of them per problem for a
  budget N), stored with its steps and per-step PRM rewards so that every voting rule of
  docs/DESIGN.md, "Voting" can be applied afterwards without regenerating;
* a **group** is a set of candidates of one problem that were produced together and must be kept
  or dropped together when a run at N_max is subsampled to a smaller N: one sample for BoN and
  majority voting, one subtree (M candidates) for DVTS, the whole problem for beam search.
  ``Candidate.subtree`` is the group id.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field

from tts_utils.models.policy import STEP_SEPARATOR, Generation, PromptError, SamplingParams
from tts_utils.problems.prompts import split_steps

# Paper sampling (docs/DESIGN.md, "Search methods"): T = 0.7, top_p = 1.0 for every TTS method, greedy CoT.
TEMPERATURE = 0.7
TOP_P = 1.0
BEAM_WIDTH = 4
MAX_DEPTH = 40
MAX_STEP_TOKENS = 2048
MAX_SOLUTION_TOKENS = 8192
# What beam search / DVTS do with a child whose path ends (see beam_search.py):
# "slot": the paper's code: N/M beam slots; a kept child that ends takes its slot for good, and the
#         search returns the N/M finished paths (DVTS: one per subtree);
# "ranked": ranked together with the live children, kept only if it makes the cut; fills N;
# "kept": always kept as a candidate, only live children compete for the beam; fills N.
FINISHED_PATHS = ("slot", "ranked", "kept")


@dataclass(frozen=True)
class SearchConfig:
    """Everything besides the models, problems, N and seed that changes a search's result."""

    beam_width: int = BEAM_WIDTH
    max_depth: int = MAX_DEPTH
    temperature: float = TEMPERATURE
    top_p: float = TOP_P
    max_step_tokens: int = MAX_STEP_TOKENS
    max_solution_tokens: int = MAX_SOLUTION_TOKENS
    finished_paths: str = "slot"

    def __post_init__(self):
        for name in ("beam_width", "max_depth", "max_step_tokens", "max_solution_tokens"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"SearchConfig.{name} must be a positive integer, got {v!r}")
        for name in ("temperature", "top_p"):  # a string compared with 0 would raise a TypeError naming nothing
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ValueError(f"SearchConfig.{name} must be a number, got {v!r}")
        if not 0 <= self.temperature < math.inf:  # NaN fails too
            raise ValueError(f"SearchConfig.temperature must be a finite number >= 0, got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SearchConfig.top_p must be in (0, 1], got {self.top_p!r}")
        if self.finished_paths not in FINISHED_PATHS:
            raise ValueError(f"SearchConfig.finished_paths must be one of {FINISHED_PATHS}, got {self.finished_paths!r}")

    def step_params(self) -> SamplingParams:
        """One step: stop at the separator (kept in the text)."""
        return SamplingParams(temperature=self.temperature, top_p=self.top_p,
                              max_tokens=self.max_step_tokens, stop=(STEP_SEPARATOR,))

    def solution_params(self, temperature: float | None = None) -> SamplingParams:
        """A whole solution in one call: no stop string, the solution token budget."""
        return SamplingParams(temperature=self.temperature if temperature is None else temperature,
                              top_p=self.top_p, max_tokens=self.max_solution_tokens, stop=None)


@dataclass
class Candidate:
    problem_id: str
    method: str
    n: int                 # the budget of the run this candidate belongs to
    seed: int
    index: int             # position among the problem's candidates, 0..n-1
    subtree: int           # group id (see module docstring)
    lineage: str           # child index at each depth from the root, e.g. "5.2.0" (beam/DVTS)
    steps: list[str]
    rewards: list[float]   # one PRM reward per step (empty when the method uses no PRM)
    step_tokens: list[int]  # policy tokens generated for each step
    prm_tokens: int        # PRM tokens of the scoring pass that produced ``rewards``
    finish_reason: str     # "eos", "length", "boxed", "no_separator", "max_depth", "max_tokens"
    answer: str | None = None
    correct: bool = False

    @property
    def text(self) -> str:
        return "".join(self.steps)

    @property
    def policy_tokens(self) -> int:
        return sum(self.step_tokens)


@dataclass
class ProblemRun:
    """What one problem cost in one run; per group so that subsampling can re-add the costs."""

    problem_id: str
    method: str
    n: int
    seed: int
    group_policy_tokens: list[int]   # every policy token generated for the group, pruned beams included
    group_prm_tokens: list[int]      # every PRM token processed for the group (all re-scoring passes)

    @property
    def policy_tokens(self) -> int:
        return sum(self.group_policy_tokens)

    @property
    def prm_tokens(self) -> int:
        return sum(self.group_prm_tokens)


@dataclass
class SearchResult:
    method: str
    n: int
    seed: int
    candidates: list[Candidate]
    runs: list[ProblemRun]
    wall_s: float = 0.0
    policy_calls: int = 0   # generate() calls made (one per expansion round, batched over problems)
    prm_calls: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def policy_tokens(self) -> int:
        return sum(r.policy_tokens for r in self.runs)

    @property
    def prm_tokens(self) -> int:
        return sum(r.prm_tokens for r in self.runs)


def check_budget(n: object, beam_width: int | None = None, method: str = "search") -> int:
    """Validate a budget N (and its divisibility by the beam width M for tree searches)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"{method}: budget N must be an integer, got {n!r} ({type(n).__name__})")
    if n <= 0:
        raise ValueError(f"{method}: budget N must be positive, got {n}")
    if beam_width is not None:
        if isinstance(beam_width, bool) or not isinstance(beam_width, int) or beam_width <= 0:
            raise ValueError(f"{method}: beam width M must be a positive integer, got {beam_width!r}")
        if n < beam_width:
            raise ValueError(f"{method}: budget N={n} is smaller than the beam width M={beam_width}")
        if n % beam_width:
            raise ValueError(f"{method}: budget N={n} is not divisible by the beam width M={beam_width}")
    return n


def derive_seed(*parts: object) -> int:
    """A per-request seed from its identity (run seed, problem id, round, beam, child...).

    sha256 rather than ``hash()``: Python salts string hashes per process, and the seed must be
    the same on every machine so that shards and reruns reproduce each other. 31 bits so that
    every backend (numpy's legacy seeding, C ints) accepts it.
    """
    key = "\x1f".join(repr(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % (2**31 - 1)


def step_end_reason(gen: Generation, depth: int, path_tokens: int, cfg: SearchConfig) -> str | None:
    """Why a path whose latest step is ``gen`` (at 1-based ``depth``) ends, or None if it goes on.

    docs/DESIGN.md, "Search methods": a path ends when a step has no separator, contains \\boxed, hits EOS,
    or reaches the max depth; we also end it when its tokens reach the solution budget (the
    per-step limit cannot shrink within one batched generate call, so the last step may
    overshoot the solution budget by less than one step).
    """
    if gen.finish_reason in ("eos", "length"):
        return gen.finish_reason
    if "\\boxed" in gen.text:
        return "boxed"
    if not gen.text.endswith(STEP_SEPARATOR):
        return "no_separator"
    if depth >= cfg.max_depth:
        return "max_depth"
    if path_tokens >= cfg.max_solution_tokens:
        return "max_tokens"
    return None


def grade_candidates(candidates: list[Candidate], gold: dict[str, str]) -> None:
    """Fill ``answer`` and ``correct`` in place (grading.extract_answer / is_equivalent)."""
    from tts_utils.problems.grading import extract_answer, is_equivalent

    for c in candidates:
        c.answer = extract_answer(c.text)
        c.correct = c.answer is not None and bool(is_equivalent(c.answer, gold[c.problem_id]))


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def problems_by_id(problems) -> dict[str, object]:
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise ValueError("search: problem ids must be unique within one call")
    return {p.id: p for p in problems}


def generate(policy, prompts: list[str], params: SamplingParams, seeds: list[int],
             problem_ids: list[str]) -> list[Generation]:
    """``policy.generate`` for prompts of the given problems (one id per prompt): a prompt the
    model refuses is reported by its problem id, not by its position in a batch."""
    if not prompts:
        return []
    try:
        gens = policy.generate(prompts, params, seeds)
    except PromptError as e:
        raise PromptError(f"problem {problem_ids[e.index]!r}: {e}", e.index) from None
    if len(gens) != len(prompts):
        raise RuntimeError(f"policy {getattr(policy, 'name', policy)!r} returned {len(gens)} generations "
                           f"for {len(prompts)} prompts")
    return gens


def sample_solutions(policy, problems, n: int, seed: int, params: SamplingParams, method: str,
                     namespace: str = "sample") -> tuple[list[Candidate], list[ProblemRun]]:
    """n whole solutions per problem in ONE generate call, split into steps (no PRM).

    Seeds depend on (seed, namespace, problem id, sample index) only, so sample i is the same
    at every N and whatever else is in the batch; BoN and majority voting share the namespace
    "sample" and therefore the same samples.
    """
    prompts, seeds, keys = [], [], []
    for p in problems:
        prompt = policy.build_prompt(p.problem, [])
        for i in range(n):
            prompts.append(prompt)
            seeds.append(derive_seed(seed, namespace, p.id, i))
            keys.append((p.id, i))
    gens = generate(policy, prompts, params, seeds, [pid for pid, _ in keys])
    cands: list[Candidate] = []
    tokens: dict[str, list[int]] = {p.id: [] for p in problems}
    for (pid, i), g in zip(keys, gens, strict=True):
        steps = split_steps(g.text)
        # Per-step token counts are not known for a whole-solution sample: the total goes on the
        # last step so that sums (policy_tokens) stay exact.
        step_tokens = [0] * (len(steps) - 1) + [g.num_tokens] if steps else []
        if not steps:
            steps, step_tokens = [""], [g.num_tokens]
        cands.append(Candidate(problem_id=pid, method=method, n=n, seed=seed, index=i, subtree=i,
                               lineage=str(i), steps=steps, rewards=[], step_tokens=step_tokens,
                               prm_tokens=0, finish_reason=g.finish_reason))
        tokens[pid].append(g.num_tokens)
    runs = [ProblemRun(p.id, method, n, seed, tokens[p.id], [0] * len(tokens[p.id])) for p in problems]
    return cands, runs


def score_candidates(prm, problems, cands: list[Candidate], runs: list[ProblemRun]) -> None:
    """PRM-score every step of every candidate in ONE prm.score call; costs go to each group."""
    if not cands:
        return
    by_id = problems_by_id(problems)
    scores = prm.score([by_id[c.problem_id].problem for c in cands], [c.steps for c in cands])
    if len(scores) != len(cands):
        raise RuntimeError(f"PRM {getattr(prm, 'name', prm)!r} returned {len(scores)} scores for {len(cands)} solutions")
    run_of = {r.problem_id: r for r in runs}
    for c, s in zip(cands, scores, strict=True):
        if len(s.rewards) != len(c.steps):
            raise RuntimeError(f"PRM {getattr(prm, 'name', prm)!r} gave {len(s.rewards)} rewards for "
                               f"{len(c.steps)} steps (problem {c.problem_id!r})")
        c.rewards = [float(r) for r in s.rewards]
        c.prm_tokens = int(s.num_tokens)
        run_of[c.problem_id].group_prm_tokens[c.subtree] += int(s.num_tokens)

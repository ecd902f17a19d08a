"""Step-level beam search guided by a PRM (docs/DESIGN.md, "Search methods"), beam width M (default 4).

Round 1 samples N first steps per problem; the best children by the PRM score of their last step
are kept; each kept live path samples M next steps; repeat. A path ends when its step has no
separator, contains \\boxed, hits EOS/length, reaches max depth (40) or the solution token budget.
Every round generates at most N children.

Paths that end early (``SearchConfig.finished_paths``):

* ``"slot"`` (default; the paper's code, compute-optimal-tts ``SearchTree.beam_search`` with
  ``beam_size`` = N/M, root width N and M children a node): a problem has N/M beam slots. Each
  round all children, ended and live, are ranked together and the top (slots - finished paths)
  are kept; a kept child that ended is a finished path and holds its slot for good, a kept live
  child is a beam for the next round. The search stops when N/M paths have finished, and those
  N/M paths are its candidates: beam search returns N/M candidates at budget N, not N.
* ``"ranked"`` (this project's earlier default): the same joint ranking, but a finished path
  does not use up a slot: ``need`` = N - (candidates so far), an ended child above the cut is a
  candidate (need -= 1), a live one a beam worth M children (the lowest-ranked beam gets the
  remainder need - (kept - 1) * M), until the beams cover the need; N candidates per problem.
* ``"kept"`` (the rule before that): every ended child is a candidate whatever its score; the
  beams are the top ceil(need / M) live children; N candidates per problem.

Either way a problem ends with its full number of candidates, none duplicated: at max depth every
child ends. (In "ranked", the walk always stops: if it kept every child, the live ones could
produce M times their number, which is at least the remaining need.)

(search-and-learn instead keeps generating N children a round by duplicating the surviving
beams, collects every completed path, and at the end keeps the top N by score or pads by
duplicating completed beams; it returns N, duplicates included, which would distort vote counts.)

Ties in the top-k choice break by generation order (parent rank, then child index), which is
deterministic. Seeds come from (seed, problem id, group, round, parent rank, child index), so a
problem's search does not depend on the other problems in the batch.

``grouped_beam_search`` is the engine: it runs many independent beam searches ("groups", each
with its own budget) in lockstep, one generate call and one PRM call per round for all of them.
Beam search is one group of budget N per problem; DVTS (dvts.py) is N/M groups of budget M.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tts_utils.search.common import (
    Candidate,
    ProblemRun,
    SearchConfig,
    SearchResult,
    Timer,
    check_budget,
    derive_seed,
    generate,
    grade_candidates,
    problems_by_id,
    step_end_reason,
)
from tts_utils.search.registry import Method, register

METHOD = "beam_search"


@dataclass
class _Path:
    steps: list[str]
    step_tokens: list[int]
    lineage: tuple[int, ...]
    rewards: list[float] = field(default_factory=list)
    prm_tokens: int = 0
    end: str | None = None


@dataclass
class _Group:
    problem: object      # problems.datasets.Problem
    subtree: int
    budget: int          # generations a round (N for beam search, M for a DVTS subtree)
    width: int           # M
    rule: str            # SearchConfig.finished_paths
    parents: list[_Path]  # beams to expand this round, best first
    done: list[_Path] = field(default_factory=list)
    policy_tokens: int = 0
    prm_tokens: int = 0
    need: int = field(init=False)  # candidates still to produce

    def __post_init__(self):
        # "slot": budget / M beam slots, one finished path each; otherwise N candidates
        self.need = self.budget // self.width if self.rule == "slot" else self.budget

    def children_per_parent(self, first_round: bool) -> list[int]:
        if first_round:  # the root samples all of the budget (N first steps)
            return [self.budget]
        counts = [self.width] * len(self.parents)
        if self.rule != "slot":  # the last beam gets what is left of the need
            counts[-1] = self.need - (len(self.parents) - 1) * self.width
        return counts


def grouped_beam_search(policy, prm, groups: list[_Group], cfg: SearchConfig, seed: int,
                        method: str) -> tuple[int, int]:
    """Run all groups to completion in lockstep; returns (policy calls, PRM calls)."""
    params = cfg.step_params()
    policy_calls = prm_calls = 0
    for rnd in range(cfg.max_depth):
        live = [g for g in groups if g.need > 0]
        if not live:
            break
        # 1. expansion: one generate call for every child of every live beam of every problem
        prompts, seeds, slots = [], [], []
        for g in live:
            for rank, (parent, k) in enumerate(zip(g.parents, g.children_per_parent(rnd == 0), strict=True)):
                prompt = policy.build_prompt(g.problem.problem, parent.steps)
                for child in range(k):
                    prompts.append(prompt)
                    seeds.append(derive_seed(seed, method, g.problem.id, g.subtree, rnd, rank, child))
                    slots.append((g, parent, child))
        gens = generate(policy, prompts, params, seeds, [g.problem.id for g, _, _ in slots])
        policy_calls += 1
        children: list[tuple[_Group, _Path]] = []
        for (g, parent, child), gen in zip(slots, gens, strict=True):
            path = _Path(parent.steps + [gen.text], parent.step_tokens + [gen.num_tokens],
                         parent.lineage + (child,))
            path.end = step_end_reason(gen, len(path.steps), sum(path.step_tokens), cfg)
            g.policy_tokens += gen.num_tokens
            children.append((g, path))
        # 2. scoring: one PRM call for every new path (the whole path is re-scored, as the
        #    PRMs read all steps in one pass; every token of it is counted, as the FLOPs model
        #    does; a TransformersPRM runs the prefix the M children of a beam share only once)
        scores = prm.score([g.problem.problem for g, _ in children], [p.steps for _, p in children])
        prm_calls += 1
        if len(scores) != len(children):
            raise RuntimeError(f"PRM {getattr(prm, 'name', prm)!r} returned {len(scores)} scores for "
                               f"{len(children)} paths")
        for (g, path), s in zip(children, scores, strict=True):
            if len(s.rewards) != len(path.steps):
                raise RuntimeError(f"PRM {getattr(prm, 'name', prm)!r} gave {len(s.rewards)} rewards for "
                                   f"{len(path.steps)} steps (problem {g.problem.id!r})")
            path.rewards = [float(r) for r in s.rewards]
            path.prm_tokens = int(s.num_tokens)
            g.prm_tokens += int(s.num_tokens)
        # 3. selection, per group: ended paths become candidates, the rest compete for the beam
        by_group: dict[int, list[_Path]] = {}
        for g, path in children:
            by_group.setdefault(id(g), []).append(path)
        select = _SELECT[cfg.finished_paths]
        for g in live:
            select(g, by_group[id(g)])
    unfinished = [g.problem.id for g in groups if g.need > 0]
    if unfinished:  # cannot happen: the round at max_depth ends every path; guard the invariant
        raise RuntimeError(f"{method}: problems {unfinished[:5]} ended with fewer candidates than the budget")
    return policy_calls, prm_calls


def _ranked(paths: list[_Path]) -> list[_Path]:
    # sorted() is stable, so equal scores keep generation order: deterministic ties
    return sorted(paths, key=lambda p: -p.rewards[-1])


def _select_slot(g: _Group, children: list[_Path]) -> None:
    """The paper's rule: the top (free slots) children are kept; an ended one fills its slot."""
    kept = _ranked(children)[: g.need]
    g.done.extend(p for p in kept if p.end is not None)
    g.parents = [p for p in kept if p.end is None]
    g.need = len(g.parents)


def _select_kept(g: _Group, children: list[_Path]) -> None:
    """Every ended child is a candidate; the best live children are the next beams."""
    ended = [p for p in children if p.end is not None]
    g.done.extend(ended)
    g.need -= len(ended)
    alive = _ranked([p for p in children if p.end is None])
    g.parents = alive[: math.ceil(g.need / g.width)] if g.need > 0 else []


def _select_ranked(g: _Group, children: list[_Path]) -> None:
    """Ended and live children ranked together; walk down until the kept beams cover the need."""
    beams: list[_Path] = []
    for p in _ranked(children):
        if g.need <= len(beams) * g.width:
            break
        if p.end is not None:
            g.done.append(p)
            g.need -= 1
        else:
            beams.append(p)
    g.parents = beams if g.need > 0 else []


_SELECT = {"slot": _select_slot, "ranked": _select_ranked, "kept": _select_kept}


def to_result(groups: list[_Group], problems, method: str, n: int, seed: int, wall_s: float,
              calls: tuple[int, int]) -> SearchResult:
    cands: list[Candidate] = []
    runs: list[ProblemRun] = []
    for p in problems:
        mine = sorted((g for g in groups if g.problem.id == p.id), key=lambda g: g.subtree)
        index = 0
        for g in mine:
            for path in g.done:
                cands.append(Candidate(
                    problem_id=p.id, method=method, n=n, seed=seed, index=index, subtree=g.subtree,
                    lineage=".".join(map(str, path.lineage)), steps=path.steps, rewards=path.rewards,
                    step_tokens=path.step_tokens, prm_tokens=path.prm_tokens, finish_reason=path.end))
                index += 1
        runs.append(ProblemRun(p.id, method, n, seed, [g.policy_tokens for g in mine],
                               [g.prm_tokens for g in mine]))
    grade_candidates(cands, {p.id: p.answer for p in problems})
    return SearchResult(method, n, seed, cands, runs, wall_s=wall_s, policy_calls=calls[0], prm_calls=calls[1])


def beam_search(policy, prm, problems, n: int, seed: int = 0, config: SearchConfig | None = None) -> SearchResult:
    """Beam search at budget N: N/M candidates per problem by default, N with ``finished_paths``
    "ranked" or "kept" (see the module docstring)."""
    cfg = config or SearchConfig()
    check_budget(n, cfg.beam_width, METHOD)
    problems = list(problems)
    problems_by_id(problems)
    root = _Path([], [], ())
    groups = [_Group(p, 0, n, cfg.beam_width, cfg.finished_paths, [root]) for p in problems]
    with Timer() as t:
        calls = grouped_beam_search(policy, prm, groups, cfg, seed, METHOD)
    return to_result(groups, problems, METHOD, n, seed, t.seconds, calls)


register(Method(METHOD, beam_search, uses_prm=True, n_multiple_of_beam=True))

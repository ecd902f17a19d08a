"""Step-score aggregation and answer selection over a set of candidate solutions (docs/DESIGN.md, "Voting").

A candidate is its final answer (a string, or None when it has none) and its PRM step rewards.
A candidate's step rewards aggregate to one score by PRM-Min, PRM-Last or PRM-Avg; the answer
is then chosen by

* ``majority``: the answer given by the most candidates;
* ``prm_*_max``: the answer of the candidate with the highest aggregated score;
* ``prm_*_vote``: the answer whose candidates' aggregated scores sum highest.

Answers are grouped by mathematical equivalence (``grading.is_equivalent``), so "0.5" and
"\\frac{1}{2}" vote together. Candidates without an answer never win; if no candidate has an
answer the selection is None.

Ties between groups break towards the group whose first candidate comes earliest in the given
order. Every rule is a per-group score (count, best candidate score, sum of scores) followed by
that same tie rule, so the seven rules differ only in the score.

Grouping is the costly part (math-verify on pairs of distinct answers); compute it once per
candidate set with ``group_answers`` and pass ``groups=`` to every ``select`` call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tts_utils.problems.grading import is_equivalent

AGGREGATIONS = ("min", "last", "avg")
VOTING_RULES = (
    "majority",
    "prm_min_max",
    "prm_min_vote",
    "prm_last_max",
    "prm_last_vote",
    "prm_avg_max",
    "prm_avg_vote",
)

NO_ANSWER = -1  # group id of candidates whose answer is None


def aggregate(rewards: Sequence[float], how: str) -> float:
    """One score from a candidate's step rewards: ``how`` is "min", "last" or "avg".

    Raises ValueError on an empty list (a candidate always has at least one step, so an empty
    list is an upstream bug, not a score of 0) or on a non-finite reward.
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; known: {', '.join(AGGREGATIONS)}")
    values = [float(r) for r in rewards]
    if not values:
        raise ValueError("cannot aggregate an empty list of step rewards")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"step rewards must be finite numbers, got {values}")
    if how == "min":
        return min(values)
    if how == "last":
        return values[-1]
    return sum(values) / len(values)


def _key(answer: str) -> str:
    # Cheap first-stage key: identical up to surrounding whitespace and $...$.
    return answer.strip().strip("$").strip()


def group_answers(answers: Sequence[str | None]) -> list[int]:
    """A group id per candidate: equal ids mean mathematically equivalent answers.

    Ids are 0, 1, 2, ... in order of each group's first candidate; a None answer gets
    ``NO_ANSWER`` (-1). Identical strings are grouped first; then each distinct string is
    compared (``is_equivalent``) with the first string of each group formed so far and joins
    the first group it matches. So math-verify runs on distinct strings only, at most
    (distinct strings) x (groups) times.
    """
    key_group: dict[str, int] = {}
    representatives: list[str] = []  # first string of each group, indexed by group id
    ids: list[int] = []
    for answer in answers:
        if answer is None:
            ids.append(NO_ANSWER)
            continue
        if not isinstance(answer, str):
            raise TypeError(f"answers must be str or None, got {type(answer).__name__}: {answer!r}")
        key = _key(answer)
        if key not in key_group:
            match = next((g for g, rep in enumerate(representatives) if is_equivalent(key, rep)), None)
            if match is None:
                match = len(representatives)
                representatives.append(key)
            key_group[key] = match
        ids.append(key_group[key])
    return ids


def _parse_rule(rule: str) -> tuple[str | None, str]:
    """ "prm_min_vote" -> ("min", "vote"); "majority" -> (None, "majority")."""
    if rule not in VOTING_RULES:
        raise ValueError(f"unknown voting rule {rule!r}; known: {', '.join(VOTING_RULES)}")
    if rule == "majority":
        return None, "majority"
    _, how, selection = rule.split("_")
    return how, selection


def select_index(
    answers: Sequence[str | None],
    step_rewards: Sequence[Sequence[float]] | None,
    rule: str,
    *,
    groups: Sequence[int] | None = None,
) -> int | None:
    """Index of the first candidate of the winning answer group, or None if no candidate has an answer.

    ``step_rewards[i]`` are candidate i's step rewards (ignored, and may be None, for
    "majority"). ``groups`` is ``group_answers(answers)`` when already computed. Only
    candidates with an answer are scored, so a candidate without one may have any rewards.
    Raises ValueError on an unknown rule, no candidates, mismatched lengths, or (PRM rules)
    an answered candidate with empty or non-finite step rewards.
    """
    how, selection = _parse_rule(rule)
    n = len(answers)
    if n == 0:
        raise ValueError("select needs at least one candidate")
    if groups is None:
        groups = group_answers(answers)
    elif len(groups) != n:
        raise ValueError(f"{len(groups)} group ids for {n} candidates")
    if how is not None:
        if step_rewards is None or len(step_rewards) != n:
            got = "none" if step_rewards is None else len(step_rewards)
            raise ValueError(f"rule {rule!r} needs step rewards for each of the {n} candidates, got {got}")

    first: dict[int, int] = {}  # group -> index of its first candidate
    score: dict[int, float] = {}  # group -> count, best score or summed score
    for i, g in enumerate(groups):
        if g == NO_ANSWER or answers[i] is None:
            continue
        if how is None:
            value = 1.0
        else:
            try:
                value = aggregate(step_rewards[i], how)
            except ValueError as e:
                raise ValueError(f"candidate {i}: {e}") from None
        if g not in first:
            first[g] = i
            score[g] = value
        elif selection == "max":
            score[g] = max(score[g], value)
        else:  # majority counts, vote sums
            score[g] += value
    if not first:
        return None
    # Highest score; among equal scores the group whose first candidate comes earliest.
    winner = max(first, key=lambda g: (score[g], -first[g]))
    return first[winner]


def select(
    answers: Sequence[str | None],
    step_rewards: Sequence[Sequence[float]] | None,
    rule: str,
    *,
    groups: Sequence[int] | None = None,
) -> str | None:
    """The winning answer (as its group's first candidate wrote it), or None; see ``select_index``."""
    index = select_index(answers, step_rewards, rule, groups=groups)
    return None if index is None else answers[index]

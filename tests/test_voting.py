"""Voting rules on small hand-computed candidate sets."""

from __future__ import annotations

import pytest

from tts_utils.search import voting
from tts_utils.search.voting import NO_ANSWER, VOTING_RULES, aggregate, group_answers, select, select_index

# Rewards are multiples of 1/8, so sums are exact and the intended ties are real ties.
ANSWERS = ["1", "2", "2", "\\frac{1}{2}", None, "0.5"]
REWARDS = [
    [1.0, 0.25],  # "1":     min .25   last .25  avg .625
    [0.5, 0.5],  # "2":      min .5    last .5   avg .5
    [0.75, 0.5],  # "2":     min .5    last .5   avg .625
    [0.125, 1.0],  # "1/2":  min .125  last 1.0  avg .5625
    [1.0, 1.0],  # no answer: would win every PRM rule if it were counted
    [0.375, 0.375],  # "0.5" (same group as "\frac{1}{2}"): .375 everywhere
]
# Groups: A = {0} "1", B = {1, 2} "2", C = {3, 5} "1/2". Hand-computed group scores:
EXPECTED_INDEX = {
    "majority": 1,  # A 1, B 2, C 2: B and C tie, B's first candidate (1) is earlier than C's (3)
    "prm_min_max": 1,  # A .25, B .5, C .375
    "prm_min_vote": 1,  # A .25, B 1.0, C .5
    "prm_last_max": 3,  # A .25, B .5, C 1.0
    "prm_last_vote": 3,  # A .25, B 1.0, C 1.375
    "prm_avg_max": 0,  # A .625, B .625, C .5625: A and B tie, A is first
    "prm_avg_vote": 1,  # A .625, B 1.125, C .9375
}


def test_rule_names():
    assert set(EXPECTED_INDEX) == set(VOTING_RULES)
    assert len(VOTING_RULES) == 7


@pytest.mark.parametrize("rule", VOTING_RULES)
def test_each_rule_hand_computed(rule):
    index = select_index(ANSWERS, REWARDS, rule)
    assert index == EXPECTED_INDEX[rule]
    assert select(ANSWERS, REWARDS, rule) == ANSWERS[index]


@pytest.mark.parametrize("rule", VOTING_RULES)
def test_precomputed_groups_give_the_same_result(rule):
    groups = group_answers(ANSWERS)
    assert select_index(ANSWERS, REWARDS, rule, groups=groups) == EXPECTED_INDEX[rule]


def test_precomputed_groups_are_used():
    # Majority over groups that split "\frac{1}{2}" from "0.5": B (2 votes) now wins alone...
    split = [0, 1, 1, 2, NO_ANSWER, 3]
    assert select(ANSWERS, None, "majority", groups=split) == "2"
    # ...and groups that merge "1" with "2" make that group win every rule with 3 members.
    merged = [0, 0, 0, 1, NO_ANSWER, 1]
    assert select(ANSWERS, None, "majority", groups=merged) == "1"


def test_tie_break_uses_order_not_group_ids():
    # Group ids from a larger set need not follow this subset's order: the earliest candidate wins.
    answers = ["7", "3"]
    assert select_index(answers, None, "majority", groups=[5, 2]) == 0
    assert select_index(answers, [[0.5], [0.5]], "prm_last_max", groups=[5, 2]) == 0
    assert select(["3", "7"], [[0.5], [0.5]], "prm_min_vote") == "3"


def test_no_answer_never_wins():
    answers = [None, None, "4", None]
    rewards = [[1.0], [1.0], [0.01], [1.0]]
    for rule in VOTING_RULES:
        assert select(answers, rewards, rule) == "4"
        assert select_index(answers, rewards, rule) == 2


def test_all_none_gives_none():
    for rule in VOTING_RULES:
        assert select([None, None], [[0.5], [0.9]], rule) is None
        assert select_index([None, None], [[0.5], [0.9]], rule) is None


def test_equivalence_grouping():
    answers = ["0.5", "\\frac{1}{2}", "1/2", " 0.5 ", "2", None, "$2$", "\\dfrac12", "3"]
    assert group_answers(answers) == [0, 0, 0, 0, 1, NO_ANSWER, 1, 0, 2]
    # Two spellings of 1/2 outvote two identical "2"s only because they are grouped.
    assert select(["2", "0.5", "2", "\\frac{1}{2}", "0.50"], None, "majority") == "0.5"


def test_grouping_compares_distinct_strings_only(monkeypatch):
    calls = []

    def counting(pred, gold):
        calls.append((pred, gold))
        return pred == gold

    monkeypatch.setattr(voting, "is_equivalent", counting)
    distinct = [str(k) for k in range(8)]
    answers = [distinct[(i * 5) % 8] for i in range(256)]
    groups = group_answers(answers)
    assert len(set(groups)) == 8
    # Each new distinct string is compared with the groups before it: 0 + 1 + ... + 7 calls.
    assert len(calls) == sum(range(8))


def test_aggregate():
    rewards = [0.5, 0.25, 0.75]
    assert aggregate(rewards, "min") == 0.25
    assert aggregate(rewards, "last") == 0.75
    assert aggregate(rewards, "avg") == pytest.approx(0.5)
    assert aggregate((0.1,), "avg") == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("rewards", "how", "message"),
    [([], "min", "empty"), ([0.5, float("nan")], "avg", "finite"), ([0.5], "max", "unknown aggregation")],
)
def test_aggregate_errors(rewards, how, message):
    with pytest.raises(ValueError, match=message):
        aggregate(rewards, how)


def test_select_errors():
    with pytest.raises(ValueError, match="unknown voting rule"):
        select(["1"], [[0.5]], "prm_max")
    with pytest.raises(ValueError, match="at least one candidate"):
        select([], [], "majority")
    with pytest.raises(ValueError, match="needs step rewards"):
        select(["1", "2"], None, "prm_min_max")
    with pytest.raises(ValueError, match="needs step rewards"):
        select(["1", "2"], [[0.5]], "prm_min_max")
    with pytest.raises(ValueError, match="candidate 1: cannot aggregate an empty"):
        select(["1", "2"], [[0.5], []], "prm_avg_vote")
    with pytest.raises(ValueError, match="group ids"):
        select(["1", "2"], None, "majority", groups=[0])
    with pytest.raises(TypeError, match="str or None"):
        group_answers(["1", 2])


def test_unanswered_candidate_may_have_no_rewards():
    # A candidate without an answer is not scored, so its (empty) rewards are not an error.
    assert select(["5", None], [[0.5], []], "prm_min_max") == "5"
    assert select(["5"], None, "majority") == "5"  # majority needs no rewards

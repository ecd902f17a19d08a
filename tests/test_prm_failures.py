"""The PRM failure rules on constructed candidates whose step labels and scores are known.

Steps are labelled by a stand-in checker (a step reading "bad" is wrong), so the rules are tested
without depending on the tiny world's text format; the real checker is tested in test_tinyworld.
"""

import numpy as np
import pandas as pd
import pytest

from tts_utils.study import prm_failures as pf


def first_bad(question, steps):
    return next((i for i, s in enumerate(steps) if s == "bad"), -1)


def cands(rows, prm="p", policy="pol", n=4):
    """rows: (problem_id, candidate, steps, rewards)."""
    return pd.DataFrame([{"dataset": "d", "policy": policy, "prm": prm, "method": "best_of_n", "n": n, "seed": 0,
                          "problem_id": pid, "candidate": c, "steps": steps, "rewards": rewards,
                          "step_tokens": [3 + len(s) for s in steps]} for pid, c, steps, rewards in rows])


QUESTIONS = {f"q{i}": f"question {i}" for i in range(10)}


def test_step_labels_follow_the_first_error():
    t = pf.step_table(cands([("q0", 0, ["ok", "bad", "ok"], [0.9, 0.8, 0.1]),
                             ("q1", 0, ["ok", "ok"], [0.3, 0.9])]), QUESTIONS, first_bad)
    assert list(t["label"]) == ["correct", "first_error", "after_error", "correct", "correct"]
    assert list(t["first_error"]) == [1, 1, 1, -1, -1]


def test_only_the_largest_budget_counts_and_missing_questions_are_an_error():
    rows = [("q0", 0, ["ok"], [0.9])]
    both = pd.concat([cands(rows, n=4), cands(rows, n=8)])
    assert len(pf.step_table(both, QUESTIONS, first_bad)) == 1
    with pytest.raises(KeyError, match="no question text"):
        pf.step_table(cands([("zz", 0, ["ok"], [0.9])]), QUESTIONS, first_bad)


def test_each_rule_fires_on_its_own_case():
    t = pf.step_table(cands([
        ("q0", 0, ["ok", "ok"], [0.2, 0.9]),          # over-criticism of step 1
        ("q1", 0, ["ok", "bad"], [0.9, 0.8]),         # error neglect (bad step scored 0.8)
        ("q2", 0, ["ok", "bad", "ok"], [0.1, 0.4, 0.9]),  # localization: correct step 1 below the error
        ("q3", 0, ["bad"], [0.1]),                    # caught at once: no failure; no localization chance
    ]), QUESTIONS, first_bad)
    ev = pf.events(t, threshold=0.5)
    oc = ev["over_criticism"]
    assert oc["event"].sum() == 2 and len(oc) == 4  # q0's first step (0.2) and q2's (0.1) of 4 correct steps
    en = ev["error_neglect"].set_index("problem_id")["event"]
    assert en.to_dict() == {"q1": 1, "q2": 0, "q3": 0}
    lb = ev["localization_bias"].set_index("problem_id")["event"]
    assert lb.to_dict() == {"q1": 0, "q2": 1}  # q3's error is its first step: no correct step to blame
    ex = pf.examples(t).set_index("failure")
    assert ex.loc["over_criticism", "problem_id"] == "q2" and ex.loc["over_criticism", "step"] == 0  # lowest: 0.1
    assert ex.loc["error_neglect", "problem_id"] == "q1"
    assert ex.loc["localization_bias", "step"] == 0


def test_ratio_interval_is_over_problems_and_never_a_point_at_zero_events():
    table = pd.DataFrame({"problem_id": [f"q{i % 20}" for i in range(200)], "event": [0] * 200})
    rate, lo, hi, count = pf.ratio_ci(table)
    assert (rate, lo, count) == (0.0, 0.0, 200)
    assert hi == pytest.approx(3 / 20)  # rule of three over 20 problems, not 200 rows
    table["event"] = [i % 2 for i in range(200)]
    rate, lo, hi, _ = pf.ratio_ci(table)
    assert rate == 0.5 and lo < 0.5 < hi


def test_rank_correlation_is_spearman_with_a_problem_bootstrap():
    rng = np.random.default_rng(1)
    x = rng.normal(size=300)
    table = pd.DataFrame({"problem_id": [f"q{i % 30}" for i in range(300)], "step": x,
                          "score": x + rng.normal(scale=0.5, size=300)})
    rho, lo, hi, n = pf.rank_correlation_ci(table, "step")
    assert rho == pytest.approx(table["step"].rank().corr(table["score"].rank()))
    assert lo < rho < hi and lo > 0.5 and n == 300
    table["score"] = rng.normal(size=300)  # no relation: rho near 0, an interval about 4 / sqrt(300) wide
    rho, lo, hi, _ = pf.rank_correlation_ci(table, "step")
    assert abs(rho) < 0.2 and lo < rho < hi and 0.15 < hi - lo < 0.35


def test_first_error_f1_of_a_perfect_and_a_blind_prm():
    rows = [("q0", 0, ["ok", "bad"], None), ("q1", 0, ["ok", "ok"], None), ("q2", 0, ["bad", "ok"], None)]
    perfect = [[0.9, 0.1], [0.9, 0.9], [0.1, 0.2]]
    blind = [[0.9, 0.9], [0.9, 0.9], [0.9, 0.9]]
    c = pd.concat([cands([(p, k, s, r) for (p, k, s, _), r in zip(rows, perfect, strict=True)], prm="perfect"),
                   cands([(p, k, s, r) for (p, k, s, _), r in zip(rows, blind, strict=True)], prm="blind")])
    f1 = pf.first_error_f1(pf.step_table(c, QUESTIONS, first_bad))
    assert f1["perfect"] == 1.0 and f1["blind"] == 0.0


def test_tests_against_the_pre_registered_tolerances():
    assert pf.above_test(0.2, np.full(100, 0.2), 0.05, 50) == ("agrees", 0.0)
    assert pf.above_test(0.01, np.linspace(0.0, 0.03, 100), 0.05, 50) == ("disagrees", 0.0)
    direction, p = pf.above_test(0.0, np.zeros(100), 0.05, 10)  # none seen in 10 problems: weak evidence
    assert direction == "disagrees" and p == pytest.approx(0.95 ** 10)
    assert pf.beyond_test(0.5, np.full(100, 0.5), 0.1) == ("agrees", 0.0)
    assert pf.beyond_test(-0.02, np.linspace(-0.05, 0.05, 100), 0.1) == ("disagrees", 0.0)
    direction, p = pf.beyond_test(0.15, np.linspace(-0.2, 0.5, 100), 0.1)
    assert direction == "agrees" and p > 0.5


def test_the_finding_pools_the_prms_and_applies_holm():
    rows = [(f"q{i}", 0, ["ok", "ok"], [0.2, 0.9]) for i in range(10)]  # every first step over-criticized
    rows += [(f"q{i}", 1, ["ok", "bad"], [0.9, 0.1]) for i in range(10)]  # errors caught where they are
    c = pd.concat([cands(rows, prm="a"), cands(rows, prm="b")])
    rates = pf.failure_rates(pf.step_table(c, QUESTIONS, first_bad), rate_tolerance=0.05, bias_tolerance=0.1)
    pooled = rates[rates["prm"] == "all"].set_index("failure")
    assert pooled.loc["over_criticism", "value"] == pytest.approx(10 / 30)
    assert pooled.loc["error_neglect", "value"] == 0.0
    s = pf.finding_failures(rates, 0.05, 0.1)
    verdicts = {p["claim"].split(":")[0]: p["verdict"] for p in s["parts"]}
    assert verdicts["over-criticism"] == "agrees"
    # none neglected in 10 problems: below 5%, but too few problems to say so at Holm's level
    assert verdicts["error neglect"] == "inconclusive"
    assert verdicts["error-localization bias"] == "inconclusive"  # likewise
    assert "Holm" in s["rule"] and s["verdict"] == "inconclusive"


def test_the_rules_need_an_exact_checker():
    assert pf.step_checker("tinyhard30") is not None
    with pytest.raises(ValueError, match="ProcessBench"):
        pf.step_checker("math500")


def test_an_example_shows_every_step_with_its_label_and_score():
    c = cands([("q1", 0, ["ok", "bad", "ok"], [0.9, 0.8, 0.2])])
    t = pf.step_table(c, QUESTIONS, first_bad)
    ex = pf.examples(t)
    ex = ex[ex["failure"] == "error_neglect"].iloc[0]
    md = pf.example_markdown(ex, c, QUESTIONS, t).splitlines()
    assert "question 1" in md[2]
    assert md[4:] == ["1. `ok` | right | score 0.90", "2. `bad` | FIRST ERROR | score 0.80 **<-**",
                      "3. `ok` | after the error | score 0.20"]

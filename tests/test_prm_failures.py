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


def test_rank_correlation_is_spearman_with_a_problem_bootstrap_and_can_stay_within_solutions():
    rng = np.random.default_rng(1)
    x = rng.normal(size=300)
    table = pd.DataFrame({"problem_id": [f"q{i % 30}" for i in range(300)], "sol": [i % 60 for i in range(300)],
                          "step": x, "score": x + rng.normal(scale=0.5, size=300)})
    rho, boots, n = pf.rank_correlation_boot(table, "step")
    assert rho == pytest.approx(table["step"].rank().corr(table["score"].rank()))
    assert np.quantile(boots, 0.025) > 0.5 and n == 300
    table["score"] = rng.normal(size=300)  # no relation: rho near 0, an interval about 4 / sqrt(300) wide
    rho, boots, _ = pf.rank_correlation_boot(table, "step")
    lo, hi = np.quantile(boots, [0.025, 0.975])
    assert abs(rho) < 0.2 and lo < rho < hi and 0.15 < hi - lo < 0.35
    # a difference between solutions only: every score is its solution's mean step, the same along it
    table["score"] = table.groupby("sol")["step"].transform("mean")
    pooled, _, _ = pf.rank_correlation_boot(table, "step")
    inside, _, _ = pf.rank_correlation_boot(table, "step", within=["sol"])
    assert pooled > 0.3 and (np.isnan(inside) or abs(inside) < 1e-9)


def test_localization_chance_is_the_exact_shuffle_probability():
    from itertools import permutations

    rng = np.random.default_rng(3)
    for scores, e in [(np.array([0.1, 0.5, 0.9, 0.3]), 2), (rng.random(5).round(1), 3), (np.full(4, 0.7), 1)]:
        hits = [min(p[:e]) < p[e] for p in permutations(scores)]
        assert pf._lower_before_error(scores, e) == pytest.approx(np.mean(hits))


def test_first_error_f1_of_a_perfect_and_a_blind_prm():
    rows = [("q0", 0, ["ok", "bad"], None), ("q1", 0, ["ok", "ok"], None), ("q2", 0, ["bad", "ok"], None)]
    perfect = [[0.9, 0.1], [0.9, 0.9], [0.1, 0.2]]
    blind = [[0.9, 0.9], [0.9, 0.9], [0.9, 0.9]]
    c = pd.concat([cands([(p, k, s, r) for (p, k, s, _), r in zip(rows, perfect, strict=True)], prm="perfect"),
                   cands([(p, k, s, r) for (p, k, s, _), r in zip(rows, blind, strict=True)], prm="blind")])
    f1 = pf.first_error_f1(pf.step_table(c, QUESTIONS, first_bad))
    assert f1["perfect"] == 1.0 and f1["blind"] == 0.0


def _scored(rng, scorer, problems=40, per=4):
    """Best-of-N style candidates (3-5 steps, an error in about half) scored by ``scorer(steps, rng)``."""
    rows = []
    for i in range(problems):
        for k in range(per):
            steps = ["ok"] * int(rng.integers(3, 6))
            if rng.random() < 0.5:
                steps[int(rng.integers(0, len(steps)))] = "bad"
            rows.append((f"p{i}", k, steps, list(scorer(steps, rng))))
    questions = {f"p{i}": f"question {i}" for i in range(problems)}
    return pf.step_table(cands(rows), questions, first_bad)


def test_a_random_or_constant_scorer_shows_no_failure_beyond_chance():
    rng = np.random.default_rng(7)
    for scorer in (lambda s, r: r.random(len(s)), lambda s, r: [0.6] * len(s)):
        rates = pf.failure_rates(_scored(rng, scorer), n_boot=500)
        s = pf.finding_failures(rates)
        rate_rows = rates[rates["failure"].isin(pf.FAILURES)]
        assert (rate_rows["effect"].abs() < 0.08).all(), rate_rows  # raw rates are 0.3-0.8; chance matches them
        assert s["verdict"] != "agrees"
        assert all(p["verdict"] != "agrees" for p in s["parts"] if "rate above chance" in p["claim"])


def test_planted_failures_and_biases_are_found():
    rng = np.random.default_rng(8)

    def blind_to_errors(steps, r):
        """The first error and what follows it score high; correct steps lower the later they come."""
        first = steps.index("bad") if "bad" in steps else len(steps)
        return [0.7 - 0.1 * i + 0.05 * r.random() if i < first else 0.95 for i in range(len(steps))]

    rates = pf.failure_rates(_scored(rng, blind_to_errors, problems=60), n_boot=500)
    s = pf.finding_failures(rates)
    verdicts = {p["claim"].split(": ", 1)[1].split(":")[0].split(" (")[0]: p["verdict"] for p in s["parts"]}
    assert verdicts["over-criticism"] == "agrees"       # the low scores land on correct steps
    assert verdicts["error neglect"] == "agrees"        # errors get the highest
    assert verdicts["error-localization bias"] == "agrees"
    assert verdicts["scoring bias by position"] == "agrees"
    assert "Holm" in s["rule"] and "chance" in s["rule"]


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

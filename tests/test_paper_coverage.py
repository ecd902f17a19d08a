"""Figs. 3 and 6 and Tables 3 and 6 (tts_utils.study.paper_coverage) on constructed per-problem tables
whose answers are known, and the paper's reference numbers."""

import math

import numpy as np
import pandas as pd
import pytest

from tts_utils.study import paper_coverage as pc
from tts_utils.study import paper_numbers


def pass1_table(values: dict[str, list[float]], dataset="tinymath500"):
    return pd.DataFrame([{"dataset": dataset, "policy": pol, "problem_id": f"p{i}", "pass1": v}
                         for pol, vs in values.items() for i, v in enumerate(vs)])


def acc_rows(dataset, policy, prm, method, n, correct):
    """One row per problem of a per-problem accuracy table (analysis.vote_accuracy after with_rule)."""
    return [{"dataset": dataset, "policy": policy, "prm": prm, "method": method, "n": n, "seed": 0,
             "problem_id": f"p{i}", "correct": bool(c), "difficulty": "medium"} for i, c in enumerate(correct)]


def test_pass1_bins_are_the_five_closed_on_the_right():
    bins = pc.pass1_bins(pd.Series([0.0, 0.2, 0.21, 0.8, 0.81, 1.0]))
    assert list(bins.astype(str)) == ["0-20%", "0-20%", "20-40%", "60-80%", "80-100%", "80-100%"]


def test_fig3_claim_is_the_strongest_policys_top_bin_share_against_half():
    params = {"small": 1.0, "large": 10.0}
    dist, s = pc.finding_pass1_distribution(pass1_table({"small": [0.1] * 30, "large": [0.9] * 30}), params)
    assert s["verdict"] == "agrees" and s["parts"][0]["effect"] == 0.5  # all of them, against one half
    assert dist.groupby("policy")["share"].sum().tolist() == [1.0, 1.0]
    # the smallest policy no longer matters: a strong policy with a third in the top bin disagrees
    _, s = pc.finding_pass1_distribution(pass1_table({"small": [0.0] * 60, "large": [0.9] * 20 + [0.5] * 40}), params)
    assert s["verdict"] == "disagrees" and s["parts"][0]["effect"] == pytest.approx(1 / 3 - 0.5)
    _, s = pc.finding_pass1_distribution(pass1_table({"large": [0.9, 0.5] * 30}), params)  # exactly half
    assert s["verdict"] == "inconclusive" and s["rule"].startswith("Fig. 3: ")


def _fig6_acc(ability, slope_of, rng, problems=400):
    rows = []
    for prm, x in ability.items():  # accuracy per PRM from its ability; 400 problems each
        rows += acc_rows("d", "pol", prm, "best_of_n", 8, rng.random(problems) < slope_of(prm, x))
        rows += acc_rows("d", "pol", prm, "best_of_n", 4, [False] * problems)  # smaller N: not used
    return pd.DataFrame(rows)


def test_fig6_slope_is_least_squares_on_log_ability():
    rng = np.random.default_rng(0)
    ability = pd.Series({"a": 0.3, "b": 0.45, "c": 0.6, "d": 0.8})
    acc = _fig6_acc(ability, lambda prm, x: 0.1 + 0.3 * math.log(x / 0.3), rng)
    table, s = pc.finding_prm_ability(acc, ability, "pol", methods=["best_of_n"])
    means = table.set_index("prm")["acc"] * 100
    expected = np.polyfit(np.log(ability * 100), means[ability.index], 1)[0]
    assert s["parts"][0]["effect"] == pytest.approx(expected)
    assert s["verdict"] == "agrees" and s["parts"][0]["robust"]
    flipped = acc.assign(correct=~acc["correct"])
    flipped = flipped[flipped["n"] == 8]
    _, s = pc.finding_prm_ability(flipped, ability, "pol", methods=["best_of_n"])
    assert s["verdict"] == "disagrees"
    with pytest.raises(ValueError, match="at least two PRMs"):
        pc.finding_prm_ability(acc, ability[["a"]], "pol", methods=["best_of_n"])


def test_fig6_is_capped_when_one_prm_carries_the_slope_or_there_are_few():
    rng = np.random.default_rng(1)
    ability = pd.Series({"a": 0.3, "b": 0.4, "c": 0.5, "d": 0.6, "e": 0.9})
    # flat for four PRMs (slightly falling), then one strong PRM far above: the slope is its alone
    carried = _fig6_acc(ability, lambda prm, x: 0.9 if prm == "e" else 0.45 - 0.1 * x, rng)
    table, s = pc.finding_prm_ability(carried, ability, "pol", methods=["best_of_n"])
    part = s["parts"][0]
    assert part["p"] < 0.01 and part["effect"] > 0  # significant on the problems alone
    assert not part["robust"] and part["verdict"] == "inconclusive" and "changes sign" in part["detail"]
    assert table.set_index("prm").loc["e", "slope_without"] < 0
    few = _fig6_acc(ability[["a", "b", "c"]], lambda prm, x: 0.1 + 0.5 * x, rng)
    _, s = pc.finding_prm_ability(few, ability[["a", "b", "c"]], "pol", methods=["best_of_n"])
    assert s["parts"][0]["verdict"] == "inconclusive" and "fewer than 4 PRMs" in s["parts"][0]["detail"]


def small_and_large(small_correct, large_correct, dataset="tinymath500"):
    rows = acc_rows(dataset, "small", "prm1", "best_of_n", 8, small_correct)
    rows += acc_rows(dataset, "small", "prm1", "beam_search", 8, [False] * len(small_correct))
    rows += acc_rows(dataset, "small", "", "cot", 1, [False] * len(small_correct))
    rows += acc_rows(dataset, "large", "", "cot", 1, large_correct)
    return pd.DataFrame(rows)


def test_table3_small_vs_large_is_paired_per_dataset():
    acc = pd.concat([small_and_large([True] * 30 + [False] * 10, [False] * 40),
                     small_and_large([False] * 40, [True] * 40, dataset="tinyhard30")])
    table, s = pc.finding_small_vs_large(acc, ["small"], "large", "prm1")
    parts = {p["claim"].split(":")[0]: p for p in s["parts"]}
    assert parts["tinymath500"]["effect"] == pytest.approx(0.75) and parts["tinymath500"]["verdict"] == "agrees"
    assert parts["tinyhard30"]["effect"] == pytest.approx(-1.0) and parts["tinyhard30"]["verdict"] == "disagrees"
    row = table[(table["dataset"] == "tinymath500") & (table["model"] == "small")].iloc[0]
    assert row["choice"] == "best_of_n" and row["setting"] == "compute-optimal TTS, N=8"
    assert table["paper"].isna().all()  # no paper numbers for the tiny world


def test_table3_against_the_papers_numbers_only_where_collected():
    rows = acc_rows("math500", "Qwen2.5-0.5B-Instruct", "Qwen2.5-Math-PRM-7B", "best_of_n", 256, [True] * 80 + [False] * 20)
    rows += acc_rows("math500", "Llama-3.2-1B-Instruct", "Qwen2.5-Math-PRM-7B", "best_of_n", 256, [True] * 100)
    table, s = pc.finding_vs_paper_cot(pd.DataFrame(rows), "Qwen2.5-Math-PRM-7B")
    claims = [p["claim"] for p in s["parts"]]
    assert len(claims) == 1 and "GPT-4o" in claims[0]  # Llama-1B's claim is at N=512, not collected
    assert s["parts"][0]["effect"] == pytest.approx(0.80 - 0.746)
    paper = table.set_index(["model", "setting"])["paper"]
    assert paper[("GPT-4o", "CoT (the paper's number)")] == pytest.approx(0.746)
    assert paper[("Qwen2.5-0.5B-Instruct", "compute-optimal TTS, N=256")] == pytest.approx(0.764)


def test_table6_tts_under_each_prm_against_its_own_cot():
    rows = acc_rows("math500", "Qwen2.5-7B-Instruct", "", "cot", 1, [True] * 50 + [False] * 50)
    rows += acc_rows("math500", "Qwen2.5-7B-Instruct", "Qwen2.5-Math-PRM-7B", "dvts", 16, [True] * 90 + [False] * 10)
    rows += acc_rows("math500", "Qwen2.5-7B-Instruct", "Qwen2.5-Math-PRM-72B", "dvts", 16, [True] * 40 + [False] * 60)
    table, s = pc.finding_tts_vs_own_cot(pd.DataFrame(rows), "Qwen2.5-7B-Instruct",
                                         ["Qwen2.5-Math-PRM-7B", "Qwen2.5-Math-PRM-72B"])
    assert [p["verdict"] for p in s["parts"]] == ["agrees", "disagrees"]  # paired: 72B loses 10 problems CoT solves
    assert s["parts"][0]["effect"] == pytest.approx(0.4)
    assert table["paper"].tolist() == pytest.approx([0.768, 0.880, 0.910])


def test_paper_numbers():
    assert paper_numbers.fig6_paper_fit(100) == pytest.approx(7.66 * math.log(100) + 44.31)
    assert paper_numbers.paper_value(paper_numbers.TABLE3_COT, "o1", "aime24") == 79.2
    assert paper_numbers.paper_value(paper_numbers.TABLE3_COT, "o1", "tinymath500") is None
    for pol, n, _, _ in paper_numbers.TABLE3_TTS:  # every TTS row is a registry policy
        from tts_utils.models.catalog import get_model

        assert get_model(pol, kind="policy") and n in (256, 512)


def test_tables_3_and_6_are_one_family():
    acc = small_and_large([True] * 30 + [False] * 10, [False] * 40)
    t3, t6, s = pc.finding_tables_3_6(acc, acc, ["small"], "large", "small", ["prm1"], "prm1")
    assert len(s["parts"]) == 2 and "2 part(s)" in s["rule"]
    assert [p["verdict"] for p in s["parts"]] == ["agrees", "agrees"] and s["verdict"] == "agrees"
    assert set(t3["model"]) == {"small", "large"} and set(t6["model"]) == {"small"}

"""The study layer: a grid collected once, its per-problem votes cached beside the tables."""

import pandas as pd
import pytest
from test_collect import grid

from tts_utils import analysis, study


def test_collect_grid_caches_votes_keyed_by_the_candidate_table(tmp_path, tests_on_path, calls):
    cfg = grid(tmp_path, seeds=[0])
    cands, runs, acc = study.collect_grid(cfg, progress=False)
    votes = sorted((tmp_path / "out").rglob("votes-*.parquet"))
    assert len(votes) == 1
    pd.testing.assert_frame_equal(acc, analysis.vote_accuracy(cands))
    generated = dict(calls)
    _, _, again = study.collect_grid(cfg, progress=False)
    assert dict(calls) == generated  # nothing regenerated
    pd.testing.assert_frame_equal(again, acc)
    # a different grid (another seed) has other candidates, hence another vote file
    study.collect_grid(grid(tmp_path, seeds=[1]), progress=False)
    assert len(list((tmp_path / "out").rglob("votes-*.parquet"))) == 2


def test_with_rule_keeps_the_rule_for_prm_methods_and_majority_for_the_rest():
    acc = pd.DataFrame({"prm": ["p", "p", "", ""], "rule": ["prm_min_max", "majority", "majority", "majority"],
                        "method": ["best_of_n", "best_of_n", "majority", "cot"]})
    kept = study.with_rule(acc, "prm_min_max")
    assert list(kept["method"]) == ["best_of_n", "majority", "cot"]


def _acc(rows):
    """Per-problem votes: (prm, policy, method, n, problem_id, correct) -> the vote_accuracy shape."""
    return pd.DataFrame([{"dataset": "d", "policy": pol, "prm": prm, "method": m, "n": n, "seed": 0,
                          "problem_id": f"q{i}", "rule": "prm_min_vote", "correct": ok}
                         for prm, pol, m, n, i, ok in rows])


def _paired(prm, pol, search_ok, bon_ok, problems=60):
    rows = []
    for i in range(problems):
        for n in (4, 16):
            rows += [(prm, pol, "beam_search", n, i, search_ok(i)), (prm, pol, "dvts", n, i, False),
                     (prm, pol, "best_of_n", n, i, bon_ok(i))]
    return rows


def test_strategy_vs_prm_verdict_follows_the_measured_differences():
    always, half = (lambda i: True), (lambda i: i % 2 == 0)
    # the paper's pattern: BoN wins with the weak PRM, search with the strong one -> agrees
    acc = _acc(_paired("weak", "p", half, always) + _paired("strong", "p", always, half))
    table, summary = study.finding_strategy_vs_prm(acc, ["weak"], ["strong"])
    assert summary["verdict"] == "agrees"
    assert "Holm" in summary["rule"] and all(0 <= p["p"] <= 1 for p in summary["parts"])
    assert table.set_index("prm").loc["strong", "search"] == "beam_search"
    # the reverse pattern -> disagrees; no difference -> inconclusive
    rev = _acc(_paired("weak", "p", always, half) + _paired("strong", "p", half, always))
    assert study.finding_strategy_vs_prm(rev, ["weak"], ["strong"])[1]["verdict"] == "disagrees"
    same = _acc(_paired("weak", "p", half, half) + _paired("strong", "p", half, half))
    assert study.finding_strategy_vs_prm(same, ["weak"], ["strong"])[1]["verdict"] == "inconclusive"
    # the split is the caller's (pre-registered), never inferred: swapping it flips the verdict
    assert study.finding_strategy_vs_prm(acc, ["strong"], ["weak"])[1]["verdict"] == "disagrees"
    with pytest.raises(ValueError, match="disjoint"):
        study.finding_strategy_vs_prm(acc, ["weak"], ["weak"])


def test_search_method_is_chosen_on_the_other_half_of_the_problems():
    """Cross-fitting: beam search wins on even-split problems, DVTS on the others; each half is
    judged by the method that won on the other half, so the measured gain is below both
    in-sample ones (an in-sample choice would report the better method's full gain)."""
    from tts_utils.analysis import split_of

    rows = []
    for i in range(80):
        h = split_of(f"q{i}")
        for n in (4, 16):
            rows += [("prm", "p", "beam_search", n, i, h == 0), ("prm", "p", "dvts", n, i, h == 1),
                     ("prm", "p", "best_of_n", n, i, False)]
    d = study.search_minus_bon(_acc(rows), ["prm"]).iloc[0]
    assert d["search"] == "dvts/beam_search" or d["search"] == "beam_search/dvts"
    assert d["diff"] == 0.0  # each half is judged by the method that loses there


def test_holm_across_parts_can_make_a_part_inconclusive():
    # two parts with p = 0.03 and 0.04: each alone would agree at 5%, Holm needs 0.025 for the first
    parts = [study.claim_part("a", (0.1, 0.01, 0.2, 0.03), +1), study.claim_part("b", (0.1, 0.01, 0.2, 0.04), +1)]
    s = study.summarize(parts)
    assert [p["verdict"] for p in s["parts"]] == ["inconclusive", "inconclusive"]
    assert study.summarize(parts[:1])["verdict"] == "agrees"
    assert study.summarize([study.claim_part("c", (-0.1, -0.2, -0.01, 0.001), +1), parts[0]])["verdict"] == "disagrees"


def test_policy_size_verdict_orders_policies_by_parameters():
    always, half = (lambda i: True), (lambda i: i % 2 == 0)
    acc = _acc(_paired("prm", "big", half, always) + _paired("prm", "small", always, half))
    table, summary = study.finding_policy_size(acc, {"small": 1e3, "big": 1e6})
    assert list(table["policy"]) == ["small", "big"]
    assert summary["verdict"] == "agrees"
    # the same data with the sizes swapped contradicts the claim
    assert study.finding_policy_size(acc, {"small": 1e6, "big": 1e3})[1]["verdict"] == "disagrees"


def test_compute_optimal_choice_is_made_per_difficulty_bin_and_budget_for_the_given_prm():
    """BoN is right on the easy problems, beam search on the hard ones: the choice per bin takes
    each where it wins (the paper's reward-aware choice: Eq. 3 conditions on the PRM, the method is
    chosen per difficulty bin and N). Another PRM's results never enter the choice."""
    rows = []
    for i in range(60):
        easy = i < 30
        for n in (4, 16):
            rows += [("prm", "p", "best_of_n", n, i, easy), ("prm", "p", "beam_search", n, i, not easy),
                     ("prm", "p", "dvts", n, i, False), ("other", "p", "dvts", n, i, True)]
    acc = _acc(rows)
    with pytest.raises(ValueError, match="difficulty"):
        study.compute_optimal_curve(acc, "p", "prm")
    acc["difficulty"] = ["easy" if int(pid[1:]) < 30 else "hard" for pid in acc["problem_id"]]
    per_bin = study.compute_optimal_curve(acc, "p", "prm", "oracle")
    assert per_bin["correct"].all() and set(per_bin["prm"]) == {"prm"}
    assert set(per_bin.loc[per_bin["difficulty"] == "easy", "method"]) == {"best_of_n"}
    assert set(per_bin.loc[per_bin["difficulty"] == "hard", "method"]) == {"beam_search"}
    held = study.compute_optimal_curve(acc, "p", "prm", "heldout")
    assert held["correct"].all() and len(held) == 120  # every problem, judged by the other half's choice
    assert set(study.compute_optimal_curve(acc, "p", "other")["method"]) == {"dvts"}
    table = study.choice_table(acc, ["p"], "prm")
    assert set(zip(table["difficulty"], table["method"], strict=True)) == {("easy", "best_of_n"), ("hard", "beam_search")}
    # a held-out bin of one problem has no other half: it falls back to BoN, fixed in advance
    lone = acc[(acc["difficulty"] == "easy") & (acc["problem_id"] == "q0")]
    fb = study.compute_optimal_curve(lone, "p", "prm", "heldout")
    assert set(fb["method"]) == {"best_of_n"}


def test_f7_verdict_judges_the_held_out_choice_against_same_n_baselines():
    rows = []
    for i in range(80):
        for n in (4, 16):
            rows += [("prm", "p", "best_of_n", n, i, i % 2 == 0), ("prm", "p", "beam_search", n, i, i % 2 == 0),
                     ("prm", "p", "dvts", n, i, i % 2 == 0), ("", "p", "majority", n, i, i % 2 == 0)]
        rows.append(("", "p", "cot", 1, i, i % 4 == 0))
    acc = _acc(rows).assign(difficulty="medium")
    table, summary = study.finding_table5(acc, ["p"], "prm")
    parts = {p["claim"]: p for p in summary["parts"]}
    assert parts["p: compute-optimal TTS beats CoT"]["verdict"] == "agrees"
    assert parts["p: compute-optimal TTS beats majority voting"]["effect"] == 0.0
    assert summary["verdict"] == "inconclusive"
    # reaches majority's best (0.5 at N=4) at N=4; N from 4 to 16 can show no gain above 4x
    assert table["efficiency"].iloc[0] == "1.0x (at most 4x measurable)" and table["efficiency_max"].iloc[0] == 4
    assert summary["rule"].startswith("F7: ") and "Holm" in summary["rule"]


def _by_bin(policy, d, problems=200, seed=0):
    """Per-problem votes of beam search and BoN for ``policy``: beam search d worse on the easy half
    and d better on the hard half, at N = 4 only (no difference at N = 16)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(problems):
        easy = i % 2 == 0
        for n in (4, 16):
            bon = rng.random() < 0.5
            shift = (-d if easy else d) if n == 4 else 0.0
            rows += [("prm", policy, "best_of_n", n, i, bon), ("prm", policy, "beam_search", n, i,
                                                              bon if rng.random() > abs(shift) else shift > 0)]
    acc = _acc(rows)
    acc["difficulty"] = ["easy" if int(pid[1:]) % 2 == 0 else "hard" for pid in acc["problem_id"]]
    return acc


def test_f3_takes_policies_below_the_largest_and_reports_each_n():
    acc = _by_bin("s", 0.6)
    params = {"s": 1e3, "m": 1e4, "l": 1e5}
    with pytest.raises(ValueError, match="smaller than the grid's largest policy 'l'"):
        study.finding_difficulty(acc, ["s", "l"], params)
    table, summary = study.finding_difficulty(acc, ["s"], params)
    assert [p["verdict"] for p in summary["parts"]] == ["agrees", "agrees"]
    assert "at each N: N=4: -0." in summary["parts"][0]["detail"] and "N=16: +0.00" in summary["parts"][0]["detail"]
    assert set(table["n"]) == {"all", 4, 16}
    _, null = study.finding_difficulty(_by_bin("s", 0.0), ["s"], params)
    assert null["verdict"] == "inconclusive"


def test_f5_tests_the_contrast_between_the_two_prms():
    import numpy as np

    rng = np.random.default_rng(0)
    rows = []
    for i in range(200):
        base = rng.random() < 0.5
        for prm, gain in (("sens", 0.3), ("insens", 0.0)):
            for agg in ("min", "last", "avg"):
                rows.append((prm, agg, "max", i, base))
                rows.append((prm, agg, "vote", i, base or rng.random() < gain))
    acc = pd.DataFrame([{"dataset": "d", "policy": "p", "prm": prm, "method": "best_of_n", "n": 4, "seed": 0,
                         "problem_id": f"q{i}", "rule": f"prm_{agg}_{kind}", "correct": ok}
                        for prm, agg, kind, i, ok in rows])
    _, summary = study.finding_voting(acc, "sens", "insens")
    (part,) = summary["parts"]
    assert part["verdict"] == "agrees" and 0.1 < part["effect"] < 0.2
    assert "insens: Vote - Max +0.000" in part["detail"]
    _, swapped = study.finding_voting(acc, "insens", "sens")
    assert swapped["verdict"] == "disagrees"


def test_hard_grid_runs_every_hard_problem_without_the_difficulty_samples():
    grid = study.grid_config("out", "tinymath500", ["p"], ["a", "b"], methods=study.GRID_METHODS, budgets=[4],
                             limit=100, chunk_size=25)
    hard = study.hard_grid(grid, "tinyhard30")
    assert hard["datasets"] == ["tinyhard30"] and "limit" not in hard and hard["prms"] == ["a", "b"]
    assert "pass1_samples" not in hard["methods"] and "beam_search" in hard["methods"]
    assert hard["chunk_size"] == 25 and grid["datasets"] == ["tinymath500"]  # the rest kept, the grid untouched
    few = study.hard_grid(grid, "tinyhard30", limit=4, prms=["b"])
    assert few["limit"] == 4 and few["prms"] == ["b"] and few["n"] == [4]
    assert study.hard_grid(grid, "tinyhard30", budgets=[16, 4])["n"] == [4, 16]  # its own budgets
    assert study.hard_grid(grid, "tinyhard30", budgets=[])["n"] == [4]          # []: the grid's
    with pytest.raises(ValueError, match="'budgets'"):
        study.hard_grid(grid, "tinyhard30", budgets=["16"])

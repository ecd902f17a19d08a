"""The study layer: a grid collected once, its per-problem votes cached beside the tables."""

import pandas as pd
from test_collect import grid

from tts_utils import analysis, study


def test_collect_grid_caches_votes_keyed_by_the_candidate_table(tmp_path, tests_on_path, calls):
    cfg = grid(tmp_path, seeds=[0])
    cands, runs, acc = study.collect_grid(cfg, progress=False)
    votes = sorted((tmp_path / "out").glob("votes-*.parquet"))
    assert len(votes) == 1
    pd.testing.assert_frame_equal(acc, analysis.vote_accuracy(cands))
    generated = dict(calls)
    _, _, again = study.collect_grid(cfg, progress=False)
    assert dict(calls) == generated  # nothing regenerated
    pd.testing.assert_frame_equal(again, acc)
    # a different grid (another seed) has other candidates, hence another vote file
    study.collect_grid(grid(tmp_path, seeds=[1]), progress=False)
    assert len(list((tmp_path / "out").glob("votes-*.parquet"))) == 2


def test_with_rule_keeps_the_rule_for_prm_methods_and_majority_for_the_rest():
    acc = pd.DataFrame({"prm": ["p", "p", "", ""], "rule": ["prm_min_max", "majority", "majority", "majority"],
                        "method": ["best_of_n", "best_of_n", "majority", "cot"]})
    kept = study.with_rule(acc, "prm_min_max")
    assert list(kept["method"]) == ["best_of_n", "majority", "cot"]

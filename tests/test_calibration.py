"""Null calibration of every finding's verdict: the real verdict functions (tts_utils.study) on
200 simulated tables with no true effect say "agrees" or "disagrees" at most 5% of the time each,
and find a planted effect (power). docs/statistics.md's calibration table comes from the same code
(python -m tts_utils.study.calibration --docs, 200 planted tables there; 40 here, for time)."""

import pytest

from tts_utils.study import calibration


@pytest.fixture(scope="module")
def rates():
    return calibration.calibrate(tables=calibration.TABLES, power_tables=40)


def test_false_agree_and_disagree_rates_are_at_most_5_percent_per_finding(rates):
    assert [r.finding for r in rates] == list(calibration.FINDINGS)
    assert all(r.tables >= 200 for r in rates)
    for r in rates:
        assert r.false_agree <= 0.05, r
        assert r.false_disagree <= 0.05, r


def test_a_planted_effect_is_found_more_often_than_a_false_one(rates):
    for r in rates:
        assert r.power > max(r.false_agree, 0.05), r


def test_calibration_is_deterministic():
    a = calibration.calibrate(tables=3, findings=("F1", "F7"))
    assert a == calibration.calibrate(tables=3, findings=("F1", "F7"))


def test_the_docs_calibration_table_is_what_the_code_measures(rates):
    text = calibration.DOCS_PAGE.read_text()
    assert calibration.DOCS_START in text and calibration.DOCS_END in text
    section = text.split(calibration.DOCS_START, 1)[1].split(calibration.DOCS_END, 1)[0]
    # the null columns, recomputed here with the page's tables and seed (power used 200 planted
    # tables there, 40 here, so it is not compared)
    for r in rates:
        assert f"| {r.finding} | {calibration.FINDINGS[r.finding][0]} | {r.false_agree:.1%} | {r.false_disagree:.1%} |" \
            in section, r
    md = calibration.markdown([calibration.Rates(f, 0.01, 0.02, 0.9, 200, 200) for f in calibration.FINDINGS])
    assert all(f"| {f} |" in md for f in calibration.FINDINGS) and "| 1.0% | 2.0% | 90.0% |" in md

"""Importers: small synthetic files in each anchor's published format become candidate tables on
which voting, pass@k and the compute-optimal choice run unchanged."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tts_utils import analysis
from tts_utils.collect import CANDIDATE_COLUMNS
from tts_utils.study.importers import (
    COLUMNS,
    ImportFormatError,
    read_compute_optimal_tts,
    read_qwen_math_eval,
    read_search_and_learn,
    search_and_learn_predictions,
)


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def solution(*steps):
    return "\n\n".join(steps)


# ---- search-and-learn ----------------------------------------------------------------------------

SAL = [
    {"problem": "1+1?", "solution": "2", "answer": "2", "subject": "Algebra", "level": 1,
     "unique_id": "test/algebra/1.json",
     "completions": [solution("1+1=2.", "So \\boxed{2}."), solution("Guess.", "\\boxed{3}"),
                     solution("Again.", "\\boxed{3}")],
     # step scores: the lone "2" has the best last step, the two "3"s sum higher
     "scores": [[0.9, 0.8], [0.5, 0.5], [0.6, 0.45]],
     "pred": "\\boxed{2}", "completion_tokens": [12, 5, 6],
     "pred_weighted@1": "\\boxed{2}", "pred_maj@1": "\\boxed{2}", "pred_naive@1": "\\boxed{2}",
     "pred_weighted@3": "\\boxed{3}", "pred_maj@3": "\\boxed{3}", "pred_naive@3": "\\boxed{2}"},
    {"problem": "Half?", "solution": "1/2", "answer": "\\frac{1}{2}", "subject": "Algebra", "level": 2,
     "unique_id": "test/algebra/2.json",
     "completions": ["It is \\boxed{0.5}.", "\\boxed{\\frac12}", "No idea."], "scores": [[0.7], [0.2], [0.9]],
     "pred": "\\boxed{0.5}", "completion_tokens": [4, 3, 2]},
]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_search_and_learn_completions(tmp_path, suffix):
    path = tmp_path / f"completions{suffix}"
    if suffix == ".jsonl":
        write_jsonl(path, SAL)
    else:
        pd.DataFrame(SAL).to_parquet(path)
    c = read_search_and_learn(path, policy="Llama-3.2-1B-Instruct", prm="Llama3.1-8B-PRM-Deepseek-Data")
    assert list(c.columns) == COLUMNS and list(c.columns[:len(CANDIDATE_COLUMNS)]) == CANDIDATE_COLUMNS
    assert len(c) == 6 and set(c.n) == {3} and set(c.method) == {"best_of_n"}
    first = c.iloc[0]
    assert first.steps == ["1+1=2.\n\n", "So \\boxed{2}."] and first.num_steps == 2
    assert list(first.rewards) == [0.9, 0.8] and first.policy_tokens == 12
    assert (first.problem_id, first.level, first.answer, first.correct) == ("test/algebra/1.json", 1, "2", True)
    assert c.correct.tolist() == [True, False, False, True, True, False]  # 0.5 and \frac12 equal \frac{1}{2}
    assert c.answer.iloc[5] is None
    # Voting on them: the rules differ as constructed.
    acc = analysis.vote_accuracy(c).set_index(["problem_id", "rule"])
    assert acc.loc[("test/algebra/1.json", "prm_last_max"), "answer"] == "2"
    assert acc.loc[("test/algebra/1.json", "prm_last_vote"), "answer"] == "3"
    assert acc.loc[("test/algebra/1.json", "majority"), "answer"] == "3"
    assert acc.loc[("test/algebra/2.json", "majority"), "correct"]  # 0.5 and \frac12 vote together


def test_search_and_learn_predictions_match_our_rules_on_the_same_candidates(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", SAL)
    preds = search_and_learn_predictions(path)
    assert set(preds.rule) == {"prm_last_vote", "majority", "prm_last_max"} and set(preds.n) == {1, 3}
    assert len(preds) == 6 and set(preds.problem_id) == {"test/algebra/1.json"}
    assert preds[preds.n == 3].set_index("rule")["correct"].to_dict() == {
        "prm_last_vote": False, "majority": False, "prm_last_max": True}
    # Their predictions at n = k, from the first k completions, are what our rules choose there.
    c = read_search_and_learn(path, policy="p", prm="r")
    for k in (1, 3):
        ours = analysis.vote_accuracy(c[c.candidate < k].assign(n=k)).set_index(["problem_id", "rule"])["answer"]
        for r in preds[preds.n == k].itertuples():
            assert ours[(r.problem_id, r.rule)] == r.answer


# ---- compute-optimal-tts -------------------------------------------------------------------------

def cot_tree(tmp_path, method, texts_by_question, values_by_question):
    root = tmp_path / "output" / f"MATH_{method}" / "Qwen2.5-1.5B-Instruct" / "Qwen2.5-Math-PRM-7B" / "40_4_1"
    gold = {0: "4", 1: "7"}
    for q, texts in texts_by_question.items():
        for seed in (0, 1):
            output = [{"path_idx": i, "text": t, "value": v, "extracted_answer": "[invalid]" if "boxed" not in t
                       else t.split("boxed{")[-1].split("}")[0], "completion_tokens": 10 + i,
                       "token_history": [5, 5 + i], "reward_history": v}
                      for i, (t, v) in enumerate(zip(texts, values_by_question[q], strict=True))]
            (root / f"question_{q}").mkdir(parents=True, exist_ok=True)
            write_jsonl(root / f"question_{q}" / f"record_{seed}.jsonl",
                        [{"question": f"q{q}", "groundtruth": gold[q], "result": {"majority_vote": 1}, "output": output}])
    return root


def test_compute_optimal_tts_tree_and_the_compute_optimal_choice(tmp_path):
    bon = cot_tree(tmp_path, "best_of_n", {0: ["a\n\n\\boxed{4}", "b\n\n\\boxed{5}"], 1: ["c\n\n\\boxed{6}", "d"]},
                   {0: [[0.2, 0.3], [0.9, 0.8]], 1: [[0.9, 0.9], [0.1, 0.1]]})
    beam = cot_tree(tmp_path, "beam_search", {0: ["a\n\n\\boxed{4}", "b\n\n\\boxed{5}"], 1: ["c\n\n\\boxed{7}", "d"]},
                    {0: [[0.9, 0.8], [0.2, 0.3]], 1: [[0.9, 0.9], [0.1, 0.1]]})
    c = pd.concat([read_compute_optimal_tts(bon), read_compute_optimal_tts(beam)], ignore_index=True)
    assert set(c.method) == {"best_of_n", "beam_search"} and set(c.policy) == {"Qwen2.5-1.5B-Instruct"}
    assert set(c.prm) == {"Qwen2.5-Math-PRM-7B"} and set(c.seed) == {0, 1}
    assert set(c.problem_id) == {"question_0", "question_1"} and len(c) == 2 * 2 * 2 * 2
    row = c[(c.method == "best_of_n") & (c.problem_id == "question_0") & (c.seed == 0)].iloc[1]
    assert list(row.rewards) == [0.9, 0.8] and row.policy_tokens == 11 and list(row.step_tokens) == [5, 6]
    assert row.steps == ["b\n\n", "\\boxed{5}"] and row.answer == row.source_answer == "5" and not row.correct
    assert c[c.steps.map(lambda s: s == ["d"])].source_answer.isna().all()  # "[invalid]" is no answer
    acc = analysis.vote_accuracy(c, rules=["prm_last_max"])
    table = analysis.accuracy_table(acc, ["method"]).set_index("method")["acc"]
    assert table.to_dict() == {"beam_search": 1.0, "best_of_n": 0.0}
    best = analysis.compute_optimal(acc, ["policy", "n"], ["best_of_n", "beam_search"])
    assert set(best.method) == {"beam_search"} and best.correct.all()


def test_compute_optimal_tts_needs_its_labels_outside_its_tree(tmp_path):
    (tmp_path / "flat" / "question_0").mkdir(parents=True)
    write_jsonl(tmp_path / "flat" / "question_0" / "record_0.jsonl",
                [{"question": "q", "groundtruth": "1", "output": [{"text": "\\boxed{1}", "value": [0.5]}]}])
    with pytest.raises(ValueError, match="give method="):
        read_compute_optimal_tts(tmp_path / "flat")
    c = read_compute_optimal_tts(tmp_path / "flat", method="best_of_n", policy="p", prm="r")
    assert c.correct.tolist() == [True] and c.source_answer.tolist() == [None]


# ---- Qwen2.5-Math evaluation ---------------------------------------------------------------------

QWEN = [
    {"idx": 0, "question": "2+2?", "gt": "4", "level": "Level 1", "answer": "4",
     "response": ["2+2=4.\n\nSo \\boxed{4}.", "\\boxed{5}", "\\boxed{4}"], "pred": ["4", "5", "4"],
     "score": [True, False, True], "pred_score": [[1.5], [3.0], [0.5]]},
    {"idx": 7, "question": "Big?", "gt": "10{,}000", "level": "Level 3", "answer": "10{,}000",
     "response": ["\\boxed{10000}", "\\boxed{10,000}", "none"], "pred": ["10000", "10,000", ""],
     "score": [False, True, False], "pred_score": [[2.0], [1.0], [0.0]]},
]


def test_qwen_math_eval_keeps_their_verdicts_beside_ours(tmp_path):
    path = write_jsonl(tmp_path / "eval.jsonl", QWEN)
    c = read_qwen_math_eval(path, policy="Qwen2.5-Math-7B-Instruct", prm="Qwen2.5-Math-RM-72B")
    assert list(c.columns) == COLUMNS and len(c) == 6 and set(c.method) == {"best_of_n"}
    assert c.level.tolist() == [1, 1, 1, 3, 3, 3] and c.problem_id.tolist() == ["0"] * 3 + ["7"] * 3
    assert c.rewards.map(list).tolist() == [[1.5], [3.0], [0.5], [2.0], [1.0], [0.0]]  # outcome rewards
    assert c.source_answer.tolist() == ["4", "5", "4", "10000", "10,000", ""]
    assert c.source_correct.tolist() == [True, False, True, False, True, False]
    assert c.correct.tolist() == [True, False, True, True, True, False]  # 10000 is 10{,}000
    acc = analysis.vote_accuracy(c, rules=["majority", "prm_last_max"]).set_index(["problem_id", "rule"])
    assert acc.loc[("0", "majority"), "correct"] and not acc.loc[("0", "prm_last_max"), "correct"]
    assert acc.loc[("7", "prm_last_max"), "answer"] == "10000"


def test_qwen_math_eval_without_scores_and_bad_files(tmp_path):
    plain = [{k: v for k, v in r.items() if k != "pred_score"} for r in QWEN]
    c = read_qwen_math_eval(write_jsonl(tmp_path / "plain.jsonl", plain), policy="p")
    assert set(c.method) == {"majority"} and set(c.prm) == {""} and c.rewards.map(len).eq(0).all()
    assert set(analysis.vote_accuracy(c).rule) == {"majority"}
    scored = write_jsonl(tmp_path / "scored.jsonl", QWEN)
    with pytest.raises(ValueError, match="prm="):
        read_qwen_math_eval(scored, policy="p")
    with pytest.raises(ImportFormatError, match=r"missing field\(s\) \['gt', 'pred'"):
        read_qwen_math_eval(write_jsonl(tmp_path / "bad.jsonl", [{"response": []}]), policy="p")
    short = [dict(QWEN[0], pred=["4"])]
    with pytest.raises(ImportFormatError, match="3 responses, 1 preds"):
        read_qwen_math_eval(write_jsonl(tmp_path / "short.jsonl", short), policy="p", prm="r")
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    with pytest.raises(ImportFormatError, match="broken.jsonl:1"):
        read_qwen_math_eval(tmp_path / "broken.jsonl", policy="p")
    (tmp_path / "late.jsonl").write_text('{"idx": 0, "gt": "4", "code": ["a"], "pred": ["4"], "score": [true]]\n')
    with pytest.raises(ImportFormatError, match="late.jsonl:1: not JSON .* at column 68"):  # where it broke
        read_qwen_math_eval(tmp_path / "late.jsonl", policy="p")

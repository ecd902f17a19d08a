"""The anchors' published outputs, read into our candidate table.

Each reader returns a DataFrame with the columns of ``tts_utils.collect.CANDIDATE_COLUMNS`` (one
row per candidate, in file order), so that every voting rule (``analysis.vote_accuracy``), pass@k
and compute-optimal analysis runs on other people's generations unchanged. Answers are extracted
and graded by our grader (``grading``), the same as for our own runs; what the owners extracted
and decided is kept beside them in two more columns, ``source_answer`` and ``source_correct``
(None where the format has no such field), so that the two graders can be compared.

Conventions where a format does not say:
* ``steps`` are the text cut at "\\n\\n" (``prompts.split_steps``); ``rewards`` are the scores the
  file gives, as given (a list of one score per candidate is an outcome reward: every PRM rule
  then reads that one score);
* every candidate is its own group (``subtree`` = ``candidate``) and ``n`` is the number of
  candidates of its problem;
* token counts the format does not record are 0, and ``finish_reason`` is "" where unknown.

Formats:
* ``read_search_and_learn``: HuggingFace's search-and-learn completions datasets (e.g.
  HuggingFaceH4/Llama-3.2-1B-Instruct-best-of-N-completions), parquet or jsonl, one row per
  problem: ``problem``, ``answer``, ``level``, ``unique_id``, ``completions`` (N texts), ``scores``
  (N lists of step scores) and ``completion_tokens``; its ``pred_{weighted,maj,naive}@k`` columns
  are read by ``search_and_learn_predictions``.
* ``read_compute_optimal_tts``: the paper's output tree (compute-optimal-tts, evaluate.py):
  ``question_<i>/record_<j>.jsonl``, one JSON object ``{question, groundtruth, result, output}``
  per file, ``output`` a list of paths ``{path_idx, text, value (step values), extracted_answer
  ("[invalid]" when none), completion_tokens, token_history, ...}``; ``j`` is the repeat (seed).
* ``read_qwen_math_eval``: Qwen2.5-Math's evaluation jsonl (evaluation/math_eval.py): per problem
  ``idx``, ``question``, ``gt``, ``level``, and per sample ``response``, ``pred`` (their extracted
  answer), ``score`` (their verdict) and, in reward-model files, ``pred_score`` ([[r]] per sample).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from tts_utils.collect import CANDIDATE_COLUMNS
from tts_utils.problems.grading import extract_answer, is_equivalent
from tts_utils.problems.prompts import split_steps

SOURCE_COLUMNS = ["source_answer", "source_correct"]
COLUMNS = [*CANDIDATE_COLUMNS, *SOURCE_COLUMNS]


class ImportFormatError(ValueError):
    """A file that is not in the format its reader expects; the message names the file and field."""


def _level(value) -> int | None:
    """MATH levels come as 3, "3" or "Level 3"; anything else (e.g. "Level ?") is unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, int | float):
        return int(value)
    m = re.fullmatch(r"\s*(?:Level\s*)?(\d+)\s*", str(value))
    return int(m.group(1)) if m else None


def _scores(value, where: str) -> list[float]:
    try:
        out = [float(x) for x in value]
    except (TypeError, ValueError):
        raise ImportFormatError(f"{where}: expected a list of numbers, got {value!r}") from None
    if not out:
        raise ImportFormatError(f"{where}: empty list of scores")
    return out


def _candidate_rows(texts: Sequence[str], rewards: Sequence[list[float]], gold, *, meta: dict,
                    source_answers: Sequence | None = None, source_correct: Sequence | None = None,
                    policy_tokens: Sequence[int] | None = None,
                    step_tokens: Sequence[list[int]] | None = None) -> list[dict]:
    rows = []
    n = len(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ImportFormatError(f"{meta['problem_id']}: candidate {i} is not a text: {text!r}")
        steps = split_steps(text)
        answer = extract_answer(text)
        rows.append({
            **meta, "n": n, "candidate": i, "subtree": i, "lineage": str(i), "steps": steps,
            "rewards": list(rewards[i]), "step_tokens": list(step_tokens[i]) if step_tokens else [],
            "num_steps": len(steps), "policy_tokens": int(policy_tokens[i]) if policy_tokens else 0,
            "prm_tokens": 0, "finish_reason": "", "answer": answer, "correct": is_equivalent(answer, gold),
            "source_answer": None if source_answers is None else source_answers[i],
            "source_correct": None if source_correct is None else bool(source_correct[i]),
        })
    return rows


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("answer", *SOURCE_COLUMNS):  # missing stays None (pandas would make it NaN)
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df


def _read_records(path: Path) -> list[dict]:
    """A jsonl file (one object a line) or a parquet file, as a list of dicts."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix == ".parquet":
        return pd.read_parquet(path).to_dict("records")
    records = []
    with path.open() as f:
        for k, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ImportFormatError(f"{path}:{k}: not JSON ({e.msg} at column {e.colno})") from None
    return records


def _need(rec: dict, fields: Iterable[str], where: str) -> None:
    missing = [f for f in fields if f not in rec]
    if missing:
        raise ImportFormatError(f"{where}: missing field(s) {missing}; has {sorted(rec)}")


# --------------------------------------------------------------------------------------------

def read_search_and_learn(path: str | Path, *, policy: str, prm: str, method: str = "best_of_n", seed: int = 0,
                          dataset: str = "math500") -> pd.DataFrame:
    """A search-and-learn completions dataset (parquet or jsonl) as candidates.

    ``method`` is what produced it (best_of_n, beam_search or dvts: the dataset names say which);
    ``scores[i]`` are completion i's step scores; ``completion_tokens[i]`` its tokens, where given.
    """
    path = Path(path)
    rows = []
    for k, rec in enumerate(_read_records(path)):
        where = f"{path} row {k}"
        _need(rec, ("problem", "answer", "completions", "scores"), where)
        completions, scores = list(rec["completions"]), list(rec["scores"])
        if len(completions) != len(scores):
            raise ImportFormatError(f"{where}: {len(completions)} completions but {len(scores)} score lists")
        tokens = rec.get("completion_tokens")
        tokens = list(tokens) if tokens is not None and not isinstance(tokens, int | float) else None
        if tokens is not None and len(tokens) != len(completions):
            tokens = None  # a per-problem total, not per completion
        meta = {"dataset": dataset, "policy": policy, "prm": prm, "method": method, "seed": seed,
                "problem_id": str(rec.get("unique_id", k)), "problem_index": k, "level": _level(rec.get("level"))}
        rows += _candidate_rows(completions, [_scores(s, f"{where} scores[{i}]") for i, s in enumerate(scores)],
                                rec["answer"], meta=meta, policy_tokens=tokens)
    return _frame(rows)


# search-and-learn's prediction columns and the rule of ours that each one is (it aggregates step
# scores by their last value; sal/utils/score.py): weighted = PRM-Last-Vote, naive = PRM-Last-Max.
SEARCH_AND_LEARN_RULES = {"weighted": "prm_last_vote", "maj": "majority", "naive": "prm_last_max"}


def search_and_learn_predictions(path: str | Path) -> pd.DataFrame:
    """The ``pred_{weighted,maj,naive}@k`` columns of a search-and-learn dataset, long: one row per
    (problem_id, rule, n) with their chosen ``answer`` (the box removed) and our ``correct``."""
    path = Path(path)
    rows = []
    pattern = re.compile(r"pred_(weighted|maj|naive)@(\d+)")
    for k, rec in enumerate(_read_records(path)):
        _need(rec, ("answer",), f"{path} row {k}")
        for col, value in rec.items():
            m = pattern.fullmatch(col)
            if not m or value is None:
                continue
            answer = extract_answer(value) if "\\boxed" in str(value) else str(value)
            rows.append({"problem_id": str(rec.get("unique_id", k)), "rule": SEARCH_AND_LEARN_RULES[m.group(1)],
                         "n": int(m.group(2)), "answer": answer, "correct": is_equivalent(answer, rec["answer"])})
    return pd.DataFrame(rows, columns=["problem_id", "rule", "n", "answer", "correct"])


# --------------------------------------------------------------------------------------------

INVALID_ANSWER = "[invalid]"  # OpenR's / compute-optimal-tts's extracted answer when there is none
_TREE_DIR = re.compile(r"(?P<task>[^/_]+)_(?P<method>best_of_n|beam_search|cot|dvts)")


def read_compute_optimal_tts(root: str | Path, *, policy: str | None = None, prm: str | None = None,
                             method: str | None = None, dataset: str = "math500") -> pd.DataFrame:
    """compute-optimal-tts's output tree (``question_<i>/record_<j>.jsonl``) as candidates.

    ``root`` is the folder holding the ``question_<i>`` folders; the paper's code names it
    ``<save_dir>/<task>_<method>/<policy>/<prm>/<depth>_<width>_<num_seq>``, and ``method``,
    ``policy`` and ``prm`` are read from that path when not given. ``i`` is the problem's index
    in the test set (its id here is ``question_<i>``), ``j`` the repeat (our ``seed``). A path's
    ``value`` is its list of step values (``rewards``), ``completion_tokens`` its token count.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    parts = root.resolve().parts
    for depth in range(len(parts) - 3, -1, -1):
        m = _TREE_DIR.fullmatch(parts[depth])
        if m:
            method = method or m.group("method")
            policy = policy or parts[depth + 1]
            prm = prm if prm is not None else parts[depth + 2]
            break
    if method is None or policy is None or prm is None:
        raise ValueError(f"{root}: not under <task>_<method>/<policy>/<prm>/...; give method=, policy= and prm=")
    files = []
    for qdir in root.glob("question_*"):
        qm = re.fullmatch(r"question_(\d+)", qdir.name)
        for rec in qdir.glob("record_*.jsonl") if qm and qdir.is_dir() else ():
            rm = re.fullmatch(r"record_(\d+)\.jsonl", rec.name)
            if rm:
                files.append((int(qm.group(1)), int(rm.group(1)), rec))
    if not files:
        raise ImportFormatError(f"{root}: no question_<i>/record_<j>.jsonl files")
    rows = []
    for q, seed, file in sorted(files):
        records = _read_records(file)
        if len(records) != 1:
            raise ImportFormatError(f"{file}: expected one JSON object, found {len(records)}")
        rec = records[0]
        _need(rec, ("groundtruth", "output"), str(file))
        paths = sorted(rec["output"], key=lambda p: p.get("path_idx", 0))
        for i, p in enumerate(paths):
            _need(p, ("text", "value"), f"{file} output[{i}]")
        values = [p["value"] if isinstance(p["value"], list) else [p["value"]] for p in paths]
        answers = [p.get("extracted_answer") for p in paths]
        meta = {"dataset": dataset, "policy": policy, "prm": prm, "method": method, "seed": seed,
                "problem_id": f"question_{q}", "problem_index": q, "level": None}
        rows += _candidate_rows(
            [p["text"] for p in paths], [_scores(v, f"{file} output[{i}].value") for i, v in enumerate(values)],
            rec["groundtruth"], meta=meta,
            source_answers=[None if a in (None, INVALID_ANSWER) else a for a in answers],
            policy_tokens=[int(p.get("completion_tokens") or 0) for p in paths],
            step_tokens=[list(p["token_history"]) if p.get("token_history") else [] for p in paths])
    return _frame(rows)


# --------------------------------------------------------------------------------------------

def read_qwen_math_eval(path: str | Path, *, policy: str, prm: str = "", method: str | None = None,
                        seed: int = 0, dataset: str = "math") -> pd.DataFrame:
    """A Qwen2.5-Math evaluation jsonl as candidates, with their ``pred`` and ``score`` beside ours.

    With ``pred_score`` (a reward model's score per sample) the rewards are those scores (one
    per candidate: an outcome reward) and ``prm`` names the reward model (required then); without
    it the rewards are empty and ``prm`` must be "" (majority voting only). ``method`` defaults to
    "best_of_n" with scores and "majority" without.
    """
    path = Path(path)
    records = _read_records(path)
    rows = []
    for k, rec in enumerate(records):
        where = f"{path} row {k}"
        _need(rec, ("gt", "response", "pred", "score"), where)
        texts = list(rec["response"])
        n = len(texts)
        if not (len(rec["pred"]) == len(rec["score"]) == n):
            raise ImportFormatError(f"{where}: {n} responses, {len(rec['pred'])} preds, {len(rec['score'])} scores")
        scored = "pred_score" in rec
        if scored and not prm:
            raise ValueError(f"{path}: the file has reward-model scores (pred_score): name the model with prm=")
        if not scored and prm:
            raise ImportFormatError(f"{where}: prm={prm!r} given but the file has no pred_score")
        if scored:
            if len(rec["pred_score"]) != n:
                raise ImportFormatError(f"{where}: {n} responses but {len(rec['pred_score'])} pred_score entries")
            rewards = [_scores(s, f"{where} pred_score[{i}]") for i, s in enumerate(rec["pred_score"])]
        else:
            rewards = [[] for _ in texts]
        meta = {"dataset": dataset, "policy": policy, "prm": prm,
                "method": method or ("best_of_n" if scored else "majority"), "seed": seed,
                "problem_id": str(rec.get("idx", k)), "problem_index": k, "level": _level(rec.get("level"))}
        rows += _candidate_rows(texts, rewards, rec["gt"], meta=meta, source_answers=list(rec["pred"]),
                                source_correct=list(rec["score"]))
    return _frame(rows)


__all__ = ["COLUMNS", "INVALID_ANSWER", "ImportFormatError", "SEARCH_AND_LEARN_RULES", "SOURCE_COLUMNS",
           "read_compute_optimal_tts", "read_qwen_math_eval", "read_search_and_learn",
           "search_and_learn_predictions"]

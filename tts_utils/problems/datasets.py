"""Problem records and the benchmark sets: MATH-500, AIME24 and the tiny world's sets.

Every set is read from a local JSON Lines file under ``data/``. The Hugging Face hub is offered
as an option (``load_from_hub``) for users who have it; nothing here touches the network unless
that function is called.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from tts_utils.paths import DATA_DIR

# name -> file under DATA_DIR. The tiny-world sets are written by tts_utils.tinyworld.
DATASETS: dict[str, str] = {
    "math500": "math500.jsonl",
    "aime24": "aime24.jsonl",
    "tinymath500": "tinyworld/tinymath500.jsonl",
    "tinyhard30": "tinyworld/tinyhard30.jsonl",
}


class DataError(ValueError):
    """A dataset file or record that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Problem:
    id: str
    problem: str
    answer: str
    level: int | None = None
    subject: str | None = None
    solution: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _record_to_problem(rec: dict, where: str) -> Problem:
    if not isinstance(rec, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    pid = rec.get("unique_id", rec.get("id"))
    missing = [k for k, v in (("unique_id", pid), ("problem", rec.get("problem")), ("answer", rec.get("answer")))
               if v is None]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
    if not isinstance(rec["problem"], str):
        raise DataError(f"{where}: 'problem' must be a string, got {type(rec['problem']).__name__}")
    answer = rec["answer"]
    if isinstance(answer, bool) or not isinstance(answer, str | int | float):
        raise DataError(f"{where}: 'answer' must be a string or a number, got {type(answer).__name__}")
    if not str(answer).strip():  # nothing could ever be graded equal to it
        raise DataError(f"{where}: 'answer' is empty")
    if not rec["problem"].strip():
        raise DataError(f"{where}: 'problem' is empty")
    level = rec.get("level")
    if isinstance(level, str) and level.startswith("Level "):  # OpenR's copy writes "Level 3"
        level = level.removeprefix("Level ")
    try:
        level = None if level is None else int(level)
    except (TypeError, ValueError):
        raise DataError(f"{where}: 'level' must be an integer, got {level!r}") from None
    return Problem(
        id=str(pid),
        problem=rec["problem"],
        answer=str(answer),
        level=level,
        subject=rec.get("subject"),
        solution=rec.get("solution"),
    )


def _json_lines(path: Path):
    """(where, record) for each non-blank line; a bad line raises DataError naming file and line."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None


def read_json_lines(path: str | Path) -> list:
    """Every record of any JSON Lines file (blank lines skipped), for files that are not problem sets."""
    return [rec for _, rec in _json_lines(Path(path))]


def read_jsonl(path: str | Path) -> list[Problem]:
    """Read problems from a JSON Lines file; a bad line raises DataError naming file and line."""
    path = Path(path)
    problems = [_record_to_problem(rec, where) for where, rec in _json_lines(path)]
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"{path}: duplicate problem id {dup!r}")
    return problems


def write_jsonl(problems: list[Problem], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for p in problems:
            rec = {"unique_id": p.id, "problem": p.problem, "answer": p.answer, "solution": p.solution,
                   "subject": p.subject, "level": p.level}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def load_dataset(name: str, limit: int | None = None) -> list[Problem]:
    """Load a named set (see DATASETS) or a path to a .jsonl file, optionally the first ``limit``."""
    if name in DATASETS:
        path = DATA_DIR / DATASETS[name]
    elif name.endswith(".jsonl"):
        path = Path(name)
    else:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)} (or a path to a .jsonl file)")
    problems = read_jsonl(path)
    return problems if limit is None else problems[:limit]


def load_from_hub(repo_id: str = "HuggingFaceH4/MATH-500", split: str = "test") -> list[Problem]:
    """Optional: load a set from the Hugging Face hub (needs `datasets` and a network; never used in tests)."""
    try:
        import datasets
    except ImportError as e:
        raise ImportError("load_from_hub needs the `datasets` package: pip install datasets") from e
    ds = datasets.load_dataset(repo_id, split=split)
    return [_record_to_problem(dict(r), f"{repo_id}[{i}]") for i, r in enumerate(ds)]

"""The benchmark files and the loader, including how it fails on bad input."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from tts_utils.paths import DATA_DIR
from tts_utils.problems.datasets import DATASETS, DataError, load_dataset, read_json_lines


def _documented_sha256() -> dict[str, str]:
    # The table rows of data/SOURCES.md: | file | records | `sha256` |
    text = (DATA_DIR / "SOURCES.md").read_text(encoding="utf-8")
    return dict(re.findall(r"^\|\s*(\S+\.jsonl)\s*\|[^|]*\|\s*`([0-9a-f]{64})`", text, flags=re.MULTILINE))


@pytest.mark.parametrize("filename", ["math500.jsonl", "aime24.jsonl"])
def test_sha256_matches_sources_md(filename):
    documented = _documented_sha256()
    assert filename in documented, f"data/SOURCES.md has no sha256 row for {filename}"
    actual = hashlib.sha256((DATA_DIR / filename).read_bytes()).hexdigest()
    assert actual == documented[filename]


def test_math500():
    problems = load_dataset("math500")
    assert len(problems) == 500
    assert len({p.id for p in problems}) == 500
    assert {p.level for p in problems} == {1, 2, 3, 4, 5}
    assert all(p.answer.strip() and "\\boxed" in p.solution for p in problems)
    assert len({p.subject for p in problems}) == 7


def test_aime24():
    problems = load_dataset("aime24")
    assert len(problems) == 30
    assert len({p.id for p in problems}) == 30
    assert [p.id for p in problems][:2] == ["aime-2024-I-1", "aime-2024-I-2"]
    assert all(0 <= int(p.answer) <= 999 for p in problems)  # loaded as strings, from JSON ints


def test_limit():
    assert [p.id for p in load_dataset("aime24", limit=3)] == [p.id for p in load_dataset("aime24")[:3]]


def test_unknown_name_lists_known():
    with pytest.raises(DataError) as info:
        load_dataset("math5000")
    message = str(info.value)
    assert "math5000" in message
    assert all(name in message for name in DATASETS)


def _write(tmp_path, records_or_lines) -> str:
    path = tmp_path / "set.jsonl"
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records_or_lines]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


GOOD = {"unique_id": "a", "problem": "1+1?", "answer": "2", "level": 1}


def test_good_file_loads(tmp_path):
    problems = load_dataset(_write(tmp_path, [GOOD, {**GOOD, "unique_id": "b", "answer": 3}]))
    assert [(p.id, p.answer, p.level) for p in problems] == [("a", "2", 1), ("b", "3", 1)]


@pytest.mark.parametrize(
    ("second_line", "message"),
    [
        ('{"unique_id": "b", "problem": "x", ', "not valid JSON"),
        ({**GOOD, "unique_id": "b", "problem": 12}, "'problem' must be a string"),
        ({k: v for k, v in GOOD.items() if k != "answer"} | {"unique_id": "b"}, "missing field(s) answer"),
        ({**GOOD, "unique_id": "b", "level": "hard"}, "'level' must be an integer"),
        ('["not", "an", "object"]', "expected a JSON object"),
    ],
)
def test_bad_record_names_file_and_line(tmp_path, second_line, message):
    path = _write(tmp_path, [GOOD, second_line])
    with pytest.raises(DataError) as info:
        load_dataset(path)
    assert f"{path}:2" in str(info.value)
    assert message in str(info.value)


def test_duplicate_ids(tmp_path):
    with pytest.raises(DataError, match="duplicate problem id 'a'"):
        load_dataset(_write(tmp_path, [GOOD, GOOD]))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_dataset(str(tmp_path / "absent.jsonl"))


def test_read_json_lines_reads_any_records_and_names_a_bad_line(tmp_path):
    path = _write(tmp_path, [{"x": 1}, "", [2, 3]])
    assert read_json_lines(path) == [{"x": 1}, [2, 3]]
    bad = _write(tmp_path, [{"x": 1}, "{oops"])
    with pytest.raises(DataError, match=r"set.jsonl:2: not valid JSON"):
        read_json_lines(bad)

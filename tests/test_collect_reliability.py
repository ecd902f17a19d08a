"""collect under a hostile user: widened budgets, swapped merged tables, killed parents, a full
disk, failed checks, --no-progress. No test here waits a fixed time: each waits on a condition."""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import load_model
from test_collect import frames_equal, grid

from tts_utils import collect as C
from tts_utils.collect import cache
from tts_utils.paths import REPO_ROOT


def tables(paths: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(paths["candidates"]), pd.read_parquet(paths["runs"])


def same_tables(a: dict, b: dict) -> None:
    for x, y in zip(tables(a), tables(b), strict=True):
        frames_equal(x, y)


def test_widening_a_grids_budgets_recomputes_the_units_that_lack_them(tmp_path, calls, tests_on_path):
    # n: [8] then n: [4, 8] into one directory: the second reused the first's N_run = 8 units and
    # its table had no N = 4 rows of Best-of-N, majority or DVTS (exit 0, no warning).
    ref = C.collect(grid(tmp_path, out=str(tmp_path / "ref")), progress=False)
    only8 = C.collect(grid(tmp_path, n=[8]), progress=False)
    wide = C.collect(grid(tmp_path), progress=False)
    same_tables(ref, wide)
    assert set(tables(wide)[1].query("method == 'majority'").n) == {4, 8}
    # the narrow grid's rows are unchanged, and its units now hold both budgets: nothing to generate
    before = calls["policy_generate"]
    again = C.collect(grid(tmp_path, n=[8]), progress=False)
    assert calls["policy_generate"] == before
    assert again == only8
    frames_equal(tables(again)[0], pd.read_parquet(ref["candidates"]).query("n != 4").reset_index(drop=True))
    for marker in (tmp_path / "out" / "chunks").glob("*.done.json"):
        assert json.loads(marker.read_text())["budgets"] in ([1], [4], [8], [4, 8])


def test_a_chunk_without_a_budgets_rows_fails_the_merge(tmp_path, calls, tests_on_path):
    C.collect(grid(tmp_path, methods=["majority"], seeds=[0]), progress=False)
    chunks = tmp_path / "out" / "chunks"
    marker = sorted(chunks.glob("*.done.json"))[0]
    doc = json.loads(marker.read_text())
    runs_file = chunks / marker.name.replace(".done.json", ".runs.parquet")
    runs = pd.read_parquet(runs_file)
    runs[runs.n == 8].to_parquet(runs_file, index=False)  # the N = 4 rows gone, the marker made to match
    doc["sha256"][runs_file.name] = cache._sha256(runs_file)
    marker.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"majority N=8 seed=0 .* holds 0 rows of N = 4 for \d+ problems"):
        C.merge(tmp_path / "out")


def test_a_swapped_or_truncated_merged_table_is_merged_again_with_a_warning(tmp_path, calls, tests_on_path,
                                                                            capsys):
    small = grid(tmp_path, methods=["majority", "best_of_n"], n=[4], seeds=[0])
    six = C.collect({**small, "limit": 6}, progress=False)
    three = C.collect({**small, "limit": 3}, progress=False)
    ref = tables(six)
    capsys.readouterr()
    six["runs"].write_bytes(three["runs"].read_bytes())  # another grid's table in its place
    again = C.collect({**small, "limit": 6}, progress=False)
    assert capsys.readouterr().err.count("do not match their checksums") == 1
    for x, y in zip(ref, tables(again), strict=True):
        frames_equal(x, y)
    six["candidates"].write_bytes(six["candidates"].read_bytes()[:200])  # truncated
    C.collect({**small, "limit": 6}, progress=False)
    assert "do not match their checksums" in capsys.readouterr().err
    for x, y in zip(ref, tables(six), strict=True):
        frames_equal(x, y)
    C.collect({**small, "limit": 6}, progress=False)  # intact again: read back, no warning
    assert capsys.readouterr().err == ""


def wait_for(condition, what: str, deadline_s: float = 120.0) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


PARENT = """
import multiprocessing.resource_tracker as rt, os, sys
from tts_utils.collect import pool
executor, _ = pool._pool(2)
[f.result() for f in [executor.submit(os.getpid) for _ in range(2)]]
print(*executor._processes, rt._resource_tracker._pid, flush=True)
sys.stdin.read()  # until killed
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_pool_workers_exit_when_their_parent_is_killed(sig):
    # after SIGKILL or SIGTERM of `collect`, two workers of ~0.5 GB and a resource tracker stayed
    # up, parented to init, until killed by hand
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=REPO_ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(x) for x in parent.stdout.readline().split()]
        assert len(pids) == 3 and all(alive(p) for p in pids)
    finally:
        parent.send_signal(sig)
        parent.wait()
    wait_for(lambda: not any(alive(p) for p in pids), f"workers and tracker {pids} to exit")


def test_a_full_disk_is_one_error_line(tmp_path, calls, tests_on_path, monkeypatch, capsys):
    def full(self, path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(grid(tmp_path, methods=["cot"], seeds=[0])))
    assert C.main([str(config), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "No space left on device" in err and err.count("\n") == 1, err


def test_a_failed_check_leaves_no_output_folder(tmp_path, calls, tests_on_path, capsys):
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(grid(tmp_path, datasets=[str(tmp_path / "missing.jsonl")])))
    assert C.main([str(config)]) == 2
    assert "missing.jsonl" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


BARS_SEEN: list[bool] = []


def load_model_noting_bars(kind: str, name: str):
    """conftest's models, noting whether transformers' weight-loading bars were on at load time."""
    from transformers.utils import logging as hf_logging

    BARS_SEEN.append(hf_logging.is_progress_bar_enabled())
    return load_model(kind, name)


def test_no_progress_turns_the_weight_loading_bars_off(tmp_path, calls, tests_on_path):
    from transformers.utils import logging as hf_logging

    BARS_SEEN.clear()
    assert hf_logging.is_progress_bar_enabled()
    C.collect(grid(tmp_path, methods=["cot"], seeds=[0], loader="test_collect_reliability:load_model_noting_bars"),
              progress=False)
    assert BARS_SEEN and not any(BARS_SEEN)
    assert hf_logging.is_progress_bar_enabled()  # as they were, for the next grid

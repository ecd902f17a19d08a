"""The study's processes compute on a fixed thread count (TTS_THREADS, default 1)."""

import pytest
import torch

from tts_utils.threads import study_threads, torch_threads


def test_default_is_one_thread_and_the_setting_is_read(monkeypatch):
    monkeypatch.delenv("TTS_THREADS", raising=False)
    assert study_threads() == 1
    monkeypatch.setenv("TTS_THREADS", "3")
    assert study_threads() == 3


@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5"])
def test_a_bad_setting_fails_naming_it(monkeypatch, bad):
    monkeypatch.setenv("TTS_THREADS", bad)
    with pytest.raises(ValueError, match="TTS_THREADS"):
        study_threads()


def test_the_block_runs_on_the_study_threads_and_the_count_is_restored(monkeypatch):
    monkeypatch.setenv("TTS_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch_threads() as n:
            assert n == 1 and torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

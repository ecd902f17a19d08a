"""make gpu-smoke: without a GPU it stops at once and says why; its CPU path runs the same stages."""

import pytest

from tts_utils import gpu_smoke
from tts_utils.models.catalog import TINY_MANIFEST


def test_without_a_gpu_it_stops_at_once_with_a_reason(monkeypatch, capsys):
    monkeypatch.setattr(gpu_smoke.torch.cuda, "is_available", lambda: False)
    assert gpu_smoke.main([]) == gpu_smoke.NO_GPU
    err = capsys.readouterr().err
    assert "no CUDA GPU is visible" in err and "--device cpu" in err and "environment.yml" in err


@pytest.mark.skipif(not TINY_MANIFEST.exists(), reason="tiny world not built")
def test_cpu_path_runs_best_of_n_and_reports_speed(capsys):
    assert gpu_smoke.main(["--device", "cpu", "--problems", "2", "--n", "2"]) == 0
    out = capsys.readouterr().out
    policy, prm = gpu_smoke.tiny_models()
    assert f"best_of_n N=2 with {policy} + {prm} on the first 2 problems of tinymath500" in out
    assert "vLLM: skipped (it needs CUDA)" in out
    line = next(x for x in out.splitlines() if x.strip().startswith("transformers on cpu:"))
    assert "4 candidates" in line and "tok/s" in line and "/2 problems" in line
    # on the CPU in float32 a sample depends on its prompt and seed alone, whatever the batch
    assert ("transformers on cpu samples: 32/32 identical when the same batch runs again, 32/32 identical "
            "among 96 other prompts") in out
    assert out.rstrip().endswith("gpu-smoke: ok (1 stage)")


@pytest.mark.skipif(not TINY_MANIFEST.exists(), reason="tiny world not built")
def test_a_failing_stage_is_reported_and_fails_the_check(monkeypatch, capsys):
    import tts_utils.models.policy

    def broken(*a, **kw):
        raise RuntimeError("no kernel image is available for execution on the device")
    monkeypatch.setattr(tts_utils.models.policy, "load_policy", broken)
    assert gpu_smoke.main(["--device", "cpu", "--problems", "1", "--n", "1"]) == 1
    out = capsys.readouterr().out
    assert "transformers on cpu: FAILED: RuntimeError: no kernel image" in out
    assert "gpu-smoke: FAILED (transformers on cpu)" in out

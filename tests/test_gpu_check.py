"""benchmarks/gpu_check.sh in its CPU mode: every step of the GPU check (CUDA tests, the training-step
benchmark, the end-to-end run through checkpoint, kill, --resume and evaluation) at CI size."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_runs_in_cpu_mode(tmp_path):
    results = tmp_path / "RESULTS.md"
    before = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--python",
                           sys.executable, "--work", str(tmp_path / "work"), "--results", str(results)],
                          capture_output=True, text=True, env=env, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    text = results.read_text()
    assert "### gpu_check.sh --device cpu:" in text and "GPU: none;" in text and "all steps passed" in text
    assert "cuda tests: " in text and "skipped" in text  # collected, and skipped without a GPU
    for name in ("torchvision ", "minimrcnn (roi_kernel=torchvision)", "minimrcnn (roi_kernel=minimrcnn)"):
        assert any(line.startswith(name) and "img/s" in line for line in text.splitlines()), name
    assert "check: backbone weights loaded on a fresh --resume: ok" in text
    assert "check: log continuous across the kill: ok" in text
    e2e = [line for line in text.splitlines() if line.startswith("e2e: ")]
    assert len(e2e) == 1 and " it/s, " in e2e[0] and "img/s" in e2e[0]
    assert (ROOT / "benchmarks" / "RESULTS.md").read_text() == before  # a rehearsal writes no figures there


def test_gpu_check_rejects_a_bad_device():
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--device", "tpu"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.strip() == "error: --device tpu: expected cuda or cpu"

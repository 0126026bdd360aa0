"""The multi-process path: each rank pinned to its GPU, and the COCO preset under 2-process torchrun (gloo)
through a checkpoint, a SIGKILL, --resume (ImageNet-style backbone weights loaded on a fresh --resume) and
the distributed evaluation gather, ending where an uninterrupted run ends."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
import torchvision

from minimrcnn.data.shapes import ensure_shapes
from minimrcnn.engine import distributed as dist
from minimrcnn.engine.checkpoint import load_checkpoint


def test_each_rank_is_pinned_to_its_gpu_before_joining(monkeypatch):
    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", torch.device(d))))
    def init(backend, **kw):
        calls.append(("init", backend, kw.get("device_id")))

    monkeypatch.setattr(torch.distributed, "init_process_group", init)
    dist.init_distributed(torch.device("cuda", 1))
    assert calls == [("set_device", torch.device("cuda", 1)), ("init", "nccl", torch.device("cuda", 1))]
    calls.clear()
    dist.init_distributed(torch.device("cpu"))
    assert calls == [("init", "gloo", None)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
            str(_free_port()), "-m", "minimrcnn.train", *args]  # fmt: skip


@pytest.mark.slow
def test_torchrun_coco_preset_checkpoint_kill_resume_evaluate(tmp_path):
    data = tmp_path / "coco"
    ensure_shapes(data, "train2017", 8, image_size=64)
    ensure_shapes(data, "val2017", 4, image_size=64)
    weights = tmp_path / "resnet18.pth"
    torch.manual_seed(123)  # not the model's own init: loaded weights are recognizable
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    common = [
        "--preset", "coco_r50_fpn_1x", "--data-root", str(data), "--backbone-weights", str(weights),
        "--iters", "8", "--device", "cpu", "--no-progress",
        "--set", "model.backbone=resnet18", "--set", "model.fpn_channels=32",
        "--set", "model.box_head_dim=64",
        "--set", "model.mask_head_dim=32", "--set", "model.min_size=64", "--set", "model.max_size=64",
        "--set", "model.box_batch_size_per_image=32", "--set", "model.rpn_post_nms_top_n_test=50",
        "--set", "train.batch_size=1", "--set", "train.num_workers=0", "--set", "train.log_every=2",
        "--set", "train.checkpoint_every=2",
    ]  # fmt: skip
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    proc = subprocess.run(_torchrun("--out", str(straight), "--no-eval", *common), capture_output=True,
                          text=True, env=ENV, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "schedule: total batch 2, lr 0.0025, 8 iterations" in proc.stdout

    # the cluster-job habit: always --resume; the first start finds no checkpoint and starts fresh
    ckpt = killed / "checkpoint.pt"
    job = subprocess.Popen(_torchrun("--out", str(killed), "--resume", "--no-eval", *common),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV,
                           start_new_session=True)  # fmt: skip
    deadline = time.time() + 400
    try:
        while time.time() < deadline and job.poll() is None:
            if ckpt.exists() and load_checkpoint(ckpt)["iteration"] >= 2:
                break
            time.sleep(0.05)
    finally:
        os.killpg(job.pid, signal.SIGKILL)  # torchrun and both workers, as a scheduler kills a job
        job.wait()
    at_kill = load_checkpoint(ckpt)["iteration"]
    assert 2 <= at_kill < 8, f"killed at {at_kill}: {job.stderr.read()[-2000:]}"

    proc = subprocess.run(_torchrun("--out", str(killed), "--resume", *common), capture_output=True,
                          text=True, env=ENV, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(ckpt)
    assert a["iteration"] == b["iteration"] == 8 and len(b["rng"]) == 2
    for k, v in a["model"].items():
        torch.testing.assert_close(b["model"][k], v, rtol=1e-5, atol=1e-6, msg=f"{k} differs after resume")
    # the trunk came from --backbone-weights although the first start had --resume (the stem is frozen)
    loaded = torch.load(weights, weights_only=True)["conv1.weight"]
    assert torch.equal(b["model"]["backbone.body.conv1.weight"], loaded)
    # the evaluation ran over both ranks' shards (gathered on rank 0, scored there, broadcast back)
    ev = json.loads((killed / "eval.json").read_text())
    assert ev["iteration"] == 8 and set(ev["segm"]) == {"AP", "AP50", "AP75", "APs", "APm", "APl"}
    logged = [json.loads(x)["iteration"] for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert logged == [2, 4, 6, 8]

"""End-to-end training rate of a real `python -m minimrcnn.train` run, data loading included, checked
through a checkpoint, a kill, a `--resume` and the COCO evaluation.

    python benchmarks/train_e2e.py --device cuda                       # R50-FPN, 800-px images, batch 4
    python benchmarks/train_e2e.py --device cpu --size 64 --iters 6 --backbone resnet18 --batch 1   # CI size

1. Writes synthetic COCO-format data on disk (the shapes dataset as `train2017` / `val2017`, `--size` px).
2. Writes backbone weights: a ResNet whose BatchNorm statistics were measured on random images, so the
   frozen BN of the preset normalizes (ImageNet weights cannot be downloaded everywhere).
3. Starts `minimrcnn.train --preset coco_r50_fpn_1x --resume --iters N` on an empty run folder (the
   cluster-job habit: the backbone weights must still be loaded), kills it with SIGKILL once the checkpoint
   at N/2 is on disk, restarts it with `--resume`, and lets it finish and evaluate.
4. Prints the iteration rate of the resumed half (its first logging window, the warm-up, left out) as
   training images per second, and the evaluation time; exits non-zero if anything did not hold.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import torchvision

from minimrcnn.data.shapes import ensure_shapes


def calibrated_backbone(name: str, path: Path, device: torch.device, size: int = 224) -> None:
    """A randomly initialized ResNet with BN statistics measured on random images (momentum=None averages)."""
    if path.exists():
        return
    torch.manual_seed(0)
    net = getattr(torchvision.models, name)().to(device)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches below
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net(torch.randn(8, 3, size, size, device=device))
    torch.save({k: v.cpu() for k, v in net.state_dict().items()}, path)


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--size", type=int, default=800, help="side of the synthetic square images (px)")
    p.add_argument("--images", type=int, default=64, help="training images written to disk")
    p.add_argument("--val-images", type=int, default=16)
    p.add_argument("--iters", type=int, default=200, help="total iterations; killed at half, then resumed")
    p.add_argument("--batch", type=int, default=4, help="images per iteration")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument("--backbone", default="resnet50")
    p.add_argument("--preset", default="coco_r50_fpn_1x")
    p.add_argument("--work", default="runs/train_e2e", help="folder for the data and the run")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--extra", action="append", default=[], metavar="KEY=VALUE", help="more --set overrides")
    args = p.parse_args()
    if args.iters < 4 or args.iters % 2:
        p.error("--iters must be even and >= 4")
    work = Path(args.work)
    data, run = work / f"coco_{args.size}px", work / "run"
    device = torch.device(args.device)

    t = time.perf_counter()
    ensure_shapes(data, "train2017", args.images, image_size=args.size)
    ensure_shapes(data, "val2017", args.val_images, image_size=args.size)
    weights = work / f"{args.backbone}_calibrated.pth"
    calibrated_backbone(args.backbone, weights, device)
    print(f"data: {args.images}+{args.val_images} images of {args.size} px, {time.perf_counter() - t:.1f} s")

    half = args.iters // 2
    sets = [f"model.backbone={args.backbone}", f"model.min_size={args.size}",
            f"train.batch_size={args.batch}", f"train.num_workers={args.workers}",
            f"train.log_every={args.log_every}", f"train.checkpoint_every={half}", *args.extra]  # fmt: skip
    cmd = [sys.executable, "-m", "minimrcnn.train", "--preset", args.preset, "--data-root", str(data),
           "--out", str(run), "--iters", str(args.iters), "--device", args.device, "--no-progress",
           "--backbone-weights", str(weights), "--resume"]  # fmt: skip
    for s in sets:
        cmd += ["--set", s]
    if run.exists():
        for f in run.iterdir():
            f.unlink()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    # first start: --resume on an empty folder, killed once the checkpoint at `half` is on disk
    t = time.perf_counter()
    job = subprocess.Popen([*cmd, "--no-eval"], env=env, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)  # fmt: skip
    ckpt = run / "checkpoint.pt"
    while job.poll() is None and not ckpt.exists():
        time.sleep(0.05)
    if job.poll() is not None:
        print(f"FAIL: the first start ended before its checkpoint (exit {job.returncode}):\n"
              f"{job.stderr.read()[-3000:]}")  # fmt: skip
        return 1
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    first_s = time.perf_counter() - t
    at_kill = torch.load(ckpt, map_location="cpu", weights_only=True)["iteration"]
    print(f"first start: killed after the checkpoint at iteration {at_kill}, {first_s:.1f} s")

    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    resumed_s = time.perf_counter() - t
    if proc.returncode != 0:
        print(f"FAIL: the resumed run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        return 1
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    records = read_metrics(run)
    its = [r["iteration"] for r in records]
    ev = json.loads((run / "eval.json").read_text())
    trunk = torch.load(weights, weights_only=True)["conv1.weight"]
    loaded = torch.equal(state["model"]["backbone.body.conv1.weight"], trunk)
    checks = {
        "resumed run reached the last iteration": state["iteration"] == args.iters == ev["iteration"],
        "log continuous across the kill": its == list(range(args.log_every, args.iters + 1, args.log_every)),
        "losses finite": all(r["loss"] == r["loss"] and abs(r["loss"]) < float("inf") for r in records),
        "backbone weights loaded on a fresh --resume": loaded,
    }
    for name, ok in checks.items():
        print(f"check: {name}: {'ok' if ok else 'FAILED'}")

    # rate of the resumed half, without its first logging window (start-up, cudnn autotuning, workers)
    resumed = [r for r in records if r["iteration"] > at_kill]
    if len(resumed) >= 3:
        a, b = resumed[0], resumed[-1]
        rate = (b["iteration"] - a["iteration"]) / (b["time"] - a["time"])
        print(f"e2e: {args.preset} {args.backbone} {args.size}px batch {args.batch} workers {args.workers} "
              f"device {args.device}: {rate:.2f} it/s, {rate * args.batch:.1f} img/s (iterations "
              f"{a['iteration']}-{b['iteration']} of the resumed run, data loading included)")  # fmt: skip
    else:
        print("e2e: too few logging steps after the resume to measure a rate (use more --iters)")
    ap = f"bbox AP {100 * ev['bbox']['AP']:.1f}, segm AP {100 * ev['segm']['AP']:.1f}"
    print(f"resumed run: {resumed_s:.1f} s wall (start-up, {args.iters - at_kill} iterations, evaluation of "
          f"{args.val_images} images); {ap} (synthetic shapes, {args.iters} iterations: a check of the "
          f"plumbing, not an accuracy)")  # fmt: skip
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())

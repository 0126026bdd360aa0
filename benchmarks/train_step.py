"""Training-step time of minimrcnn vs torchvision's maskrcnn_resnet50_fpn: same weights, config and batch.

    python benchmarks/train_step.py --size 320 --steps 5                       # CPU, short side 320, batch 2
    python benchmarks/train_step.py --device cuda --size 800 --batch 4 --amp   # the GPU benchmark

Both models are built as the COCO recipe trains them: ResNet-50-FPN with frozen batch norm and the top 3
ResNet stages trainable (torchvision's `maskrcnn_resnet50_fpn(weights=None)` would silently give trainable
BatchNorm and all 5 stages, so the torchvision model is assembled from its parts), 81 classes, and a batch of
synthetic images with 7 objects each, about COCO's average. `--amp` runs both under bf16 autocast.

The models alternate step by step, in an order reversed every round, so that machine noise hits all alike;
the script prints the median step time of each and the ratio (ours / torchvision; below 1 means minimrcnn is
faster), the median of the per-round ratios with a 90% bootstrap interval,
training images per second and, on CUDA, the peak GPU memory of a step.
minimrcnn runs twice: with torchvision's RoIAlign kernel (roi_kernel=torchvision, the only difference is
our Python) and with our own PyTorch RoIAlign (roi_kernel=minimrcnn).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
import torchvision

from minimrcnn.convert import from_torchvision, torchvision_config


def synthetic_batch(n: int, size: int, device: torch.device, seed: int = 0, objects: int = 7):
    """n images (short side `size`, 4:3) with `objects` random boxes + masks each, 80 classes."""
    g = torch.Generator().manual_seed(seed)
    h, w = size, size * 4 // 3
    images, targets = [], []
    for _ in range(n):
        xy = torch.rand(objects, 2, generator=g) * torch.tensor([w * 0.6, h * 0.6])
        wh = torch.rand(objects, 2, generator=g) * torch.tensor([w * 0.3, h * 0.3]) + 16
        boxes = torch.cat([xy, xy + wh], 1).round()
        masks = torch.zeros(objects, h, w, dtype=torch.uint8)
        for i, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):  # building test data, not a hot path
            masks[i, y1:y2, x1:x2] = 1
        labels = torch.randint(1, 81, (objects,), generator=g)
        images.append(torch.rand(3, h, w, generator=g).to(device))
        targets.append({"boxes": boxes.to(device), "labels": labels.to(device), "masks": masks.to(device)})
    return images, targets


def coco_recipe_torchvision(size: int) -> torch.nn.Module:
    """torchvision's Mask R-CNN R50-FPN as the COCO recipe trains it: frozen BN, 3 trainable stages."""
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor

    trunk = torchvision.models.resnet50(weights=None, norm_layer=torchvision.ops.misc.FrozenBatchNorm2d)
    with torch.no_grad():  # ImageNet-like statistics, so that activations stay in range
        for m in trunk.modules():
            if isinstance(m, torchvision.ops.misc.FrozenBatchNorm2d):
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.2, 1.0)
    backbone = _resnet_fpn_extractor(trunk, trainable_layers=3)
    return torchvision.models.detection.MaskRCNN(backbone, num_classes=81, min_size=size, max_size=size * 2)


def step_fn(model, images, targets, opt, device, amp: bool):
    def step() -> tuple[float, int]:
        """One training step: (seconds, peak GPU bytes during it; 0 on CPU)."""
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = sum(model(images, targets).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        peak = 0
        if device.type == "cuda":
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated(device)
        return time.perf_counter() - t, peak

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    args = p.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    tv = coco_recipe_torchvision(args.size)
    models = {"torchvision": tv}
    for kernel in ("torchvision", "minimrcnn"):
        cfg = torchvision_config(tv)
        cfg.roi_kernel = kernel
        models[f"minimrcnn (roi_kernel={kernel})"] = from_torchvision(tv, cfg)
    images, targets = synthetic_batch(args.batch, args.size, device)
    steps = {}
    for name, m in models.items():
        m.to(device).train()
        opt = torch.optim.SGD([q for q in m.parameters() if q.requires_grad], lr=1e-4, momentum=0.9)
        steps[name] = step_fn(m, images, targets, opt, device, args.amp)
    times: dict[str, list[float]] = {name: [] for name in models}
    peaks: dict[str, int] = dict.fromkeys(models, 0)
    names = list(steps)
    for i in range(args.warmup + args.steps):
        for name in names if i % 2 == 0 else names[::-1]:  # alternate, and swap the order every round
            step = steps[name]
            torch.manual_seed(i)
            dt, peak = step()
            peaks[name] = max(peaks[name], peak)
            if i >= args.warmup:
                times[name].append(dt)
    ref = statistics.median(times["torchvision"])
    print(f"device={device} size={args.size} batch={args.batch} steps={args.steps} amp={args.amp} "
          f"torch={torch.__version__} threads={torch.get_num_threads()}")  # fmt: skip
    for name, ts in times.items():
        med = statistics.median(ts)
        mem = f"   peak {peaks[name] / 2**30:5.2f} GiB" if device.type == "cuda" else ""
        print(f"{name:36s} median {med:7.3f} s/step  {args.batch / med:7.2f} img/s  "
              f"ratio vs torchvision {med / ref:5.2f}{mem}")  # fmt: skip
    for name in names[1:]:  # per-round ratios: each pair ran back to back, so the machine's drift cancels
        lo, mid, hi = paired_ratio(times[name], times["torchvision"])
        print(f"{name:36s} paired ratio vs torchvision: median {mid:.3f}, 90% interval {lo:.3f}-{hi:.3f} "
              f"({len(times[name])} pairs)")  # fmt: skip


def paired_ratio(ours: list[float], ref: list[float], draws: int = 2000) -> tuple[float, float, float]:
    """Median of the per-round ratios ours / ref and a 90% bootstrap interval for it (resampling rounds)."""
    ratios = [a / b for a, b in zip(ours, ref, strict=True)]
    gen = random.Random(0)
    meds = sorted(statistics.median(gen.choices(ratios, k=len(ratios))) for _ in range(draws))
    return meds[int(0.05 * draws)], statistics.median(ratios), meds[int(0.95 * draws) - 1]


if __name__ == "__main__":
    main()

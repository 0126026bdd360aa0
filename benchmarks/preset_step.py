"""CPU time of a training step of two presets, measured alternately in one process (fair under load).

    OMP_NUM_THREADS=1 python benchmarks/preset_step.py figures_cpu shapes_cpu --steps 30

On a shared machine wall time measures the neighbours; the thread's CPU time (time.thread_time) measures
the step. With one thread, a preset's wall time on an idle machine is about its CPU time per step times
the iterations; the ratio to a preset whose wall time is known extrapolates to other core counts.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from minimrcnn.data import build_dataset
from minimrcnn.data.samplers import collate
from minimrcnn.engine.trainer import build_optimizer
from minimrcnn.model.mask_rcnn import MaskRCNN
from minimrcnn.presets import get_preset


def stepper(name: str, seed: int = 0):
    cfg = get_preset(name)
    torch.manual_seed(seed)
    data = build_dataset(cfg.train, cfg.train.train_split, train=True)
    cfg.model.num_classes = data.num_classes
    model = MaskRCNN(cfg.model).train()
    opt = build_optimizer(model, cfg.train, 1)
    g = torch.Generator().manual_seed(seed)
    bs = cfg.train.batch_size

    def step() -> float:
        idx = torch.randint(len(data), (bs,), generator=g).tolist()
        images, targets = collate([data[i] for i in idx])
        t = time.thread_time()
        loss = sum(model(list(images), list(targets)).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.thread_time() - t

    return step


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("presets", nargs="+")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    args = p.parse_args()
    steps = {n: stepper(n) for n in args.presets}
    times: dict[str, list[float]] = {n: [] for n in args.presets}
    for i in range(args.warmup + args.steps):
        for n, step in steps.items():  # alternate: machine noise hits every preset alike
            t = step()
            if i >= args.warmup:
                times[n].append(t)
    for n, ts in times.items():
        print(f"{n}: median {statistics.median(ts):.3f} s CPU per step (mean {statistics.fmean(ts):.3f}), "
              f"{torch.get_num_threads()} thread(s), {args.steps} steps")  # fmt: skip


if __name__ == "__main__":
    main()

"""Time the FCN mask head's tail (2x2 stride-2 deconv, ReLU, 1x1 predictor) two ways on this CPU.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mask_head_tail.py [--rois 60] [--repeats 30]
    .venv/bin/python benchmarks/mask_head_tail.py --rois 40 --channels 256 --classes 81 --float32   # R50

`layers`: ConvTranspose2d -> ReLU -> Conv2d, as the paper draws the head. `matmuls`: the same weights
through `minimrcnn.model.mask_head.upsample_and_predict`, which the head runs. Forward + backward under
bf16 autocast where the CPU has native bf16 (as the trainer does), float32 elsewhere; the two alternate
call by call, and each figure is the median. The default shape is the shapes_cpu preset's: ~60 positive
RoIs of 64 x 14 x 14 per step, 4 output channels.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from minimrcnn.engine.precision import amp_dtype
from minimrcnn.model.mask_head import upsample_and_predict


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rois", type=int, default=60)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--size", type=int, default=14)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--float32", action="store_true", help="no autocast, as the R50 CPU benchmark runs")
    args = p.parse_args()
    torch.manual_seed(0)
    c, k = args.channels, args.classes
    deconv, predictor = torch.nn.ConvTranspose2d(c, c, 2, stride=2), torch.nn.Conv2d(c, k, 1)
    x = torch.randn(args.rois, c, args.size, args.size)
    dtype = None if args.float32 else amp_dtype(torch.device("cpu"), True)
    ways = {
        "layers": lambda t: predictor(F.relu(deconv(t))),
        "matmuls": lambda t: upsample_and_predict(t, deconv, predictor),
    }

    def once(fn) -> float:
        t = x.clone().requires_grad_(True)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            out = fn(t)
        out.float().sum().backward()
        return time.perf_counter() - start

    with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        a, b = ways["layers"](x), ways["matmuls"](x)
    print(f"{args.rois} RoIs x {c} x {args.size} x {args.size} -> {k} x {2 * args.size} x {2 * args.size}, "
          f"{'bf16 autocast' if dtype else 'float32'}, {torch.get_num_threads()} thread(s); "
          f"largest difference between the two outputs: {(a.float() - b.float()).abs().max().item():.2g}")
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(3):  # warm-up
        for fn in ways.values():
            once(fn)
    for _ in range(args.repeats):
        for name, fn in ways.items():
            times[name].append(once(fn))
    for name, ts in times.items():
        print(f"  {name:8s} forward + backward: median {1000 * statistics.median(ts):6.2f} ms")
    print(f"  speed-up: {statistics.median(times['layers']) / statistics.median(times['matmuls']):.2f}x")


if __name__ == "__main__":
    main()

"""Time minimrcnn's roi_align (and roi_pool) against torchvision's C++ kernels on this CPU.

    .venv/bin/python benchmarks/roi_align_speed.py [--repeats 7]

Configuration: a [2, 256, 100, 152] float32 map (stride 4 of a 400x608 image), 512 RoIs,
14x14 output, sampling_ratio 2. Runs alternate between the two implementations (so that a noisy
neighbour slows both alike) and each figure is the median of `--repeats` runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torchvision
from torch import Tensor

from minimrcnn.ops import roi_align, roi_pool


def make_inputs(seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(2, 256, 100, 152, generator=g)  # [N, C, H, W]
    k = 512
    xy = torch.rand(k, 2, generator=g) * torch.tensor([560.0, 360.0])  # top-left corners, image pixels
    wh = torch.rand(k, 2, generator=g) * 250 + 8  # sizes 8..258 pixels
    image = torch.randint(0, 2, (k, 1), generator=g).float()
    rois = torch.cat([image, xy, xy + wh], dim=1)  # [K, 5]
    return feats, rois


Op = Callable[[Tensor, Tensor], Tensor]


def time_once(op: Op, feats: Tensor, rois: Tensor, backward: bool) -> float:
    x = feats.detach().requires_grad_(backward)
    start = time.perf_counter()
    out = op(x, rois)
    if backward:
        out.backward(torch.ones_like(out))
    return time.perf_counter() - start


def compare(name: str, ours: Op, theirs: Op, feats: Tensor, rois: Tensor, repeats: int) -> None:
    torch.testing.assert_close(ours(feats, rois), theirs(feats, rois), rtol=1e-4, atol=1e-4)
    for backward in (False, True):
        for op in (ours, theirs):  # warm-up
            time_once(op, feats, rois, backward)
        t_ours, t_theirs = [], []
        for _ in range(repeats):
            t_ours.append(time_once(ours, feats, rois, backward))
            t_theirs.append(time_once(theirs, feats, rois, backward))
        a, b = statistics.median(t_ours), statistics.median(t_theirs)
        what = "forward+backward" if backward else "forward"
        times = f"ours {a * 1e3:8.1f} ms   torchvision {b * 1e3:8.1f} ms"
        print(f"{name:<24} {what:<17} {times}   ratio {a / b:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    feats, rois = make_inputs()
    versions = f"torch {torch.__version__}, torchvision {torchvision.__version__}"
    print(f"{versions}, {torch.get_num_threads()} threads")
    print(f"map {list(feats.shape)}, {rois.shape[0]} RoIs, spatial_scale 0.25")
    tv = torchvision.ops
    compare(
        "roi_align 14x14 sr=2",
        lambda x, r: roi_align(x, r, 14, 0.25, 2),
        lambda x, r: tv.roi_align(x, r, 14, 0.25, 2),
        feats,
        rois,
        args.repeats,
    )
    compare(
        "roi_align 7x7 adaptive",
        lambda x, r: roi_align(x, r, 7, 0.25, -1, aligned=True),
        lambda x, r: tv.roi_align(x, r, 7, 0.25, -1, aligned=True),
        feats,
        rois,
        max(3, args.repeats // 2),
    )
    compare(
        "roi_pool 7x7",
        lambda x, r: roi_pool(x, r, 7, 0.25),
        lambda x, r: tv.roi_pool(x, r, 7, 0.25),
        feats,
        rois,
        args.repeats,
    )


if __name__ == "__main__":
    main()

"""Chapter 09 (ablations): exercise solution and checker.

Exercise, ``paired_gain``: how much better variant A is than variant B, paired by seed. Runs with the same
seed share the initialization and the data order, so the per-seed difference cancels much of the run-to-run
noise; its mean and its spread (sample standard deviation) say how large and how reliable the gain is.
The solution is the package's own ``minimrcnn.ablations.results.paired_gain``, which the panel and the
chapter's verdicts use.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from minimrcnn.ablations.results import paired_gain
from minimrcnn.config import ModelConfig
from minimrcnn.ops.roi_align import round_half_away
from minimrcnn.solutions.ch03 import fpn_level
from minimrcnn.solutions.checking import StudentError, call, check_answer, report

__all__ = [
    "answers",
    "check_answer_upscaled_512",
    "check_paired_gain",
    "fpn_stride",
    "mask_head_cost",
    "paired_gain",
    "roipool_shift",
    "validation_boxes",
]


def _run(ap: float, ap75: float, box: float) -> dict[str, Any]:
    return {"segm": {"AP": ap, "AP75": ap75}, "bbox": {"AP": box, "AP75": box}}


def _cases() -> list[tuple[list[dict], list[dict], str, str]]:
    a = [_run(0.312, 0.30, 0.40), _run(0.298, 0.27, 0.41), _run(0.305, 0.31, 0.39)]
    b = [_run(0.281, 0.24, 0.38), _run(0.290, 0.26, 0.40), _run(0.262, 0.23, 0.40)]
    return [
        (a, b, "segm", "AP"),
        (a[:2], b[:2], "segm", "AP75"),
        (b, a, "bbox", "AP"),
        (a[:1], b[:1], "segm", "AP"),
    ]


def check_paired_gain(fn: Callable[..., tuple[float, float]]) -> bool:
    """Check a student's ``paired_gain(runs_a, runs_b, iou_type, metric)``; print a verdict."""
    name = "paired_gain"
    cases = _cases()
    try:
        for a, b, iou_type, metric in cases:
            want_mean, want_spread = paired_gain(a, b, iou_type, metric)
            out = call(fn, a, b, iou_type, metric)
            try:
                got_mean, got_spread = (float(x) for x in out)
            except (TypeError, ValueError):
                raise StudentError(f"return a pair (mean, spread); got {out!r}.") from None
            if abs(got_mean - want_mean) > 1e-6:
                if abs(got_mean + want_mean) < 1e-6:
                    raise StudentError("the sign is flipped: the gain of A over B is A - B.")
                if abs(100 * got_mean - want_mean) < 1e-4:
                    raise StudentError("report AP points: the eval dicts hold fractions, multiply by 100.")
                raise StudentError(
                    f"mean gain {got_mean:.3f}, expected {want_mean:.3f} ({iou_type} {metric})."
                )
            if abs(got_spread - want_spread) > 1e-6:
                diffs = [100 * (x[iou_type][metric] - y[iou_type][metric]) for x, y in zip(a, b)]
                pop = statistics.pstdev(diffs)
                sa = statistics.stdev([100 * x[iou_type][metric] for x in a]) if len(a) > 1 else 0.0
                sb = statistics.stdev([100 * y[iou_type][metric] for y in b]) if len(b) > 1 else 0.0
                if len(diffs) > 1 and abs(got_spread - pop) < 1e-6:
                    raise StudentError(
                        "that is the population standard deviation (divides by n); with a "
                        "handful of seeds use the sample one (n - 1), statistics.stdev."
                    )
                if len(diffs) > 1 and abs(got_spread - (sa**2 + sb**2) ** 0.5) < 1e-6:
                    raise StudentError(
                        "that combines the two variants' own spreads (unpaired); take the "
                        "spread of the per-seed differences instead."
                    )
                if len(diffs) == 1:
                    raise StudentError("with a single seed there is no spread to estimate: return 0.")
                raise StudentError(f"spread {got_spread:.3f}, expected {want_spread:.3f}.")
    except StudentError as err:
        return report(name, [str(err)], len(cases), "")
    return report(name, [], len(cases), "Paired by seed: the difference's mean and its sample spread.")


# ------------------------------------------------------------------------- section 2 and question 3
def fpn_stride(boxes: torch.Tensor) -> torch.Tensor:
    """The stride of the FPN level that pools each [N, 4] box (chapter 03: level k pools stride 2**k)."""
    return 2.0 ** fpn_level(boxes).double()


def roipool_shift(boxes: torch.Tensor, stride: float | torch.Tensor) -> np.ndarray:
    """Mean displacement of the four edges of RoIPool's snapped box, in % of the object's side ([N] array):
    the corners rounded to the feature grid (C's round), whole cells with the last one included."""
    s = 1.0 / torch.as_tensor(stride, dtype=torch.float64).reshape(-1, 1)
    q = round_half_away(boxes * s)  # corners on the feature grid
    snapped = torch.cat([q[:, :2], q[:, 2:] + 1], dim=1) / s  # whole cells, end inclusive, back in pixels
    side = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).sqrt()
    return (100 * (snapped - boxes).abs().mean(1) / side).numpy()


def validation_boxes(data_root: str = "data/shapes") -> torch.Tensor:
    """Every non-crowd box of the shapes validation split, [N, 4] xyxy in float64."""
    from minimrcnn.data import build_dataset
    from minimrcnn.presets import shapes_cpu

    tc = shapes_cpu().train
    tc.data_root = data_root
    val = build_dataset(tc, "val", train=False)
    return torch.tensor(
        [
            [x, y, x + w, y + h]
            for a in val.coco.anns.values()
            if not a["iscrowd"]
            for x, y, w, h in [a["bbox"]]
        ],
        dtype=torch.float64,
    )


def mask_head_cost(model_cfg: ModelConfig, rois: int = 64, repeats: int = 5) -> tuple[int, float]:
    """What one mask head costs: its multiply-adds per RoI, and the median seconds of a forward and backward
    pass over `rois` RoIs of pooled features (mask_resolution / 2 squared).

    PyTorch's FlopCounterMode counts the convolutions and matrix products the head runs (2 FLOPs per
    multiply-add), whichever way a layer is computed: the FCN head's deconv + predictor run as two
    matmuls (`model/mask_head.upsample_and_predict`) and cost exactly what the two layers would.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from minimrcnn.model.mask_rcnn import MaskRCNN

    head = MaskRCNN(model_cfg).roi_heads.mask_head
    pooled = model_cfg.mask_resolution // 2
    x = torch.randn(rois, model_cfg.fpn_channels, pooled, pooled)  # [R, C, S, S]
    with FlopCounterMode(display=False) as counter:
        head(x[:1])  # one RoI
    seconds = []
    for _ in range(repeats):
        t = time.perf_counter()
        head(x).sum().backward()
        seconds.append(time.perf_counter() - t)
    return counter.get_total_flops() // 2, statistics.median(seconds)


def answers(data_root: str = "data/shapes") -> dict[str, float]:
    """Question 3's numbers: the median edge displacement (%) at 128 px, and with the images at 512 px."""
    boxes = validation_boxes(data_root)
    big = boxes * 4
    return {
        "median_128": float(np.median(roipool_shift(boxes, fpn_stride(boxes)))),
        "upscaled_512": float(np.median(roipool_shift(big, fpn_stride(big)))),
        "upscaled_512_on_p2": float(np.median(roipool_shift(big, 4.0))),
    }


def check_answer_upscaled_512(answer: Any) -> bool:
    """Question 3: the median edge displacement (% of the object's side) with the images at 512 px."""
    a = answers()
    return check_answer(
        "question 3 (512 px)",
        answer,
        a["upscaled_512"],
        atol=0.5,
        form="a percentage of the object's side, such as 12.5",
        mistakes=(
            (a["median_128"], "that is the displacement at 128 px: at 512 px every object is 4x larger."),
            (
                a["upscaled_512_on_p2"],
                "close, but FPN moves the larger objects up a level (chapter 03's "
                "rule), to a coarser grid: use fpn_stride on the upscaled boxes.",
            ),
        ),
        mistake_atol=0.2,
        why=f"About {a['upscaled_512']:.1f}% (from {a['median_128']:.1f}% at 128 px): the objects grow 4x, "
        "the grid they are pooled from only grows for those FPN sends to P3 or higher.",
    )

"""Chapter 04 (anchors and the region proposal network): exercise solutions and checkers.

Exercise 1, ``iou``: intersection over union of every pair of boxes, ``[N, 4], [M, 4] -> [N, M]``.
Exercise 2, ``encode``: a ground-truth box relative to its anchor, as the deltas ``(dx, dy, dw, dh)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from minimrcnn.ops.boxes import BoxCoder, box_iou
from minimrcnn.solutions.checking import StudentError, call, check_answer, close, close_each, report

__all__ = [
    "answers",
    "check_answer_anchor_64_tall",
    "check_answer_deltas",
    "check_answer_p4_positions",
    "check_answer_rpn_sample",
    "check_encode",
    "check_iou",
    "encode",
    "iou",
]


def iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU of every pair: ``[N, 4]``, ``[M, 4]`` (x1, y1, x2, y2) -> ``[N, M]``.

    The intersection of two boxes starts at the larger of the two top-left corners and ends at the smaller
    of the two bottom-right corners; if it ends before it starts (along x or along y), it is empty.
    """
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])  # [N]
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])  # [M]
    top_left = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])  # [N, M, 2]
    bottom_right = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])  # [N, M, 2]
    wh = (bottom_right - top_left).clamp(min=0)  # [N, M, 2]: width and height of the overlap, or 0
    inter = wh[..., 0] * wh[..., 1]  # [N, M]
    return inter / (area1[:, None] + area2[None, :] - inter)


def encode(gt: Tensor, anchors: Tensor) -> Tensor:
    """Deltas of ``gt`` relative to ``anchors`` (both ``[N, 4]`` xyxy, row i with row i) -> ``[N, 4]``.

    dx = (gx - ax) / aw,  dy = (gy - ay) / ah,  dw = log(gw / aw),  dh = log(gh / ah), where (x, y) is a
    box's centre and (w, h) its size. The RPN uses no extra weights (they are all 1).
    """
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
    gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    gx, gy = gt[:, 0] + 0.5 * gw, gt[:, 1] + 0.5 * gh
    return torch.stack(((gx - ax) / aw, (gy - ay) / ah, torch.log(gw / aw), torch.log(gh / ah)), dim=1)


# ----------------------------------------------------------------------------------------------
# checkers
# ----------------------------------------------------------------------------------------------


def _iou_cases() -> tuple[Tensor, Tensor]:
    boxes1 = torch.tensor(
        [
            [10.0, 10.0, 50.0, 50.0],
            [0.0, 0.0, 20.0, 80.0],  # tall
            [60.0, 5.0, 100.0, 25.0],  # wide
            [30.0, 30.0, 34.0, 36.0],  # tiny
        ]
    )
    boxes2 = torch.tensor(
        [
            [10.0, 10.0, 50.0, 50.0],  # identical to boxes1[0]
            [30.0, 20.0, 70.0, 60.0],  # partial overlaps
            [50.0, 10.0, 90.0, 50.0],  # touches boxes1[0] along an edge: IoU 0
            [200.0, 200.0, 240.0, 260.0],  # far away from everything, below and to the right
            [-40.0, -50.0, -10.0, -20.0],  # far away, above and to the left
            [0.0, 0.0, 100.0, 100.0],  # contains everything
            [12.5, 40.25, 27.75, 90.5],  # fractional coordinates
        ]
    )
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(9, 2, generator=g) * 80
    wh = 4 + torch.rand(9, 2, generator=g) * 60
    boxes1 = torch.cat([boxes1, torch.cat([xy[:5], xy[:5] + wh[:5]], dim=1)])  # N = 9
    boxes2 = torch.cat([boxes2, torch.cat([xy[5:], xy[5:] + wh[5:]], dim=1)])  # M = 11
    return boxes1, boxes2


def _area(b: Tensor, plus: float = 0.0) -> Tensor:
    return (b[:, 2] - b[:, 0] + plus) * (b[:, 3] - b[:, 1] + plus)


def _inter(b1: Tensor, b2: Tensor, clamp: str = "each", plus: float = 0.0) -> Tensor:
    tl = torch.maximum(b1[:, None, :2], b2[None, :, :2])
    br = torch.minimum(b1[:, None, 2:], b2[None, :, 2:])
    wh = br - tl + plus
    if clamp == "each":
        wh = wh.clamp(min=0)
    out = wh[..., 0] * wh[..., 1]
    return out.clamp(min=0) if clamp == "product" else out


def _iou_variants(b1: Tensor, b2: Tensor) -> list[tuple[Tensor, str]]:
    a1, a2 = _area(b1)[:, None], _area(b2)[None, :]
    inter = _inter(b1, b2)
    return [
        (
            _inter(b1, b2, clamp="none") / (a1 + a2 - _inter(b1, b2, clamp="none")),
            "boxes that do not overlap get a non-zero IoU: clamp the overlap's width and height at 0 "
            "(an intersection that ends before it starts is empty).",
        ),
        (
            _inter(b1, b2, clamp="product") / (a1 + a2 - _inter(b1, b2, clamp="product")),
            "clamp the width and the height of the overlap separately, before multiplying: two negative "
            "overlaps (a box far below and to the right) multiply to a positive area.",
        ),
        (
            _inter(b1, b2, plus=1.0)
            / (_area(b1, 1.0)[:, None] + _area(b2, 1.0)[None, :] - _inter(b1, b2, plus=1.0)),
            "off by one: the '+ 1' in widths (x2 - x1 + 1) belongs to an old convention where boxes held "
            "integer pixel indices; here coordinates are continuous, so a box is x2 - x1 wide.",
        ),
        (inter / (a1 + a2), "the union counts the intersection twice: union = area1 + area2 - intersection."),
        (inter / torch.minimum(a1, a2), "divide by the union, not by the smaller of the two areas."),
        (inter / a1.expand_as(inter), "divide by the union, not by the area of the first box."),
        (inter / a2.expand_as(inter), "divide by the union, not by the area of the second box."),
        (inter, "you returned the intersection area; divide it by the union."),
        (
            _iou_swapped_minmax(b1, b2),
            "max and min are swapped: the overlap starts at the *larger* x1, y1 (max) and ends at the "
            "*smaller* x2, y2 (min).",
        ),
    ]


def _iou_swapped_minmax(b1: Tensor, b2: Tensor) -> Tensor:
    tl = torch.minimum(b1[:, None, :2], b2[None, :, :2])
    br = torch.maximum(b1[:, None, 2:], b2[None, :, 2:])
    wh = (br - tl).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (_area(b1)[:, None] + _area(b2)[None, :] - inter)


def check_iou(fn: Callable[[Tensor, Tensor], Tensor]) -> bool:
    """Check a student's ``iou(boxes1, boxes2)``; print a verdict, return True if right."""
    name = "iou"
    b1, b2 = _iou_cases()
    want = box_iou(b1, b2)  # the package's, which the RPN and the box head use
    n_cases = want.numel()
    try:
        out = call(fn, b1.clone(), b2.clone())
        if not isinstance(out, Tensor):
            raise StudentError(f"return a tensor [N, M]; got {type(out).__name__}.")
    except StudentError as err:
        return report(name, [str(err)], n_cases, "")
    problems: list[str] = []
    n, m = len(b1), len(b2)
    if out.shape != want.shape:
        if out.shape == (m, n) and close(out.T, want):
            problems.append(
                f"transposed: your result is [M, N] = {list(out.shape)}; rows must follow boxes1 and columns "
                f"boxes2, [N, M] = {[n, m]}."
            )
        elif out.shape == (n, 4) or out.dim() == 1:
            problems.append(
                f"shape: return the IoU of *every* pair, [N, M] = {[n, m]}; got {list(out.shape)}. "
                "Broadcast boxes1[:, None, :] against boxes2[None, :, :]."
            )
        else:
            problems.append(
                f"shape: expected [N, M] = {[n, m]} for {n} and {m} boxes, got {list(out.shape)}."
            )
        return report(name, problems, n_cases, "")
    if not out.is_floating_point():
        problems.append(f"dtype: IoU is a fraction, return floats; got {out.dtype}.")
        return report(name, problems, n_cases, "")
    if close(out, want):
        return report(
            name, [], n_cases, "Touching edges give 0, identical boxes give 1, and far boxes give 0."
        )

    bad = torch.nonzero(~close_each(out, want))
    i, j = (int(v) for v in bad[0])
    problems.append(
        f"{len(bad)} of {n_cases} pairs differ, e.g. boxes1[{i}] = {b1[i].tolist()} and boxes2[{j}] = "
        f"{b2[j].tolist()}: you say {float(out[i, j]):.4f}, the IoU is {float(want[i, j]):.4f}."
    )
    for variant, message in _iou_variants(b1, b2):
        if close(out, variant):
            problems.append(message)
            break
    return report(name, problems, n_cases, "")


def _encode_cases() -> tuple[Tensor, Tensor]:
    anchors = torch.tensor(
        [
            [-8.0, -8.0, 8.0, 8.0],
            [-11.0, -6.0, 11.0, 6.0],  # wide anchor (ratio 0.5)
            [20.0, 4.0, 42.0, 48.0],  # tall anchor
            [100.0, 100.0, 164.0, 164.0],
            [32.0, 32.0, 288.0, 288.0],
        ]
    )
    gt = torch.tensor(
        [
            [-8.0, -8.0, 8.0, 8.0],  # exactly the anchor: deltas 0
            [-4.0, -10.0, 20.0, 2.0],
            [25.0, 10.0, 35.0, 60.0],
            [90.0, 120.0, 150.0, 150.0],
            [10.0, 60.0, 200.0, 250.0],
        ]
    )
    g = torch.Generator().manual_seed(0)
    a_xy, a_wh = torch.rand(6, 2, generator=g) * 100, 8 + torch.rand(6, 2, generator=g) * 100
    g_xy = a_xy + (torch.rand(6, 2, generator=g) - 0.5) * 30
    g_wh = a_wh * torch.exp((torch.rand(6, 2, generator=g) - 0.5) * 1.5)
    anchors = torch.cat([anchors, torch.cat([a_xy, a_xy + a_wh], dim=1)])
    gt = torch.cat([gt, torch.cat([g_xy, g_xy + g_wh], dim=1)])
    return gt, anchors


def _parts(b: Tensor, plus: float = 0.0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    w, h = b[:, 2] - b[:, 0] + plus, b[:, 3] - b[:, 1] + plus
    return b[:, 0] + 0.5 * w, b[:, 1] + 0.5 * h, w, h


_package_encode = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0)).encode  # the RPN's coder: no extra weights


def _encode_variants(gt: Tensor, anc: Tensor) -> list[tuple[Tensor, str]]:
    gx, gy, gw, gh = _parts(gt)
    ax, ay, aw, ah = _parts(anc)
    right = _package_encode(gt, anc)
    s = torch.stack
    plus = s(
        (
            (_parts(gt, 1)[0] - _parts(anc, 1)[0]) / (aw + 1),
            (_parts(gt, 1)[1] - _parts(anc, 1)[1]) / (ah + 1),
            torch.log((gw + 1) / (aw + 1)),
            torch.log((gh + 1) / (ah + 1)),
        ),
        dim=1,
    )
    return [
        (
            _package_encode(anc, gt),
            "arguments swapped: encode the ground truth relative to the anchor, encode(gt, anchors).",
        ),
        (right[:, [1, 0, 3, 2]], "x and y are swapped: return (dx, dy, dw, dh), x first."),
        (
            right[:, [0, 2, 1, 3]],
            "order: return (dx, dy, dw, dh), the two offsets first, then the two log-sizes.",
        ),
        (
            right * torch.tensor([10.0, 10.0, 5.0, 5.0]),
            "those are the box head's weights (10, 10, 5, 5); the RPN "
            "uses none (all 1), so return the plain deltas.",
        ),
        (
            s(((gt[:, 0] - anc[:, 0]) / aw, (gt[:, 1] - anc[:, 1]) / ah, right[:, 2], right[:, 3]), dim=1),
            "dx and dy compare the top-left corners; they must compare the box *centres*.",
        ),
        (
            s((gx - ax, gy - ay, right[:, 2], right[:, 3]), dim=1),
            "divide the centre offsets by the anchor's width and height, so that the targets do not "
            "depend on the box's scale.",
        ),
        (
            s(((gx - ax) / gw, (gy - ay) / gh, right[:, 2], right[:, 3]), dim=1),
            "divide the centre offsets by the *anchor's* width and height, not the ground truth's.",
        ),
        (
            s((right[:, 0], right[:, 1], gw / aw, gh / ah), dim=1),
            "dw and dh are log(gw / aw) and log(gh / ah): take the log of the ratio.",
        ),
        (
            s((right[:, 0], right[:, 1], (gw - aw) / aw, (gh - ah) / ah), dim=1),
            "dw and dh are log(gw / aw) and log(gh / ah), not the relative difference.",
        ),
        (
            s((right[:, 0], right[:, 1], torch.log(aw / gw), torch.log(ah / gh)), dim=1),
            "dw and dh have the wrong sign: log(gw / aw), ground truth over anchor.",
        ),
        (
            s((right[:, 0], right[:, 1], torch.log2(gw / aw), torch.log2(gh / ah)), dim=1),
            "use the natural log (torch.log), so that decoding is exp(dw).",
        ),
        (
            s((right[:, 0], right[:, 1], torch.log10(gw / aw), torch.log10(gh / ah)), dim=1),
            "use the natural log (torch.log), so that decoding is exp(dw).",
        ),
        (plus, "off by one: widths are x2 - x1 here (continuous coordinates), without the old '+ 1'."),
    ]


def check_encode(fn: Callable[[Tensor, Tensor], Tensor]) -> bool:
    """Check a student's ``encode(gt, anchors)``; print a verdict, return True if right."""
    name = "encode"
    gt, anchors = _encode_cases()
    want = _package_encode(gt, anchors)
    n_cases = len(gt)
    try:
        out = call(fn, gt.clone(), anchors.clone())
        if not isinstance(out, Tensor):
            raise StudentError(f"return a tensor [N, 4]; got {type(out).__name__}.")
    except StudentError as err:
        return report(name, [str(err)], n_cases, "")
    if out.shape != want.shape:
        if out.shape == (4, n_cases) and close(out.T, want):
            msg = "transposed: return one row (dx, dy, dw, dh) per box, [N, 4]: stack along dim=1."
        else:
            msg = f"shape: expected [N, 4] = {list(want.shape)}, got {list(out.shape)}."
        return report(name, [msg], n_cases, "")
    if close(out, want):
        return report(name, [], n_cases, "A box equal to its anchor encodes to (0, 0, 0, 0).")
    bad = torch.where(~close_each(out, want).all(dim=1))[0]
    i = int(bad[0])
    problems = [
        f"{len(bad)} of {n_cases} boxes differ, e.g. gt {gt[i].tolist()} on anchor {anchors[i].tolist()}: "
        f"you say {[round(v, 4) for v in out[i].tolist()]}, "
        f"expected {[round(v, 4) for v in want[i].tolist()]}."
    ]
    for variant, message in _encode_variants(gt, anchors):
        if close(out, variant):
            problems.append(message)
            break
    else:
        cols = [c for c, nm in enumerate(("dx", "dy", "dw", "dh")) if not close(out[:, c], want[:, c])]
        names = ", ".join(("dx", "dy", "dw", "dh")[c] for c in cols)
        problems.append(f"the columns that differ: {names}.")
    return report(name, problems, n_cases, "")


# ----------------------------------------------------------------------------------------------
# numeric answers to the chapter's questions
# ----------------------------------------------------------------------------------------------


def answers() -> dict[str, Any]:
    """The right values, from the package's anchors, ``encode`` and the RPN's sampling settings."""
    from minimrcnn.config import ModelConfig
    from minimrcnn.model.anchors import cell_anchors

    x1, y1, x2, y2 = cell_anchors((64,), (2.0,))[0].tolist()
    anchor = torch.tensor([[0.0, 0.0, 64.0, 32.0]])
    w = 64.0
    gt = torch.tensor([[0.25 * w - w / 2, 0.0, 0.25 * w + 1.5 * w, 32.0]])  # twice as wide, centre + w/4
    cfg = ModelConfig()
    n_pos = min(3, int(cfg.rpn_batch_size_per_image * cfg.rpn_positive_fraction))
    return {
        "anchor_64_tall": (x2 - x1, y2 - y1),
        "p4_positions": list(range(0, 128, 128 // 8)),  # P4 of a 128 x 128 image: 8 x 8 positions, stride 16
        "deltas": tuple(encode(gt, anchor)[0].tolist()),
        "rpn_sample": (n_pos, cfg.rpn_batch_size_per_image - n_pos),
    }


def check_answer_anchor_64_tall(answer: Any) -> bool:
    """Question 1: (width, height) of the size-64, ratio-2 anchor, after rounding."""
    w, h = answers()["anchor_64_tall"]
    return check_answer(
        "question 1 (anchor 64, ratio 2)",
        answer,
        (w, h),
        form="(width, height) in pixels, after rounding",
        mistake_atol=0.01,
        mistakes=(
            ((h, w), "swapped: the ratio is h / w, so a ratio-2 anchor is tall."),
            (
                (64 / 2**0.5, 64 * 2**0.5),
                "that is before rounding; the corners are rounded to whole "
                "pixels (+-22.6 -> +-23, +-45.3 -> +-45).",
            ),
            ((32, 128), "the area stays 64 x 64: w = 64 / sqrt(2), h = 64 * sqrt(2)."),
        ),
        why="45.25 x 90.51 before rounding; the corners (+-22.6, +-45.3) round to +-23 and +-45: 46 x 90.",
    )


def check_answer_p4_positions(answer: Any) -> bool:
    """Question 1: the x (or y) positions in pixels of P4's anchor centres in a 128 x 128 image."""
    return check_answer(
        "question 1 (P4 positions)",
        answer,
        answers()["p4_positions"],
        form="the list of positions, e.g. [0, 8, ...]",
        mistakes=(
            (
                [8 + 16 * i for i in range(8)],
                "the package centres anchors on each cell's top-left pixel (16 j), not on the cell's centre.",
            ),
        ),
        why="0, 16, ..., 112: 8 positions per axis, at the top-left pixel of each stride-16 cell.",
    )


def check_answer_deltas(answer: Any) -> bool:
    """Question 3: (dx, dy, dw, dh) of a box twice as wide as its anchor, centre moved right by w_a / 4."""
    want = answers()["deltas"]
    return check_answer(
        "question 3 (deltas)",
        answer,
        want,
        atol=1e-3,
        form="(dx, dy, dw, dh), to three decimals",
        mistakes=(
            ((0.25, 0.0, 1.0, 0.0), "dw is log(w / w_a) = log 2, not w / w_a - 1."),
            ((16.0, 0.0, 0.693, 0.0), "dx is measured in anchor widths: 16 px / 64 px."),
            ((0.125, 0.0, 0.693, 0.0), "divide the shift by the *anchor's* width, not the box's."),
        ),
        why="dx = (w_a / 4) / w_a = 0.25, dy = 0, dw = log 2 = 0.693, dh = log 1 = 0.",
    )


def check_answer_rpn_sample(answer: Any) -> bool:
    """Question 6: (positives, negatives) sampled from an image with 3 positive and 4000 negative anchors."""
    pos, neg = answers()["rpn_sample"]
    return check_answer(
        "question 6 (RPN sample)",
        answer,
        (pos, neg),
        form="(positives, negatives)",
        mistakes=(
            ((3, 125), "the negatives fill the sample up to 256, not only up to half of it."),
            ((128, 128), "there are only 3 positives to sample; the negatives fill the rest."),
        ),
        why=f"{pos} positives and {neg} negatives: 256 in all. The box loss is divided by 256 either way, so "
        "each positive weighs as much as in an image with 128 positives; the image's box term is smaller.",
    )

"""Chapter 03 (backbone and feature pyramid): exercise solutions and checkers.

Exercise 1, ``top_down``: the FPN's top-down merge, lateral maps -> merged maps (before the 3x3 smoothing).
Exercise 2, ``fpn_level``: which pyramid level pools a RoI, k = floor(4 + log2(sqrt(wh) / 224)) in 2..5.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from minimrcnn.model.poolers import RoILevelMapper
from minimrcnn.solutions.checking import StudentError, call, check_answer, close, report

__all__ = [
    "answers",
    "check_answer_levels",
    "check_answer_p2_cells",
    "check_answer_padded_size",
    "check_answer_resnet_sizes",
    "check_fpn_level",
    "check_top_down",
    "fpn_level",
    "top_down",
]


def top_down(laterals: list[Tensor]) -> list[Tensor]:
    """FPN's top-down pathway: ``[L2, L3, L4, L5]`` (finest first) -> ``[M2, M3, M4, M5]``.

    The coarsest map passes through (M5 = L5). Every finer level adds the merged map just above it,
    upsampled (nearest neighbour) to its own size: M_k = L_k + up(M_{k+1}). Because M_{k+1} already
    contains everything above it, C5's signal reaches all the way down to M2.
    """
    merged = [laterals[-1]]
    for lateral in reversed(laterals[:-1]):
        up = F.interpolate(merged[0], size=lateral.shape[-2:], mode="nearest")
        merged.insert(0, lateral + up)
    return merged


def fpn_level(
    boxes: Tensor, canonical_size: float = 224.0, canonical_level: int = 4, k_min: int = 2, k_max: int = 5
) -> Tensor:
    """Pyramid level of each ``[N, 4]`` xyxy box: ``floor(4 + log2(sqrt(w h) / 224))`` clamped to 2..5.

    The tiny epsilon keeps the floor from dropping a level when rounding error puts log2 a hair below a
    whole number (a side of 224 computed as 223.99998 in float64); torchvision adds the same 1e-6.
    Returns int64 level numbers (2 = P2, ..., 5 = P5).
    """
    side = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    k = torch.floor(canonical_level + torch.log2(side / canonical_size) + 1e-6)
    return k.clamp(min=k_min, max=k_max).to(torch.int64)


# ----------------------------------------------------------------------------------------------
# checkers
# ----------------------------------------------------------------------------------------------


def _laterals(
    shapes: list[tuple[int, int]], channels: int = 3, batch: int = 2, seed: int = 0
) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, channels, h, w, generator=g, dtype=torch.float64) for h, w in shapes]


_EVEN = [(16, 24), (8, 12), (4, 6), (2, 3)]  # from a 64 x 96 input: every map exactly twice the next
_ODD = [(100, 150), (50, 75), (25, 38), (13, 19)]  # from a 400 x 600 input: 25 is not 2 x 13


def _as_maps(out: object, want: list[Tensor]) -> list[Tensor]:
    if isinstance(out, Tensor):
        raise StudentError("return a list of tensors [M2, M3, M4, M5], one per level; got a single tensor.")
    try:
        maps = list(out)  # type: ignore[call-overload]
    except TypeError:
        raise StudentError(f"return a list of tensors [M2, M3, M4, M5]; got {type(out).__name__}.") from None
    if not all(isinstance(m, Tensor) for m in maps):
        raise StudentError("return a list of tensors [M2, M3, M4, M5]; some items are not tensors.")
    if len(maps) != len(want):
        raise StudentError(
            f"return one merged map per input level: got {len(maps)} maps for {len(want)} laterals "
            "(the coarsest level, M5 = L5, counts too)."
        )
    shapes = [tuple(m.shape) for m in maps]
    want_shapes = [tuple(m.shape) for m in want]
    if shapes != want_shapes:
        if shapes == want_shapes[::-1]:
            raise StudentError(
                "ordering: your list is coarsest first; return it finest first, [M2, M3, M4, M5], "
                "like the laterals."
            )
        raise StudentError(
            f"shapes: your maps are {shapes}, expected {want_shapes} "
            "(each merged map keeps its lateral's shape)."
        )
    return maps


def check_top_down(fn: Callable[[list[Tensor]], list[Tensor]]) -> bool:
    """Check a student's ``top_down(laterals)``; print a verdict, return True if right."""
    name = "top_down"
    cases = [_laterals(_EVEN, seed=s) for s in (0, 1)]
    n_cases = len(cases) + 1
    try:
        wrong = []
        for lat in cases:
            want = top_down(lat)
            got = _as_maps(call(fn, [t.clone() for t in lat]), want)
            if not close(got, want):
                wrong.append((lat, got, want))
    except StudentError as err:
        return report(name, [str(err)], n_cases, "")

    if wrong:
        lat, got, want = wrong[0]
        problems = []
        bad = [f"M{i + 2}" for i, (g_, w_) in enumerate(zip(got, want)) if not close([g_], [w_])]
        problems.append(f"the values of {', '.join(bad)} differ from the reference.")

        def up(x: Tensor, like: Tensor, mode: str = "nearest") -> Tensor:
            kw = {"align_corners": False} if mode == "bilinear" else {}
            return F.interpolate(x, size=like.shape[-2:], mode=mode, **kw)

        no_accumulation = [lat[i] + up(lat[i + 1], lat[i]) for i in range(len(lat) - 1)] + [lat[-1]]

        def merged_with(mode: str) -> list[Tensor]:
            out = [lat[-1]]
            for lateral in reversed(lat[:-1]):
                out.insert(0, lateral + up(out[0], lateral, mode))
            return out

        if close(got, no_accumulation):
            problems.append(
                "you add the upsampled coarser *lateral* L_{k+1}; add the coarser *merged* map M_{k+1} "
                "instead, so that C5's signal accumulates all the way down to M2 (work from the top)."
            )
        elif close(got, merged_with("bilinear")):
            problems.append("that is bilinear upsampling; FPN uses nearest neighbour (mode='nearest').")
        elif close(got[:-1], [lat[i] + up(lat[-1], lat[i]) for i in range(len(lat) - 1)]):
            problems.append(
                "every level gets the upsampled C5 lateral only; add the merged map of the level just above."
            )
        elif close(got, lat):
            problems.append("you returned the laterals unchanged: add the upsampled coarser merged map.")
        elif close(got[-1:], lat[-1:]) and not close(got[:1], want[:1]):
            problems.append("M5 is right (it is L5); check how each finer level adds the one above it.")
        return report(name, problems, n_cases, "")

    # maps that are not exactly 2x the next one (a 400 x 600 image): 25 x 38 above 13 x 19
    lat = _laterals(_ODD, channels=2, batch=1, seed=2)
    want = top_down(lat)
    try:
        got = _as_maps(call(fn, [t.clone() for t in lat]), want)
    except StudentError as err:
        return report(
            name,
            [
                "right when every map is exactly twice the next, but not for a 400 x 600 image, whose "
                "maps are 100x150, 50x75, 25x38 and 13x19 (25 is not 2 x 13): upsample to the finer "
                "lateral's size (F.interpolate(..., size=lateral.shape[-2:])) rather than by a factor of 2.",
                f"(what happened: {err})",
            ],
            n_cases,
            "",
        )
    if not close(got, want):
        return report(
            name,
            [
                "right when every map is exactly twice the next, wrong for maps of 25x38 above 13x19: "
                "upsample to the finer lateral's exact size with nearest neighbour."
            ],
            n_cases,
            "",
        )
    return report(
        name, [], n_cases, "C5's signal now reaches every level, even when the sizes are not exact doubles."
    )


def _level_cases() -> Tensor:
    sides = [8.0, 40.0, 111.0, 112.0, 150.0, 223.0, 224.0, 300.0, 448.0, 700.0, 896.0, 1500.0]
    rows = [[10.0, 20.0, 10.0 + s, 20.0 + s] for s in sides]
    rows += [[0.0, 0.0, 448.0, 112.0], [5.0, 7.0, 61.0, 231.0], [100.0, 50.0, 130.0, 470.0]]  # elongated
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(40, 2, generator=g) * 300
    wh = torch.exp(torch.rand(40, 2, generator=g) * 5.5 + 1.5)  # about 4 .. 1100 px
    return torch.cat([torch.tensor(rows), torch.cat([xy, xy + wh], dim=1)])


def check_fpn_level(fn: Callable[[Tensor], Tensor]) -> bool:
    """Check a student's ``fpn_level(boxes)``; print a verdict, return True if right."""
    name = "fpn_level"
    boxes = _level_cases()
    # The package's RoILevelMapper returns the index of the level in the pooler's list (0 for P2); the
    # chapter, like the paper, numbers the level k itself (2..5). This is the one place they are converted.
    want = RoILevelMapper(k_min=2, k_max=5)(boxes) + 2
    try:
        out = call(fn, boxes.clone())
        if not isinstance(out, Tensor):
            raise StudentError(f"return a tensor of levels, one per box; got {type(out).__name__}.")
        if out.shape != want.shape:
            hint = " (one level per box: reduce over the 4 coordinates)" if out.dim() != 1 else ""
            raise StudentError(
                f"shape: for {len(boxes)} boxes return shape {tuple(want.shape)}, "
                f"got {tuple(out.shape)}{hint}."
            )
    except StudentError as err:
        return report(name, [str(err)], len(boxes), "")

    problems = []
    got = out
    if got.is_floating_point():
        problems.append(
            f"dtype: return integer levels (torch.int64), got {got.dtype}; a level indexes a list of maps."
        )
        got = got.round()
    got = got.to(torch.int64)
    if torch.equal(got, want):
        if not problems:
            return report(
                name, [], len(boxes), "A 224 x 224 RoI pools from P4; halve its side and it moves to P3."
            )
        return report(name, problems, len(boxes), "")

    bad = torch.where(got != want)[0]
    i = int(bad[0])
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.sqrt(w * h)
    problems.append(
        f"{len(bad)} of {len(boxes)} boxes get the wrong level, e.g. box "
        f"{[round(v, 1) for v in boxes[i].tolist()]} (sqrt(wh) = {float(side[i]):.1f}): "
        f"you say {int(got[i])}, the rule says {int(want[i])}."
    )

    def rule(raw: Tensor, clamp: bool = True) -> Tensor:
        return raw.clamp(2, 5).to(torch.int64) if clamp else raw.to(torch.int64)

    if torch.equal(got, want - 2):
        problems.append("off by two: you returned an index 0..3; return the level number k itself (2..5).")
    elif torch.equal(got, rule(torch.floor(4 + torch.log2(side / 224) + 1e-6), clamp=False)):
        problems.append("missing clamp: tiny and huge boxes must stay within the pyramid, levels 2..5.")
    elif torch.equal(got, rule(torch.round(4 + torch.log2(side / 224)))):
        problems.append("you rounded to the nearest level; the rule floors (a 300 px box still goes to P4).")
    elif torch.equal(got, rule(torch.ceil(4 + torch.log2(side / 224)))):
        problems.append("that is ceil; the rule floors (a 300 px box goes to P4, not P5).")
    elif torch.equal(got, rule(torch.floor(4 + torch.log2(w * h / 224) + 1e-6))) or torch.equal(
        got, rule(torch.floor(4 + torch.log2(w * h / 224**2) + 1e-6))
    ):
        problems.append("use the side sqrt(w * h), not the area w * h, inside the log.")
    elif torch.equal(got, rule(torch.floor(4 + torch.log(side / 224) + 1e-6))):
        problems.append("that is the natural log; one level per halving of the side needs log2.")
    elif any(
        torch.equal(got, rule(torch.floor(4 + torch.log2(one_side / 224) + 1e-6)))
        for one_side in (w, h, torch.maximum(w, h), torch.minimum(w, h))
    ):
        problems.append(
            "the rule uses the geometric mean side sqrt(w * h), not the width, the height, "
            "the longer or the shorter side."
        )
    elif torch.equal(got, rule(torch.floor(4 - torch.log2(side / 224) + 1e-6))):
        problems.append("sign: larger boxes go to coarser levels (larger k), so it is + log2(side / 224).")
    return report(name, problems, len(boxes), "")


# ----------------------------------------------------------------------------------------------
# numeric answers to the chapter's questions
# ----------------------------------------------------------------------------------------------


def _c2_to_c5(h: int, w: int) -> list[tuple[int, int]]:
    """(height, width) of ResNet-50's C2..C5 for an h x w image: the package's backbone, on meta tensors."""
    from minimrcnn.model.backbone import ResNetBody, resnet

    body = ResNetBody(resnet("resnet50")).to("meta")
    with torch.no_grad():
        maps = body(torch.empty(1, 3, h, w, device="meta"))
    return [(int(m.shape[-2]), int(m.shape[-1])) for m in maps]


def answers() -> dict[str, Any]:
    boxes = torch.tensor([[0.0, 0.0, 60.0, 240.0], [0.0, 0.0, 500.0, 500.0]])
    return {
        "resnet_sizes": _c2_to_c5(600, 900),
        "padded_size": (608, 928),  # the next multiples of 32 (ImageTransform's size_divisible)
        "levels": tuple(fpn_level(boxes).tolist()),
        "p2_cells": 20 / 4,
    }


def check_answer_resnet_sizes(answer: Any) -> bool:
    """Question 1: [(h, w) of C2, C3, C4, C5] for a 600 x 900 image without padding."""
    want = answers()["resnet_sizes"]
    exact = [(600 // s, 900 // s) for s in (4, 8, 16, 32)]
    return check_answer(
        "question 1 (C2..C5 of a 600 x 900 image)",
        answer,
        want,
        form="[(h, w) of C2, (h, w) of C3, (h, w) of C4, (h, w) of C5]",
        mistakes=((exact, "each stride-2 layer rounds *up* (ceil(n / 2)): 225 becomes 113, not 112."),),
        why="C5 is 19 x 29: its true strides are 600/19 = 31.6 and 900/29 = 31.0, not 32.",
    )


def check_answer_padded_size(answer: Any) -> bool:
    """Question 1: the (height, width) ImageTransform pads a 600 x 900 image to."""
    return check_answer(
        "question 1 (padded size)",
        answer,
        answers()["padded_size"],
        form="(height, width)",
        mistakes=(
            ((600, 900), "ImageTransform pads to multiples of 32 (size_divisible=32)."),
            ((640, 928), "600 is not a multiple of 32, but the next one is 608."),
        ),
        why="608 x 928: multiples of 32, so that every level's stride is exact.",
    )


def check_answer_levels(answer: Any) -> bool:
    """Question 5: the pyramid levels (k of Pk) of a 60 x 240 box and of a 500 x 500 box."""
    return check_answer(
        "question 5 (levels)",
        answer,
        answers()["levels"],
        form="(level of the 60 x 240 box, level of the 500 x 500 box), e.g. (4, 4) for P4 and P4",
        mistakes=(
            ((2, 5), "the 60 x 240 box is sized by sqrt(60 * 240) = 120, not by its short side."),
            ((3, 6), "the rule is clamped to P2..P5: P6 only serves the RPN."),
        ),
        why="sqrt(60 * 240) = 120: floor(4 + log2(120/224)) = 3; 500: floor(5.16) = 5.",
    )


def check_answer_p2_cells(answer: Any) -> bool:
    """Question 5: how many P2 cells (stride 4) a 20 x 20 box spans along each side."""
    return check_answer(
        "question 5 (P2 cells of a 20 x 20 box)",
        answer,
        answers()["p2_cells"],
        atol=1e-6,
        form="a number of cells per side",
        mistakes=((25, "25 cells in all; the question asks per side."), (80, "P2 has stride 4, not 1/4.")),
        why="20 / 4 = 5 cells per side: RoIAlign interpolates a 7 x 7 (or 14 x 14) grid from 5 x 5 values, "
        "and no choice of level can make the finest map finer.",
    )

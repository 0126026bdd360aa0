"""Chapter 02 (RoIAlign): exercise solutions and checkers.

Exercise 1, ``bilinear``: read a feature map at a real-valued position (y, x).
Exercise 2, ``bin_sample_points``: where RoIAlign puts the sampling points of one output bin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from minimrcnn.solutions.checking import StudentError, call, check_answer, close, report

__all__ = [
    "answers",
    "bilinear",
    "bin_sample_points",
    "check_answer_aligned_shift",
    "check_answer_samples_per_bin",
    "check_bilinear",
    "check_bin_sample_points",
]


def bilinear(feature: Tensor, y: float, x: float) -> Tensor:
    """Bilinear interpolation of ``feature`` (``[..., H, W]``) at the real-valued point ``(y, x)``.

    Convention: ``feature[..., i, j]`` is the value *at* the point ``(y=i, x=j)``; valid inputs are
    ``0 <= y <= H - 1`` and ``0 <= x <= W - 1`` (end points included). The result keeps the leading
    dimensions (a 0-d tensor for a 2-D map, ``[C]`` for ``[C, H, W]``) and the feature's dtype, and
    stays differentiable with respect to ``feature``.
    """
    h, w = feature.shape[-2:]
    y0, x0 = math.floor(y), math.floor(x)  # the top-left neighbour
    y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)  # bottom-right, not past the last row/column
    ly, lx = y - y0, x - x0  # how far we are from the top-left neighbour, in [0, 1]
    hy, hx = 1.0 - ly, 1.0 - lx
    return (
        hy * hx * feature[..., y0, x0]
        + hy * lx * feature[..., y0, x1]
        + ly * hx * feature[..., y1, x0]
        + ly * lx * feature[..., y1, x1]
    )


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def bin_sample_points(
    box: Sequence[float],
    output_size: int | Sequence[int],
    bin_index: Sequence[int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> tuple[list[float], list[float]]:
    """The sampling points RoIAlign uses for output bin ``bin_index = (i, j)`` (row i, column j).

    Returns ``(ys, xs)``, in feature-map coordinates (where ``feature[..., r, c]`` sits at
    ``(y=r, x=c)``); the bin's samples are all the pairs ``(y, x)`` for ``y in ys, x in xs``.

    1. Scale the box ``(x1, y1, x2, y2)`` by ``spatial_scale``; with ``aligned=True`` then shift it
       by half a feature cell, ``-0.5`` (the box is in pixel-corner coordinates, the feature values
       sit at cell centers).
    2. With ``aligned=False`` (the legacy behaviour), a RoI narrower than one cell is stretched to one.
    3. Cut the RoI into ``output_size`` equal bins; cut bin ``(i, j)`` into ``gh x gw`` equal
       sub-cells, with ``gh = gw = sampling_ratio``, or, if ``sampling_ratio <= 0``, as many as the
       bin is tall/wide in feature cells, rounded up (``ceil(roi_h / out_h)``, ``ceil(roi_w / out_w)``).
    4. Sample at the center of every sub-cell.
    """
    out_h, out_w = _pair(output_size)
    i, j = bin_index
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (float(v) * spatial_scale - offset for v in box)  # scale first, then shift
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:  # legacy: a RoI is at least one cell
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    bin_h, bin_w = roi_h / out_h, roi_w / out_w
    grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(bin_h)
    grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(bin_w)
    ys = [y1 + i * bin_h + (m + 0.5) * bin_h / grid_h for m in range(grid_h)]
    xs = [x1 + j * bin_w + (m + 0.5) * bin_w / grid_w for m in range(grid_w)]
    return ys, xs


# ----------------------------------------------------------------------------------------------
# checkers
# ----------------------------------------------------------------------------------------------


def _mistaken_sample_points(
    box: Sequence[float],
    output_size: int | Sequence[int],
    bin_index: Sequence[int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
    *,
    shift: float = -0.5,
    shift_before_scale: bool = False,
    within: str = "centers",
    swap_bin: bool = False,
    adaptive: str = "ceil",
    min_size: str = "legacy",
) -> tuple[list[float], list[float]]:
    """`bin_sample_points` with switches that reproduce typical mistakes (used by the checker only)."""
    oh, ow = _pair(output_size)
    i, j = (bin_index[1], bin_index[0]) if swap_bin else (bin_index[0], bin_index[1])
    off = shift if aligned else 0.0
    if shift_before_scale:
        x1, y1, x2, y2 = ((float(v) + off) * spatial_scale for v in box)
    else:
        x1, y1, x2, y2 = (float(v) * spatial_scale + off for v in box)
    rw, rh = x2 - x1, y2 - y1
    if (min_size == "legacy" and not aligned) or min_size == "always":
        rw, rh = max(rw, 1.0), max(rh, 1.0)
    bh, bw = rh / oh, rw / ow
    if sampling_ratio > 0:
        gh = gw = sampling_ratio
    else:
        size_h, size_w = (
            (rh / oh, rw / ow) if adaptive != "image" else (rh / spatial_scale / oh, rw / spatial_scale / ow)
        )
        rnd = {"ceil": math.ceil, "image": math.ceil, "floor": math.floor, "round": round}[adaptive]
        gh, gw = int(rnd(size_h)), int(rnd(size_w))
    frac = {
        "centers": lambda k, g: (k + 0.5) / g,
        "edges": lambda k, g: k / g,
        "spread": lambda k, g: (k + 1) / (g + 1),
    }[within]
    ys = [y1 + i * bh + frac(k, gh) * bh for k in range(gh)]
    xs = [x1 + j * bw + frac(k, gw) * bw for k in range(gw)]
    return ys, xs


def _feature_2d() -> Tensor:
    g = torch.Generator().manual_seed(2)
    return torch.randn(5, 7, generator=g, dtype=torch.float64)  # not square: catches swapped axes


def _ref_variant(f: Tensor, y: float, x: float, kind: str) -> float | None:
    """Typical wrong answers, on a 2-D map; None where the variant is not defined."""
    h, w = f.shape
    try:
        if kind == "swapped":
            if not (0 <= x <= h - 1 and 0 <= y <= w - 1):
                return None
            return float(bilinear(f, x, y))
        if kind in ("minus_half", "plus_half"):
            d = -0.5 if kind == "minus_half" else 0.5
            yy, xx = y + d, x + d
            if not (0 <= yy <= h - 1 and 0 <= xx <= w - 1):
                return None
            return float(bilinear(f, yy, xx))
        if kind == "flipped":
            y0, x0 = math.floor(y), math.floor(x)
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            ly, lx = y - y0, x - x0
            return float(
                ly * lx * f[y0, x0]
                + ly * (1 - lx) * f[y0, x1]
                + (1 - ly) * lx * f[y1, x0]
                + (1 - ly) * (1 - lx) * f[y1, x1]
            )
        if kind == "nearest":
            return float(f[min(int(math.floor(y + 0.5)), h - 1), min(int(math.floor(x + 0.5)), w - 1)])
        if kind == "nearest_even":  # Python's round(): halves to even
            return float(f[min(round(y), h - 1), min(round(x), w - 1)])
        if kind == "topleft":
            return float(f[math.floor(y), math.floor(x)])
    except IndexError:
        return None
    raise ValueError(kind)


_INTERIOR = [(1.25, 2.5), (0.5, 0.5), (2.0, 3.0), (3.7, 1.2), (0.1, 3.9), (2.5, 0.75)]
_EDGES = [(4.0, 6.0), (4.0, 2.5), (1.5, 6.0), (0.0, 0.0), (3.99, 5.5)]
_HINTS = {
    "swapped": "x and y are swapped: rows are y and columns are x, so index feature[..., y, x].",
    "minus_half": "your samples sit half a cell too far up-left: here feature[i, j] lives at (i, j), "
    "not at (i + 0.5, j + 0.5). The half-pixel shift belongs to the box (RoIAlign's aligned=True), "
    "not inside bilinear().",
    "plus_half": "your samples sit half a cell too far down-right: here feature[i, j] lives at (i, j); "
    "do not add 0.5 inside bilinear().",
    "flipped": "the weights are the wrong way round: the *nearer* neighbour must get the *larger* "
    "weight; the top-left value is weighted by (1 - ly) * (1 - lx).",
    "nearest": "that is nearest-neighbour lookup (a rounding!): blend the four neighbours instead.",
    "nearest_even": "that is nearest-neighbour lookup (a rounding!): blend the four neighbours instead.",
    "topleft": "you read only the top-left neighbour (floor): blend all four neighbours.",
}


def check_bilinear(fn: Callable[[Tensor, float, float], Tensor]) -> bool:
    """Check a student's ``bilinear(feature, y, x)``; print a verdict and return True if right."""
    name = "bilinear"
    f = _feature_2d()
    n_cases = len(_INTERIOR) + len(_EDGES) + 2
    problems: list[str] = []
    try:
        # 1) interior points on a 2-D map: values, then the usual suspects
        got = []
        for y, x in _INTERIOR:
            out = call(fn, f.clone(), y, x)
            if not isinstance(out, Tensor):
                raise StudentError(
                    f"return a tensor (got {type(out).__name__}); avoid .item() and float() so that "
                    "gradients can flow back to the feature map."
                )
            if out.numel() != 1:
                raise StudentError(f"a 2-D map should give a single value; got shape {tuple(out.shape)}.")
            got.append(float(out))
        want = [float(bilinear(f, y, x)) for y, x in _INTERIOR]
        if not close(got, want):
            y, x = _INTERIOR[0]
            problems.append(f"at (y={y}, x={x}) you return {got[0]:.4f}, the right value is {want[0]:.4f}.")
            for kind, hint in _HINTS.items():
                alt = [_ref_variant(f, y, x, kind) for y, x in _INTERIOR]
                pairs = [(a, b) for a, b in zip(got, alt) if b is not None]
                if len(pairs) >= 2 and all(close(a, b) for a, b in pairs):
                    problems.append(hint)
                    break
            return report(name, problems, n_cases, "")
        # 2) the last row / column (no neighbour below or to the right)
        for y, x in _EDGES:
            try:
                out = fn(f.clone(), y, x)
            except IndexError:
                problems.append(
                    f"at (y={y}, x={x}) you index past the last row/column: when y = H - 1 there is no "
                    "neighbour below, so clamp the high index to H - 1 (same for x)."
                )
                break
            except Exception as err:
                raise StudentError(
                    f"at (y={y}, x={x}) your function raised {type(err).__name__}: {err}"
                ) from None
            w = float(bilinear(f, y, x))
            if out is None or not close(float(out), w):
                problems.append(f"at (y={y}, x={x}) (on the border) you return {out}, expected {w:.4f}.")
                break
        # 3) dtype and differentiability
        f32 = f.float().requires_grad_(True)
        out = call(fn, f32, 1.25, 2.5)
        if isinstance(out, Tensor):
            if out.dtype != torch.float32:
                problems.append(f"a float32 map gave a {out.dtype} result: keep the feature's dtype.")
            elif not out.requires_grad:
                problems.append(
                    "the result is cut off from autograd: do not use .item(), float() or torch.tensor()."
                )
        # 4) a [C, H, W] map: one value per channel
        f3 = torch.stack([f, 2 * f, -f])
        out = call(fn, f3, 1.25, 2.5)
        want3 = bilinear(f3, 1.25, 2.5)
        if not isinstance(out, Tensor) or tuple(out.shape) != (3,):
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            problems.append(
                f"a [3, H, W] map should give 3 values (one per channel), got {shape}: index with "
                "feature[..., i, j] so that leading dimensions are kept."
            )
        elif not close(out, want3):
            problems.append(
                "on a [3, H, W] map the per-channel values are wrong: index with feature[..., i, j]."
            )
    except StudentError as err:
        problems.append(str(err))
    return report(name, problems, n_cases, "RoIAlign reads every sample point with exactly this rule.")


_POINT_CASES: list[
    tuple[tuple[float, float, float, float], tuple[int, int], tuple[int, int], float, int, bool]
] = [
    ((16.0, 32.0, 176.0, 144.0), (7, 7), (2, 3), 1 / 16, 2, False),
    ((16.0, 32.0, 176.0, 144.0), (7, 7), (2, 3), 1 / 16, 2, True),
    ((40.0, 8.0, 232.0, 104.0), (4, 6), (1, 4), 1 / 8, -1, False),  # not square, adaptive grid
    ((40.0, 8.0, 232.0, 104.0), (4, 6), (3, 0), 1 / 8, -1, True),
    ((10.5, 20.25, 70.0, 50.0), (2, 3), (0, 2), 1 / 4, 1, True),
    ((10.5, 20.25, 70.0, 50.0), (2, 3), (1, 1), 1 / 4, 3, False),
    ((100.0, 100.0, 108.0, 104.0), (2, 2), (1, 0), 1 / 16, 2, False),  # smaller than a cell: legacy stretch
    ((100.0, 100.0, 108.0, 104.0), (2, 2), (1, 0), 1 / 16, 2, True),
    ((3.0, 1.0, 60.0, 90.0), (5, 3), (4, 2), 1 / 2, -1, False),
]

_POINT_HINTS: list[tuple[dict, str]] = [
    (dict(swap_bin=True), "bin_index is (i, j) = (row, column): row i moves along y, column j along x."),
    (dict(shift=0.5), "aligned=True shifts the box by *minus* half a cell (-0.5), not plus."),
    (dict(shift=0.0), "you ignored aligned: with aligned=True subtract 0.5 from every scaled coordinate."),
    (
        dict(shift_before_scale=True),
        "you shifted by half an *image pixel*; the shift is half a *feature cell*: "
        "scale first, then subtract 0.5.",
    ),
    (
        dict(within="edges"),
        "your samples sit on sub-cell edges; RoIAlign samples sub-cell *centers*: (k + 0.5) / g.",
    ),
    (
        dict(within="spread"),
        "you spread the points as (k + 1) / (g + 1); RoIAlign uses the centers of g equal sub-cells, "
        "(k + 0.5) / g.",
    ),
    (
        dict(adaptive="floor"),
        "sampling_ratio=-1 rounds the bin size *up*: ceil(roi_h / out_h), never 0 samples.",
    ),
    (dict(adaptive="round"), "sampling_ratio=-1 rounds the bin size *up*: ceil(roi_h / out_h)."),
    (
        dict(adaptive="image"),
        "sampling_ratio=-1 counts the bin size in *feature cells* (after spatial_scale), "
        "not in image pixels.",
    ),
    (
        dict(min_size="never"),
        "with aligned=False (legacy), a RoI smaller than one feature cell is stretched to 1 cell: "
        "max(roi_w, 1).",
    ),
    (dict(min_size="always"), "with aligned=True there is no minimum size: do not clamp roi_w / roi_h to 1."),
]


def _as_floats(v: object) -> list[float]:
    return [float(t) for t in v]  # type: ignore[union-attr]


def check_bin_sample_points(fn: Callable[..., tuple[Sequence[float], Sequence[float]]]) -> bool:
    """Check a student's ``bin_sample_points``; print a verdict and return True if right.

    The function is called as ``bin_sample_points(box, output_size, bin_index, spatial_scale, sampling_ratio,
    aligned)``."""
    name = "bin_sample_points"
    results: list[tuple[list[float], list[float]]] = []
    try:
        for box, out_size, idx, scale, sr, al in _POINT_CASES:
            out = call(fn, box, out_size, idx, scale, sr, al)
            try:
                ys, xs = out
                results.append((_as_floats(ys), _as_floats(xs)))
            except Exception:
                raise StudentError(
                    "return two lists, (ys, xs): the y coordinates and the x coordinates."
                ) from None
    except StudentError as err:
        return report(name, [str(err)], len(_POINT_CASES), "")

    def agree(**variant: object) -> bool:
        return all(
            close(ys, w[0]) and close(xs, w[1])
            for (ys, xs), w in zip(results, (_mistaken_sample_points(*c, **variant) for c in _POINT_CASES))
        )

    if agree():
        return report(name, [], len(_POINT_CASES), "These are exactly the points RoIAlign averages over.")
    for (ys, xs), case in zip(results, _POINT_CASES):
        want = bin_sample_points(*case)
        if not (close(ys, want[0]) and close(xs, want[1])):
            break
    box, out_size, idx, scale, sr, al = case

    def fmt(v: list[float]) -> str:
        head = ", ".join(f"{t:.3f}" for t in v[:4])
        return f"[{head}{', ...' if len(v) > 4 else ''}] ({len(v)} points)"

    problems = [
        f"for box {box}, output {out_size}, bin {idx}, spatial_scale {scale:g}, sampling_ratio {sr}, "
        f"aligned={al}: you return ys={fmt(ys)}, xs={fmt(xs)}; expected ys={fmt(want[0])}, xs={fmt(want[1])}."
    ]
    swapped = all(
        close(ys, w[1]) and close(xs, w[0])
        for (ys, xs), w in zip(results, map(lambda c: bin_sample_points(*c), _POINT_CASES))
    )
    if swapped:
        problems.append("you return (xs, ys); return (ys, xs): rows (y) first, like feature[..., y, x].")
    else:
        for variant, hint in _POINT_HINTS:
            if agree(**variant):
                problems.append(hint)
                break
    return report(name, problems, len(_POINT_CASES), "")


# ----------------------------------------------------------------------------------------------
# numeric answers to the chapter's questions
# ----------------------------------------------------------------------------------------------


def answers() -> dict[str, Any]:
    """The right values, from ``bin_sample_points`` (which the exercise checker holds to torchvision's)."""
    _, xs = bin_sample_points((0.0, 0.0, 3.0, 3.0), 7, (0, 0))  # a RoI 3 cells wide, 7 bins, adaptive
    legacy = bin_sample_points((0.0, 0.0, 64.0, 64.0), 2, (0, 0), 1 / 32, 1, aligned=False)[1][0]
    exact = bin_sample_points((0.0, 0.0, 64.0, 64.0), 2, (0, 0), 1 / 32, 1, aligned=True)[1][0]
    return {"samples_per_bin": len(xs), "aligned_shift": (legacy - exact) * 32}


def check_answer_samples_per_bin(answer: Any) -> bool:
    """Question 2: samples per bin along x for a RoI 3 cells wide pooled to 7 bins, sampling_ratio=-1."""
    return check_answer(
        "question 2 (samples per bin)",
        answer,
        answers()["samples_per_bin"],
        form="a whole number of samples",
        mistakes=((2, "ceil(3 / 7) = ceil(0.43) = 1, not 2."), (0, "ceil(3 / 7) is 1, never 0.")),
        why="ceil(3 / 7) = 1. At 30 cells wide a bin spans 30/7 = 4.3 cells, and one sample would skip most "
        "of them (adaptive sampling takes 5).",
    )


def check_answer_aligned_shift(answer: Any) -> bool:
    """Question 4: by how many image pixels aligned=False shifts every sample at stride 32 (its size)."""
    return check_answer(
        "question 4 (aligned=False shift at stride 32)",
        answer,
        answers()["aligned_shift"],
        atol=1e-6,
        form="a number of image pixels",
        mistakes=(
            (0.5, "half a *cell*: in image pixels that is half the stride."),
            (32, "a whole cell would be 32 pixels; the shift is half of one."),
            (-16, "16 pixels, but toward the bottom right: give the size, a positive number."),
        ),
        why="Half a cell = 16 image pixels, toward the bottom right. It is the same for every RoI, so the "
        "network learns it away.",
    )

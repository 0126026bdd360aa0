"""Drawing and measuring helpers for the RoI chapters (01: RoIPool, 02: RoIAlign).

Coordinates follow one convention everywhere: an image is drawn so that pixel ``(r, c)`` covers the
square ``[c, c + 1) x [r, r + 1)``, boxes are ``(x1, y1, x2, y2)`` in those continuous pixel
coordinates, and at stride ``s`` feature cell ``(i, j)`` summarizes the ``s x s`` block of pixels
``[j s, (j + 1) s) x [i s, (i + 1) s)``, so its center is the image point ``((j + 0.5) s, (i + 0.5) s)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle
from torch import Tensor

__all__ = [
    "bin_centers_seen",
    "cells_read",
    "draw_box",
    "draw_feature_grid",
    "draw_spans",
    "mask_iou",
    "mask_overlay",
    "position_probe",
    "sample_points_seen",
    "sampling_grid",
]

Box = Sequence[float]


def draw_feature_grid(ax: Axes, height: float, width: float, stride: float, **kw) -> None:
    """Draw the boundaries of the stride-``stride`` feature cells over a ``height x width`` image."""
    style = dict(color="white", lw=0.6, alpha=0.5) | kw
    for x in np.arange(0, width + 1e-9, stride):
        ax.axvline(x, **style)
    for y in np.arange(0, height + 1e-9, stride):
        ax.axhline(y, **style)


def draw_box(ax: Axes, box: Box, label: str | None = None, **kw) -> Rectangle:
    """Draw the outline of ``box = (x1, y1, x2, y2)``; return the patch (for legends)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    style = dict(fill=False, lw=2.0, color="yellow") | kw
    patch = Rectangle((x1, y1), x2 - x1, y2 - y1, label=label, **style)
    ax.add_patch(patch)
    return patch


def draw_spans(
    ax: Axes,
    x_spans: Sequence[tuple[float, float]],
    y_spans: Sequence[tuple[float, float]],
    label: str | None = None,
    **kw,
) -> None:
    """Draw one rectangle per bin, bin ``(i, j)`` covering ``x_spans[j] x y_spans[i]`` (spans may overlap)."""
    style = dict(fill=False, lw=1.0, color="cyan") | kw
    for i, (y0, y1) in enumerate(y_spans):
        for j, (x0, x1) in enumerate(x_spans):
            first = i == 0 and j == 0
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, label=label if first else None, **style))


def mask_overlay(ideal: Tensor | np.ndarray, got: Tensor | np.ndarray) -> np.ndarray:
    """An RGB picture of two binary masks: gray where both agree on "object", red where only ``got``
    says object (extra pixels), blue where only ``ideal`` does (missed pixels), white elsewhere."""
    a = np.asarray(ideal, dtype=bool)
    b = np.asarray(got, dtype=bool)
    rgb = np.ones(a.shape + (3,))
    rgb[a & b] = (0.55, 0.55, 0.55)
    rgb[b & ~a] = (0.85, 0.15, 0.15)
    rgb[a & ~b] = (0.15, 0.35, 0.9)
    return rgb


def mask_iou(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> float:
    """Intersection over union of two binary masks (1.0 when both are empty)."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def position_probe(height: int, width: int, stride: float, dtype: torch.dtype = torch.float64) -> Tensor:
    """A ``[1, 4, height, width]`` feature map whose channels are ``X, -X, Y, -Y``: the image
    coordinates of every feature cell's center, ``((j + 0.5) s, (i + 0.5) s)``.

    Pooling it tells where an RoI layer looked. For an averaging layer (RoIAlign, RoIWarp) the
    channels come out as ``mean X, -mean X, ...``; for a max layer (RoIPool) as ``max X, -min X, ...``.
    Either way ``(out[0] - out[1]) / 2`` is the x center of what a bin read, and the same for y.
    """
    cx = (torch.arange(width, dtype=dtype) + 0.5) * stride
    cy = (torch.arange(height, dtype=dtype) + 0.5) * stride
    x = cx[None, :].expand(height, width)
    y = cy[:, None].expand(height, width)
    return torch.stack([x, -x, y, -y])[None]


def bin_centers_seen(
    op: Callable[..., Tensor],
    boxes: Tensor,
    stride: int,
    output_size: int | tuple[int, int],
    image_size: tuple[int, int],
    **op_kwargs,
) -> tuple[Tensor, Tensor]:
    """Where each output bin of ``op`` looks, in image pixels, for each box (``[K, 4]``, image pixels).

    Runs ``op(probe, rois, output_size, 1 / stride, **op_kwargs)`` on :func:`position_probe` and
    returns ``(x, y)``, each ``[K, h, w]`` (``output_size`` is ``h = w`` or ``(h, w)``): the center of the
    region (RoIPool) or of the sampling points (RoIAlign, RoIWarp) that bin ``(i, j)`` of box ``k`` read.
    Keep boxes a stride or more away from the image border, where border clamping bends the measurement.
    """
    h, w = image_size
    probe = position_probe(-(-h // stride), -(-w // stride), stride, dtype=torch.float64)
    boxes = boxes.to(torch.float64).reshape(-1, 4)
    rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes], dim=1)
    out = op(probe, rois, output_size, 1.0 / stride, **op_kwargs)
    return (out[:, 0] - out[:, 1]) / 2, (out[:, 2] - out[:, 3]) / 2


def cells_read(
    op: Callable[..., Tensor],
    box: Box,
    stride: int,
    output_size: int | tuple[int, int],
    map_size: tuple[int, int],
    **op_kwargs,
) -> Tensor:
    """How much each feature cell counts in each output bin of ``op`` for one box (image pixels):
    ``[h, w, H, W]`` for a ``H x W`` map (``map_size``) at ``stride``.

    Runs ``op`` on a one-hot map, ``[1, H*W, H, W]`` with channel ``c`` equal to 1 at cell ``c`` only, so
    output channel ``c`` of bin ``(i, j)`` is cell ``c``'s share of that bin. For RoIAlign and RoIWarp (linear
    in the map) that is the bin's total bilinear weight on the cell (each bin's weights sum to 1 inside the
    map); for RoIPool (a max) it is 1 for every cell the bin reads and 0 elsewhere.
    """
    h, w = map_size
    eye = torch.eye(h * w, dtype=torch.float64).reshape(1, h * w, h, w)  # [1, H*W, H, W]
    roi = torch.tensor([[0.0, *(float(v) for v in box)]], dtype=torch.float64)
    out = op(eye, roi, output_size, 1.0 / stride, **op_kwargs)[0]  # [H*W, h_out, w_out]
    return out.reshape(h, w, *out.shape[-2:]).permute(2, 3, 0, 1)  # [h_out, w_out, H, W]


def sampling_grid(
    box: Box, stride: int, output_size: int, sampling_ratio: int, aligned: bool
) -> tuple[int, int]:
    """The sample grid ``(g_h, g_w)`` RoIAlign uses in every bin of this box: ``sampling_ratio`` on both axes
    when it is positive, else ``ceil(roi_size / output_size)`` per axis (the RoI in feature cells, at least
    one cell when ``aligned=False``), as in ``minimrcnn.ops.roi_align``."""
    if sampling_ratio > 0:
        return sampling_ratio, sampling_ratio
    x1, y1, x2, y2 = (float(v) / stride for v in box)
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    return max(math.ceil(roi_h / output_size), 0), max(math.ceil(roi_w / output_size), 0)


def sample_points_seen(
    op: Callable[..., Tensor],
    box: Box,
    stride: int,
    output_size: int,
    grid: tuple[int, int],
    image_size: tuple[int, int],
    aligned: bool = False,
) -> tuple[Tensor, Tensor]:
    """Where RoIAlign (``op``) samples one box: ``(x, y)``, each ``[h * g_h, w * g_w]`` in image pixels, the
    samples of bin ``(i, j)`` in rows ``i g_h ..`` and columns ``j g_w ..`` (``grid = (g_h, g_w)``, from
    :func:`sampling_grid`).

    A ``g``-point grid in each of ``h`` bins is the same set of points as one centered point in each of
    ``h g`` bins of the same box, so this asks ``op`` for ``(h g_h, w g_w)`` bins with ``sampling_ratio=1``
    and reads their centers off :func:`position_probe`. Points less than half a cell from the map's border
    are reported where the op clamps them (it reads the border cell there).
    """
    gh, gw = max(grid[0], 1), max(grid[1], 1)
    boxes = torch.tensor([[float(v) for v in box]], dtype=torch.float64)
    size = (output_size * gh, output_size * gw)
    x, y = bin_centers_seen(op, boxes, stride, size, image_size, sampling_ratio=1, aligned=aligned)
    return x[0], y[0]

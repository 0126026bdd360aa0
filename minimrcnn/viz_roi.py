"""Drawing and measuring helpers for the RoI chapters (01: RoIPool, 02: RoIAlign).

Coordinates follow one convention everywhere: an image is drawn so that pixel ``(r, c)`` covers the
square ``[c, c + 1) x [r, r + 1)``, boxes are ``(x1, y1, x2, y2)`` in those continuous pixel
coordinates, and at stride ``s`` feature cell ``(i, j)`` summarizes the ``s x s`` block of pixels
``[j s, (j + 1) s) x [i s, (i + 1) s)``, so its center is the image point ``((j + 0.5) s, (i + 0.5) s)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle
from torch import Tensor

__all__ = [
    "bin_centers_seen",
    "draw_box",
    "draw_feature_grid",
    "draw_spans",
    "mask_iou",
    "mask_overlay",
    "position_probe",
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
    output_size: int,
    image_size: tuple[int, int],
    **op_kwargs,
) -> tuple[Tensor, Tensor]:
    """Where each output bin of ``op`` looks, in image pixels, for each box (``[K, 4]``, image pixels).

    Runs ``op(probe, rois, output_size, 1 / stride, **op_kwargs)`` on :func:`position_probe` and
    returns ``(x, y)``, each ``[K, output_size, output_size]``: the center of the region (RoIPool) or
    of the sampling points (RoIAlign, RoIWarp) that bin ``(i, j)`` of box ``k`` read. Keep boxes a
    stride or more away from the image border, where border clamping bends the measurement.
    """
    h, w = image_size
    probe = position_probe(-(-h // stride), -(-w // stride), stride, dtype=torch.float64)
    boxes = boxes.to(torch.float64).reshape(-1, 4)
    rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes], dim=1)
    out = op(probe, rois, output_size, 1.0 / stride, **op_kwargs)
    return (out[:, 0] - out[:, 1]) / 2, (out[:, 2] - out[:, 3]) / 2

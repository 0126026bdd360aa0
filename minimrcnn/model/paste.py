"""Pasting masks into the image: where a detection's 28x28 mask becomes an image-sized one.

Following torchvision (and Detectron), the
mask is first padded by one pixel of zeros on every side and its box enlarged to match, so that the
bilinear resize fades to zero at the border; the enlarged box is truncated to integer pixels; the mask
is bilinearly resized to the box's (h+1, w+1) pixels and written into the image. We do it for all
masks at once: bilinear resizing is separable, so we interpolate along x with one gather and along y
with another, with exactly the index and weight rules of `F.interpolate(align_corners=False)`.

That convention grows every mask by about a pixel (the +1, and targets pooled with aligned=False), which
costs small objects dearly. With `aligned=True` (ModelConfig.aligned) the model uses pixel centres
throughout, as Detectron2 does: targets come from RoIAlign(aligned=True) and pasting puts the M x M cells
exactly on the box, so a mask's round trip returns the object's own pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _interpolate_index(out_size: Tensor, in_size: int, length: int) -> tuple[Tensor, Tensor, Tensor]:
    """F.interpolate's bilinear rule (align_corners=False) for each output length in `out_size` [N]:
    output pixel j reads input at s = (j + 0.5) * in/out - 0.5 (clamped at 0) between floor(s) and the next.
    Returns, for j = 0..length-1: low index, high index [N, length] and the weight of the high one."""
    scale = (in_size / out_size.to(torch.float32))[:, None]  # [N, 1]
    j = torch.arange(length, dtype=torch.float32, device=out_size.device)[None]  # [1, length]
    src = ((j + 0.5) * scale - 0.5).clamp(min=0)  # [N, length]
    low = src.to(torch.int64).clamp(max=in_size - 1)
    high = torch.where(low < in_size - 1, low + 1, low)
    return low, high, src - low


def _torchvision_axis(
    lo: Tensor, hi: Tensor, m: int, length: int, padding: int = 1
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """torchvision's paste along one axis, for every image pixel 0..length-1 of N boxes [lo, hi].

    The padded mask (M + 2p wide, p zeros each side) is stretched over the box enlarged by (M + 2p)/M,
    truncated to integers x0, x1, and resized to x1 - x0 + 1 pixels. Returns padded-mask indices (low,
    high), the weight of high, and whether the pixel is covered, each [N, length]."""
    mp = m + 2 * padding
    half = (hi - lo) * 0.5 * (mp / m)
    centre = (hi + lo) * 0.5
    x0, x1 = (centre - half).to(torch.int64), (centre + half).to(torch.int64)  # truncation, as torchvision
    size = (x1 - x0 + 1).clamp(min=1)  # [N]
    rel = (
        torch.arange(length, device=lo.device)[None] - x0[:, None]
    )  # [N, length] pixel inside the resized mask
    low, high, frac = _interpolate_index(size, mp, int(size.max()))  # [N, max size]
    idx = rel.clamp(0, low.shape[1] - 1)
    covered = (rel >= 0) & (rel < size[:, None])
    return low.gather(1, idx), high.gather(1, idx), frac.gather(1, idx), covered


def _aligned_axis(lo: Tensor, hi: Tensor, m: int, length: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pixel-centre paste along one axis (Detectron2's convention): the M mask cells tile [lo, hi] exactly,
    and image pixel j (centre j + 0.5) samples the mask bilinearly at that point, reading 0 beyond its edge.
    In the zero-padded mask, cell i has its centre at i + 1, so pixel j reads at
    u = (j + 0.5 - lo) / (hi - lo) * M + 0.5."""
    j = torch.arange(length, dtype=torch.float32, device=lo.device)[None] + 0.5  # [1, length] pixel centres
    u = (j - lo[:, None]) / (hi - lo).clamp(min=1e-6)[:, None] * m + 0.5  # [N, length]
    floor = u.floor()
    low = floor.to(torch.int64).clamp(0, m + 1)
    high = (low + 1).clamp(max=m + 1)
    return low, high, u - floor, (u >= 0) & (u <= m + 1)


def paste_masks_in_image(
    masks: Tensor, boxes: Tensor, image_size: tuple[int, int], padding: int = 1, aligned: bool = False
) -> Tensor:
    """masks [N, 1, M, M] probabilities, boxes [N, 4] in image pixels -> [N, 1, H, W].

    aligned=False reproduces torchvision's paste exactly (box enlarged by one mask cell, integer corners,
    resize to (x1 - x0 + 1) pixels); aligned=True uses pixel centres, so a mask round trip (target ->
    paste) returns the object's own pixels instead of growing it by about one pixel (it always pads by 1:
    the zero border is what a pixel just outside the box reads)."""
    n, m = masks.shape[0], masks.shape[-1]
    im_h, im_w = image_size
    if n == 0:
        return masks.new_zeros((0, 1, im_h, im_w))
    padding = 1 if aligned else padding
    padded = F.pad(masks[:, 0], (padding,) * 4)  # [N, M+2p, M+2p]: a border of zeros
    mp = m + 2 * padding
    if aligned:
        xl, xh, xf, x_in = _aligned_axis(boxes[:, 0], boxes[:, 2], m, im_w)  # [N, W]
        yl, yh, yf, y_in = _aligned_axis(boxes[:, 1], boxes[:, 3], m, im_h)  # [N, H]
    else:
        xl, xh, xf, x_in = _torchvision_axis(boxes[:, 0], boxes[:, 2], m, im_w, padding)
        yl, yh, yf, y_in = _torchvision_axis(boxes[:, 1], boxes[:, 3], m, im_h, padding)
    xf, yf = xf.to(masks.dtype), yf.to(masks.dtype)

    # interpolate along x for every mask row, then along y: [N, Mp, Mp] -> [N, Mp, W] -> [N, H, W]
    rows = (
        padded.gather(2, xl[:, None].expand(-1, mp, -1)) * (1 - xf[:, None])
        + padded.gather(2, xh[:, None].expand(-1, mp, -1)) * xf[:, None]
    )
    out = (
        rows.gather(1, yl[:, :, None].expand(-1, -1, im_w)) * (1 - yf[:, :, None])
        + rows.gather(1, yh[:, :, None].expand(-1, -1, im_w)) * yf[:, :, None]
    )
    return (out * (y_in[:, :, None] & x_in[:, None, :]))[:, None]  # [N, 1, H, W]

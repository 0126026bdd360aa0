"""RoIAlign (He et al., Mask R-CNN) and RoIWarp (Dai et al.): bilinear RoI feature extraction."""

from __future__ import annotations

import torch
from torch import Tensor


def _as_rois(boxes: Tensor | list[Tensor] | tuple[Tensor, ...], like: Tensor) -> Tensor:
    """`[K, 5]` (batch index, x1, y1, x2, y2) or a list of `[L_i, 4]` -> `[K, 5]` in input's dtype."""
    if isinstance(boxes, (list, tuple)):
        parts = [
            torch.cat([torch.full_like(b[:, :1], i), b], dim=1) for i, b in enumerate(boxes)
        ]
        rois = torch.cat(parts, dim=0) if parts else like.new_zeros((0, 5))
    else:
        rois = boxes
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"boxes must be [K, 5] or a list of [L, 4]; got {tuple(rois.shape)}")
    return rois.detach().to(device=like.device, dtype=like.dtype)


def _pair(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    return int(size[0]), int(size[1])


def roi_align(
    input: Tensor,
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """Placeholder (slow but exact) version; see module docstring."""
    rois = _as_rois(boxes, input)
    ph_out, pw_out = _pair(output_size)
    n, c, h, w = input.shape
    k = rois.shape[0]
    offset = 0.5 if aligned else 0.0
    x1 = rois[:, 1] * spatial_scale - offset
    y1 = rois[:, 2] * spatial_scale - offset
    x2 = rois[:, 3] * spatial_scale - offset
    y2 = rois[:, 4] * spatial_scale - offset
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    bin_h, bin_w = roi_h / ph_out, roi_w / pw_out
    if sampling_ratio > 0:
        grid_h = torch.full_like(roi_h, sampling_ratio)
        grid_w = torch.full_like(roi_w, sampling_ratio)
    else:
        grid_h, grid_w = torch.ceil(roi_h / ph_out), torch.ceil(roi_w / pw_out)
    gh_max = int(grid_h.max().item()) if k else 0
    gw_max = int(grid_w.max().item()) if k else 0
    count = (grid_h * grid_w).clamp(min=1)
    out = input.new_zeros((k, c, ph_out, pw_out))
    b = rois[:, 0].long()
    for iy in range(gh_max):
        y = y1[:, None] + torch.arange(ph_out, dtype=input.dtype)[None] * bin_h[:, None] + (
            iy + 0.5
        ) * bin_h[:, None] / grid_h[:, None]  # [K, PH]
        for ix in range(gw_max):
            x = x1[:, None] + torch.arange(pw_out, dtype=input.dtype)[None] * bin_w[:, None] + (
                ix + 0.5
            ) * bin_w[:, None] / grid_w[:, None]  # [K, PW]
            used = ((iy < grid_h) & (ix < grid_w)).to(input.dtype) / count  # [K]
            vy = ((y >= -1) & (y <= h)).to(input.dtype)
            vx = ((x >= -1) & (x <= w)).to(input.dtype)
            yc, xc = y.clamp(min=0), x.clamp(min=0)
            y0, x0 = yc.floor().long().clamp(max=h - 1), xc.floor().long().clamp(max=w - 1)
            yc = torch.where(y0 >= h - 1, y0.to(input.dtype), yc)
            xc = torch.where(x0 >= w - 1, x0.to(input.dtype), xc)
            y1i, x1i = (y0 + 1).clamp(max=h - 1), (x0 + 1).clamp(max=w - 1)
            ly, lx = yc - y0, xc - x0
            bb = b[:, None, None]

            def at(yy: Tensor, xx: Tensor, bb: Tensor = bb) -> Tensor:
                return input[bb, :, yy[:, :, None], xx[:, None, :]].permute(0, 3, 1, 2)  # [K, C, PH, PW]

            wy0, wy1 = (1 - ly) * vy, ly * vy
            wx0, wx1 = (1 - lx) * vx, lx * vx
            val = (
                at(y0, x0) * (wy0[:, :, None] * wx0[:, None, :])[:, None]
                + at(y0, x1i) * (wy0[:, :, None] * wx1[:, None, :])[:, None]
                + at(y1i, x0) * (wy1[:, :, None] * wx0[:, None, :])[:, None]
                + at(y1i, x1i) * (wy1[:, :, None] * wx1[:, None, :])[:, None]
            )
            out = out + val * used[:, None, None, None]
    del n
    return out


def roi_warp(
    input: Tensor,
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
) -> Tensor:
    """RoIWarp: round the box to the feature grid (RoIPool's first quantization), then RoIAlign."""
    rois = _as_rois(boxes, input)
    scaled = rois[:, 1:] * spatial_scale
    rounded = torch.sign(scaled) * torch.floor(scaled.abs() + 0.5)
    rois = torch.cat([rois[:, :1], rounded], dim=1)
    return roi_align(input, rois, output_size, 1.0, sampling_ratio, aligned=False)

"""RoIAlign (He et al., Mask R-CNN) and RoIWarp (Dai et al., Instance-aware Semantic Segmentation).

Both cut a fixed-size `[C, h, w]` feature tile out of a feature map for every region of interest
(RoI) by *bilinear sampling*, unlike RoIPool (`roi_pool.py`), which rounds the box to the feature grid
and takes a max over whole pixels.

The idea, for one RoI and one output bin
-----------------------------------------
The box is scaled to the feature map (`x * spatial_scale`) and divided into `h x w` equal bins, with
no rounding. Inside each bin we place a regular `gh x gw` grid of sample points at the centres of
the sub-cells, read the feature map at each point by bilinear interpolation, and average:

    bin value = 1/(gh*gw) * sum over samples (y, x) of  bilinear(F, y, x)
    bilinear(F, y, x) = sum over the 4 pixels (r, c) around (y, x) of  ay(y, r) * ax(x, c) * F[r, c]

with the 1-D "tent" weights `ay(y, floor(y)) = 1 - frac(y)`, `ay(y, floor(y) + 1) = frac(y)`.

So every output bin is a *weighted sum of 4*gh*gw feature-map pixels* -- a weighted "bag" of pixels.
Two observations make that fast:

1. The weights are separable. The samples of a bin lie on a regular grid, so its 4*gh*gw
   (pixel, weight) pairs are the outer product of a list of 2*gh (row, weight) pairs (2 neighbouring
   rows per sample row) and a list of 2*gw (column, weight) pairs. The averaging factor splits as
   1/gh * 1/gw, and torchvision's boundary rules act on each coordinate separately too:
   a sample with y < -1 or y > H reads 0 (its weights are 0); y in [-1, 0] clamps to row 0;
   y in [H-1, H] clamps to row H-1 (both neighbours are row H-1); the same for x. So we compute two
   small tables, `[K, h, gh, 2]` for rows and `[K, w, gw, 2]` for columns, and broadcast them.

2. "Gather rows of a table and take a weighted sum per bag" is exactly what
   `torch.nn.functional.embedding_bag(mode="sum", per_sample_weights=...)` computes, in one fused
   and multi-threaded kernel. Viewing the feature map channels-last as a table of N*H*W pixels with C
   channels each, one call produces all K*h*w bins, each channel vector read straight from the map,
   without materialising a `[K, C, h, w, 4 * gh * gw]` tensor of neighbours. Its backward scatters
   `weight * grad` back onto the pixels, which is exactly the gradient of RoIAlign w.r.t. its input.

Adaptive sampling (`sampling_ratio <= 0`) uses `gh = ceil(roi_h / h)` per RoI. We sample every RoI on
the largest grid and give the samples it does not use weight 0 (and bound memory by processing
the sample rows in chunks).

RoIWarp (`roi_warp`) is RoIAlign after RoIPool's first quantization: the box corners are rounded to
the feature grid first, then sampled bilinearly with no further rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# At most this many (pixel, weight) pairs are built at once; larger problems run in chunks of sample rows.
_MAX_BAG_ENTRIES = 1 << 23


def convert_boxes_to_rois(boxes: Tensor | list[Tensor] | tuple[Tensor, ...], like: Tensor) -> Tensor:
    """`[K, 5]` (batch index, x1, y1, x2, y2), or a list of per-image `[L_i, 4]` -> `[K, 5]`.

    The result is detached (boxes get no gradient) and has `like`'s dtype and device.
    """
    if isinstance(boxes, (list, tuple)):
        parts = [torch.cat([torch.full_like(b[:, :1], i), b], dim=1) for i, b in enumerate(boxes)]
        rois = torch.cat(parts, dim=0) if parts else like.new_zeros((0, 5))
        if rois.dim() != 2 or rois.shape[1] != 5:
            raise ValueError("boxes given as a list must each be [L, 4]")
    else:
        rois = boxes
        if rois.dim() != 2 or rois.shape[1] != 5:
            raise ValueError(f"boxes must be [K, 5] or a list of [L, 4]; got shape {tuple(rois.shape)}")
    return rois.detach().to(device=like.device, dtype=like.dtype)


def output_hw(output_size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """`7` -> `(7, 7)`; `(7, 5)` -> `(7, 5)`."""
    if isinstance(output_size, int):
        return output_size, output_size
    h, w = output_size
    return int(h), int(w)


def _axis_samples(
    start: Tensor, bin_size: Tensor, grid: Tensor, num_bins: int, num_samples: int, size: int
) -> tuple[Tensor, Tensor]:
    """One axis of the sampling grid: the two neighbouring pixels of every sample, and their weights.

    start, bin_size: [K] RoI start and bin size on this axis, in feature-map pixels.
    grid: [K] samples per bin on this axis (float; <= 0 means none). num_samples >= grid.max().
    size: the feature map's length on this axis (H or W).

    Returns index [K, P, G, 2] (int64, pixel index along the axis) and weight [K, P, G, 2], where
    P = num_bins, G = num_samples and the last axis is (lower, upper) neighbour. The weights include
    the 1/grid averaging factor and are 0 for unused or out-of-map samples.
    """
    p = torch.arange(num_bins, device=start.device, dtype=start.dtype)[None, :, None]  # [1, P, 1]
    g = torch.arange(num_samples, device=start.device, dtype=start.dtype)[None, None, :]  # [1, 1, G]
    start, bin_size, grid = start[:, None, None], bin_size[:, None, None], grid[:, None, None]  # [K, 1, 1]
    # sample centres (same operation order as torchvision's kernel, so the boundary tests agree exactly)
    pos = start + p * bin_size + (g + 0.5) * bin_size / grid  # [K, P, G]
    keep = (g < grid) & (pos >= -1.0) & (pos <= size)  # [K, P, G]
    pos = torch.where(keep, pos, 0.0).clamp(0, size - 1)  # [-1, 0] -> 0 and [size-1, size] -> size-1
    low = pos.floor()  # [K, P, G]
    frac = pos - low  # [K, P, G]
    low = low.long()
    high = (low + 1).clamp(max=size - 1)  # at the last pixel both neighbours are that pixel (frac is 0)
    index = torch.stack([low, high], dim=-1)  # [K, P, G, 2]
    weight = torch.stack([1.0 - frac, frac], dim=-1) / grid.clamp(min=1)[..., None]  # [K, P, G, 2]
    weight = torch.where(keep[..., None], weight, 0.0)
    return index, weight


def roi_align(
    input: Tensor,
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign: the mean of a regular grid of bilinear samples per bin, as `torchvision.ops.roi_align`.

    input: [N, C, H, W] feature map. boxes: [K, 5] (batch index, x1, y1, x2, y2) in image coordinates,
    or a list of N tensors [L_i, 4]. spatial_scale maps image to feature coordinates (1/stride).
    sampling_ratio: samples per bin along each axis; <= 0 means ceil(roi_size / output_size) per RoI.
    aligned: shift the box by -0.5 pixel so that pixel centres sit at integer + 0.5 (Detectron2's fix);
    without it, RoIs are at least 1x1 feature pixel.
    Returns [K, C, h, w]. See the module docstring for how it is computed.
    """
    rois = convert_boxes_to_rois(boxes, input)  # [K, 5]
    out_h, out_w = output_hw(output_size)
    n, c, height, width = input.shape
    k = rois.shape[0]

    offset = 0.5 if aligned else 0.0
    x1 = rois[:, 1] * spatial_scale - offset  # [K]
    y1 = rois[:, 2] * spatial_scale - offset
    roi_w = rois[:, 3] * spatial_scale - offset - x1
    roi_h = rois[:, 4] * spatial_scale - offset - y1
    if not aligned:
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    bin_h, bin_w = roi_h / out_h, roi_w / out_w  # [K]
    if sampling_ratio > 0:
        grid_h = torch.full_like(roi_h, sampling_ratio)
        grid_w = torch.full_like(roi_w, sampling_ratio)
    else:
        grid_h, grid_w = torch.ceil(roi_h / out_h), torch.ceil(roi_w / out_w)  # [K], may be 0
    gh = max(int(grid_h.max()), 1) if k else 1  # the largest grid, shared by all RoIs
    gw = max(int(grid_w.max()), 1) if k else 1

    rows, row_w = _axis_samples(y1, bin_h, grid_h, out_h, gh, height)  # [K, h, gh, 2]
    cols, col_w = _axis_samples(x1, bin_w, grid_w, out_w, gw, width)  # [K, w, gw, 2]
    cols = cols.flatten(2)[:, None, :, None, :]  # [K, 1, w, 1, 2*gw]
    col_w = col_w.flatten(2)[:, None, :, None, :]
    first_pixel = (rois[:, 0].long() * (height * width))[:, None, None, None, None]  # [K, 1, 1, 1, 1]

    table = input.permute(0, 2, 3, 1).reshape(n * height * width, c)  # [N*H*W, C]: one row per pixel
    bags = k * out_h * out_w
    rows_per_chunk = max(1, _MAX_BAG_ENTRIES // max(1, bags * 4 * gw))
    out = None
    for r0 in range(0, gh, rows_per_chunk):  # one chunk unless the sampling grid is large
        r = rows[:, :, r0 : r0 + rows_per_chunk].flatten(2)[:, :, None, :, None]  # [K, h, 1, 2*rows, 1]
        rw = row_w[:, :, r0 : r0 + rows_per_chunk].flatten(2)[:, :, None, :, None]
        pixel = first_pixel + r * width + cols  # [K, h, w, 2*rows, 2*gw]
        weight = rw * col_w  # [K, h, w, 2*rows, 2*gw]
        bag_size = pixel.shape[-2] * pixel.shape[-1]
        part = F.embedding_bag(
            pixel.reshape(bags, bag_size),
            table,
            mode="sum",
            per_sample_weights=weight.reshape(bags, bag_size),
        )  # [K*h*w, C]
        out = part if out is None else out + part
    assert out is not None
    return out.reshape(k, out_h, out_w, c).permute(0, 3, 1, 2).contiguous()  # [K, C, h, w]


def round_half_away(x: Tensor) -> Tensor:
    """C's `round()`: halves go away from zero (torch.round sends them to the even neighbour)."""
    whole = torch.trunc(x)
    return whole + torch.sign(x) * ((x - whole).abs() >= 0.5).to(x.dtype)  # x - whole is exact


def roi_warp(
    input: Tensor,
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
) -> Tensor:
    """RoIWarp: RoIPool's box rounding, then RoIAlign's bilinear sampling. Returns [K, C, h, w].

    The box corners are rounded to the feature grid, `round(x * spatial_scale)` (RoIPool's first
    quantization), and the rounded box is sampled exactly like `roi_align(..., aligned=False)`:
    no rounding of the bins, a `sampling_ratio` grid of bilinear samples averaged per bin.
    """
    rois = convert_boxes_to_rois(boxes, input)  # [K, 5]
    snapped = torch.cat([rois[:, :1], round_half_away(rois[:, 1:] * spatial_scale)], dim=1)  # feature coords
    return roi_align(input, snapped, output_size, 1.0, sampling_ratio, aligned=False)

"""RoIPool (Girshick, Fast R-CNN): max pooling over a box snapped to the feature grid.

For one RoI, with `s = spatial_scale`:

1. Quantize the box: `x1' = round(x1 * s)`, `x2' = round(x2 * s)` (C's round: halves away from zero),
   and the same for y. The box covers the whole pixels x1'..x2' inclusive, so it is
   `x2' - x1' + 1` pixels wide (at least 1).
2. Split it into `h x w` bins of (fractional) size `roi_h / h`; bin `i` covers the whole rows
   `floor(i * roi_h / h)` .. `ceil((i + 1) * roi_h / h) - 1` (a second quantization: neighbouring bins
   may share a row), offset by y1' and clipped to the map.
3. Each output is the max over its bin's pixels, per channel; a bin left empty by the clipping gives 0.
   The gradient flows to the (first, in row-major order) pixel that attained the max.

How it is computed
------------------
Bins have different sizes, so a bin is a variable-length list of pixels: a "bag". With the feature
map viewed channels-last as a table of N*H*W pixel rows of C channels,
`torch.nn.functional.embedding_bag(mode="max")` takes the per-channel max over each bag in one
kernel, gives 0 for empty bags, and routes the gradient to the first maximum -- exactly the rules
above. All that is left is to list the pixels of all bins, one after another, without a Python loop:
`repeat_interleave` gives each list entry its bin, and the entry's position within its bin gives its
row (`t // bin_w`) and column (`t % bin_w`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from minimrcnn.ops.roi_align import convert_boxes_to_rois, output_hw, round_half_away


def _bin_edges(roi_start: Tensor, roi_size: Tensor, num_bins: int, size: int) -> tuple[Tensor, Tensor]:
    """[K] integer RoI start and size on one axis -> [K, P] first and one-past-last pixel of every bin."""
    bin_size = roi_size[:, None] / num_bins  # [K, 1], fractional
    p = torch.arange(num_bins, device=roi_start.device, dtype=roi_size.dtype)  # [P]
    lo = torch.floor(p * bin_size).long() + roi_start[:, None]  # [K, P]
    hi = torch.ceil((p + 1) * bin_size).long() + roi_start[:, None]  # [K, P]
    return lo.clamp(0, size), hi.clamp(0, size)


def roi_pool(
    input: Tensor,
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
) -> Tensor:
    """RoIPool: max over quantized bins. Same as `torchvision.ops.roi_pool`.

    input: [N, C, H, W]. boxes: [K, 5] (batch index, x1, y1, x2, y2) or a list of N tensors [L_i, 4].
    Returns [K, C, h, w].
    """
    rois = convert_boxes_to_rois(boxes, input)  # [K, 5]
    out_h, out_w = output_hw(output_size)
    n, c, height, width = input.shape
    k = rois.shape[0]

    x1, y1, x2, y2 = round_half_away(rois[:, 1:] * spatial_scale).long().unbind(dim=1)  # [K] each
    roi_w = (x2 - x1 + 1).clamp(min=1).to(input.dtype)  # [K], whole pixels, end inclusive
    roi_h = (y2 - y1 + 1).clamp(min=1).to(input.dtype)
    top, bottom = _bin_edges(y1, roi_h, out_h, height)  # [K, h]
    left, right = _bin_edges(x1, roi_w, out_w, width)  # [K, w]

    # every bin's pixels, listed bin after bin: bin_rows x bin_cols of them (0 if clipped away)
    bin_rows = (bottom - top).clamp(min=0)[:, :, None].expand(k, out_h, out_w).reshape(-1)  # [B], B = K*h*w
    bin_cols = (right - left).clamp(min=0)[:, None, :].expand(k, out_h, out_w).reshape(-1)  # [B]
    bin_top = top[:, :, None].expand(k, out_h, out_w).reshape(-1)  # [B]
    bin_left = left[:, None, :].expand(k, out_h, out_w).reshape(-1)  # [B]
    bin_image = rois[:, 0].long()[:, None].expand(k, out_h * out_w).reshape(-1)  # [B]
    area = bin_rows * bin_cols  # [B]
    bag_start = torch.cumsum(area, 0) - area  # [B] where each bin's list begins
    total = int(area.sum())

    bin_of = torch.repeat_interleave(torch.arange(area.numel(), device=area.device), area, output_size=total)
    t = torch.arange(total, device=area.device) - bag_start[bin_of]  # [E] position within the bin
    row = bin_top[bin_of] + t // bin_cols[bin_of]  # [E], row-major order inside each bin
    col = bin_left[bin_of] + t % bin_cols[bin_of]  # [E]
    pixel = (bin_image[bin_of] * height + row) * width + col  # [E] row of the pixel table

    table = input.permute(0, 2, 3, 1).reshape(n * height * width, c)  # [N*H*W, C]
    out = F.embedding_bag(pixel, table, bag_start, mode="max")  # [K*h*w, C], empty bags -> 0
    return out.reshape(k, out_h, out_w, c).permute(0, 3, 1, 2).contiguous()  # [K, C, h, w]

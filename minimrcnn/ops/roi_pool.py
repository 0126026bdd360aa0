"""RoIPool (Girshick, Fast R-CNN): quantized max pooling over RoI bins."""

from __future__ import annotations

import torch
from torch import Tensor

from minimrcnn.ops.roi_align import _as_rois, _pair


def roi_pool(
    input: Tensor,
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
) -> Tensor:
    """Placeholder version (exact semantics of torchvision.ops.roi_pool)."""
    rois = _as_rois(boxes, input)
    ph_out, pw_out = _pair(output_size)
    _, c, h, w = input.shape
    k = rois.shape[0]
    scaled = rois[:, 1:] * spatial_scale
    start_end = (torch.sign(scaled) * torch.floor(scaled.abs() + 0.5)).long()  # [K, 4]
    x1, y1, x2, y2 = start_end.unbind(1)
    roi_w = (x2 - x1 + 1).clamp(min=1).to(input.dtype)
    roi_h = (y2 - y1 + 1).clamp(min=1).to(input.dtype)
    bin_h, bin_w = roi_h / ph_out, roi_w / pw_out
    p_h = torch.arange(ph_out, dtype=input.dtype)
    p_w = torch.arange(pw_out, dtype=input.dtype)
    hs = (torch.floor(p_h[None] * bin_h[:, None]).long() + y1[:, None]).clamp(0, h)  # [K, PH]
    he = (torch.ceil((p_h[None] + 1) * bin_h[:, None]).long() + y1[:, None]).clamp(0, h)
    ws = (torch.floor(p_w[None] * bin_w[:, None]).long() + x1[:, None]).clamp(0, w)  # [K, PW]
    we = (torch.ceil((p_w[None] + 1) * bin_w[:, None]).long() + x1[:, None]).clamp(0, w)
    max_h = int((he - hs).max().clamp(min=0).item()) if k else 0
    max_w = int((we - ws).max().clamp(min=0).item()) if k else 0
    flat = input.permute(0, 2, 3, 1).reshape(-1, c)  # [N*H*W, C]
    b = rois[:, 0].long()
    best = input.new_full((k, ph_out, pw_out, c), float("-inf"))
    best_idx = torch.full((k, ph_out, pw_out, c), -1, dtype=torch.long)
    with torch.no_grad():
        for i in range(max_h):
            yy = hs + i  # [K, PH]
            for j in range(max_w):
                xx = ws + j  # [K, PW]
                inside = (yy < he)[:, :, None] & (xx < we)[:, None, :]  # [K, PH, PW]
                idx = b[:, None, None] * h * w + yy.clamp(max=h - 1)[:, :, None] * w
                idx = idx + xx.clamp(max=w - 1)[:, None, :]  # [K, PH, PW]
                val = flat[idx]  # [K, PH, PW, C]
                better = inside[..., None] & (val > best)
                best = torch.where(better, val, best)
                best_idx = torch.where(better, idx[..., None].expand_as(best_idx), best_idx)
    found = best_idx >= 0
    cidx = torch.arange(c)
    out = flat[best_idx.clamp(min=0), cidx]  # [K, PH, PW, C]
    out = torch.where(found, out, out.new_zeros(()))
    return out.permute(0, 3, 1, 2).contiguous()

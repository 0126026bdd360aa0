"""Pooling a fixed-size feature for every RoI, from the pyramid level that suits its size.

`pooler` picks the operator of the paper's ablation (RoIPool, RoIWarp, RoIAlign); `roi_kernel` picks
who computes it: torchvision's compiled kernel (fast; the default for training) or minimrcnn's own
PyTorch version (the readable reference that chapters 01-02 derive). RoIWarp has no compiled kernel of
its own: it is RoIAlign on grid-rounded boxes, and minimrcnn.ops.roi_warp says so in code.
"""

from __future__ import annotations

from functools import partial

import torch
import torchvision
from torch import Tensor, nn

from minimrcnn import ops
from minimrcnn.model.fpn import RoILevelMapper, level_scales
from minimrcnn.ops.roi_align import convert_boxes_to_rois


def pooling_op(pooler: str, kernel: str, sampling_ratio: int, aligned: bool):
    """The function f(feature [B,C,H,W], rois [K,5], output_size, spatial_scale) -> [K, C, h, w]."""
    if pooler == "roipool":
        return torchvision.ops.roi_pool if kernel == "torchvision" else ops.roi_pool
    if pooler == "roiwarp":
        return partial(ops.roi_warp, sampling_ratio=sampling_ratio)
    align = torchvision.ops.roi_align if kernel == "torchvision" else ops.roi_align
    return partial(align, sampling_ratio=sampling_ratio, aligned=aligned)


class MultiScaleRoIPool(nn.Module):
    def __init__(self, output_size: int, pooler: str, kernel: str, sampling_ratio: int, aligned: bool):
        super().__init__()
        self.output_size = output_size
        self.op = pooling_op(pooler, kernel, sampling_ratio, aligned)

    def forward(self, feats: list[Tensor], boxes: list[Tensor], image_sizes: list[tuple[int, int]]) -> Tensor:
        """feats: P2-P5 (or the single C4 map); boxes: per image [n_i, 4] -> [K, C, S, S]."""
        # pool in float32 even under bf16/fp16 autocast: bf16 keeps 8 bits of mantissa, so a box corner
        # near x = 1000 would move by up to 4 pixels (torchvision's kernel upcasts the same way)
        feats = [f.float() for f in feats]
        rois = convert_boxes_to_rois(boxes, feats[0])  # [K, 5]: (image index, x1, y1, x2, y2)
        scales = level_scales(feats, image_sizes)
        if len(feats) == 1:
            return self.op(feats[0], rois, self.output_size, spatial_scale=scales[0])
        k_min = round(-torch.log2(torch.tensor(scales[0])).item())
        levels = RoILevelMapper(k_min, k_min + len(feats) - 1)(rois[:, 1:])  # [K]
        out = feats[0].new_zeros((rois.shape[0], feats[0].shape[1], self.output_size, self.output_size))
        for lvl, (f, scale) in enumerate(zip(feats, scales)):  # a loop over the 4 levels, not over RoIs
            idx = torch.where(levels == lvl)[0]
            out[idx] = self.op(f, rois[idx], self.output_size, spatial_scale=scale).to(out.dtype)
        return out

"""Pooling a fixed-size feature for every RoI, from the pyramid level that suits its size.

`pooler` picks the operator of the paper's ablation (RoIPool, RoIWarp, RoIAlign); `roi_kernel` picks
who computes it: torchvision's compiled kernel (fast; the default for training) or minimrcnn's own
PyTorch version (the readable reference that chapters 01-02 derive). RoIWarp has no compiled kernel of
its own: it is RoIAlign on grid-rounded boxes, and minimrcnn.ops.roi_warp says so in code.

With FPN, each RoI is pooled from one level, chosen by its size (`RoILevelMapper`); with C4 there is
a single map.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torchvision
from torch import Tensor, nn

from minimrcnn import ops
from minimrcnn.ops.roi_align import convert_boxes_to_rois


class RoILevelMapper:
    """Which pyramid level pools a RoI: k = floor(k0 + log2(sqrt(wh) / 224)), clamped to [k_min, k_max].

    A 224x224 RoI (an ImageNet-sized object) goes to k0 = 4 (P4, stride 16); each halving of the side
    moves one level finer. This is Eqn. (1) of the FPN paper. The result is an index into the list of
    maps: 0 for P_{k_min}.
    """

    def __init__(
        self, k_min: int = 2, k_max: int = 5, canonical_size: float = 224.0, canonical_level: int = 4
    ) -> None:
        self.k_min, self.k_max = k_min, k_max
        self.canonical_size, self.canonical_level = canonical_size, canonical_level

    @classmethod
    def for_scales(cls, scales: list[float]) -> RoILevelMapper:
        """The mapper for maps at these scales: 1/4 ... 1/32 are P2 ... P5 (k = -log2 scale)."""
        return cls(round(-math.log2(scales[0])), round(-math.log2(scales[-1])))

    def __call__(self, boxes: Tensor) -> Tensor:
        """[N, 4] -> [N] int64 level index, 0 for k_min."""
        side = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        k = torch.floor(self.canonical_level + torch.log2(side / self.canonical_size) + 1e-6)
        return (k.clamp(min=self.k_min, max=self.k_max) - self.k_min).to(torch.int64)


def level_scales(feats: list[Tensor], image_sizes: list[tuple[int, int]]) -> list[float]:
    """Each map's scale relative to the (unpadded) input, snapped to a power of two: 1/4, 1/8, ..."""
    max_h = max(s[0] for s in image_sizes)
    return [2.0 ** round(math.log2(f.shape[-2] / max_h)) for f in feats]


def pooling_op(pooler: str, kernel: str, sampling_ratio: int, aligned: bool) -> Callable[..., Tensor]:
    """The function f(feature [B,C,H,W], rois [K,5], output_size, spatial_scale) -> [K, C, h, w]."""
    if pooler == "roipool":
        return torchvision.ops.roi_pool if kernel == "torchvision" else ops.roi_pool
    if pooler == "roiwarp":
        return partial(ops.roi_warp, sampling_ratio=sampling_ratio)
    align = torchvision.ops.roi_align if kernel == "torchvision" else ops.roi_align
    return partial(align, sampling_ratio=sampling_ratio, aligned=aligned)


class MultiScaleRoIPool(nn.Module):
    def __init__(
        self, output_size: int, pooler: str, kernel: str, sampling_ratio: int, aligned: bool
    ) -> None:
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
        levels = RoILevelMapper.for_scales(scales)(rois[:, 1:])  # [K]
        out = feats[0].new_zeros((rois.shape[0], feats[0].shape[1], self.output_size, self.output_size))
        for lvl, (f, scale) in enumerate(zip(feats, scales)):  # a loop over the 4 levels, not over RoIs
            idx = torch.where(levels == lvl)[0]
            if idx.numel():  # skip a level with no RoIs (on the shapes, most): no work forward or backward
                out[idx] = self.op(f, rois[idx], self.output_size, spatial_scale=scale).to(out.dtype)
        return out

"""Feature Pyramid Network (Lin et al., 2017): one map per stride, every map semantically strong.

Top-down pathway: start from the coarsest stage (C5), upsample by 2 (nearest), add the lateral 1x1
projection of the next finer stage, repeat. A 3x3 conv on each sum removes upsampling aliasing. P6 is a
stride-2 subsampling of P5, used only by the RPN for the largest anchors.

    C2 [B, 256, H/4,  W/4 ]  ->  P2 [B, 256, H/4,  W/4 ]
    C3 [B, 512, H/8,  W/8 ]  ->  P3 [B, 256, H/8,  W/8 ]
    C4 [B,1024, H/16, W/16]  ->  P4 [B, 256, H/16, W/16]
    C5 [B,2048, H/32, W/32]  ->  P5 [B, 256, H/32, W/32]  ->  P6 [B, 256, H/64, W/64]
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FPN(nn.Module):
    def __init__(self, in_channels: list[int], out_channels: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.output = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        """[C2, C3, C4, C5] -> [P2, P3, P4, P5, P6]"""
        top_down = self.lateral[-1](feats[-1])
        outs = [self.output[-1](top_down)]
        for i in range(len(feats) - 2, -1, -1):
            lateral = self.lateral[i](feats[i])
            top_down = lateral + F.interpolate(top_down, size=lateral.shape[-2:], mode="nearest")
            outs.insert(0, self.output[i](top_down))
        outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))  # P6
        return outs


class RoILevelMapper:
    """Which pyramid level pools a RoI: k = floor(k0 + log2(sqrt(wh) / 224)), clamped to [k_min, k_max].

    A 224x224 RoI (an ImageNet-sized object) goes to k0 = 4 (P4, stride 16); each halving of the side
    moves one level finer. This is Eqn. (1) of the FPN paper.
    """

    def __init__(
        self, k_min: int = 2, k_max: int = 5, canonical_size: float = 224.0, canonical_level: int = 4
    ):
        self.k_min, self.k_max = k_min, k_max
        self.canonical_size, self.canonical_level = canonical_size, canonical_level

    def __call__(self, boxes: Tensor) -> Tensor:
        """[N, 4] -> [N] int64 level index, 0 for k_min."""
        side = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        k = torch.floor(self.canonical_level + torch.log2(side / self.canonical_size) + 1e-6)
        return (k.clamp(min=self.k_min, max=self.k_max) - self.k_min).to(torch.int64)


def level_scales(feats: list[Tensor], image_sizes: list[tuple[int, int]]) -> list[float]:
    """Each map's scale relative to the (unpadded) input, snapped to a power of two: 1/4, 1/8, ..."""
    max_h = max(s[0] for s in image_sizes)
    return [2.0 ** round(math.log2(f.shape[-2] / max_h)) for f in feats]

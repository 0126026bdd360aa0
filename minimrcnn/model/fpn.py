"""Feature Pyramid Network (Lin et al., 2017): one map per stride, every map semantically strong.

Top-down pathway: start from the coarsest stage (C5), upsample by 2 (nearest), add the lateral 1x1
projection of the next finer stage, repeat. A 3x3 conv on each sum removes upsampling aliasing. P6 is a
stride-2 subsampling of P5, used only by the RPN for the largest anchors. Which level pools a RoI is
the pooler's decision (`minimrcnn.model.poolers.RoILevelMapper`, the FPN paper's Eqn. 1).

    C2 [B, 256, H/4,  W/4 ]  ->  P2 [B, 256, H/4,  W/4 ]
    C3 [B, 512, H/8,  W/8 ]  ->  P3 [B, 256, H/8,  W/8 ]
    C4 [B,1024, H/16, W/16]  ->  P4 [B, 256, H/16, W/16]
    C5 [B,2048, H/32, W/32]  ->  P5 [B, 256, H/32, W/32]  ->  P6 [B, 256, H/64, W/64]

Given only C2..C4 (`ModelConfig.fpn_stages=3`, for small images where C5 would be a few cells), the same code
makes P2..P4 and a P5 that is P4 subsampled: one level fewer, and no conv5 to compute.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class FPN(nn.Module):
    def __init__(self, in_channels: list[int], out_channels: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.output = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        """[C2, C3, C4, C5] -> [P2, P3, P4, P5, P6]; [C2, C3, C4] -> [P2, P3, P4, P5]"""
        top_down = self.lateral[-1](feats[-1])
        outs = [self.output[-1](top_down)]
        for i in range(len(feats) - 2, -1, -1):
            lateral = self.lateral[i](feats[i])
            top_down = lateral + F.interpolate(top_down, size=lateral.shape[-2:], mode="nearest")
            outs.insert(0, self.output[i](top_down))
        outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))  # P6 (P5 from three stages)
        return outs

"""Anchors: a fixed set of reference boxes tiled over every position of every feature map.

At each position of a map with stride s we place one box per aspect ratio r (h/w = r) of area size^2,
centred on the position's top-left image pixel (s * j, s * i). FPN gives each level one size
(32 on P2 ... 512 on P6) and 3 ratios, so 3 anchors per position; C4 puts all 15 on one map.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def cell_anchors(
    sizes: tuple[int, ...],
    ratios: tuple[float, ...],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Anchors centred at (0, 0): [len(ratios) * len(sizes), 4], ratios outer, sizes inner, rounded."""
    scales = torch.as_tensor(sizes, dtype=dtype, device=device)
    r = torch.as_tensor(ratios, dtype=dtype, device=device)
    h_ratios = torch.sqrt(r)
    w_ratios = 1 / h_ratios
    ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
    hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
    return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()


class AnchorGenerator(nn.Module):
    def __init__(self, sizes: tuple[tuple[int, ...], ...], ratios: tuple[float, ...]) -> None:
        """sizes: one tuple of sizes per feature map."""
        super().__init__()
        self.sizes = sizes
        self.ratios = ratios

    def num_anchors_per_location(self) -> int:
        return len(self.sizes[0]) * len(self.ratios)

    def grid_anchors(self, feats: list[Tensor], image_shape: tuple[int, int]) -> list[Tensor]:
        """One [H*W*A, 4] tensor per map, position-major (row, column, anchor)."""
        out = []
        for f, sizes in zip(feats, self.sizes):
            h, w = f.shape[-2:]
            stride_y, stride_x = image_shape[0] // h, image_shape[1] // w
            base = cell_anchors(sizes, self.ratios, dtype=f.dtype, device=f.device)  # [A, 4]
            ys = torch.arange(h, dtype=torch.int32, device=f.device) * stride_y
            xs = torch.arange(w, dtype=torch.int32, device=f.device) * stride_x
            yy, xx = torch.meshgrid(ys, xs, indexing="ij")  # [H, W]
            shifts = torch.stack((xx, yy, xx, yy), dim=-1).reshape(-1, 1, 4)  # [H*W, 1, 4]
            out.append((shifts + base[None]).reshape(-1, 4))  # [H*W*A, 4]
        return out

    def forward(self, feats: list[Tensor], batch_shape: tuple[int, int], num_images: int) -> list[Tensor]:
        """Anchors for each image of a padded batch: [sum_l H_l*W_l*A, 4] (the same for every image)."""
        anchors = torch.cat(self.grid_anchors(feats, batch_shape))
        return [anchors] * num_images

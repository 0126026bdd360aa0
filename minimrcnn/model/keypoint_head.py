"""The keypoint branch (the paper's Section 5): a mask head whose "masks" are one-hot joint locations.

Head (torchvision's KeypointRCNNHeads + KeypointRCNNPredictor, so its weights load unchanged):

    [N, C, 14, 14] -> 8 x (conv 3x3, dim, ReLU) -> deconv 4x4 stride 2 -> [N, K, 28, 28]
                   -> bilinear x2 -> [N, K, 56, 56] logits, one channel per keypoint

Target: each labelled keypoint (COCO v > 0) that falls inside its RoI becomes ONE index into the m x m
grid of that RoI; keypoints with v = 0 or outside the box are ignored. Loss: cross-entropy over the m^2
positions of each keypoint's channel (a softmax per keypoint: exactly one position is right).
Inference: each channel is resized to its box's size in pixels, the argmax is the keypoint and the
logit there its score (torchvision's `heatmaps_to_keypoints`, here for all RoIs at once).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from minimrcnn.model.layers import conv_tower


class KeypointHead(nn.Module):
    """RoI features [N, C, S, S] -> keypoint logits [N, K, 4S, 4S] (S = 14 gives the paper's 56 x 56)."""

    def __init__(self, in_channels: int, num_keypoints: int, dim: int = 512, num_convs: int = 8) -> None:
        super().__init__()
        self.convs = conv_tower(in_channels, dim, num_convs)  # [N, dim, S, S]
        # kernel 4, stride 2, padding 1: exactly doubles the side (torchvision's `kps_score_lowres`)
        self.deconv = nn.ConvTranspose2d(
            dim if num_convs else in_channels, num_keypoints, 4, stride=2, padding=1
        )
        nn.init.kaiming_normal_(self.deconv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.deconv.bias)
        self.num_keypoints = num_keypoints

    def forward(self, x: Tensor) -> Tensor:
        x = self.deconv(self.convs(x))  # [N, K, 2S, 2S]
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)  # [N, K, 4S, 4S]


def keypoint_targets(keypoints: Tensor, rois: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Keypoints [N, K, 3] (x, y, v) of each RoI's matched object, rois [N, 4] -> index, valid: [N, K].

    index = row * size + col of the grid cell that holds the keypoint, cell = floor((x - x1) * size / w);
    a keypoint exactly on the right (bottom) edge goes to the last column (row), as in torchvision.
    valid: labelled (v > 0) and inside the grid. Where not valid, index is 0 (and must be ignored).
    """
    x1, y1 = rois[:, 0:1], rois[:, 1:2]  # [N, 1]
    scale_x = size / (rois[:, 2:3] - x1)
    scale_y = size / (rois[:, 3:4] - y1)
    x, y = keypoints[..., 0], keypoints[..., 1]  # [N, K]
    col = ((x - x1) * scale_x).floor().long()
    row = ((y - y1) * scale_y).floor().long()
    col[x == rois[:, 2:3]] = size - 1
    row[y == rois[:, 3:4]] = size - 1
    valid = (col >= 0) & (row >= 0) & (col < size) & (row < size) & (keypoints[..., 2] > 0)
    index = (row * size + col) * valid
    return index, valid


def keypoint_loss(logits: Tensor, index: Tensor, valid: Tensor) -> Tensor:
    """logits [N, K, M, M], index/valid [N, K] -> mean cross-entropy over the M^2 positions (valid only)."""
    if not bool(valid.any()):
        return logits.sum() * 0
    flat = logits.flatten(2)  # [N, K, M*M]
    return F.cross_entropy(flat[valid], index[valid])  # [V, M*M] vs [V]


# ---------------------------------------------------------------------------------------------- inference
def bicubic_matrix(out_sizes: Tensor, in_size: int, max_out: int) -> Tensor:
    """The linear map of F.interpolate(mode="bicubic", align_corners=False) from `in_size` samples to each
    of the lengths in `out_sizes` [N], zero-padded to max_out rows: [N, max_out, in_size].

    Output sample j reads the source at t = (j + 0.5) * in/out - 0.5 and mixes the 4 samples around it
    with Keys' cubic weights (a = -0.75); indices beyond the edges are clamped (PyTorch's rule).
    """
    n = out_sizes.shape[0]
    dev = out_sizes.device
    j = torch.arange(max_out, device=dev, dtype=torch.float32)  # [J]
    scale = in_size / out_sizes.float()  # [N]
    src = (j[None] + 0.5) * scale[:, None] - 0.5  # [N, J]
    base = src.floor()
    t = src - base  # [N, J] in [0, 1)
    a = -0.75

    def near(d: Tensor) -> Tensor:  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d: Tensor) -> Tensor:  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    weights = torch.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], dim=-1)  # [N, J, 4]
    taps = (base.long()[..., None] + torch.arange(-1, 3, device=dev)).clamp(0, in_size - 1)  # [N, J, 4]
    weights = weights * (j[None] < out_sizes[:, None]).float()[..., None]  # rows past each length: 0
    m = torch.zeros(n, max_out, in_size, device=dev)
    return m.scatter_add_(2, taps, weights)  # [N, J, in]


def heatmaps_to_keypoints(maps: Tensor, rois: Tensor, max_elements: int = 1 << 25) -> tuple[Tensor, Tensor]:
    """Logits [N, K, M, M] and their boxes [N, 4] -> keypoints [N, K, 3] (x, y, 1) and scores [N, K].

    Each RoI's maps are resized (bicubic) to ceil(h) x ceil(w) pixels; the argmax cell's centre, scaled
    back by w / ceil(w), is the keypoint, and the resized logit there is its score. Equal to
    torchvision.models.detection.roi_heads.heatmaps_to_keypoints, which loops over the RoIs; here the
    resize is two batched matrix products, done in chunks of RoIs to bound memory.
    """
    n, k, m = maps.shape[0], maps.shape[1], maps.shape[-1]
    widths = (rois[:, 2] - rois[:, 0]).clamp(min=1)
    heights = (rois[:, 3] - rois[:, 1]).clamp(min=1)
    w_ceil, h_ceil = widths.ceil().long(), heights.ceil().long()  # [N]
    xy = maps.new_zeros((n, k, 3))
    scores = maps.new_zeros((n, k))
    if n == 0:
        return xy, scores
    max_w, max_h = int(w_ceil.max()), int(h_ceil.max())  # one sync per batch of detections, not per RoI
    chunk = max(1, max_elements // (k * max_w * max_h))
    for s in range(0, n, chunk):  # a loop over chunks of RoIs (one chunk unless the boxes are huge)
        sl = slice(s, s + chunk)
        ry = bicubic_matrix(h_ceil[sl], m, max_h)  # [n, H, M]
        rx = bicubic_matrix(w_ceil[sl], m, max_w)  # [n, W, M]
        big = ry[:, None] @ maps[sl].float() @ rx[:, None].transpose(-1, -2)  # [n, K, H, W]
        inside = (torch.arange(max_h, device=maps.device)[:, None] < h_ceil[sl, None, None]) & (
            torch.arange(max_w, device=maps.device)[None] < w_ceil[sl, None, None]
        )  # [n, H, W]
        big = big.masked_fill(~inside[:, None], float("-inf"))
        score, pos = big.flatten(2).max(dim=2)  # [n, K]
        col, row = pos % max_w, pos // max_w
        xy[sl, :, 0] = (col.float() + 0.5) * (widths[sl] / w_ceil[sl])[:, None] + rois[sl, 0:1]
        xy[sl, :, 1] = (row.float() + 0.5) * (heights[sl] / h_ceil[sl])[:, None] + rois[sl, 1:2]
        scores[sl] = score
    xy[..., 2] = 1
    return xy, scores

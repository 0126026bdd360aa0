"""Boxes: area, IoU, the (dx, dy, dw, dh) box coder, clipping, small-box removal, NMS.

All boxes are `[N, 4]` tensors in (x1, y1, x2, y2) pixel coordinates, x2 > x1 for a non-empty box.
"""

from __future__ import annotations

import math

import torch
import torchvision
from torch import Tensor


def box_area(boxes: Tensor) -> Tensor:
    """[N, 4] -> [N]"""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Intersection over union of every pair: [N, 4], [M, 4] -> [N, M]."""
    area1, area2 = box_area(boxes1), box_area(boxes2)
    top_left = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])  # [N, M, 2]
    bottom_right = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])  # [N, M, 2]
    wh = (bottom_right - top_left).clamp(min=0)  # [N, M, 2]
    inter = wh[..., 0] * wh[..., 1]  # [N, M]
    return inter / (area1[:, None] + area2[None, :] - inter)


def clip_boxes_to_image(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Clamp [..., 4] boxes into an image of size (height, width)."""
    h, w = size
    x = boxes[..., 0::2].clamp(min=0, max=w)
    y = boxes[..., 1::2].clamp(min=0, max=h)
    return torch.stack((x, y), dim=-1).reshape(boxes.shape)


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """Indices of the boxes whose width and height are both >= min_size."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return torch.where((w >= min_size) & (h >= min_size))[0]


# NMS is a sequential greedy algorithm; we use torchvision's C++/CUDA kernel for it (chapter 04 derives it).
def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices of the kept boxes, by decreasing score."""
    return torchvision.ops.nms(boxes, scores, iou_threshold)


def batched_nms(boxes: Tensor, scores: Tensor, groups: Tensor, iou_threshold: float) -> Tensor:
    """NMS independently within each group (class or FPN level): boxes of different groups never suppress."""
    return torchvision.ops.batched_nms(boxes, scores, groups, iou_threshold)


class BoxCoder:
    """Encodes a box relative to a reference box as (dx, dy, dw, dh), the R-CNN parameterization.

    dx = wx * (gx - px) / pw,  dw = ww * log(gw / pw)  (same for y, h). The weights scale the targets to
    roughly unit variance: (1, 1, 1, 1) for the RPN, (10, 10, 5, 5) for the box head.
    """

    def __init__(
        self, weights: tuple[float, float, float, float], clip: float = math.log(1000.0 / 16)
    ) -> None:
        self.weights = weights
        self.clip = clip  # largest dw/dh we exponentiate: a box never grows more than 1000/16 times

    def encode(self, gt: Tensor, ref: Tensor) -> Tensor:
        """[N, 4] ground-truth boxes, [N, 4] reference boxes -> [N, 4] deltas."""
        wx, wy, ww, wh = self.weights
        pw, ph = ref[:, 2] - ref[:, 0], ref[:, 3] - ref[:, 1]
        px, py = ref[:, 0] + 0.5 * pw, ref[:, 1] + 0.5 * ph
        gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
        gx, gy = gt[:, 0] + 0.5 * gw, gt[:, 1] + 0.5 * gh
        return torch.stack(
            (wx * (gx - px) / pw, wy * (gy - py) / ph, ww * torch.log(gw / pw), wh * torch.log(gh / ph)),
            dim=1,
        )

    def decode(self, deltas: Tensor, ref: Tensor) -> Tensor:
        """[N, 4*C] deltas (C boxes per reference), [N, 4] reference boxes -> [N, C, 4] boxes (>= float32).

        Always in float32, also under autocast: bf16 keeps 8 significant bits, so a box centre near x = 600
        would move in steps of 4 px."""
        dtype = torch.promote_types(torch.promote_types(deltas.dtype, ref.dtype), torch.float32)
        deltas, ref = deltas.to(dtype), ref.to(dtype)
        wx, wy, ww, wh = self.weights
        pw, ph = ref[:, 2:3] - ref[:, 0:1], ref[:, 3:4] - ref[:, 1:2]  # [N, 1]
        px, py = ref[:, 0:1] + 0.5 * pw, ref[:, 1:2] + 0.5 * ph
        dx, dy = deltas[:, 0::4] / wx, deltas[:, 1::4] / wy  # [N, C]
        dw = (deltas[:, 2::4] / ww).clamp(max=self.clip)
        dh = (deltas[:, 3::4] / wh).clamp(max=self.clip)
        cx, cy = dx * pw + px, dy * ph + py
        w, h = torch.exp(dw) * pw, torch.exp(dh) * ph
        return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=2)  # [N, C, 4]

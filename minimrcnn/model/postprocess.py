"""From per-RoI predictions to per-image detections: pick classes, NMS, and paste masks into the image.

Pasting is where a 28x28 mask becomes an image-sized one. Following torchvision (and Detectron), the
mask is first padded by one pixel of zeros on every side and its box enlarged to match, so that the
bilinear resize fades to zero at the border; the enlarged box is truncated to integer pixels; the mask
is bilinearly resized to the box's (h+1, w+1) pixels and written into the image. We do it for all
masks at once: bilinear resizing is separable, so we interpolate along x with one gather and along y
with another, with exactly the index and weight rules of `F.interpolate(align_corners=False)`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from minimrcnn.ops.boxes import BoxCoder, batched_nms, clip_boxes_to_image, remove_small_boxes


def detect(
    class_logits: Tensor,
    box_deltas: Tensor,
    proposals: list[Tensor],
    image_sizes: list[tuple[int, int]],
    box_coder: BoxCoder,
    score_thresh: float,
    nms_thresh: float,
    detections_per_img: int,
) -> list[dict[str, Tensor]]:
    """Per image: every (RoI, foreground class) pair is a candidate; keep score > thresh, NMS per class."""
    num_classes = class_logits.shape[-1]
    boxes_all = box_coder.decode(box_deltas, torch.cat(proposals))  # [K, C, 4]
    scores_all = F.softmax(class_logits, dim=-1)  # [K, C]
    results = []
    counts = [p.shape[0] for p in proposals]
    for boxes, scores, size in zip(boxes_all.split(counts), scores_all.split(counts), image_sizes):
        boxes = clip_boxes_to_image(boxes, size)
        labels = torch.arange(num_classes, device=boxes.device).view(1, -1).expand_as(scores)
        # drop the background column, then flatten (RoI, class) pairs
        boxes, scores, labels = (
            boxes[:, 1:].reshape(-1, 4),
            scores[:, 1:].reshape(-1),
            labels[:, 1:].reshape(-1),
        )
        keep = torch.where(scores > score_thresh)[0]
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = remove_small_boxes(boxes, 1e-2)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = batched_nms(boxes, scores, labels, nms_thresh)[:detections_per_img]
        results.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
    return results


def _source_index(out_size: Tensor, in_size: int, length: int) -> tuple[Tensor, Tensor, Tensor]:
    """F.interpolate's bilinear rule (align_corners=False) for each output length in `out_size` [N]:
    output pixel j reads input at s = (j + 0.5) * in/out - 0.5 (clamped at 0) between floor(s) and the next.
    Returns, for j = 0..length-1: low index, high index [N, length] and the weight of the high one."""
    scale = (in_size / out_size.to(torch.float32))[:, None]  # [N, 1]
    j = torch.arange(length, dtype=torch.float32, device=out_size.device)[None]  # [1, length]
    src = ((j + 0.5) * scale - 0.5).clamp(min=0)  # [N, length]
    low = src.to(torch.int64).clamp(max=in_size - 1)
    high = torch.where(low < in_size - 1, low + 1, low)
    return low, high, src - low


def paste_masks_in_image(
    masks: Tensor, boxes: Tensor, image_size: tuple[int, int], padding: int = 1
) -> Tensor:
    """masks [N, 1, M, M] probabilities, boxes [N, 4] in image pixels -> [N, 1, H, W]."""
    n, m = masks.shape[0], masks.shape[-1]
    im_h, im_w = image_size
    if n == 0:
        return masks.new_zeros((0, 1, im_h, im_w))
    masks = F.pad(masks[:, 0], (padding,) * 4)  # [N, M+2, M+2]
    mp = m + 2 * padding
    scale = mp / m
    half_w, half_h = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale, (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    cx, cy = (boxes[:, 2] + boxes[:, 0]) * 0.5, (boxes[:, 3] + boxes[:, 1]) * 0.5
    x0, y0 = (cx - half_w).to(torch.int64), (cy - half_h).to(torch.int64)  # truncation, as torchvision
    x1, y1 = (cx + half_w).to(torch.int64), (cy + half_h).to(torch.int64)
    w, h = (x1 - x0 + 1).clamp(min=1), (y1 - y0 + 1).clamp(min=1)  # the resized mask's size [N]

    # for every image column x: the column inside the resized mask is x - x0 (valid if 0 <= x - x0 < w)
    xs = torch.arange(im_w, device=boxes.device)[None] - x0[:, None]  # [N, W]
    ys = torch.arange(im_h, device=boxes.device)[None] - y0[:, None]  # [N, H]
    x_low, x_high, x_frac = _source_index(w, mp, int(w.max()))  # [N, max_w]
    y_low, y_high, y_frac = _source_index(h, mp, int(h.max()))
    xi, yi = xs.clamp(0, x_low.shape[1] - 1), ys.clamp(0, y_low.shape[1] - 1)
    xl, xh, xf = x_low.gather(1, xi), x_high.gather(1, xi), x_frac.gather(1, xi).to(masks.dtype)  # [N, W]
    yl, yh, yf = y_low.gather(1, yi), y_high.gather(1, yi), y_frac.gather(1, yi).to(masks.dtype)  # [N, H]

    # interpolate along x for every mask row, then along y: [N, Mp, Mp] -> [N, Mp, W] -> [N, H, W]
    rows = (
        masks.gather(2, xl[:, None].expand(-1, mp, -1)) * (1 - xf[:, None])
        + masks.gather(2, xh[:, None].expand(-1, mp, -1)) * xf[:, None]
    )
    out = (
        rows.gather(1, yl[:, :, None].expand(-1, -1, im_w)) * (1 - yf[:, :, None])
        + rows.gather(1, yh[:, :, None].expand(-1, -1, im_w)) * yf[:, :, None]
    )
    inside = ((ys >= 0) & (ys < h[:, None]))[:, :, None] & ((xs >= 0) & (xs < w[:, None]))[:, None, :]
    return (out * inside)[:, None]  # [N, 1, H, W]

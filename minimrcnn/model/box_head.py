"""The box branch: RoI feature -> a vector -> class scores and per-class box deltas; its loss; its inference.

Heads: `TwoMLPHead` (the paper's FPN head, two fc layers) and `ConvFCHead` (4 convs + 1 fc). C4 has no
box head of its own: ResNet's conv5, averaged, gives the vector (`roi_heads.Res5RoIHeads`).
Loss (`box_losses`): cross-entropy over the K+1 classes on all sampled RoIs, smooth L1 on the GT class's
deltas of the positives. Inference (`box_inference`): per image, every (RoI, foreground class) pair is a
candidate box; keep those scoring above a threshold, NMS per class, keep the best `detections_per_img`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from minimrcnn.model.layers import conv_tower
from minimrcnn.ops.boxes import BoxCoder, batched_nms, clip_boxes_to_image, remove_small_boxes


class TwoMLPHead(nn.Module):
    """FPN box head: flatten [N, C, 7, 7] -> fc6 -> ReLU -> fc7 -> ReLU -> [N, 1024]."""

    def __init__(self, in_features: int, dim: int) -> None:
        super().__init__()
        self.fc6 = nn.Linear(in_features, dim)
        self.fc7 = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.fc7(F.relu(self.fc6(x.flatten(1)), inplace=True)), inplace=True)


class ConvFCHead(nn.Module):
    """FPN box head with convolutions: [N, C, 7, 7] -> 4 x (conv3x3, norm, ReLU) -> fc -> ReLU -> [N, dim].

    Detectron's "4conv1fc" head (used with GroupNorm in Wu & He's GN paper, and by torchvision's v2 Mask
    R-CNN): convolutions share their weights across the 7 x 7 positions, so they learn from fewer examples
    than an fc layer that sees each position separately.
    """

    def __init__(
        self, in_channels: int, conv_dim: int, pool_size: int, dim: int, norm: str, num_convs: int = 4
    ) -> None:
        super().__init__()
        self.convs = conv_tower(in_channels, conv_dim, num_convs, norm)  # [N, conv_dim, 7, 7]
        self.fc = nn.Linear(conv_dim * pool_size**2, dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.fc(self.convs(x).flatten(1)), inplace=True)  # [N, dim]


class BoxPredictor(nn.Module):
    """[N, D] -> class logits [N, K] and per-class box deltas [N, 4K]."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(dim, num_classes)
        self.bbox_pred = nn.Linear(dim, num_classes * 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x.flatten(1)
        return self.cls_score(x), self.bbox_pred(x)


def box_losses(
    class_logits: Tensor, box_deltas: Tensor, labels: Tensor, reg_targets: Tensor
) -> dict[str, Tensor]:
    """class_logits [R, K], box_deltas [R, 4K], labels [R] (0 background), reg_targets [R, 4] -> two losses.

    Classification: cross-entropy over all R sampled RoIs. Regression: smooth L1 (beta 1/9) on the GT
    class's deltas of the positives, summed and divided by R (not by the number of positives).
    """
    cls_loss = F.cross_entropy(class_logits, labels)
    pos = torch.where(labels > 0)[0]
    deltas = box_deltas.reshape(box_deltas.shape[0], -1, 4)[pos, labels[pos]]  # the GT class's deltas
    box_loss = F.smooth_l1_loss(deltas, reg_targets[pos], beta=1 / 9, reduction="sum") / max(
        1, labels.numel()
    )
    return {"loss_classifier": cls_loss, "loss_box_reg": box_loss}


def box_inference(
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

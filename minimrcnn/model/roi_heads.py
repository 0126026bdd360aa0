"""The second stage: for each proposal, what is it (K+1-way), where exactly (box deltas), which pixels (mask).

Training: proposals (+ the GT boxes themselves) are matched to GT at IoU 0.5, a minibatch of 512 per
image is sampled at 1:3 positive:negative, and three losses are computed: cross-entropy over classes,
smooth L1 on the GT class's box deltas (positives only), and the mask loss (positives only).
Inference: the box branch runs on all proposals, detections are selected, and the mask branch runs on
the detections only (that is what the paper does too: faster, and more accurate masks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from minimrcnn.model.keypoint_head import KeypointHead, heatmaps_to_keypoints, keypoint_loss, keypoint_targets
from minimrcnn.model.mask_head import MaskHead, conv_gn_relu, mask_loss, mask_probabilities, mask_targets
from minimrcnn.model.poolers import MultiScaleRoIPool
from minimrcnn.model.postprocess import detect
from minimrcnn.ops.boxes import BoxCoder, box_iou
from minimrcnn.ops.sampling import BACKGROUND, IGNORE, BalancedSampler, Matcher


class TwoMLPHead(nn.Module):
    """FPN box head: flatten [N, C, 7, 7] -> fc6 -> ReLU -> fc7 -> ReLU -> [N, 1024]."""

    def __init__(self, in_features: int, dim: int):
        super().__init__()
        self.fc6 = nn.Linear(in_features, dim)
        self.fc7 = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.fc7(F.relu(self.fc6(x.flatten(1)))))


class ConvFCHead(nn.Module):
    """FPN box head with convolutions: [N, C, 7, 7] -> 4 x (conv3x3, norm, ReLU) -> fc -> ReLU -> [N, dim].

    Detectron's "4conv1fc" head (used with GroupNorm in Wu & He's GN paper, and by torchvision's v2 Mask
    R-CNN): convolutions share their weights across the 7 x 7 positions, so they learn from fewer examples
    than an fc layer that sees each position separately.
    """

    def __init__(
        self, in_channels: int, conv_dim: int, pool_size: int, dim: int, norm: str, num_convs: int = 4
    ):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(num_convs):
            layers += conv_gn_relu(in_channels if i == 0 else conv_dim, conv_dim, norm)
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(conv_dim * pool_size**2, dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.fc(self.convs(x).flatten(1)))  # [N, dim]


class Res5Head(nn.Module):
    """C4 box head: ResNet's conv5 stage on [N, 1024, 14, 14] -> [N, 2048, 7, 7]; average-pooled for boxes."""

    def __init__(self, layer4: nn.Module):
        super().__init__()
        self.layer4 = layer4

    def forward(self, x: Tensor) -> Tensor:
        return self.layer4(x)


class BoxPredictor(nn.Module):
    """[N, D] -> class logits [N, K] and per-class box deltas [N, 4K]."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.cls_score = nn.Linear(dim, num_classes)
        self.bbox_pred = nn.Linear(dim, num_classes * 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x.flatten(1)
        return self.cls_score(x), self.bbox_pred(x)


class RoIHeads(nn.Module):
    def __init__(
        self,
        box_pooler: MultiScaleRoIPool,
        box_head: nn.Module,
        box_predictor: BoxPredictor,
        mask_pooler: MultiScaleRoIPool | None,
        mask_head: MaskHead | None,
        mask_loss_kind: str = "sigmoid",
        fg_iou_thresh: float = 0.5,
        bg_iou_thresh: float = 0.5,
        batch_size_per_image: int = 512,
        positive_fraction: float = 0.25,
        bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0),
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        c4: bool = False,
        aligned: bool = False,
        keypoint_pooler: MultiScaleRoIPool | None = None,
        keypoint_head: KeypointHead | None = None,
    ):
        super().__init__()
        self.box_pooler, self.box_head, self.box_predictor = box_pooler, box_head, box_predictor
        self.mask_pooler, self.mask_head = mask_pooler, mask_head
        self.mask_loss_kind = mask_loss_kind
        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=False)
        self.sampler = BalancedSampler(batch_size_per_image, positive_fraction)
        self.box_coder = BoxCoder(bbox_reg_weights)
        self.score_thresh, self.nms_thresh, self.detections_per_img = (
            score_thresh,
            nms_thresh,
            detections_per_img,
        )
        self.c4 = c4  # C4: the mask branch reuses the box head's conv5 (Res5Head) before its deconv
        self.aligned = aligned  # pixel-centre mask targets (and pasting, in the model's postprocess)
        self.keypoint_pooler, self.keypoint_head = keypoint_pooler, keypoint_head

    def sample_proposals(self, proposals: list[Tensor], targets: list[dict[str, Tensor]]):
        """Add the GT boxes to the proposals, label them (class, 0 background, -1 ignore), sample."""
        labels, matched = [], []
        proposals = [torch.cat([p, t["boxes"].to(p.dtype)]) for p, t in zip(proposals, targets)]
        for p, t in zip(proposals, targets):
            if t["boxes"].numel() == 0:
                labels.append(torch.zeros(p.shape[0], dtype=torch.int64, device=p.device))
                matched.append(torch.zeros(p.shape[0], dtype=torch.int64, device=p.device))
                continue
            m = self.matcher(box_iou(t["boxes"], p))  # [P]
            lab = t["labels"][m.clamp(min=0)].clone()
            lab[m == BACKGROUND] = 0
            lab[m == IGNORE] = -1
            labels.append(lab)
            matched.append(m.clamp(min=0))
        pos, neg = self.sampler(labels)
        keep = [torch.where(p | n)[0] for p, n in zip(pos, neg)]
        proposals = [p[k] for p, k in zip(proposals, keep)]
        labels = [lab[k] for lab, k in zip(labels, keep)]
        matched = [m[k] for m, k in zip(matched, keep)]
        reg_targets = []
        for p, m, t in zip(proposals, matched, targets):
            gt = t["boxes"][m] if t["boxes"].numel() else torch.zeros_like(p)
            reg_targets.append(self.box_coder.encode(gt.to(p.dtype), p))
        return proposals, labels, matched, reg_targets

    def box_losses(
        self, class_logits: Tensor, box_deltas: Tensor, labels: Tensor, reg_targets: Tensor
    ) -> dict:
        cls_loss = F.cross_entropy(class_logits, labels)
        pos = torch.where(labels > 0)[0]
        deltas = box_deltas.reshape(box_deltas.shape[0], -1, 4)[pos, labels[pos]]  # the GT class's deltas
        box_loss = F.smooth_l1_loss(deltas, reg_targets[pos], beta=1 / 9, reduction="sum") / max(
            1, labels.numel()
        )
        return {"loss_classifier": cls_loss, "loss_box_reg": box_loss}

    def mask_logits(
        self, feats: list[Tensor], boxes: list[Tensor], image_sizes: list[tuple[int, int]]
    ) -> Tensor:
        x = self.mask_pooler(feats, boxes, image_sizes)  # [N, C, S, S]
        if self.c4:
            x = self.box_head(x)  # conv5, shared with the box branch: [N, 2048, S/2, S/2]
        return self.mask_head(x)  # [N, C_mask, M, M]

    def forward(
        self,
        feats: list[Tensor],
        proposals: list[Tensor],
        image_sizes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
    ):
        if self.training:
            proposals, labels, matched, reg_targets = self.sample_proposals(proposals, targets)
        x = self.box_head(self.box_pooler(feats, proposals, image_sizes))
        if self.c4:
            x = x.mean(dim=(2, 3))  # global average pool of conv5: [N, 2048]
        class_logits, box_deltas = self.box_predictor(x)

        if self.training:
            losses = self.box_losses(class_logits, box_deltas, torch.cat(labels), torch.cat(reg_targets))
            if self.mask_head is not None:
                pos = [torch.where(lab > 0)[0] for lab in labels]
                pos_boxes = [p[i] for p, i in zip(proposals, pos)]
                logits = self.mask_logits(feats, pos_boxes, image_sizes)
                gt_targets = [
                    mask_targets(t["masks"], b, m[i], logits.shape[-1], self.aligned)
                    for t, b, m, i in zip(targets, pos_boxes, matched, pos)
                ]  # a loop over images
                pos_labels = torch.cat([lab[i] for lab, i in zip(labels, pos)])
                losses["loss_mask"] = mask_loss(
                    logits, pos_labels, torch.cat(gt_targets), self.mask_loss_kind
                )
            if self.keypoint_head is not None:  # the same positive RoIs, a one-hot target per joint
                pos = [torch.where(lab > 0)[0] for lab in labels]
                pos_boxes = [p[i] for p, i in zip(proposals, pos)]
                logits = self.keypoint_head(
                    self.keypoint_pooler(feats, pos_boxes, image_sizes)
                )  # [P, K, M, M]
                index, valid = zip(*(
                    keypoint_targets(t["keypoints"][m[i]], b, logits.shape[-1])
                    for t, b, m, i in zip(targets, pos_boxes, matched, pos)
                ))  # fmt: skip
                losses["loss_keypoint"] = keypoint_loss(logits, torch.cat(index), torch.cat(valid))
            return [], losses

        detections = detect(
            class_logits,
            box_deltas,
            proposals,
            image_sizes,
            self.box_coder,
            self.score_thresh,
            self.nms_thresh,
            self.detections_per_img,
        )
        if self.mask_head is not None:
            boxes = [d["boxes"] for d in detections]
            probs = mask_probabilities(
                self.mask_logits(feats, boxes, image_sizes),
                torch.cat([d["labels"] for d in detections]),
                self.mask_loss_kind,
            )
            for d, p in zip(detections, probs.split([b.shape[0] for b in boxes])):
                d["masks"] = p  # [n, 1, M, M]
        if self.keypoint_head is not None:
            boxes = [d["boxes"] for d in detections]
            logits = self.keypoint_head(self.keypoint_pooler(feats, boxes, image_sizes))  # [N, K, M, M]
            xy, scores = heatmaps_to_keypoints(logits, torch.cat(boxes))
            counts = [b.shape[0] for b in boxes]
            for d, k, s in zip(detections, xy.split(counts), scores.split(counts)):
                d["keypoints"], d["keypoints_scores"] = k, s  # [n, K, 3], [n, K]
        return detections, {}

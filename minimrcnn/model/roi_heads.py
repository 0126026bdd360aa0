"""The second stage: for each proposal, what is it (K+1-way), where exactly (box deltas), which pixels (mask).

Training: proposals (+ the GT boxes themselves) are matched to GT at IoU 0.5, a minibatch of 512 per
image is sampled with at most a quarter positive (the paper's 1:3; `box_positive_fraction`), and three
losses are computed: cross-entropy over classes, smooth L1 on the GT class's box deltas (positives only),
and the mask loss (positives only).
Inference: the box branch runs on all proposals, detections are selected, and the mask branch runs on
the detections only (that is what the paper does too: faster, and more accurate masks).

`RoIHeads` holds what every variant shares: matching and sampling, the box predictor, the losses and the
inference of each branch. Its two subclasses differ only in how a RoI becomes a feature:

- `FPNRoIHeads`: each branch has its own pooler (7 x 7 boxes, 14 x 14 masks, from the RoI's FPN level)
  and its own head (`box_head`, `mask_head`).
- `Res5RoIHeads` (C4, the paper's Table 2 backbone): one 14 x 14 pooler on the stride-16 conv4 map and
  ResNet's conv5 stage (`res5`), owned here, shared by both branches: averaged for boxes, and fed to a
  deconv-only mask head.

A further branch (keypoints, say) follows the mask branch's pattern: a features method, a head, and the
loss and inference functions of its own module, trained on the same `Foreground` RoIs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from minimrcnn.model.box_head import BoxPredictor, box_inference, box_losses
from minimrcnn.model.keypoint_head import heatmaps_to_keypoints, keypoint_loss, keypoint_targets
from minimrcnn.model.mask_head import mask_loss, mask_probabilities, mask_targets
from minimrcnn.model.poolers import MultiScaleRoIPool
from minimrcnn.ops.boxes import BoxCoder, box_iou
from minimrcnn.ops.sampling import BACKGROUND, IGNORE, BalancedSampler, Matcher


class Foreground(NamedTuple):
    """The positive sampled RoIs of each image: boxes [P_i, 4], GT class [P_i], matched GT index [P_i]."""

    boxes: list[Tensor]
    labels: list[Tensor]
    matched: list[Tensor]

    @staticmethod
    def of(proposals: list[Tensor], labels: list[Tensor], matched: list[Tensor]) -> Foreground:
        pos = [torch.where(lab > 0)[0] for lab in labels]
        return Foreground(
            [p[i] for p, i in zip(proposals, pos)],
            [lab[i] for lab, i in zip(labels, pos)],
            [m[i] for m, i in zip(matched, pos)],
        )


class RoIHeads(nn.Module):
    def __init__(
        self,
        box_predictor: BoxPredictor,
        mask_head: nn.Module | None = None,
        *,
        keypoint_head: nn.Module | None = None,
        mask_loss_kind: str = "sigmoid",
        fg_iou_thresh: float = 0.5,
        bg_iou_thresh: float = 0.5,
        batch_size_per_image: int = 512,
        positive_fraction: float = 0.25,
        bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0),
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        aligned: bool = False,
    ) -> None:
        super().__init__()
        self.box_predictor, self.mask_head, self.keypoint_head = box_predictor, mask_head, keypoint_head
        self.mask_loss_kind = mask_loss_kind
        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=False)
        self.sampler = BalancedSampler(batch_size_per_image, positive_fraction)
        self.box_coder = BoxCoder(bbox_reg_weights)
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.detections_per_img = detections_per_img
        self.aligned = aligned  # pixel-centre mask targets (and pasting, in ImageTransform.to_original)

    # -------------------------------------------------------------- how a RoI becomes a feature (subclasses)
    def box_features(
        self, feats: list[Tensor], boxes: list[Tensor], image_sizes: list[tuple[int, int]]
    ) -> Tensor:
        """Per image [n_i, 4] boxes -> [N, D], the box predictor's input."""
        raise NotImplementedError

    def mask_features(
        self, feats: list[Tensor], boxes: list[Tensor], image_sizes: list[tuple[int, int]]
    ) -> Tensor:
        """Per image [n_i, 4] boxes -> [N, C, S, S], the mask head's input."""
        raise NotImplementedError

    def keypoint_features(
        self, feats: list[Tensor], boxes: list[Tensor], image_sizes: list[tuple[int, int]]
    ) -> Tensor:
        """Per image [n_i, 4] boxes -> [N, C, S, S], the keypoint head's input."""
        raise NotImplementedError

    def mask_logits(
        self, feats: list[Tensor], boxes: list[Tensor], image_sizes: list[tuple[int, int]]
    ) -> Tensor:
        return self.mask_head(self.mask_features(feats, boxes, image_sizes))  # [N, C_mask, M, M]

    # ------------------------------------------------------------------------------------------- training
    def sample_proposals(
        self, proposals: list[Tensor], targets: list[dict[str, Tensor]]
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
        """Add the GT boxes to the proposals, label them (class, 0 background, -1 ignore), sample.

        Returns per image: sampled boxes [R, 4], labels [R], matched GT index [R], box targets [R, 4]."""
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

    def mask_losses(
        self,
        feats: list[Tensor],
        fg: Foreground,
        targets: list[dict[str, Tensor]],
        image_sizes: list[tuple[int, int]],
    ) -> dict[str, Tensor]:
        """The mask loss on the positive sampled RoIs (their GT masks cropped to the head's resolution)."""
        logits = self.mask_logits(feats, fg.boxes, image_sizes)  # [N, C_mask, M, M]
        gt_targets = [
            mask_targets(t["masks"], b, m, logits.shape[-1], self.aligned)
            for t, b, m in zip(targets, fg.boxes, fg.matched)
        ]  # a loop over images
        pos_labels = torch.cat(fg.labels)
        return {"loss_mask": mask_loss(logits, pos_labels, torch.cat(gt_targets), self.mask_loss_kind)}

    def keypoint_losses(
        self,
        feats: list[Tensor],
        fg: Foreground,
        targets: list[dict[str, Tensor]],
        image_sizes: list[tuple[int, int]],
    ) -> dict[str, Tensor]:
        """The keypoint loss on the positive sampled RoIs: a target cell per labelled joint in its RoI."""
        logits = self.keypoint_head(self.keypoint_features(feats, fg.boxes, image_sizes))  # [N, K, M, M]
        index, valid = zip(
            *(
                keypoint_targets(t["keypoints"][m], b, logits.shape[-1])
                for t, b, m in zip(targets, fg.boxes, fg.matched)
            )
        )  # a loop over images
        return {"loss_keypoint": keypoint_loss(logits, torch.cat(index), torch.cat(valid))}

    # ------------------------------------------------------------------------------------------ inference
    def predict_masks(
        self, feats: list[Tensor], detections: list[dict[str, Tensor]], image_sizes: list[tuple[int, int]]
    ) -> None:
        """Add "masks" [n, 1, M, M] (probabilities of the detected class) to each image's detections."""
        boxes = [d["boxes"] for d in detections]
        logits = self.mask_logits(feats, boxes, image_sizes)
        probs = mask_probabilities(logits, torch.cat([d["labels"] for d in detections]), self.mask_loss_kind)
        for d, p in zip(detections, probs.split([b.shape[0] for b in boxes])):
            d["masks"] = p  # [n, 1, M, M]

    def predict_keypoints(
        self, feats: list[Tensor], detections: list[dict[str, Tensor]], image_sizes: list[tuple[int, int]]
    ) -> None:
        """Add "keypoints" [n, K, 3] (x, y, 1) and "keypoints_scores" [n, K] to each image's detections."""
        boxes = [d["boxes"] for d in detections]
        logits = self.keypoint_head(self.keypoint_features(feats, boxes, image_sizes))  # [N, K, M, M]
        xy, scores = heatmaps_to_keypoints(logits, torch.cat(boxes))
        counts = [b.shape[0] for b in boxes]
        for d, k, s in zip(detections, xy.split(counts), scores.split(counts)):
            d["keypoints"], d["keypoints_scores"] = k, s

    def forward(
        self,
        feats: list[Tensor],
        proposals: list[Tensor],
        image_sizes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        """Training: ([], losses). Inference: (per image: boxes [n, 4], scores, labels, masks; {})."""
        if self.training:
            if targets is None:
                raise ValueError("RoIHeads: targets are required in training mode")
            proposals, labels, matched, reg_targets = self.sample_proposals(proposals, targets)
        class_logits, box_deltas = self.box_predictor(self.box_features(feats, proposals, image_sizes))

        if self.training:
            losses = box_losses(class_logits, box_deltas, torch.cat(labels), torch.cat(reg_targets))
            fg = Foreground.of(proposals, labels, matched)  # what the mask (and keypoint) branch learns from
            if self.mask_head is not None:
                losses |= self.mask_losses(feats, fg, targets, image_sizes)
            if self.keypoint_head is not None:
                losses |= self.keypoint_losses(feats, fg, targets, image_sizes)
            return [], losses

        detections = box_inference(
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
            self.predict_masks(feats, detections, image_sizes)
        if self.keypoint_head is not None:
            self.predict_keypoints(feats, detections, image_sizes)
        return detections, {}


class FPNRoIHeads(RoIHeads):
    """Each branch pools its own size from the RoI's pyramid level and has its own head."""

    def __init__(
        self,
        box_pooler: MultiScaleRoIPool,
        box_head: nn.Module,
        box_predictor: BoxPredictor,
        mask_pooler: MultiScaleRoIPool | None = None,
        mask_head: nn.Module | None = None,
        *,
        keypoint_pooler: MultiScaleRoIPool | None = None,
        keypoint_head: nn.Module | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(box_predictor, mask_head, keypoint_head=keypoint_head, **settings)
        self.box_pooler, self.box_head, self.mask_pooler = box_pooler, box_head, mask_pooler
        self.keypoint_pooler = keypoint_pooler

    def box_features(
        self, feats: list[Tensor], boxes: list[Tensor], image_sizes: list[tuple[int, int]]
    ) -> Tensor:
        return self.box_head(self.box_pooler(feats, boxes, image_sizes))  # [N, D]

    def mask_features(
        self, feats: list[Tensor], boxes: list[Tensor], image_sizes: list[tuple[int, int]]
    ) -> Tensor:
        return self.mask_pooler(feats, boxes, image_sizes)  # [N, C, 14, 14]

    def keypoint_features(
        self, feats: list[Tensor], boxes: list[Tensor], image_sizes: list[tuple[int, int]]
    ) -> Tensor:
        return self.keypoint_pooler(feats, boxes, image_sizes)  # [N, C, 14, 14]


class Res5RoIHeads(RoIHeads):
    """C4: RoIs pooled 14 x 14 from conv4 go through ResNet's conv5 (stride 2): [N, 1024, 14, 14] ->
    [N, 2048, 7, 7]. Boxes read its spatial average [N, 2048]; masks upsample it (deconv) to 14 x 14."""

    def __init__(
        self,
        pooler: MultiScaleRoIPool,
        res5: nn.Module,
        box_predictor: BoxPredictor,
        mask_head: nn.Module | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(box_predictor, mask_head, **settings)
        self.pooler, self.res5 = pooler, res5

    def res5_features(
        self, feats: list[Tensor], boxes: list[Tensor], image_sizes: list[tuple[int, int]]
    ) -> Tensor:
        return self.res5(self.pooler(feats, boxes, image_sizes))  # [N, 2048, 7, 7]

    def box_features(
        self, feats: list[Tensor], boxes: list[Tensor], image_sizes: list[tuple[int, int]]
    ) -> Tensor:
        return self.res5_features(feats, boxes, image_sizes).mean(dim=(2, 3))  # average pool: [N, 2048]

    def mask_features(
        self, feats: list[Tensor], boxes: list[Tensor], image_sizes: list[tuple[int, int]]
    ) -> Tensor:
        return self.res5_features(feats, boxes, image_sizes)  # [N, 2048, 7, 7]

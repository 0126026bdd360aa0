"""Region Proposal Network: score every anchor for "object or not" and regress it towards the object.

A small conv head slides over each feature map and predicts, per anchor, one objectness logit and four
box deltas. Proposals are the decoded anchors that survive: the top `pre_nms_top_n` per level, clipping
to the image, NMS per level, then the top `post_nms_top_n` per image. In training, anchors are matched
to the ground truth (IoU >= 0.7 object, < 0.3 background), 256 per image are sampled at up to 1:1, and
`rpn_losses` scores them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from minimrcnn.model.anchors import AnchorGenerator
from minimrcnn.model.transform import ImageList
from minimrcnn.ops.boxes import BoxCoder, batched_nms, box_iou, clip_boxes_to_image, remove_small_boxes
from minimrcnn.ops.sampling import BACKGROUND, IGNORE, BalancedSampler, Matcher


class RPNHead(nn.Module):
    """3x3 conv + ReLU shared by two 1x1 siblings: A objectness logits and 4A deltas per position."""

    def __init__(self, channels: int, num_anchors: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(channels, num_anchors * 4, 1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, feats: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        logits, deltas = [], []
        for f in feats:
            t = F.relu(self.conv(f), inplace=True)  # in place, as torchvision: one P2-sized tensor less
            logits.append(self.cls_logits(t))  # [B, A, H, W]
            deltas.append(self.bbox_pred(t))  # [B, 4A, H, W]
        return logits, deltas


def flatten_levels(logits: list[Tensor], deltas: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Per-level maps -> [B, sum H*W*A] logits and [B, sum H*W*A, 4] deltas, in the anchors' order."""
    flat_logits, flat_deltas = [], []
    for lg, dl in zip(logits, deltas):
        b, a, h, w = lg.shape
        flat_logits.append(lg.permute(0, 2, 3, 1).reshape(b, -1))  # [B, H*W*A]
        flat_deltas.append(dl.view(b, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(b, -1, 4))  # [B, H*W*A, 4]
    return torch.cat(flat_logits, dim=1), torch.cat(flat_deltas, dim=1)


def rpn_losses(logits: Tensor, deltas: Tensor, labels: Tensor, reg_targets: Tensor) -> dict[str, Tensor]:
    """logits [P], deltas [P, 4], labels [P] (1 object, 0 background, -1 not in the minibatch),
    reg_targets [P, 4] -> binary cross-entropy on the sampled anchors, smooth L1 (beta 1/9) on the sampled
    positives summed and divided by the number of sampled anchors."""
    sampled = torch.where(labels >= 0)[0]
    pos = torch.where(labels == 1)[0]
    box_loss = F.smooth_l1_loss(deltas[pos], reg_targets[pos], beta=1 / 9, reduction="sum") / max(
        1, sampled.numel()
    )
    obj_loss = F.binary_cross_entropy_with_logits(logits[sampled], labels[sampled])
    return {"loss_objectness": obj_loss, "loss_rpn_box_reg": box_loss}


class RPN(nn.Module):
    def __init__(
        self,
        anchor_generator: AnchorGenerator,
        head: RPNHead,
        *,
        fg_iou_thresh: float = 0.7,
        bg_iou_thresh: float = 0.3,
        batch_size_per_image: int = 256,
        positive_fraction: float = 0.5,
        pre_nms_top_n: tuple[int, int] = (2000, 1000),  # (train, test)
        post_nms_top_n: tuple[int, int] = (2000, 1000),
        nms_thresh: float = 0.7,
        score_thresh: float = 0.0,
    ) -> None:
        super().__init__()
        self.anchor_generator = anchor_generator
        self.head = head
        self.box_coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=True)
        self.sampler = BalancedSampler(batch_size_per_image, positive_fraction)
        self._pre_nms_top_n, self._post_nms_top_n = pre_nms_top_n, post_nms_top_n
        self.nms_thresh, self.score_thresh = nms_thresh, score_thresh
        self.min_size = 1e-3

    @property
    def pre_nms_top_n(self) -> int:
        return self._pre_nms_top_n[0 if self.training else 1]

    @property
    def post_nms_top_n(self) -> int:
        return self._post_nms_top_n[0 if self.training else 1]

    def select_proposals(
        self, boxes: Tensor, logits: Tensor, image_sizes: list[tuple[int, int]], anchors_per_level: list[int]
    ) -> tuple[list[Tensor], list[Tensor]]:
        """boxes [B, P, 4], logits [B, P] -> per image: proposals [n, 4], objectness probabilities [n]."""
        b = logits.shape[0]
        logits = logits.detach()
        levels = torch.cat([torch.full((n,), i, dtype=torch.int64) for i, n in enumerate(anchors_per_level)])
        levels = levels.to(logits.device)[None].expand_as(logits)  # [B, P]
        # top-k per level (a loop over the 5 levels): keep the best pre_nms_top_n anchors of each
        top_idx, offset = [], 0
        for lg in logits.split(anchors_per_level, dim=1):
            k = min(self.pre_nms_top_n, lg.shape[1])
            top_idx.append(lg.topk(k, dim=1).indices + offset)
            offset += lg.shape[1]
        top_idx = torch.cat(top_idx, dim=1)  # [B, k_total]
        rows = torch.arange(b, device=logits.device)[:, None]
        logits, levels, boxes = logits[rows, top_idx], levels[rows, top_idx], boxes[rows, top_idx]
        scores_all = torch.sigmoid(logits)

        proposals, scores = [], []
        for bx, sc, lv, size in zip(boxes, scores_all, levels, image_sizes):  # a loop over images
            bx = clip_boxes_to_image(bx, size)
            keep = remove_small_boxes(bx, self.min_size)
            bx, sc, lv = bx[keep], sc[keep], lv[keep]
            keep = torch.where(sc >= self.score_thresh)[0]
            bx, sc, lv = bx[keep], sc[keep], lv[keep]
            keep = batched_nms(bx, sc, lv, self.nms_thresh)[: self.post_nms_top_n]  # NMS within each level
            proposals.append(bx[keep])
            scores.append(sc[keep])
        return proposals, scores

    def assign_targets(
        self, anchors: list[Tensor], targets: list[dict[str, Tensor]]
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Per image: anchor labels [P] (1 object, 0 background, -1 ignored) and matched GT boxes [P, 4]."""
        labels, matched_boxes = [], []
        for anc, tgt in zip(anchors, targets):
            gt = tgt["boxes"]
            if gt.numel() == 0:
                labels.append(torch.zeros(anc.shape[0], dtype=anc.dtype, device=anc.device))
                matched_boxes.append(torch.zeros_like(anc))
                continue
            matches = self.matcher(box_iou(gt, anc))  # [P]
            matched_boxes.append(gt[matches.clamp(min=0)])
            lab = (matches >= 0).to(anc.dtype)
            lab[matches == BACKGROUND] = 0.0
            lab[matches == IGNORE] = -1.0
            labels.append(lab)
        return labels, matched_boxes

    def sample(self, labels: list[Tensor]) -> list[Tensor]:
        """Keep `batch_size_per_image` anchors per image (at most `positive_fraction` objects); the others'
        labels become -1, so that `rpn_losses` ignores them."""
        pos, neg = self.sampler(labels)
        return [torch.where(p | n, lab, torch.full_like(lab, -1.0)) for lab, p, n in zip(labels, pos, neg)]

    def forward(
        self, images: ImageList, feats: list[Tensor], targets: list[dict[str, Tensor]] | None = None
    ) -> tuple[list[Tensor], dict[str, Tensor]]:
        """Returns the proposals of each image [n, 4] and, in training, the two RPN losses."""
        logits, deltas = self.head(feats)
        batch_shape = tuple(images.tensors.shape[-2:])
        anchors = self.anchor_generator(feats, batch_shape, len(images.image_sizes))  # B x [P, 4]
        anchors_per_level = [lg[0].numel() for lg in logits]  # H*W*A per level
        logits, deltas = flatten_levels(logits, deltas)  # [B, P], [B, P, 4]
        boxes = self.box_coder.decode(deltas.detach().reshape(-1, 4), torch.cat(anchors))  # [B*P, 1, 4]
        boxes = boxes.view(logits.shape[0], -1, 4)
        proposals, _ = self.select_proposals(boxes, logits, images.image_sizes, anchors_per_level)

        losses: dict[str, Tensor] = {}
        if self.training:
            if targets is None:
                raise ValueError("RPN: targets are required in training mode")
            labels, matched = self.assign_targets(anchors, targets)
            labels = self.sample(labels)  # [P] per image: 1, 0, or -1 (not in the minibatch)
            reg_targets = [self.box_coder.encode(m, a) for m, a in zip(matched, anchors)]
            flat = (logits.reshape(-1), deltas.reshape(-1, 4), torch.cat(labels), torch.cat(reg_targets))
            losses = rpn_losses(*flat)
        return proposals, losses

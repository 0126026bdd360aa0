"""Mask R-CNN: wires the parts together, in the order an image meets them.

    images -> ImageTransform -> backbone (+FPN) -> RPN -> RoIHeads (box branch | mask branch) -> postprocess

Like torchvision's detection models: in training mode `model(images, targets)` returns a dict of losses;
in eval mode `model(images)` returns, per image, `boxes [N, 4]` (xyxy, input-image pixels), `labels [N]`,
`scores [N]` and `masks [N, 1, H, W]` (probabilities). Images: a list of `[3, H, W]` floats in [0, 1].
"""

from __future__ import annotations

from torch import Tensor, nn

from minimrcnn.config import ModelConfig
from minimrcnn.model.anchors import AnchorGenerator
from minimrcnn.model.backbone import ResNetBody, out_channels, resnet
from minimrcnn.model.fpn import FPN
from minimrcnn.model.keypoint_head import KeypointHead
from minimrcnn.model.mask_head import MaskHead, mask_channels
from minimrcnn.model.poolers import MultiScaleRoIPool
from minimrcnn.model.roi_heads import BoxPredictor, ConvFCHead, Res5Head, RoIHeads, TwoMLPHead
from minimrcnn.model.rpn import RPN, RPNHead
from minimrcnn.model.transform import ImageTransform


class Backbone(nn.Module):
    """ResNet body, plus FPN when cfg.fpn; returns the list of maps the RPN and the poolers read."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        net = resnet(cfg.backbone, cfg.norm, cfg.frozen_bn_eps)
        if cfg.fpn:
            self.body = ResNetBody(net, ("layer1", "layer2", "layer3", "layer4"), cfg.trainable_layers)
            self.fpn = FPN(out_channels(cfg.backbone), cfg.fpn_channels)
            self.out_channels = cfg.fpn_channels
        else:  # C4: stem + C2..C4; conv5 is handed to the RoI head
            self.body = ResNetBody(
                net, ("layer1", "layer2", "layer3"), cfg.trainable_layers, returned=("layer3",)
            )
            self.fpn = None
            self.out_channels = out_channels(cfg.backbone)[2]
            self.res5 = net.layer4
            for p in self.res5.parameters():
                p.requires_grad_(cfg.trainable_layers >= 1)

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = self.body(x)
        return self.fpn(feats) if self.fpn is not None else feats  # [P2..P6] or [C4]


class MaskRCNN(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.transform = ImageTransform(
            cfg.min_size, cfg.max_size, cfg.image_mean, cfg.image_std, cfg.size_divisible
        )
        self.backbone = Backbone(cfg)
        c = self.backbone.out_channels

        sizes = tuple((s,) for s in cfg.anchor_sizes) if cfg.fpn else (tuple(cfg.anchor_sizes),)
        anchors = AnchorGenerator(sizes, cfg.aspect_ratios)
        self.rpn = RPN(
            anchors,
            RPNHead(c, anchors.num_anchors_per_location()),
            cfg.rpn_fg_iou_thresh,
            cfg.rpn_bg_iou_thresh,
            cfg.rpn_batch_size_per_image,
            cfg.rpn_positive_fraction,
            (cfg.rpn_pre_nms_top_n_train, cfg.rpn_pre_nms_top_n_test),
            (cfg.rpn_post_nms_top_n_train, cfg.rpn_post_nms_top_n_test),
            cfg.rpn_nms_thresh,
            cfg.rpn_score_thresh,
        )

        def pooler(size: int) -> MultiScaleRoIPool:
            return MultiScaleRoIPool(size, cfg.pooler, cfg.roi_kernel, cfg.sampling_ratio, cfg.aligned)

        if not cfg.fpn:
            box_head: nn.Module = Res5Head(self.backbone.res5)
            box_dim, mask_in, mask_kind, mask_pool = 2 * c, 2 * c, "c4", cfg.box_pool_size
        else:
            if cfg.box_head == "4conv1fc":
                box_head = ConvFCHead(c, cfg.box_conv_dim, cfg.box_pool_size, cfg.box_head_dim, cfg.head_norm)
            else:
                box_head = TwoMLPHead(c * cfg.box_pool_size**2, cfg.box_head_dim)
            box_dim, mask_in, mask_kind, mask_pool = cfg.box_head_dim, c, cfg.mask_head, cfg.mask_pool_size
        mask_head = None
        if cfg.mask_on:
            mask_head = MaskHead(
                mask_in,
                mask_kind,
                mask_channels(cfg.mask_loss, cfg.num_classes),
                cfg.mask_head_dim,
                cfg.head_norm,
                mask_pool,
            )
        self.roi_heads = RoIHeads(
            pooler(cfg.box_pool_size),
            box_head,
            BoxPredictor(box_dim, cfg.num_classes),
            pooler(mask_pool) if cfg.mask_on else None,
            mask_head,
            cfg.mask_loss,
            cfg.box_fg_iou_thresh,
            cfg.box_bg_iou_thresh,
            cfg.box_batch_size_per_image,
            cfg.box_positive_fraction,
            cfg.bbox_reg_weights,
            cfg.box_score_thresh,
            cfg.box_nms_thresh,
            cfg.detections_per_img,
            c4=not cfg.fpn,
            aligned=cfg.aligned,
            keypoint_pooler=pooler(cfg.keypoint_pool_size) if cfg.keypoint_on else None,
            keypoint_head=KeypointHead(c, cfg.num_keypoints, cfg.keypoint_head_dim, cfg.keypoint_head_convs)
            if cfg.keypoint_on
            else None,
        )

    def forward(self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None):
        if self.training:
            if targets is None:
                raise ValueError("MaskRCNN: targets are required in training mode")
            check_targets(targets, self.cfg.mask_on, self.cfg.num_keypoints if self.cfg.keypoint_on else 0)
        original_sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
        batch, targets = self.transform(images, targets)
        feats = self.backbone(batch.tensors)
        proposals, rpn_losses = self.rpn(batch, feats, targets)
        pool_feats = feats[:4] if self.cfg.fpn else feats  # P6 is for the RPN only
        detections, head_losses = self.roi_heads(pool_feats, proposals, batch.image_sizes, targets)
        if self.training:
            return {**rpn_losses, **head_losses}
        return self.transform.postprocess(detections, batch.image_sizes, original_sizes, self.cfg.aligned)


def check_targets(targets: list[dict[str, Tensor]], need_masks: bool, num_keypoints: int = 0) -> None:
    """Fail early, naming the image and field, instead of deep inside a loss."""
    for i, t in enumerate(targets):
        for key in (
            ("boxes", "labels")
            + (("masks",) if need_masks else ())
            + (("keypoints",) if num_keypoints else ())
        ):
            if key not in t:
                raise ValueError(f"targets[{i}]: missing '{key}'")
        if num_keypoints:
            kps, n = t["keypoints"], t["boxes"].shape[0]
            if kps.shape != (n, num_keypoints, 3) or not kps.is_floating_point():
                raise ValueError(
                    f"targets[{i}]['keypoints']: expected float [{n}, {num_keypoints}, 3] (x, y, v), "
                    f"got {kps.dtype} {tuple(kps.shape)}"
                )
        boxes = t["boxes"]
        if boxes.dim() != 2 or boxes.shape[-1] != 4:
            raise ValueError(f"targets[{i}]['boxes']: expected [N, 4], got {tuple(boxes.shape)}")
        bad = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
        if bad.any():
            j = int(bad.nonzero()[0])
            raise ValueError(
                f"targets[{i}]['boxes'][{j}] = {boxes[j].tolist()}: degenerate box (x2 <= x1 or y2 <= y1)"
            )

"""Mask R-CNN: wires the parts together, in the order an image meets them.

    images -> ImageTransform -> backbone (+FPN) -> RPN -> RoIHeads (box | mask | keypoint branch)
           -> ImageTransform.to_original (boxes and masks back on the input images)

Like torchvision's detection models: in training mode `model(images, targets)` returns a dict of losses;
in eval mode `model(images)` returns, per image, `boxes [N, 4]` (xyxy, input-image pixels), `labels [N]`,
`scores [N]` and `masks [N, 1, H, W]` (probabilities). Images: a list of `[3, H, W]` floats in [0, 1].
"""

from __future__ import annotations

from torch import Tensor, nn

from minimrcnn.config import ModelConfig
from minimrcnn.model.anchors import AnchorGenerator
from minimrcnn.model.backbone import STAGES, ResNetBody, out_channels, resnet
from minimrcnn.model.box_head import BoxPredictor, ConvFCHead, TwoMLPHead
from minimrcnn.model.fpn import FPN
from minimrcnn.model.keypoint_head import KeypointHead
from minimrcnn.model.mask_head import MaskHead, MLPMaskHead, mask_channels
from minimrcnn.model.poolers import MultiScaleRoIPool
from minimrcnn.model.roi_heads import FPNRoIHeads, Res5RoIHeads, RoIHeads
from minimrcnn.model.rpn import RPN, RPNHead
from minimrcnn.model.transform import ImageTransform

POOLED_LEVELS = 4  # RoIs are pooled from P2..P5 (LevelMapper's k_min..k_max), never from P6


class Backbone(nn.Module):
    """The trunk whose maps the RPN and the poolers read. FPN: ResNet C2..C5 + FPN -> [P2..P6] (or, with
    fpn_stages=3, C2..C4 -> [P2..P5]).
    C4: ResNet's stem and C2..C4 -> [C4] (stride 16); its conv5 belongs to the RoI head (Res5RoIHeads)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        net = resnet(cfg.backbone, cfg.norm, cfg.frozen_bn_eps)
        if cfg.fpn:
            stages = STAGES[: cfg.fpn_stages]  # 3: no conv5, and P5 is P4 subsampled (as P6 is otherwise)
            self.body = ResNetBody(net, stages, cfg.trainable_layers)
            self.fpn = FPN(out_channels(cfg.backbone)[: cfg.fpn_stages], cfg.fpn_channels)
            self.out_channels = cfg.fpn_channels
        else:
            self.body = ResNetBody(net, STAGES[:3], cfg.trainable_layers, returned=("layer3",))
            self.fpn = None
            self.out_channels = out_channels(cfg.backbone)[2]

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = self.body(x)
        return self.fpn(feats) if self.fpn is not None else feats  # [P2..P6] ([P2..P5] from C2..C4) or [C4]


def build_rpn(cfg: ModelConfig, channels: int) -> RPN:
    sizes = tuple((s,) for s in cfg.anchor_sizes) if cfg.fpn else (tuple(cfg.anchor_sizes),)
    anchors = AnchorGenerator(sizes, cfg.aspect_ratios)
    return RPN(
        anchors,
        RPNHead(channels, anchors.num_anchors_per_location()),
        fg_iou_thresh=cfg.rpn_fg_iou_thresh,
        bg_iou_thresh=cfg.rpn_bg_iou_thresh,
        batch_size_per_image=cfg.rpn_batch_size_per_image,
        positive_fraction=cfg.rpn_positive_fraction,
        pre_nms_top_n=(cfg.rpn_pre_nms_top_n_train, cfg.rpn_pre_nms_top_n_test),
        post_nms_top_n=(cfg.rpn_post_nms_top_n_train, cfg.rpn_post_nms_top_n_test),
        nms_thresh=cfg.rpn_nms_thresh,
        score_thresh=cfg.rpn_score_thresh,
    )


def build_roi_heads(cfg: ModelConfig, channels: int) -> RoIHeads:
    """FPN: a pooler and a head per branch. C4: one pooler and conv5, shared (see roi_heads.py)."""
    settings = dict(
        mask_loss_kind=cfg.mask_loss,
        fg_iou_thresh=cfg.box_fg_iou_thresh,
        bg_iou_thresh=cfg.box_bg_iou_thresh,
        batch_size_per_image=cfg.box_batch_size_per_image,
        positive_fraction=cfg.box_positive_fraction,
        bbox_reg_weights=cfg.bbox_reg_weights,
        score_thresh=cfg.box_score_thresh,
        nms_thresh=cfg.box_nms_thresh,
        detections_per_img=cfg.detections_per_img,
        aligned=cfg.aligned,
    )
    mask_out = mask_channels(cfg.mask_loss, cfg.num_classes)

    def pooler(size: int) -> MultiScaleRoIPool:
        return MultiScaleRoIPool(size, cfg.pooler, cfg.roi_kernel, cfg.sampling_ratio, cfg.aligned)

    if not cfg.fpn:
        res5 = resnet(cfg.backbone, cfg.norm, cfg.frozen_bn_eps).layer4  # conv5: C4 [1024] -> [2048] channels
        res5.requires_grad_(cfg.trainable_layers >= 1)
        dim = out_channels(cfg.backbone)[3]
        mask_head = MaskHead(dim, mask_out, num_convs=0, dim=cfg.mask_head_dim) if cfg.mask_on else None
        box_predictor = BoxPredictor(dim, cfg.num_classes)
        return Res5RoIHeads(pooler(cfg.box_pool_size), res5, box_predictor, mask_head, **settings)

    if cfg.box_head == "4conv1fc":
        box_head: nn.Module = ConvFCHead(
            channels, cfg.box_conv_dim, cfg.box_pool_size, cfg.box_head_dim, cfg.head_norm, cfg.box_head_convs
        )
    else:
        box_head = TwoMLPHead(channels * cfg.box_pool_size**2, cfg.box_head_dim)
    mask_head = None
    if cfg.mask_on and cfg.mask_head == "mlp":
        mask_head = MLPMaskHead(channels, mask_out, cfg.mask_pool_size)
    elif cfg.mask_on:
        num_convs = {"fcn4": 4, "fcn2": 2}[cfg.mask_head]
        mask_head = MaskHead(channels, mask_out, num_convs, cfg.mask_head_dim, cfg.head_norm)
    keypoint_head = None
    if cfg.keypoint_on:  # the paper's Section 5: 14 x 14 RoIs, convs, deconv + 2x upsampling to 56 x 56
        keypoint_head = KeypointHead(
            channels, cfg.num_keypoints, cfg.keypoint_head_dim, cfg.keypoint_head_convs
        )
    return FPNRoIHeads(
        pooler(cfg.box_pool_size),
        box_head,
        BoxPredictor(cfg.box_head_dim, cfg.num_classes),
        pooler(cfg.mask_pool_size) if cfg.mask_on else None,
        mask_head,
        keypoint_pooler=pooler(cfg.keypoint_pool_size) if cfg.keypoint_on else None,
        keypoint_head=keypoint_head,
        **settings,
    )


class MaskRCNN(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.transform = ImageTransform(
            cfg.min_size, cfg.max_size, cfg.image_mean, cfg.image_std, cfg.size_divisible
        )
        self.backbone = Backbone(cfg)
        self.rpn = build_rpn(cfg, self.backbone.out_channels)
        self.roi_heads = build_roi_heads(cfg, self.backbone.out_channels)

    def forward(
        self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None
    ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        """Training: the dict of losses. Inference: per image, boxes, labels, scores (and masks)."""
        if self.training:
            if targets is None:
                raise ValueError("MaskRCNN: targets are required in training mode")
            check_targets(targets, self.cfg.mask_on, self.cfg.num_keypoints if self.cfg.keypoint_on else 0)
        original_sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
        batch, targets = self.transform(images, targets)
        feats = self.backbone(batch.tensors)
        proposals, rpn_losses = self.rpn(batch, feats, targets)
        pool_feats = feats[:POOLED_LEVELS] if self.cfg.fpn else feats  # a P6 is for the RPN only
        detections, head_losses = self.roi_heads(pool_feats, proposals, batch.image_sizes, targets)
        if self.training:
            return {**rpn_losses, **head_losses}
        return self.transform.to_original(detections, batch.image_sizes, original_sizes, self.cfg.aligned)


def check_targets(targets: list[dict[str, Tensor]], need_masks: bool, num_keypoints: int = 0) -> None:
    """Fail early, naming the image and field, instead of deep inside a loss."""
    for i, t in enumerate(targets):
        needed = (
            ("boxes", "labels")
            + (("masks",) if need_masks else ())
            + (("keypoints",) if num_keypoints else ())
        )
        for key in needed:
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
        if boxes.device.type != "cpu":  # reading the values back would stall the GPU every iteration; the
            continue  # datasets drop degenerate boxes when they read the annotations (data/coco.py)
        bad = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
        if bad.any():
            j = int(bad.nonzero()[0])
            raise ValueError(
                f"targets[{i}]['boxes'][{j}] = {boxes[j].tolist()}: degenerate box (x2 <= x1 or y2 <= y1)"
            )

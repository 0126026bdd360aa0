"""Load torchvision's Mask R-CNN or Keypoint R-CNN (its weights and its settings) into minimrcnn.

    tv = torchvision.models.detection.maskrcnn_resnet50_fpn(weights="DEFAULT")  # COCO-pretrained
    model = minimrcnn.convert.from_torchvision(tv)                                   # same outputs, our code

or, from a saved state dict:  from_torchvision(torch.load(path), coco_v1_config()).

Two details decide whether the outputs match: torchvision's COCO v1 weights were trained with frozen
batch norm whose eps is 0.0 (not 1e-5), and its RoIAlign uses aligned=False. `torchvision_config` reads
both (and every threshold) off the torchvision model instead of assuming them.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor, nn

from minimrcnn.config import ModelConfig
from minimrcnn.model.mask_rcnn import MaskRCNN

# torchvision key pattern -> minimrcnn key (the optional "\.0" covers older torchvision layouts)
KEY_MAP = [
    (r"^backbone\.fpn\.inner_blocks\.(\d+)(?:\.0)?\.", r"backbone.fpn.lateral.\1."),
    (r"^backbone\.fpn\.layer_blocks\.(\d+)(?:\.0)?\.", r"backbone.fpn.output.\1."),
    (r"^rpn\.head\.conv(?:\.0)?(?:\.0)?\.", r"rpn.head.conv."),
    (r"^roi_heads\.mask_predictor\.conv5_mask\.", r"roi_heads.mask_head.deconv."),
    (r"^roi_heads\.mask_predictor\.mask_fcn_logits\.", r"roi_heads.mask_head.predictor."),
    (r"^roi_heads\.keypoint_head\.(\d+)\.", r"roi_heads.keypoint_head.convs.\1."),
    (r"^roi_heads\.keypoint_predictor\.kps_score_lowres\.", r"roi_heads.keypoint_head.deconv."),
]


def _mask_conv_key(key: str) -> str:
    """roi_heads.mask_head.<i>.0.weight (or .mask_fcn<i+1>.weight) -> roi_heads.mask_head.convs.<2i>.weight"""
    m = re.match(r"^roi_heads\.mask_head\.(?:(\d+)\.0|mask_fcn(\d+))\.(.*)$", key)
    if not m:
        return key
    i = int(m.group(1)) if m.group(1) is not None else int(m.group(2)) - 1
    return f"roi_heads.mask_head.convs.{2 * i}.{m.group(3)}"


def convert_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    out = {}
    for k, v in state.items():
        if k.endswith("num_batches_tracked"):
            continue
        new = _mask_conv_key(k)
        for pattern, repl in KEY_MAP:
            new = re.sub(pattern, repl, new)
        out[new] = v
    return out


def coco_v1_config() -> ModelConfig:
    """The settings of torchvision's `maskrcnn_resnet50_fpn(weights=COCO_V1)`."""
    return ModelConfig(
        num_classes=91,
        backbone="resnet50",
        fpn=True,
        norm="frozen_bn",
        frozen_bn_eps=0.0,
        aligned=False,
        sampling_ratio=2,
    )


def torchvision_config(tv: nn.Module) -> ModelConfig:
    """Read every setting that matters off a torchvision MaskRCNN."""
    body, rpn, heads, t = tv.backbone.body, tv.rpn, tv.roi_heads, tv.transform
    bottleneck = hasattr(body.layer1[0], "conv3")
    depth = ({6: "resnet50", 23: "resnet101"} if bottleneck else {2: "resnet18", 6: "resnet34"})[
        len(body.layer3)
    ]
    is_bn = isinstance(body.bn1, nn.BatchNorm2d)
    trainable = sum(
        any(p.requires_grad for p in getattr(body, n).parameters())
        for n in ("conv1", "layer1", "layer2", "layer3", "layer4")
    )
    return ModelConfig(
        num_classes=heads.box_predictor.cls_score.out_features,
        backbone=depth,
        fpn=True,
        fpn_channels=tv.backbone.out_channels,
        trainable_layers=trainable,
        norm="bn" if is_bn else "frozen_bn",
        frozen_bn_eps=float(body.bn1.eps),
        min_size=tuple(t.min_size),
        max_size=t.max_size,
        image_mean=tuple(t.image_mean),
        image_std=tuple(t.image_std),
        size_divisible=t.size_divisible,
        anchor_sizes=tuple(s[0] for s in rpn.anchor_generator.sizes),
        aspect_ratios=tuple(rpn.anchor_generator.aspect_ratios[0]),
        rpn_pre_nms_top_n_train=rpn._pre_nms_top_n["training"],
        rpn_pre_nms_top_n_test=rpn._pre_nms_top_n["testing"],
        rpn_post_nms_top_n_train=rpn._post_nms_top_n["training"],
        rpn_post_nms_top_n_test=rpn._post_nms_top_n["testing"],
        rpn_nms_thresh=rpn.nms_thresh,
        rpn_fg_iou_thresh=rpn.proposal_matcher.high_threshold,
        rpn_bg_iou_thresh=rpn.proposal_matcher.low_threshold,
        rpn_batch_size_per_image=rpn.fg_bg_sampler.batch_size_per_image,
        rpn_positive_fraction=rpn.fg_bg_sampler.positive_fraction,
        rpn_score_thresh=rpn.score_thresh,
        pooler="roialign",
        aligned=False,  # torchvision's MultiScaleRoIAlign always calls roi_align with aligned=False
        sampling_ratio=heads.box_roi_pool.sampling_ratio,
        box_pool_size=heads.box_roi_pool.output_size[0],
        box_head_dim=heads.box_head.fc7.out_features,
        box_fg_iou_thresh=heads.proposal_matcher.high_threshold,
        box_bg_iou_thresh=heads.proposal_matcher.low_threshold,
        box_batch_size_per_image=heads.fg_bg_sampler.batch_size_per_image,
        box_positive_fraction=heads.fg_bg_sampler.positive_fraction,
        bbox_reg_weights=tuple(heads.box_coder.weights),
        box_score_thresh=heads.score_thresh,
        box_nms_thresh=heads.nms_thresh,
        detections_per_img=heads.detections_per_img,
        mask_on=heads.mask_head is not None,
        mask_resolution=2 * heads.mask_roi_pool.output_size[0] if heads.mask_roi_pool is not None else 28,
        **(_keypoint_config(heads) if heads.keypoint_head is not None else {}),
    )


def _keypoint_config(heads: nn.Module) -> dict:
    """keypointrcnn_resnet50_fpn: 8 convs of 512, 17 joints, RoIs pooled 14x14."""
    convs = [m for m in heads.keypoint_head.modules() if isinstance(m, nn.Conv2d)]
    return {
        "keypoint_on": True,
        "num_keypoints": heads.keypoint_predictor.kps_score_lowres.out_channels,
        "keypoint_head_dim": convs[0].out_channels,
        "keypoint_head_convs": len(convs),
        "keypoint_pool_size": heads.keypoint_roi_pool.output_size[0],
    }


def from_torchvision(source: nn.Module | dict[str, Tensor], cfg: ModelConfig | None = None) -> MaskRCNN:
    """A minimrcnn MaskRCNN with the weights (and, from a module, the settings) of a torchvision one."""
    if isinstance(source, nn.Module):
        cfg = cfg or torchvision_config(source)
        state = source.state_dict()
    else:
        if cfg is None:
            raise ValueError("from_torchvision(state_dict): pass a ModelConfig too, e.g. coco_v1_config()")
        state = source
    model = MaskRCNN(cfg)
    missing, unexpected = model.load_state_dict(convert_state_dict(state), strict=False)
    if missing or unexpected:
        raise ValueError(
            f"from_torchvision: keys did not line up: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    return model.eval()


@torch.no_grad()
def perturb_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Give every BN layer non-trivial statistics and affine terms (used to test conversions)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if hasattr(m, "running_mean") and m.running_mean is not None:
            n = m.running_mean.shape[0]
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)

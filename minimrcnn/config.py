"""Every knob of the model and the training run, as plain dataclasses.

There is no config system: a preset is a function that returns a `Config`, and `--set key=value` on
the command line assigns one field (see `apply_overrides`). Every paper ablation is one field of
`ModelConfig` (pooler, mask_loss, mask_head, mask_resolution).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from minimrcnn.errors import ConfigError


@dataclass
class ModelConfig:
    # ---- classes: like torchvision, num_classes counts the background (index 0)
    num_classes: int = 91
    # ---- backbone
    backbone: str = "resnet50"  # resnet18 | resnet34 | resnet50 | resnet101
    fpn: bool = True  # True: FPN P2-P6; False: the paper's C4 (conv5 is the RoI head)
    fpn_channels: int = 256
    trainable_layers: int = 3  # how many ResNet stages (counted from the top) are trained
    norm: str = "frozen_bn"  # frozen_bn | bn (batch statistics, trainable affine)
    frozen_bn_eps: float = 1e-5  # torchvision's COCO v1 weights were made with eps=0.0
    # ---- input transform (normalize, resize, pad to a batch)
    min_size: tuple[int, ...] = (
        800,
    )  # short side; training picks one at random (scale jitter), eval the last
    max_size: int = 1333
    image_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    image_std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    size_divisible: int = 32
    # ---- anchors and RPN
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)  # one size per FPN level (C4: all on one)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_pre_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_test: int = 1000
    rpn_nms_thresh: float = 0.7
    rpn_fg_iou_thresh: float = 0.7
    rpn_bg_iou_thresh: float = 0.3
    rpn_batch_size_per_image: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_score_thresh: float = 0.0
    # ---- RoI pooling (the paper's Table 2c/2d ablations)
    pooler: str = "roialign"  # roialign | roiwarp | roipool
    aligned: bool = False  # half-pixel offset; torchvision's Mask R-CNN uses False, Detectron2 True
    sampling_ratio: int = 2
    roi_kernel: str = "torchvision"  # torchvision (C++/CUDA kernel) | minimrcnn (our readable PyTorch)
    # ---- box head
    box_head: str = "2fc"  # 2fc: two fc layers (the paper's FPN head) | 4conv1fc: 4 convs, then one fc
    box_pool_size: int = 7
    box_head_dim: int = 1024  # the fc width
    box_conv_dim: int = 256  # 4conv1fc: the convs' width
    box_fg_iou_thresh: float = 0.5
    box_bg_iou_thresh: float = 0.5
    box_batch_size_per_image: int = 512
    box_positive_fraction: float = 0.25
    bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.5
    detections_per_img: int = 100
    # ---- mask head (Table 2a/2b/2e ablations)
    mask_on: bool = True  # False: Faster R-CNN (box AP "with vs without the mask branch")
    mask_head: str = "fcn4"  # fcn4 | fcn2 | mlp
    mask_loss: str = "sigmoid"  # sigmoid (per class, GT channel) | softmax (over classes) | agnostic
    mask_resolution: int = 28  # 28 or 56: the mask head pools mask_resolution // 2 and upsamples x2
    mask_head_dim: int = 256
    head_norm: str = "none"  # none | gn: GroupNorm in the box and mask heads (helps small batches)
    # ---- keypoint head (the paper's Section 5; a model can have masks, keypoints or both)
    keypoint_on: bool = False
    num_keypoints: int = 17  # COCO person: 17 joints
    keypoint_head_dim: int = 512  # the width of its 3x3 convs
    keypoint_head_convs: int = 8
    keypoint_pool_size: int = 14  # RoIs pooled 14x14, heatmaps 4x that: 56x56

    @property
    def mask_pool_size(self) -> int:
        return self.mask_resolution // 2

    def validate(self) -> ModelConfig:
        choices = {
            "backbone": ("resnet18", "resnet34", "resnet50", "resnet101"),
            "norm": ("frozen_bn", "bn"),
            "pooler": ("roialign", "roiwarp", "roipool"),
            "roi_kernel": ("torchvision", "minimrcnn"),
            "box_head": ("2fc", "4conv1fc"),
            "mask_head": ("fcn4", "fcn2", "mlp"),
            "mask_loss": ("sigmoid", "softmax", "agnostic"),
            "head_norm": ("none", "gn"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"model.{name}={getattr(self, name)!r}: expected one of {', '.join(allowed)}"
                )
        if self.mask_resolution % 2:
            raise ConfigError(f"model.mask_resolution={self.mask_resolution}: must be even")
        for stage in ("rpn", "box"):
            low, high = getattr(self, f"{stage}_bg_iou_thresh"), getattr(self, f"{stage}_fg_iou_thresh")
            if low > high:
                raise ConfigError(
                    f"model.{stage}_bg_iou_thresh={low} exceeds model.{stage}_fg_iou_thresh={high}"
                )
        if not self.fpn and self.mask_on and self.mask_resolution != self.box_pool_size:
            raise ConfigError(
                f"model.mask_resolution={self.mask_resolution}: C4 masks upsample conv5's output on the box "
                f"pooler's RoIs, so it must equal model.box_pool_size={self.box_pool_size}"
            )
        if self.keypoint_on and (not self.fpn or self.num_keypoints < 1):
            raise ConfigError(
                f"model.keypoint_on=True needs fpn=True and num_keypoints >= 1 (got fpn={self.fpn}, "
                f"num_keypoints={self.num_keypoints})"
            )
        if self.num_classes < 2:
            raise ConfigError(f"model.num_classes={self.num_classes}: needs background + at least one class")
        return self


@dataclass
class TrainConfig:
    dataset: str = "shapes"  # shapes | coco
    data_root: str = "data/shapes"
    train_split: str = "train"
    val_split: str = "val"
    batch_size: int = 4  # images per process
    iters: int = 1000
    time_budget_s: float = 0.0  # >0: stop after this many seconds of training (the CPU preset)
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "step"  # step | cosine
    lr_steps: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    warmup_iters: int = 1000
    warmup_factor: float = 0.001
    base_batch_size: int = 16  # lr is scaled linearly by (total batch / base_batch_size)
    scale_lr: bool = True
    hflip: bool = True  # random horizontal flips in training (scale jitter: several model.min_size)
    num_workers: int = 2
    amp: bool = True  # only on CUDA; bf16 where supported
    channels_last: bool = False
    backbone_weights: str = "none"  # none | imagenet | PATH to a state dict
    log_every: int = 20
    checkpoint_every: int = 500
    eval_at_end: bool = True
    seed: int = 0
    device: str = "auto"
    num_train_images: int = 0  # shapes: how many images to generate (0: the dataset's default)
    num_val_images: int = 0


@dataclass
class Config:
    name: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Config:
        return Config(
            name=d.get("name", "custom"),
            model=_fill(ModelConfig, d.get("model", {})),
            train=_fill(TrainConfig, d.get("train", {})),
        )


def _fill(cls: type, values: dict[str, Any]) -> Any:
    """Build a dataclass from a dict, turning lists back into tuples where the field is a tuple."""
    obj = cls()
    for f in dataclasses.fields(cls):
        if f.name in values:
            v = values[f.name]
            if isinstance(getattr(obj, f.name), tuple) and isinstance(v, list):
                v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
            setattr(obj, f.name, v)
    return obj


# ---------------------------------------------------------------------------------------------- presets
def shapes_cpu() -> Config:
    """The default: from scratch on the synthetic shapes dataset, on a laptop CPU in a few minutes."""
    model = ModelConfig(
        num_classes=4,  # background + circle, square, triangle
        backbone="resnet18",
        fpn_channels=64,  # at 128, the 3x3 convs on P2 (FPN output, RPN) cost half the trunk; 64: 22% faster
        trainable_layers=5,
        norm="bn",
        min_size=(128,),
        max_size=128,
        anchor_sizes=(16, 32, 64, 128, 256),
        rpn_pre_nms_top_n_train=600,
        rpn_post_nms_top_n_train=200,
        rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_test=100,
        box_batch_size_per_image=64,
        box_head="4conv1fc",  # convolutions learn the classes from fewer examples than fc6 on 7x7x64
        box_conv_dim=64,
        box_head_dim=256,
        mask_head_dim=64,  # 128 RoIs through 4 convs of 128 channels cost more than the whole backbone
        head_norm="gn",
        detections_per_img=50,
        roi_kernel="minimrcnn",  # our PyTorch RoIAlign: the one the chapters derive, and faster on CPU
        aligned=True,  # pixel centres everywhere: pooling, mask targets, pasting (see model/paste.py)
    )
    train = TrainConfig(
        batch_size=4,
        iters=1250,  # ~0.22 s per iteration on 2 cores: the cap below ends it near 1200, where the lr is ~0
        time_budget_s=270.0,  # a safety cap on slower machines: stop (and evaluate) after 4.5 minutes
        optimizer="adamw",
        lr=1e-3,
        weight_decay=1e-4,
        schedule="cosine",
        warmup_iters=50,
        scale_lr=False,
        hflip=True,
        num_workers=0,  # loading is ~1 ms per image; a worker process would only compete for the 2 cores
        log_every=10,
        checkpoint_every=200,
    )
    return Config("shapes_cpu", model, train)


def coco_r50_fpn_1x() -> Config:
    """The paper's recipe: ResNet-50-FPN, batch 16, lr 0.02, 90k iterations, steps at 60k and 80k."""
    model = ModelConfig(num_classes=81, backbone="resnet50", fpn=True, norm="frozen_bn")
    train = TrainConfig(
        dataset="coco",
        data_root="data/coco",
        train_split="train2017",
        val_split="val2017",
        batch_size=2,
        iters=90_000,
        optimizer="sgd",
        lr=0.02,
        momentum=0.9,
        weight_decay=1e-4,
        schedule="step",
        lr_steps=(60_000, 80_000),
        warmup_iters=1000,
        warmup_factor=0.001,
        base_batch_size=16,
        scale_lr=True,
        hflip=True,
        num_workers=4,
        amp=True,
        backbone_weights="imagenet",
        log_every=20,
        checkpoint_every=5000,
    )
    return Config("coco_r50_fpn_1x", model, train)


def coco_r50_c4_1x() -> Config:
    """ResNet-50-C4: conv5 is the RoI head, RoIs pooled from the stride-16 conv4 map (the paper's Table 2)."""
    cfg = coco_r50_fpn_1x()
    cfg.name = "coco_r50_c4_1x"
    cfg.model.fpn = False
    cfg.model.mask_resolution = 14
    cfg.model.box_pool_size = 14  # pooled 14x14 on C4, conv5 (stride 2) brings it to 7x7
    cfg.model.rpn_pre_nms_top_n_train = 12000
    cfg.model.rpn_pre_nms_top_n_test = 6000
    return cfg


def figures_cpu() -> Config:
    """Keypoints on the synthetic stick figures (9 joints), from scratch on a laptop CPU in minutes.

    The shapes_cpu model with the mask head swapped for a narrow keypoint head (chapter 10)."""
    cfg = shapes_cpu()
    cfg.name = "figures_cpu"
    m = cfg.model
    m.num_classes, m.mask_on = 2, False  # background + person; keypoint-only, as the paper's main model
    m.keypoint_on, m.num_keypoints = True, 9
    m.keypoint_head_dim, m.keypoint_head_convs = 64, 4
    cfg.train.dataset, cfg.train.data_root = "figures", "data/figures"
    # at most 1050 iterations; the 270 s budget plans the actual count (engine/budget.py). A step costs
    # 1.12x a shapes_cpu step (CPU time, 1 thread, benchmarks/preset_step.py)
    cfg.train.iters = 1050
    return cfg


def coco_keypoints_r50_fpn_1x() -> Config:
    """The paper's keypoint model: R50-FPN on COCO person keypoints, short side 640-800 in training,
    90k iterations at batch 16 (8 GPUs x 2), lr 0.02 stepped at 60k and 80k; keypoint head 8 x conv 512."""
    cfg = coco_r50_fpn_1x()
    cfg.name = "coco_keypoints_r50_fpn_1x"
    m = cfg.model
    m.num_classes, m.mask_on, m.keypoint_on, m.num_keypoints = 2, False, True, 17
    m.min_size = (640, 672, 704, 736, 768, 800)  # training picks one per image; evaluation uses 800
    cfg.train.dataset, cfg.train.data_root = "coco_keypoints", "data/coco"
    return cfg


PRESETS = {"shapes_cpu": shapes_cpu, "coco_r50_fpn_1x": coco_r50_fpn_1x, "coco_r50_c4_1x": coco_r50_c4_1x,
           "figures_cpu": figures_cpu, "coco_keypoints_r50_fpn_1x": coco_keypoints_r50_fpn_1x}  # fmt: skip


def get_preset(name: str) -> Config:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(PRESETS)}")
    return PRESETS[name]()


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply `section.key=value` (or a bare `key=value` found in exactly one section) to cfg in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        if "." in key:
            section, name = key.split(".", 1)
            sections = [section] if section in ("model", "train") else []
        else:
            name = key
            sections = [s for s in ("model", "train") if hasattr(getattr(cfg, s), name)]
        if len(sections) != 1 or not hasattr(getattr(cfg, sections[0]), name):
            raise ConfigError(f"unknown config key {key!r}")
        target = getattr(cfg, sections[0])
        setattr(target, name, _parse_like(getattr(target, name), raw, key))
    cfg.model.validate()
    return cfg


def _parse_like(current: Any, raw: str, key: str) -> Any:
    try:
        if isinstance(current, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(current, int):
            return int(raw)
        if isinstance(current, float):
            return float(raw)
        if isinstance(current, tuple):
            parts = [p for p in raw.replace("(", "").replace(")", "").split(",") if p.strip()]
            if current:
                kind = type(current[0])
            else:
                kind = int if all(p.strip().lstrip("-").isdigit() for p in parts) else float
            return tuple(kind(p) for p in parts)
        return raw
    except ValueError:
        raise ConfigError(f"--set {key}={raw!r}: expected a value like {current!r}") from None

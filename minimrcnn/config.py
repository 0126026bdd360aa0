"""Every knob of the model and the training run, as plain dataclasses.

There is no config system: a preset is a function that returns a `Config`, and `--set key=value` on
the command line assigns one field (see `apply_overrides`). Every paper ablation is one field of
`ModelConfig` (pooler, mask_loss, mask_head, mask_resolution).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minimrcnn.errors import ConfigError


@dataclass
class ModelConfig:
    # ---- classes: like torchvision, num_classes counts the background (index 0)
    num_classes: int = 91
    # ---- backbone
    backbone: str = "resnet50"  # resnet18 | resnet34 | resnet50 | resnet101
    fpn: bool = True  # True: FPN P2-P6 (P2-P5 with fpn_stages=3); False: the paper's C4 (conv5 = RoI head)
    fpn_channels: int = 256
    fpn_stages: int = 4  # ResNet stages the FPN reads: 4 = C2..C5 -> P2..P6; 3 = C2..C4 -> P2..P5, no conv5
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
    box_head_convs: int = 4  # 4conv1fc: how many convs (Detectron's NUM_CONV; the name says 4)
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
        if self.box_head_convs < 1:
            raise ConfigError(f"model.box_head_convs={self.box_head_convs}: expected a number >= 1")
        if self.fpn_stages not in (3, 4):
            raise ConfigError(f"model.fpn_stages={self.fpn_stages}: expected 3 (C2..C4) or 4 (C2..C5)")
        if self.fpn and len(self.anchor_sizes) != self.fpn_stages + 1:
            raise ConfigError(
                f"model.anchor_sizes={self.anchor_sizes}: the FPN has {self.fpn_stages + 1} levels, so it "
                f"needs {self.fpn_stages + 1} sizes, one per level"
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
    dataset: str = "shapes"  # shapes | figures | coco | coco_keypoints
    data_root: str = "data/shapes"
    train_split: str = "train"
    val_split: str = "val"
    batch_size: int = 4  # images per process
    iters: int = 1000  # the recipe's length, for base_batch_size images per iteration (engine/scaling.py)
    fixed_iters: int = 0  # >0: run exactly this many iterations (--iters), not the recipe's length scaled
    time_budget_s: float = 0.0  # >0: the whole run's seconds; iters is then a cap (engine/budget.py)
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "step"  # step | cosine
    lr_steps: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    warmup_iters: int = 1000
    warmup_factor: float = 0.001
    base_batch_size: int = 16  # the total batch (images per iteration, all processes) the recipe is for
    scale_lr: bool = True  # lr x (total batch / base_batch_size): the linear scaling rule
    scale_schedule: bool = False  # iters, lr_steps, warmup_iters x (base_batch_size / total batch)
    hflip: bool = True  # random horizontal flips in training (scale jitter: several model.min_size)
    num_workers: int = 2
    amp: bool = True  # CUDA: bf16 on sm >= 80, else fp16 + GradScaler; CPU: bf16 if native (avx512_bf16)
    channels_last: bool = False
    backbone_weights: str = "none"  # none | imagenet | PATH to a state dict
    log_every: int = 20
    checkpoint_every: int = 500
    eval_at_end: bool = True
    seed: int = 0
    device: str = "auto"
    num_train_images: int = 0  # shapes: how many images to generate (0: the dataset's default)
    num_val_images: int = 0

    def validate(self) -> TrainConfig:
        """Raise a one-line ConfigError naming the first bad field and what it accepts."""
        choices = {
            "dataset": ("shapes", "figures", "coco", "coco_keypoints"),
            "optimizer": ("sgd", "adamw"),
            "schedule": ("step", "cosine"),
        }
        for name, allowed in choices.items():
            if (v := getattr(self, name)) not in allowed:
                raise ConfigError(f"train.{name}={v!r}: expected one of {', '.join(allowed)}")
        for name, f in ((f.name, f) for f in dataclasses.fields(self)):  # types first: from JSON or Python
            v = getattr(self, name)
            kind = {"int": int, "float": (int, float), "bool": bool, "str": str}.get(str(f.type))
            if kind is not None and (not isinstance(v, kind) or (kind is not bool and isinstance(v, bool))):
                raise ConfigError(f"train.{name}={v!r}: expected a value of type {f.type}")
        bounds = {  # name: (lowest value, is the lowest value itself excluded?)
            "batch_size": (1, False),
            "iters": (1, False),
            "base_batch_size": (1, False),
            "num_workers": (0, False),
            "log_every": (1, False),
            "checkpoint_every": (1, False),
            "warmup_iters": (0, False),
            "lr": (0, True),
            "weight_decay": (0, False),
            "momentum": (0, False),
            "lr_gamma": (0, True),
            "warmup_factor": (0, True),
            "time_budget_s": (0, False),
            "seed": (0, False),
            "num_train_images": (0, False),
            "num_val_images": (0, False),
            "fixed_iters": (0, False),
        }
        for name, (low, strict) in bounds.items():
            v = getattr(self, name)
            if not math.isfinite(v):
                raise ConfigError(f"train.{name}={v!r}: expected a finite number")
            if v < low or (strict and v == low):
                raise ConfigError(f"train.{name}={v!r}: expected a number {'>' if strict else '>='} {low}")
        for name in ("momentum", "lr_gamma", "warmup_factor"):
            if getattr(self, name) > 1:
                raise ConfigError(f"train.{name}={getattr(self, name)!r}: expected a number <= 1")
        steps = self.lr_steps
        if (
            not isinstance(steps, tuple)
            or any(not isinstance(s, int) or s < 1 for s in steps)
            or list(steps) != sorted(set(steps))
        ):
            raise ConfigError(f"train.lr_steps={steps!r}: expected increasing positive iteration counts")
        for name in ("data_root", "train_split", "val_split"):
            if not getattr(self, name):
                raise ConfigError(f"train.{name}={getattr(self, name)!r}: expected a non-empty string")
        check_device(self.device, "train.device")
        w = self.backbone_weights
        if w not in ("none", "imagenet") and not Path(w).is_file():
            raise ConfigError(f"train.backbone_weights={w!r}: expected none, imagenet or an existing file")
        return self


def check_device(name: str, key: str) -> None:
    if not (name in ("auto", "cpu", "cuda") or (name.startswith("cuda:") and name[5:].isdigit())):
        raise ConfigError(f"{key}={name!r}: expected one of auto, cpu, cuda, cuda:N")


@dataclass
class Config:
    name: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> Config:
        """Raise a one-line ConfigError naming the first bad field (model, then train)."""
        self.model.validate()
        self.train.validate()
        return self

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
    return cfg.validate()


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

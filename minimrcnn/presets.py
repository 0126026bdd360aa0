"""Presets: functions that return a `Config`, from the CPU default to the paper's COCO recipes.

    shapes_cpu                  the default: ResNet-18-FPN from scratch on the synthetic shapes, CPU
    coco_r50_fpn_paper          the paper's R50-FPN recipe: 160k iterations, lr 0.02 / 10 at 120k (Table 2a:
                                33.6 mask AP on minival)
    coco_r50_fpn_1x             the paper's R50-FPN model on Detectron's shorter "1x" schedule (90k, steps at
                                60k and 80k)
    coco_r50_c4_1x              the C4 variant (conv5 is the RoI head) on the 1x schedule
    coco_r50_fpn_d2_1x / _3x    Detectron2's recipe: multi-scale training, aligned RoIAlign
    figures_cpu                 keypoints on the synthetic stick figures, CPU (chapter 10)
    coco_keypoints_r50_fpn_1x   the paper's keypoint model and schedule (90k, steps at 60k and 80k)

Why each CPU setting has the value it has, with the runs that chose it: benchmarks/RESULTS.md.
"""

from __future__ import annotations

from minimrcnn.config import Config, ModelConfig, TrainConfig
from minimrcnn.errors import ConfigError


def shapes_cpu() -> Config:
    """The default: from scratch on the synthetic shapes dataset, on a laptop CPU in a few minutes."""
    model = ModelConfig(
        num_classes=4,  # background + circle, square, triangle
        backbone="resnet18",
        fpn_channels=64,  # at 128 the 3x3 convs on P2 (FPN output, RPN) cost half the trunk
        trainable_layers=5,
        norm="bn",
        min_size=(128,),
        max_size=128,
        fpn_stages=3,  # FPN on C2..C4, no conv5: cheaper steps, and no loss of mask AP on these small shapes
        anchor_sizes=(16, 32, 64, 128),  # one per level, P2..P5; shapes span 8 to 72 px
        rpn_pre_nms_top_n_train=300,  # per level, before NMS (more multiplies the NMS work on P2 and P3)
        rpn_post_nms_top_n_train=200,
        rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_test=100,
        box_batch_size_per_image=64,
        box_positive_fraction=0.5,  # up to 32 of the 64 RoIs may be objects: more mask-head examples per step
        box_head="4conv1fc",  # convolutions learn the classes from fewer examples than fc6 on 7x7x64
        box_conv_dim=64,
        box_head_dim=256,
        mask_head_dim=32,  # the mask tower's cost grows with its width squared; 32 buys more iterations
        head_norm="gn",
        detections_per_img=50,
        roi_kernel="minimrcnn",  # our PyTorch RoIAlign: the one the chapters derive, and faster on CPU
        aligned=True,  # pixel centres everywhere: pooling, mask targets, pasting (see model/paste.py)
    )
    train = TrainConfig(
        batch_size=4,
        iters=2000,  # the most a fast machine gets; the time budget decides (engine/budget.py)
        time_budget_s=285.0,  # start-up, data, training, evaluation; slower: fewer iterations
        optimizer="adamw",
        lr=1.5e-3,  # chosen over 1e-3 and 2e-3 at a fixed 900 iterations, three seeds each
        weight_decay=1e-4,
        schedule="cosine",
        warmup_iters=50,
        scale_lr=False,
        hflip=True,
        num_workers=0,  # loading a small image is cheap; a worker process would only compete for the cores
        log_every=10,
        checkpoint_every=200,
    )
    return Config("shapes_cpu", model, train)


def coco_r50_fpn_paper() -> Config:
    """The paper's R50-FPN mask recipe (Sections 3.1 and 4): batch 16 (8 GPUs x 2), lr 0.02, 160k
    iterations, lr / 10 at 120k; weight decay 1e-4, momentum 0.9; short side 800. Expect about 33.6 mask AP
    on COCO minival (the paper's Table 2a)."""
    cfg = coco_r50_fpn_1x()
    cfg.name = "coco_r50_fpn_paper"
    cfg.train.iters = 160_000
    cfg.train.lr_steps = (120_000,)
    return cfg


def coco_r50_fpn_1x() -> Config:
    """The paper's R50-FPN model on Detectron's "1x" schedule: batch 16, lr 0.02, 90k iterations, steps at
    60k and 80k; shorter than the paper's 160k (`coco_r50_fpn_paper`)."""
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
        scale_schedule=True,  # batch 2 x 8 GPUs runs it as written; fewer images per step: more steps
        hflip=True,
        num_workers=4,
        amp=True,
        backbone_weights="imagenet",
        log_every=20,
        checkpoint_every=5000,
    )
    return Config("coco_r50_fpn_1x", model, train)


def coco_r50_c4_1x() -> Config:
    """ResNet-50-C4 on the 1x schedule: conv5 is the RoI head, RoIs pooled from the stride-16 conv4 map.

    Like Faster R-CNN's and Detectron's C4 models, RoIs are pooled 14 x 14 and conv5 runs at stride 2 on
    them (7 x 7 out); the paper instead pools 7 x 7 and runs conv5 at stride 1 (its Figure 4, left). Masks
    are 14 x 14, as in the paper's C4 head."""
    cfg = coco_r50_fpn_1x()
    cfg.name = "coco_r50_c4_1x"
    cfg.model.fpn = False
    cfg.model.mask_resolution = 14
    cfg.model.box_pool_size = 14  # pooled 14x14 on C4, conv5 (stride 2) brings it to 7x7
    cfg.model.rpn_pre_nms_top_n_train = 12000
    cfg.model.rpn_pre_nms_top_n_test = 6000
    return cfg


def coco_r50_fpn_d2_1x() -> Config:
    """Detectron2's R50-FPN recipe (its model zoo: 38.6 box / 35.2 mask AP at 1x).

    Detectron's 1x schedule plus what Detectron2 changed: multi-scale training (short side drawn from
    640..800 in steps of 32, evaluation at 800), RoIAlign with the half-pixel offset (aligned=True, also
    used when pasting masks), adaptive sampling (sampling_ratio=0) and 1000 RPN proposals per image.
    """
    cfg = coco_r50_fpn_1x()
    cfg.name = "coco_r50_fpn_d2_1x"
    cfg.model.min_size = tuple(range(640, 801, 32))  # (640, 672, 704, 736, 768, 800)
    cfg.model.aligned = True
    cfg.model.sampling_ratio = 0
    cfg.model.rpn_post_nms_top_n_train = 1000
    return cfg


def coco_r50_fpn_d2_3x() -> Config:
    """Detectron2's recipe at 3x: 270k iterations, steps at 210k and 250k (41.0 box / 37.2 mask AP)."""
    cfg = coco_r50_fpn_d2_1x()
    cfg.name = "coco_r50_fpn_d2_3x"
    cfg.train.iters = 270_000
    cfg.train.lr_steps = (210_000, 250_000)
    return cfg


def figures_cpu() -> Config:
    """Keypoints on the synthetic stick figures (9 joints), from scratch on a laptop CPU in minutes.

    The shapes_cpu model with the mask head swapped for a narrow keypoint head (chapter 10). It keeps what
    shapes_cpu had when chapter 10's results were run: the FPN on C2..C5 with anchors of 16 to 256 pixels,
    RoIs sampled at most 1:3 positive, 600 RPN anchors per level before NMS in training, a 64-wide mask head
    (for the keypoint & mask variant) and lr 1e-3."""
    cfg = shapes_cpu()
    cfg.name = "figures_cpu"
    m = cfg.model
    m.num_classes, m.mask_on = 2, False  # background + person; keypoint-only, as the paper's main model
    m.keypoint_on, m.num_keypoints = True, 9
    m.keypoint_head_dim, m.keypoint_head_convs = 64, 4
    m.fpn_stages, m.anchor_sizes = 4, (16, 32, 64, 128, 256)
    m.box_positive_fraction = 0.25
    m.mask_head_dim = 64  # the mask head of chapter 10's keypoint & mask variant, as its runs had it
    m.rpn_pre_nms_top_n_train = 600
    cfg.train.lr = 1e-3  # and the lr it had then
    cfg.train.dataset, cfg.train.data_root = "figures", "data/figures"
    cfg.train.iters = 1050  # at most; the time budget plans the actual count (engine/budget.py)
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


PRESETS = {
    "shapes_cpu": shapes_cpu,
    "coco_r50_fpn_paper": coco_r50_fpn_paper,
    "coco_r50_fpn_1x": coco_r50_fpn_1x,
    "coco_r50_c4_1x": coco_r50_c4_1x,
    "coco_r50_fpn_d2_1x": coco_r50_fpn_d2_1x,
    "coco_r50_fpn_d2_3x": coco_r50_fpn_d2_3x,
    "figures_cpu": figures_cpu,
    "coco_keypoints_r50_fpn_1x": coco_keypoints_r50_fpn_1x,
}


def get_preset(name: str) -> Config:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(PRESETS)}")
    return PRESETS[name]()

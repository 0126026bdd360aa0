"""TrainConfig validation (one line naming the key and what it accepts), the schedule scaled with the total
batch (Detectron2's auto_scale_workers rule), and the COCO presets, run at small size on the CPU."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

from minimrcnn.config import TrainConfig, apply_overrides
from minimrcnn.data.shapes import ensure_shapes
from minimrcnn.engine.scaling import scaled_schedule as schedule
from minimrcnn.errors import ConfigError
from minimrcnn.model.mask_rcnn import MaskRCNN
from minimrcnn.presets import PRESETS, coco_r50_fpn_1x, get_preset
from minimrcnn.train import main as train_main


@pytest.mark.parametrize(
    "override,message",
    [
        ("train.schedule=cosin", "train.schedule='cosin': expected one of step, cosine"),
        ("train.optimizer=adam", "train.optimizer='adam': expected one of sgd, adamw"),
        ("train.dataset=voc", "train.dataset='voc': expected one of shapes, figures, coco, coco_keypoints"),
        ("train.lr=-1", "train.lr=-1.0: expected a number > 0"),
        ("train.batch_size=0", "train.batch_size=0: expected a number >= 1"),
        ("train.num_workers=-1", "train.num_workers=-1: expected a number >= 0"),
        ("train.device=gpu0", "train.device='gpu0': expected one of auto, cpu, cuda, cuda:N"),
        ("train.momentum=1.5", "train.momentum=1.5: expected a number <= 1"),
        ("train.lr_steps=80000,60000", "train.lr_steps=(80000, 60000): expected increasing positive"),
        ("train.log_every=0", "train.log_every=0: expected a number >= 1"),
        ("train.backbone_weights=/no/such.pth", "train.backbone_weights='/no/such.pth': expected none,"),
    ],
)
def test_bad_train_values_are_one_line_errors_before_any_work(override, message, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ConfigError) as e:
        train_main(["--preset", "coco_r50_fpn_1x", "--set", override, "--out", str(out), "--no-progress"])
    assert message in str(e.value) and "\n" not in str(e.value)
    assert not out.exists()  # nothing was started


def test_bad_value_on_the_command_line_exits_nonzero_with_one_line():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "minimrcnn.train", "--set", "train.schedule=cosin"],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: train.schedule='cosin': expected one of step, cosine"


def test_validation_checks_types_from_json_too():
    with pytest.raises(ConfigError, match=r"train.iters='10': expected a value of type int"):
        TrainConfig(iters="10").validate()
    with pytest.raises(ConfigError, match=r"train.device='--device': expected one of"):
        TrainConfig(device="--device").validate()
    for name in PRESETS:
        get_preset(name).train.validate()  # every preset is valid as written


def test_scale_jitter_field_is_gone():
    with pytest.raises(ConfigError, match="unknown config key 'train.scale_jitter'"):
        apply_overrides(coco_r50_fpn_1x(), ["train.scale_jitter=640,800"])


def test_schedule_keeps_the_recipes_epochs_at_any_total_batch():
    tc = coco_r50_fpn_1x().train  # batch 2 per GPU, written for a total batch of 16
    eight = schedule(tc, world=8)
    assert (eight.total_batch, eight.lr, eight.iters, eight.lr_steps, eight.warmup_iters) == (
        16, 0.02, 90_000, (60_000, 80_000), 1000,
    )  # fmt: skip
    one = schedule(tc, world=1)  # 1/8 of the batch: 8x the iterations at 1/8 of the lr
    assert (one.total_batch, one.iters, one.warmup_iters) == (2, 720_000, 8000)
    assert one.lr_steps == (480_000, 640_000)
    assert one.lr == pytest.approx(0.0025) and one.scale == 8
    assert one.iters * one.total_batch == eight.iters * eight.total_batch  # the same number of images
    four = schedule(tc, world=4)
    assert (four.iters, four.lr_steps, four.warmup_iters) == (180_000, (120_000, 160_000), 2000)
    # an explicit length (--iters: train.fixed_iters) wins; the steps and warmup keep their place as fractions
    short = schedule(dataclasses.replace(tc, fixed_iters=900), world=1)
    assert (short.iters, short.lr_steps, short.warmup_iters) == (900, (600, 800), 10)
    # shapes_cpu does not scale its schedule (nor its lr)
    shapes = schedule(get_preset("shapes_cpu").train, world=2)
    assert (shapes.iters, shapes.lr, shapes.warmup_iters) == (2000, 1.5e-3, 50)


def test_detectron2_presets():
    d2 = get_preset("coco_r50_fpn_d2_1x")
    assert d2.model.min_size == (640, 672, 704, 736, 768, 800) and d2.model.aligned
    assert (d2.train.iters, d2.train.lr_steps) == (90_000, (60_000, 80_000))
    d3 = get_preset("coco_r50_fpn_d2_3x")
    assert (d3.train.iters, d3.train.lr_steps) == (270_000, (210_000, 250_000)) and d3.model.aligned
    # multi-scale training: the short side is drawn from 640..800 in training, 800 at evaluation
    model = MaskRCNN(apply_overrides(get_preset("coco_r50_fpn_d2_1x"), ["model.backbone=resnet18"]).model)
    image = torch.rand(3, 60, 80)
    model.train()
    sides = {model.transform.resize(image, None)[0].shape[-2] for _ in range(60)}
    assert sides == {640, 672, 704, 736, 768, 800}
    model.eval()
    assert model.transform.resize(image, None)[0].shape[-2] == 800


SMALL = [
    "--set", "model.backbone=resnet18", "--set", "model.fpn_channels=32", "--set", "model.box_head_dim=64",
    "--set", "model.mask_head_dim=32", "--set", "model.max_size=64",
    "--set", "model.box_batch_size_per_image=32",
    "--set", "model.rpn_pre_nms_top_n_test=100", "--set", "model.rpn_post_nms_top_n_test=50",
    "--set", "train.batch_size=2", "--set", "train.num_workers=0", "--set", "train.log_every=1",
    "--backbone-weights", "none", "--device", "cpu", "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def coco_small(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco_small")
    ensure_shapes(root, "train2017", 6, image_size=64)
    ensure_shapes(root, "val2017", 2, image_size=64)
    return root


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset,min_size",
    [("coco_r50_fpn_1x", "64"), ("coco_r50_fpn_d2_1x", "48,56,64"), ("coco_r50_fpn_d2_3x", "48,56,64")],
)
def test_coco_presets_train_and_evaluate_at_small_size(preset, min_size, coco_small, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / preset
    code = train_main(["--preset", preset, "--data-root", str(coco_small), "--out", str(out), "--iters", "2",
                       "--set", f"model.min_size={min_size}", *SMALL])  # fmt: skip
    assert code == 0
    cfg = json.loads((out / "config.json").read_text())
    eff = cfg["effective"]  # the schedule the run followed, scaled to its total batch of 2
    assert eff["total_batch"] == 2 and eff["iters"] == 2 and eff["lr"] == pytest.approx(0.02 * 2 / 16)
    assert cfg["name"] == preset and cfg["model"]["aligned"] == (preset != "coco_r50_fpn_1x")
    ev = json.loads((out / "eval.json").read_text())
    assert ev["iteration"] == 2 and set(ev) == {"iteration", "bbox", "segm"}


def test_paper_preset_follows_the_papers_schedule_and_1x_is_detectrons():
    """The paper's mask models: 160k iterations at batch 16, lr 0.02 / 10 at 120k (Section 3.1); Detectron's
    1x: 90k, steps at 60k and 80k. On 8 processes x 2 images both run as written."""
    paper, one_x = get_preset("coco_r50_fpn_paper").train, coco_r50_fpn_1x().train
    s = schedule(paper, 8)
    assert (s.total_batch, s.lr, s.iters, s.lr_steps) == (16, 0.02, 160_000, (120_000,))
    s = schedule(one_x, 8)
    assert (s.iters, s.lr_steps) == (90_000, (60_000, 80_000))
    assert s.lr_gamma == paper.lr_gamma == 0.1

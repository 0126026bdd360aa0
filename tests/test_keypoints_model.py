"""The keypoint model: torchvision equivalence, training steps, the presets, checks and drawing."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

from minimrcnn.config import ConfigError, ModelConfig  # noqa: E402
from minimrcnn.convert import from_torchvision, perturb_batchnorm  # noqa: E402
from minimrcnn.data import build_dataset  # noqa: E402
from minimrcnn.data.figures import SKELETON, ensure_figures  # noqa: E402
from minimrcnn.data.samplers import collate  # noqa: E402
from minimrcnn.model.mask_rcnn import MaskRCNN  # noqa: E402
from minimrcnn.presets import coco_keypoints_r50_fpn_1x, figures_cpu, get_preset
from minimrcnn.viz import draw_detections  # noqa: E402


def test_from_torchvision_keypointrcnn_equal_outputs():
    torch.manual_seed(0)
    tv = torchvision.models.detection.keypointrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=2, min_size=256, max_size=400
    )
    perturb_batchnorm(tv)
    tv.roi_heads.score_thresh = 0.0  # random weights: keep every candidate
    tv.roi_heads.detections_per_img = 12  # (the 8 x 512 convs on 100 RoIs per image are slow on a CPU)
    tv.eval()
    ours = from_torchvision(tv)
    cfg = ours.cfg
    assert cfg.keypoint_on and not cfg.mask_on and cfg.num_keypoints == 17
    assert (cfg.keypoint_head_dim, cfg.keypoint_head_convs, cfg.keypoint_pool_size) == (512, 8, 14)
    g = torch.Generator().manual_seed(1)
    images = [torch.rand(3, 200, 264, generator=g), torch.rand(3, 250, 170, generator=g)]
    with torch.no_grad():
        want, got = tv(images), ours(images)
    for a, b in zip(want, got):
        assert len(a["boxes"]) == len(b["boxes"]) == 12
        torch.testing.assert_close(b["boxes"], a["boxes"], rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(b["scores"], a["scores"], rtol=1e-5, atol=1e-5)
        assert torch.equal(b["labels"], a["labels"])
        assert b["keypoints"].shape == a["keypoints"].shape == (12, 17, 3)
        torch.testing.assert_close(b["keypoints"], a["keypoints"], rtol=1e-5, atol=1e-3)
        torch.testing.assert_close(b["keypoints_scores"], a["keypoints_scores"], rtol=1e-4, atol=1e-3)


def _tiny_figures_cfg(root):
    cfg = figures_cpu()
    m = cfg.model
    m.fpn_channels, m.box_conv_dim, m.box_head_dim, m.keypoint_head_dim, m.keypoint_head_convs = (
        32,
        32,
        64,
        32,
        2,
    )
    m.box_batch_size_per_image = 32
    cfg.train.data_root = str(root)
    cfg.train.num_train_images, cfg.train.num_val_images = 8, 4
    return cfg


def test_a_few_training_steps_reduce_the_keypoint_loss(tmp_path):
    cfg = _tiny_figures_cfg(tmp_path)
    torch.manual_seed(0)
    data = build_dataset(cfg.train, "train", train=False)
    images, targets = collate([data[i] for i in range(2)])
    model = MaskRCNN(cfg.model).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    history = []
    for _ in range(25):
        losses = model(list(images), list(targets))
        history.append({k: v.item() for k, v in losses.items()})
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
    assert set(history[0]) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg",
                               "loss_keypoint"}  # fmt: skip
    assert history[0]["loss_keypoint"] > 6.5  # about ln(56 * 56) = 8.05 at the start
    first = sum(h["loss_keypoint"] for h in history[:3]) / 3
    last = sum(h["loss_keypoint"] for h in history[-3:]) / 3
    assert last < first - 1.0
    assert sum(history[-1].values()) < sum(history[0].values())


def test_keypoint_and_mask_model_trains_and_predicts_both(tmp_path):
    cfg = _tiny_figures_cfg(tmp_path)
    cfg.model.mask_on, cfg.model.mask_head_dim = True, 16
    data = build_dataset(cfg.train, "train", train=False)
    images, targets = collate([data[i] for i in range(2)])
    model = MaskRCNN(cfg.model).train()
    losses = model(list(images), list(targets))
    assert {"loss_mask", "loss_keypoint"} <= set(losses)
    model.eval()
    with torch.no_grad():
        out = model(list(images))[0]
    n = len(out["boxes"])
    assert out["masks"].shape == (n, 1, 128, 128)
    assert out["keypoints"].shape == (n, 9, 3) and out["keypoints_scores"].shape == (n, 9)


def test_bad_keypoint_targets_are_one_line_errors(tmp_path):
    cfg = _tiny_figures_cfg(tmp_path)
    model = MaskRCNN(cfg.model).train()
    image = torch.rand(3, 64, 64)
    target = {"boxes": torch.tensor([[1.0, 1.0, 30.0, 40.0]]), "labels": torch.tensor([1])}
    with pytest.raises(ValueError, match=r"targets\[0\]: missing 'keypoints'"):
        model([image], [target])
    with pytest.raises(ValueError, match=r"targets\[0\]\['keypoints'\]: expected float \[1, 9, 3\]"):
        model([image], [{**target, "keypoints": torch.zeros(1, 17, 3)}])
    with pytest.raises(ConfigError, match="keypoint_on=True needs fpn=True"):
        ModelConfig(keypoint_on=True, fpn=False, mask_on=False).validate()


def test_presets():
    cpu = get_preset("figures_cpu")
    assert cpu.model.keypoint_on and not cpu.model.mask_on and cpu.model.num_keypoints == 9
    assert cpu.train.dataset == "figures" and cpu.train.time_budget_s <= 300
    gpu = coco_keypoints_r50_fpn_1x()
    m, t = gpu.model, gpu.train
    assert (m.backbone, m.fpn, m.num_classes, m.num_keypoints) == ("resnet50", True, 2, 17)
    assert (m.keypoint_head_dim, m.keypoint_head_convs, m.keypoint_pool_size) == (512, 8, 14)
    assert min(m.min_size) == 640 and max(m.min_size) == 800 and m.min_size[-1] == 800
    assert t.iters == 90_000 and t.base_batch_size == 16 and t.lr_steps == (60_000, 80_000)
    assert t.dataset == "coco_keypoints"


def test_gpu_preset_runs_small_on_cpu(tmp_path):
    """The COCO keypoint recipe, unchanged but for image size, RoI counts and the number of joints, on a
    tiny figures set laid out as COCO (train2017/, val2017/, annotations/person_keypoints_*.json)."""
    from minimrcnn.engine.trainer import train

    root = tmp_path / "coco"
    ensure_figures(root, "train2017", 4)
    ensure_figures(root, "val2017", 2)
    cfg = coco_keypoints_r50_fpn_1x()
    cfg.train.data_root = str(root)
    m = cfg.model
    m.num_keypoints, m.min_size, m.max_size = 9, (96, 128), 128
    m.rpn_pre_nms_top_n_train = m.rpn_post_nms_top_n_train = 100
    m.rpn_pre_nms_top_n_test = m.rpn_post_nms_top_n_test = 50
    m.box_batch_size_per_image, m.detections_per_img = 32, 5
    t = cfg.train
    t.backbone_weights, t.iters, t.batch_size, t.num_workers, t.log_every = "none", 2, 2, 0, 1
    cfg.train.fixed_iters = 2  # (the recipe would scale to batch 2)
    result = train(cfg, tmp_path / "run", progress=False)
    assert result["iteration"] == 2
    saved = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert set(saved["keypoints"]) == {"AP", "AP50", "AP75", "APm", "APl"} and "segm" not in saved
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert ckpt["skeleton"] == SKELETON and len(ckpt["keypoint_names"]) == 9


def test_draw_detections_draws_the_skeleton():
    det = {"boxes": torch.tensor([[10.0, 10.0, 60.0, 90.0]]), "scores": torch.tensor([0.9]),
           "labels": torch.tensor([1]), "keypoints": torch.rand(1, 9, 3) * 50 + 10}  # fmt: skip
    det["keypoints"][..., 2] = 1
    fig, ax = plt.subplots()
    draw_detections(torch.rand(3, 100, 100), det, ["bg", "person"], 0.5, ax, skeleton=SKELETON)
    assert len(ax.lines) == len(SKELETON)  # one line per bone
    plt.close(fig)

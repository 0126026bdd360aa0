"""Shapes and behaviour of each module, the loss definitions, every ablation variant, and learning."""

import pytest
import torch
import torchvision

from minimrcnn.config import ModelConfig
from minimrcnn.errors import ConfigError
from minimrcnn.model.anchors import AnchorGenerator, cell_anchors
from minimrcnn.model.backbone import FrozenBatchNorm2d
from minimrcnn.model.fpn import FPN
from minimrcnn.model.mask_head import (
    MaskHead,
    MLPMaskHead,
    mask_loss,
    mask_probabilities,
    upsample_and_predict,
)
from minimrcnn.model.mask_rcnn import MaskRCNN
from minimrcnn.model.paste import paste_masks_in_image
from minimrcnn.model.poolers import RoILevelMapper
from minimrcnn.presets import shapes_cpu


def tiny_cfg(**kw) -> ModelConfig:
    cfg = shapes_cpu().model
    cfg.min_size, cfg.max_size = (64,), 64
    cfg.fpn_channels, cfg.box_head_dim, cfg.mask_head_dim = 32, 64, 32
    cfg.rpn_pre_nms_top_n_train, cfg.rpn_post_nms_top_n_train = 200, 50
    cfg.rpn_pre_nms_top_n_test, cfg.rpn_post_nms_top_n_test = 100, 30
    cfg.box_batch_size_per_image = 32
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def toy_batch(n: int = 2, size: int = 64, seed: int = 0):
    """Bright squares (label 1) and disks (label 2) on dark noise; masks are exact."""
    g = torch.Generator().manual_seed(seed)
    images, targets = [], []
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    for i in range(n):
        img = torch.rand(3, size, size, generator=g) * 0.2
        masks = torch.zeros(2, size, size, dtype=torch.uint8)
        masks[0, 8 + i : 30 + i, 6:28] = 1
        masks[1] = ((yy - 44) ** 2 + (xx - 42 + i) ** 2 <= 12**2).to(torch.uint8)
        img[0] += masks[0] * 0.8
        img[2] += masks[1] * 0.8
        boxes = torch.stack(
            [torchvision.ops.masks_to_boxes(m[None])[0] + torch.tensor([0, 0, 1, 1]) for m in masks]
        )
        images.append(img.clamp(0, 1))
        targets.append({"boxes": boxes.float(), "labels": torch.tensor([1, 2]), "masks": masks})
    return images, targets


# ------------------------------------------------------------------------------------------------ modules
def test_frozen_bn_equals_batchnorm_in_eval():
    bn = torch.nn.BatchNorm2d(8).eval()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 2)
    bn.bias.data.uniform_(-1, 1)
    frozen = FrozenBatchNorm2d(8)
    frozen.load_state_dict(bn.state_dict())
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(frozen(x), bn(x))
    assert not list(frozen.parameters())


def test_fpn_shapes_and_strides():
    fpn = FPN([16, 32, 64, 128], 24)
    feats = [torch.randn(1, c, 64 // s, 96 // s) for c, s in zip([16, 32, 64, 128], [4, 8, 16, 32])]
    outs = fpn(feats)
    assert [tuple(o.shape) for o in outs] == [(1, 24, 16, 24), (1, 24, 8, 12), (1, 24, 4, 6), (1, 24, 2, 3),
                                              (1, 24, 1, 2)]  # fmt: skip


def test_level_mapper_rule():
    boxes = torch.tensor(
        [[0, 0, 224, 224], [0, 0, 112, 112], [0, 0, 448, 448], [0, 0, 10, 10], [0, 0, 2000, 2000.0]]
    )
    assert RoILevelMapper(2, 5)(boxes).tolist() == [2, 1, 3, 0, 3]  # P4, P3, P5, P2 (clamped), P5 (clamped)


def test_conv_box_head_shapes_and_config():
    from minimrcnn.model.box_head import ConvFCHead

    head = ConvFCHead(16, conv_dim=32, pool_size=7, dim=24, norm="gn")
    assert head(torch.randn(5, 16, 7, 7)).shape == (5, 24)
    assert sum(isinstance(m, torch.nn.GroupNorm) for m in head.modules()) == 4
    model = MaskRCNN(tiny_cfg(box_head="4conv1fc", box_conv_dim=16))
    assert isinstance(model.roi_heads.box_head, ConvFCHead)
    two = MaskRCNN(tiny_cfg(box_head="4conv1fc", box_conv_dim=16, box_head_convs=2)).roi_heads.box_head
    assert sum(isinstance(m, torch.nn.Conv2d) for m in two.modules()) == 2
    with pytest.raises(ConfigError, match=r"model.box_head_convs=0: expected a number >= 1"):
        tiny_cfg(box_head_convs=0).validate()
    with pytest.raises(Exception, match="box_head"):
        tiny_cfg(box_head="3fc").validate()


def test_anchors_match_torchvision():
    from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchors
    from torchvision.models.detection.image_list import ImageList

    sizes, ratios = ((32,), (64,)), (0.5, 1.0, 2.0)
    feats = [torch.zeros(1, 4, 16, 20), torch.zeros(1, 4, 8, 10)]
    ours = AnchorGenerator(sizes, ratios)(feats, (64, 80), 2)
    ref = TVAnchors(sizes, (ratios, ratios))(ImageList(torch.zeros(2, 3, 64, 80), [(64, 80)] * 2), feats)
    assert len(ours) == 2 and torch.equal(ours[0], ref[0])
    assert cell_anchors((32,), (1.0,)).tolist() == [[-16.0, -16.0, 16.0, 16.0]]


@pytest.mark.parametrize("kind,channels", [("fcn4", 5), ("fcn2", 5), ("fcn0", 5), ("mlp", 5), ("fcn4", 1)])
def test_mask_head_shapes(kind, channels):
    def head(pool_size: int) -> torch.nn.Module:
        if kind == "mlp":
            return MLPMaskHead(16, channels, pool_size)
        return MaskHead(16, channels, num_convs=int(kind[-1]), dim=8)

    assert head(14)(torch.randn(3, 16, 14, 14)).shape == (3, channels, 28, 28)
    assert head(28)(torch.randn(2, 16, 28, 28)).shape == (2, channels, 56, 56)
    convs = head(14).convs if kind != "mlp" else []
    assert sum(isinstance(m, torch.nn.Conv2d) for m in convs) == (int(kind[-1]) if kind != "mlp" else 0)


@pytest.mark.parametrize("n,c_in,c_out,k,s", [(5, 16, 8, 3, 7), (0, 16, 8, 3, 14), (2, 12, 12, 1, 28)])
def test_upsample_and_predict_is_deconv_relu_predictor(n, c_in, c_out, k, s):
    """The FCN head's tail as two matmuls: the values and gradients of ConvTranspose2d + ReLU + Conv2d."""
    torch.manual_seed(0)
    deconv, predictor = torch.nn.ConvTranspose2d(c_in, c_out, 2, stride=2), torch.nn.Conv2d(c_out, k, 1)
    x = torch.randn(n, c_in, s, s, dtype=torch.float64, requires_grad=True)
    deconv, predictor = deconv.double(), predictor.double()
    ours = upsample_and_predict(x, deconv, predictor)  # [N, K, 2S, 2S]
    ref = predictor(torch.relu(deconv(x)))
    assert ours.shape == ref.shape == (n, k, 2 * s, 2 * s)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ref)
    params = [x, deconv.weight, deconv.bias, predictor.weight, predictor.bias]
    for a, b in zip(torch.autograd.grad(ours, params, g), torch.autograd.grad(ref, params, g)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------ losses
def test_sigmoid_mask_loss_only_touches_gt_channel():
    logits = torch.randn(4, 5, 28, 28, requires_grad=True)
    labels = torch.tensor([1, 3, 3, 4])
    targets = (torch.rand(4, 28, 28) > 0.5).float()
    loss = mask_loss(logits, labels, targets, "sigmoid")
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[torch.arange(4), labels], targets)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    grad_norm_per_channel = logits.grad.abs().sum(dim=(2, 3))  # [4, 5]
    onehot = torch.nn.functional.one_hot(labels, 5).bool()
    assert (grad_norm_per_channel[onehot] > 0).all() and (grad_norm_per_channel[~onehot] == 0).all()


def test_softmax_mask_loss_classes_compete():
    logits = torch.randn(3, 4, 28, 28, requires_grad=True)
    labels = torch.tensor([1, 2, 3])
    targets = torch.rand(3, 28, 28)
    loss = mask_loss(logits, labels, targets, "softmax")
    pixel_labels = torch.where(targets >= 0.5, labels[:, None, None], 0)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits, pixel_labels))
    loss.backward()
    assert (logits.grad.abs().sum(dim=(2, 3)) > 0).all()  # every class channel receives gradient
    probs = mask_probabilities(logits.detach(), labels, "softmax")
    torch.testing.assert_close(probs[:, 0], torch.softmax(logits.detach(), 1)[torch.arange(3), labels])


def test_agnostic_mask_loss_uses_one_channel():
    logits = torch.randn(3, 1, 28, 28)
    labels = torch.tensor([1, 2, 3])
    targets = torch.rand(3, 28, 28)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], targets)
    torch.testing.assert_close(mask_loss(logits, labels, targets, "agnostic"), ref)
    assert mask_probabilities(logits, labels, "agnostic").shape == (3, 1, 28, 28)


def test_mask_loss_with_no_positives_is_zero_with_graph():
    logits = torch.randn(0, 5, 28, 28, requires_grad=True)
    loss = mask_loss(logits, torch.zeros(0, dtype=torch.int64), torch.zeros(0, 28, 28), "sigmoid")
    assert loss.item() == 0 and loss.requires_grad


# ------------------------------------------------------------------------------------------------ paste
def test_paste_matches_torchvision_including_boxes_outside():
    from torchvision.models.detection.roi_heads import paste_masks_in_image as tv_paste

    g = torch.Generator().manual_seed(0)
    masks = torch.rand(6, 1, 28, 28, generator=g)
    boxes = torch.tensor([[10, 12, 40, 30], [-5, -8, 20, 15], [50, 40, 90, 75], [0, 0, 1.5, 1.2],
                          [33.3, 7.7, 34.1, 60.2], [5, 5, 79.9, 59.9]])  # fmt: skip
    torch.testing.assert_close(paste_masks_in_image(masks, boxes, (60, 80)), tv_paste(masks, boxes, (60, 80)),
                               rtol=0, atol=1e-5)  # fmt: skip
    assert paste_masks_in_image(masks[:0], boxes[:0], (60, 80)).shape == (0, 1, 60, 80)


# ------------------------------------------------------------------------------------------------ model
def test_train_mode_returns_five_finite_losses():
    torch.manual_seed(0)
    model = MaskRCNN(tiny_cfg()).train()
    losses = model(*toy_batch())
    assert set(losses) == {
        "loss_objectness",
        "loss_rpn_box_reg",
        "loss_classifier",
        "loss_box_reg",
        "loss_mask",
    }
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.roi_heads.mask_head.predictor.weight.grad.abs().sum() > 0


def test_eval_mode_output_format():
    torch.manual_seed(0)
    cfg = tiny_cfg(box_score_thresh=0.0)
    model = MaskRCNN(cfg).eval()
    images = [torch.rand(3, 50, 70), torch.rand(3, 64, 40)]
    with torch.no_grad():
        out = model(images)
    for det, img in zip(out, images):
        n = det["boxes"].shape[0]
        assert (
            n > 0
            and det["boxes"].shape == (n, 4)
            and det["labels"].shape == (n,)
            and det["scores"].shape == (n,)
        )
        assert det["masks"].shape == (n, 1, *img.shape[-2:])
        assert det["masks"].min() >= 0 and det["masks"].max() <= 1
        assert (det["boxes"][:, 2] <= img.shape[-1] + 1e-4).all() and (det["labels"] >= 1).all()


def test_image_without_objects_trains():
    images, targets = toy_batch()
    targets[1] = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
                  "masks": torch.zeros(0, 64, 64, dtype=torch.uint8)}  # fmt: skip
    losses = MaskRCNN(tiny_cfg()).train()(images, targets)
    assert all(torch.isfinite(v) for v in losses.values())


def test_degenerate_box_is_a_clear_error():
    images, targets = toy_batch()
    targets[1]["boxes"][0] = torch.tensor([10.0, 10.0, 10.0, 20.0])
    with pytest.raises(ValueError, match=r"targets\[1\]\['boxes'\]\[0\].*degenerate"):
        MaskRCNN(tiny_cfg()).train()(images, targets)


@pytest.mark.parametrize(
    "overrides",
    [
        {"pooler": "roipool"},
        {"pooler": "roiwarp"},
        {"pooler": "roialign", "aligned": True, "roi_kernel": "minimrcnn"},
        {"mask_loss": "softmax"},
        {"mask_loss": "agnostic"},
        {"mask_head": "mlp"},
        {"mask_head": "fcn2"},
        {"mask_resolution": 56},
        {"mask_on": False},
        {"box_head": "4conv1fc", "box_conv_dim": 16},
        {"head_norm": "none", "norm": "frozen_bn", "trainable_layers": 3},
    ],
)
def test_every_ablation_variant_trains_and_predicts(overrides):
    torch.manual_seed(0)
    model = MaskRCNN(tiny_cfg(**overrides))
    losses = model.train()(*toy_batch())
    assert ("loss_mask" in losses) == model.cfg.mask_on
    sum(losses.values()).backward()
    model.eval()
    model.roi_heads.score_thresh = 0.0
    with torch.no_grad():
        det = model([torch.rand(3, 64, 64)])[0]
    assert ("masks" in det) == model.cfg.mask_on


def test_c4_variant_shapes():
    torch.manual_seed(0)
    cfg = tiny_cfg(fpn=False, backbone="resnet18", box_pool_size=14, mask_resolution=14,
                   anchor_sizes=(16, 32, 64), mask_head_dim=16)  # fmt: skip
    model = MaskRCNN(cfg)
    feats = model.backbone(torch.rand(1, 3, 64, 64))
    assert len(feats) == 1 and feats[0].shape == (1, 256, 4, 4)  # C4: stride 16
    assert model.rpn.anchor_generator.num_anchors_per_location() == 9
    losses = model.train()(*toy_batch())
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    model.roi_heads.score_thresh = 0.0
    with torch.no_grad():
        det = model([torch.rand(3, 64, 64)])[0]
    assert det["masks"].shape[1:] == (1, 64, 64)


def test_fpn_on_three_stages_has_no_conv5():
    torch.manual_seed(0)
    four = MaskRCNN(tiny_cfg(fpn_stages=4, anchor_sizes=(16, 32, 64, 128, 256)))
    three = MaskRCNN(tiny_cfg(fpn_stages=3, anchor_sizes=(16, 32, 64, 128)))
    assert hasattr(four.backbone.body, "layer4") and not hasattr(three.backbone.body, "layer4")
    assert len(three.backbone.fpn.lateral) == 3
    feats = three.backbone(torch.rand(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]  # P2..P5: strides 4..32
    torch.testing.assert_close(feats[3], feats[2][..., ::2, ::2])  # P5: P4 subsampled, as P6 is P5 otherwise
    losses = three.train()(*toy_batch())
    assert all(torch.isfinite(v) for v in losses.values())
    with pytest.raises(ConfigError, match=r"anchor_sizes=\(16, 32, 64, 128, 256\): the FPN has 4 levels"):
        tiny_cfg(fpn_stages=3, anchor_sizes=(16, 32, 64, 128, 256)).validate()
    with pytest.raises(ConfigError, match=r"model.fpn_stages=2: expected 3 \(C2..C4\) or 4"):
        tiny_cfg(fpn_stages=2).validate()


def test_a_few_steps_reduce_the_loss():
    torch.manual_seed(0)
    model = MaskRCNN(tiny_cfg()).train()
    images, targets = toy_batch()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    history = []
    for _ in range(12):
        torch.manual_seed(1)  # the same sampled RoIs each step, so the losses are comparable
        losses = model(images, targets)
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append({k: v.item() for k, v in losses.items()} | {"total": total.item()})
    assert history[-1]["total"] < 0.6 * history[0]["total"], history
    assert history[-1]["loss_mask"] < history[0]["loss_mask"]


def test_pooling_stays_float32_under_bf16_autocast():
    """RoI coordinates must not be rounded to bf16 (8 mantissa bits: ~4 px at x = 1000)."""
    from minimrcnn.model.poolers import MultiScaleRoIPool

    feats = [torch.randn(1, 4, 256, 256)]
    boxes = [torch.tensor([[1001.0, 3.0, 1013.0, 15.0]])]
    pool = MultiScaleRoIPool(2, "roialign", "minimrcnn", 2, False)
    ref = pool(feats, boxes, [(1024, 1024)])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = pool([f.bfloat16() for f in feats], boxes, [(1024, 1024)])
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, ref, rtol=0.02, atol=0.05)  # only the features' own rounding remains


def test_aligned_paste_is_detectron2_grid_sample_and_round_trips_a_mask():
    """aligned=True: pixel-centre paste (grid_sample, zeros outside) and a target->paste round trip that
    returns the object's own pixels, where torchvision's convention grows small masks by about a pixel."""
    from minimrcnn.model.mask_head import mask_targets

    g = torch.Generator().manual_seed(0)
    masks = torch.rand(4, 1, 28, 28, generator=g)
    boxes = torch.tensor([[10.3, 12.0, 40.7, 30.2], [-5, -8, 20, 15], [50, 40, 90, 75], [3.2, 5.5, 9.1, 11]])
    ours = paste_masks_in_image(masks, boxes, (60, 80), aligned=True)
    ys, xs = torch.arange(60) + 0.5, torch.arange(80) + 0.5
    gx = (xs[None] - boxes[:, :1]) / (boxes[:, 2:3] - boxes[:, :1]) * 2 - 1  # [N, W]
    gy = (ys[None] - boxes[:, 1:2]) / (boxes[:, 3:4] - boxes[:, 1:2]) * 2 - 1  # [N, H]
    grid = torch.stack([gx[:, None, :].expand(-1, 60, -1), gy[:, :, None].expand(-1, -1, 80)], dim=-1)
    ref = torch.nn.functional.grid_sample(masks, grid, align_corners=False)  # zeros padding
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)

    # round trip of small squares: aligned keeps the pixels, torchvision's convention adds a ring
    gt = torch.zeros(1, 40, 40, dtype=torch.uint8)
    gt[0, 10:16, 20:26] = 1  # a 6x6 object
    box = torch.tensor([[20.0, 10.0, 26.0, 16.0]])
    for aligned, expected_pixels in ((True, 36), (False, 49)):
        target = mask_targets(gt, box, torch.tensor([0]), 28, aligned=aligned)
        pasted = paste_masks_in_image(target[:, None], box, (40, 40), aligned=aligned)[0, 0] >= 0.5
        assert int(pasted.sum()) == expected_pixels, (aligned, int(pasted.sum()))


def test_mlp_mask_head_with_no_rois():
    head = MLPMaskHead(16, 5, pool_size=14)
    assert head(torch.zeros(0, 16, 14, 14)).shape == (0, 5, 28, 28)


def test_c4_head_is_resnet_conv5_on_pooled_c4_features(tmp_path):
    """C4 (the paper's Table 2 backbone): given a torchvision ResNet's weights, the trunk is its stem..conv4,
    and every RoI's box and mask features are its conv5 on a 14 x 14 RoIAlign of C4 (boxes: averaged)."""
    from minimrcnn.config import Config
    from minimrcnn.engine.trainer import load_imagenet_weights_into
    from minimrcnn.model.box_head import box_inference
    from minimrcnn.model.mask_head import mask_probabilities

    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None, norm_layer=FrozenBatchNorm2d).eval()
    from minimrcnn.convert import perturb_batchnorm

    perturb_batchnorm(net)
    path = tmp_path / "r18.pt"
    torch.save(net.state_dict(), path)
    model_cfg = tiny_cfg(fpn=False, backbone="resnet18", norm="frozen_bn", box_pool_size=14,
                         mask_resolution=14, anchor_sizes=(16, 32, 64), box_score_thresh=0.0)  # fmt: skip
    cfg = Config(model=model_cfg)
    cfg.train.backbone_weights = str(path)
    model = MaskRCNN(cfg.model).eval()
    load_imagenet_weights_into(model, cfg)

    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        c4 = net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x)))))))
        (feat,) = model.backbone(x)
        torch.testing.assert_close(feat, c4)
        proposals = [torch.tensor([[4.0, 6.0, 40.0, 50.0], [30.0, 2.0, 90.0, 60.0], [0.0, 0.0, 20.0, 12.0]])]
        dets, _ = model.roi_heads([feat], proposals, [(64, 96)])

        def conv5(boxes: torch.Tensor) -> torch.Tensor:
            rois = torch.cat([torch.zeros(len(boxes), 1), boxes], dim=1)
            pooled = torchvision.ops.roi_align(c4, rois, 14, 1 / 16, sampling_ratio=2, aligned=True)
            return net.layer4(pooled)  # [N, 512, 7, 7]

        heads = model.roi_heads
        logits, deltas = heads.box_predictor(conv5(proposals[0]).mean(dim=(2, 3)))
        (want,) = box_inference(logits, deltas, proposals, [(64, 96)], heads.box_coder, 0.0, 0.5, 50)
        assert len(want["boxes"]) > 0
        for k in ("boxes", "scores", "labels"):
            torch.testing.assert_close(dets[0][k], want[k])
        masks = mask_probabilities(heads.mask_head(conv5(want["boxes"])), want["labels"], "sigmoid")
        assert masks.shape[-2:] == (14, 14)
        torch.testing.assert_close(dets[0]["masks"], masks)


def test_thresholds_are_keywords_and_swapped_ones_are_clear_errors():
    from minimrcnn.model.roi_heads import FPNRoIHeads
    from minimrcnn.model.rpn import RPN
    from minimrcnn.ops import Matcher

    model = MaskRCNN(tiny_cfg())
    with pytest.raises(TypeError):
        RPN(model.rpn.anchor_generator, model.rpn.head, 0.3, 0.7)  # positional thresholds: refused
    with pytest.raises(TypeError):
        FPNRoIHeads(None, None, None, None, None, "sigmoid", 0.5)
    with pytest.raises(ValueError, match=r"Matcher\(high=0.3, low=0.7\): the low IoU threshold exceeds"):
        Matcher(0.3, 0.7)
    with pytest.raises(ConfigError, match=r"model.rpn_bg_iou_thresh=0.7 exceeds model.rpn_fg_iou_thresh=0.3"):
        tiny_cfg(rpn_fg_iou_thresh=0.3, rpn_bg_iou_thresh=0.7).validate()


def test_c4_mask_resolution_must_match_the_box_pooler():
    with pytest.raises(Exception, match=r"mask_resolution=28.*box_pool_size=14"):
        tiny_cfg(fpn=False, box_pool_size=14, mask_resolution=28).validate()


def test_image_transform_owns_scale_jitter():
    """Training picks the short side among min_size (Python's random, saved in checkpoints); eval the last."""
    import random

    from minimrcnn.model.transform import ImageTransform

    tf = ImageTransform((64, 96), 1000, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    image = torch.rand(3, 50, 100)
    target = {"boxes": torch.tensor([[10.0, 5.0, 30.0, 25.0]]), "labels": torch.tensor([1]),
              "masks": torch.zeros(1, 50, 100, dtype=torch.uint8)}  # fmt: skip
    random.seed(0)
    seen = {}
    for _ in range(20):
        batch, (t,) = tf.train()([image], [target])
        (size,) = batch.image_sizes
        seen[size] = t["boxes"]
        assert t["masks"].shape[-2:] == size
    assert set(seen) == {(64, 128), (96, 192)}
    torch.testing.assert_close(seen[(64, 128)], target["boxes"] * 1.28)
    assert tf.eval()([image])[0].image_sizes == [(96, 192)]

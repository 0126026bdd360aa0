"""minimrcnn given torchvision's weights gives torchvision's outputs (randomly initialized, perturbed BN)."""

import pytest
import torch
import torchvision

from minimrcnn.config import ModelConfig
from minimrcnn.convert import coco_v1_config, convert_state_dict, from_torchvision, perturb_batchnorm
from minimrcnn.model.backbone import FrozenBatchNorm2d


def _images():
    g = torch.Generator().manual_seed(1)
    # different sizes in one batch: padding, per-image clipping and per-image rescaling all matter
    return [torch.rand(3, 200, 264, generator=g), torch.rand(3, 250, 170, generator=g)]


def _compare(tv_out, our_out):
    for a, b in zip(tv_out, our_out):
        assert len(a["boxes"]) == len(b["boxes"]) > 0
        torch.testing.assert_close(b["boxes"], a["boxes"], rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(b["scores"], a["scores"], rtol=1e-5, atol=1e-5)
        assert torch.equal(b["labels"], a["labels"])
        assert b["masks"].shape == a["masks"].shape
        torch.testing.assert_close(b["masks"], a["masks"], rtol=0, atol=1e-4)


@pytest.fixture(scope="module")
def tv_model():
    torch.manual_seed(0)
    tv = torchvision.models.detection.maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=5, min_size=256, max_size=400
    )
    perturb_batchnorm(tv)
    tv.roi_heads.score_thresh = (
        0.0  # random weights: keep every candidate so that NMS and top-k are exercised
    )
    return tv.eval()


def test_from_torchvision_module_equal_outputs(tv_model):
    ours = from_torchvision(tv_model)
    assert ours.cfg.norm == "bn" and ours.cfg.min_size == (256,) and ours.cfg.num_classes == 5
    images = _images()
    with torch.no_grad():
        _compare(tv_model(images), ours(images))


def test_from_state_dict_with_frozen_bn_eps0(tv_model):
    """COCO v1 weights: frozen BN with eps=0 (what torchvision's COCO_V1 weights need)."""
    frozen = torchvision.ops.misc.FrozenBatchNorm2d
    backbone = torchvision.models.detection.backbone_utils.resnet_fpn_backbone(
        backbone_name="resnet50", weights=None, norm_layer=frozen, trainable_layers=3
    )
    tv = torchvision.models.detection.MaskRCNN(backbone, num_classes=5, min_size=256, max_size=400)
    tv.load_state_dict(tv_model.state_dict())
    frozen_layers = [m for m in tv.modules() if isinstance(m, frozen)]
    assert len(frozen_layers) == 53
    for m in frozen_layers:
        m.eps = 0.0
    tv.roi_heads.score_thresh = 0.0
    tv.eval()
    cfg = coco_v1_config()
    cfg.num_classes, cfg.min_size, cfg.max_size = 5, (256,), 400
    cfg.box_score_thresh = 0.0
    ours = from_torchvision(tv.state_dict(), cfg)
    assert all(m.eps == 0.0 for m in ours.modules() if isinstance(m, FrozenBatchNorm2d))
    images = _images()
    with torch.no_grad():
        reference = tv(images)
        _compare(reference, ours(images))
        # and the eps matters: with the default 1e-5 the scores move
        wrong = from_torchvision(tv.state_dict(), ModelConfig(**{**cfg.__dict__, "frozen_bn_eps": 1e-5}))
        moved = wrong(images)[0]["scores"][:20]
    assert not torch.allclose(moved, reference[0]["scores"][:20], atol=1e-7, rtol=0)


def test_state_dict_without_config_is_an_error(tv_model):
    with pytest.raises(ValueError, match="ModelConfig"):
        from_torchvision(tv_model.state_dict())


def test_key_mapping_covers_every_tensor(tv_model):
    ours = from_torchvision(tv_model)
    converted = convert_state_dict(tv_model.state_dict())
    assert set(converted) == {k for k in ours.state_dict() if not k.endswith("num_batches_tracked")}

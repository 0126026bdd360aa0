"""Mixed precision done right: fp16 + GradScaler where bf16 is only emulated, box decoding in fp32 under
autocast, frozen BN that keeps the activation dtype. The `cuda` tests run on a GPU (gpu_check.sh)."""

import pytest
import torch

from minimrcnn.engine import precision
from minimrcnn.engine.precision import amp_dtype
from minimrcnn.model.backbone import FrozenBatchNorm2d
from minimrcnn.ops.boxes import BoxCoder

CAPABILITIES = [((7, 0), torch.float16), ((7, 5), torch.float16), ((8, 0), torch.bfloat16),
                ((9, 0), torch.bfloat16)]  # fmt: skip


@pytest.mark.parametrize("capability,expected", CAPABILITIES)
def test_amp_dtype_uses_fp16_where_bf16_is_emulated(monkeypatch, capability, expected):
    # V100 (7.0) and T4 (7.5) report is_bf16_supported() == True (emulated), yet only fp16 is fast there
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    assert amp_dtype(torch.device("cuda", 0), enabled=True) == expected
    assert amp_dtype(torch.device("cuda", 0), enabled=False) is None



@pytest.mark.parametrize("native", [True, False])
def test_cpu_autocasts_to_bf16_only_where_it_is_native(monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)  # emulated bf16 is slower than fp32
    assert amp_dtype(torch.device("cpu"), enabled=True) == (torch.bfloat16 if native else None)
    assert amp_dtype(torch.device("cpu"), enabled=False) is None


def test_decode_is_fp32_under_bf16_autocast():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(500, 2, generator=g) * 700 + 500  # proposals with centres beyond 512 px
    ref = torch.cat([xy, xy + torch.rand(500, 2, generator=g) * 100 + 4], 1)  # [500, 4] fp32
    deltas = (torch.randn(500, 8, generator=g) * 0.5).bfloat16()  # what a bf16 head gives
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = coder.decode(deltas, ref)
    want = coder.decode(deltas.float(), ref)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=0, atol=0)  # rounding ref to bf16 would move boxes 2-4 px
    assert (coder.decode(deltas, ref.bfloat16().float()) - want).abs().max() >= 2.0  # that error, shown


def test_frozen_bn_keeps_the_activation_dtype():
    bn = FrozenBatchNorm2d(8)
    bn.running_var.uniform_(0.5, 2.0)
    bn.running_mean.uniform_(-1, 1)
    x = torch.randn(2, 8, 5, 5)
    for dtype in (torch.bfloat16, torch.float16):
        y = bn(x.to(dtype))
        assert y.dtype == dtype
        torch.testing.assert_close(y.float(), bn(x), rtol=2e-2, atol=2e-2)
    assert bn(x).dtype == torch.float32 and bn(x.double()).dtype == torch.float64


# ---------------------------------------------------------------------------------------------- on a GPU
@pytest.mark.cuda
def test_cuda_autocast_keeps_the_trunk_in_low_precision_and_decode_in_fp32():
    from minimrcnn.config import ModelConfig
    from minimrcnn.model.mask_rcnn import MaskRCNN

    dev = torch.device("cuda")
    model = MaskRCNN(ModelConfig(backbone="resnet18", num_classes=5, min_size=(256,), max_size=256)).to(dev)
    dtype = amp_dtype(dev, True)
    seen = []
    model.backbone.body.layer1.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    with torch.autocast("cuda", dtype=dtype):
        det = model.eval()([torch.rand(3, 240, 256, device=dev)])
    assert seen == [dtype]  # frozen BN did not promote the trunk's activations to fp32
    assert det[0]["boxes"].dtype == torch.float32


@pytest.mark.cuda
def test_cuda_training_steps_are_finite_with_amp(tmp_path):
    from minimrcnn.engine.trainer import train
    from minimrcnn.presets import get_preset

    cfg = get_preset("shapes_cpu")
    cfg.train.data_root, cfg.train.num_train_images, cfg.train.num_val_images = str(tmp_path / "d"), 16, 4
    cfg.train.iters, cfg.train.eval_at_end, cfg.train.amp, cfg.train.log_every = 10, True, True, 5
    cfg.train.device = "cuda"
    result = train(cfg, tmp_path / "run", progress=False)
    assert result["iteration"] == 10 and 0.0 <= result["metrics"]["bbox"]["AP"] <= 1.0


@pytest.mark.cuda
def test_cuda_images_to_device_equals_the_cpu_conversion():
    from minimrcnn.data.transforms import images_to_device

    im = torch.randint(0, 256, (3, 37, 53), dtype=torch.uint8)
    (gpu,) = images_to_device([im.pin_memory()], torch.device("cuda"))
    assert torch.equal(gpu.cpu(), im.float() / 255)

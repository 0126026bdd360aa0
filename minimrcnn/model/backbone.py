"""ResNet trunks (torchvision's definitions) with frozen batch norm, split the way Mask R-CNN needs them.

- FPN: the stem and the four stages C2..C5 (strides 4, 8, 16, 32) all feed the pyramid.
- C4: the stem and C2..C4 (stride 16) form the trunk; conv5 (C5) becomes part of the RoI head
  (`roi_heads.Res5RoIHeads`).

Detection batches are small (2 images per GPU in the paper), too small for batch statistics, so the
ImageNet BN statistics and affine parameters are frozen into a per-channel scale and shift.
"""

from __future__ import annotations

import torch
import torchvision
from torch import Tensor, nn

from minimrcnn.errors import WeightsError

STAGES = ("layer1", "layer2", "layer3", "layer4")  # C2, C3, C4, C5


class FrozenBatchNorm2d(nn.Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, all four fixed (buffers, not parameters)."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict: dict[str, Tensor], prefix: str, *args, **kwargs) -> None:
        state_dict.pop(prefix + "num_batches_tracked", None)  # present in nn.BatchNorm2d checkpoints
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()  # [C]
        shift = self.bias - self.running_mean * scale  # [C]
        # in x's dtype: under autocast the convs give bf16/fp16, and fp32 buffers would promote to fp32
        return x * scale.to(x.dtype)[None, :, None, None] + shift.to(x.dtype)[None, :, None, None]

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


def resnet(name: str, norm: str = "frozen_bn", frozen_bn_eps: float = 1e-5) -> torchvision.models.ResNet:
    """An (untrained) torchvision ResNet with the chosen normalization layer."""
    if norm == "frozen_bn":

        def norm_layer(c: int) -> nn.Module:
            return FrozenBatchNorm2d(c, eps=frozen_bn_eps)

    else:
        norm_layer = nn.BatchNorm2d
    return getattr(torchvision.models, name)(weights=None, norm_layer=norm_layer)


def out_channels(name: str) -> list[int]:
    """Channels of C2..C5."""
    base = 64 if name in ("resnet18", "resnet34") else 256
    return [base, base * 2, base * 4, base * 8]


class ResNetBody(nn.Module):
    """Stem + stages of a ResNet; returns the outputs of the requested stages, finest first."""

    def __init__(
        self,
        net: torchvision.models.ResNet,
        stages: tuple[str, ...] = STAGES,
        trainable_layers: int = 3,
        returned: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.stages = stages
        self.returned = returned or stages
        for s in stages:
            setattr(self, s, getattr(net, s))
        # train only the top `trainable_layers` of (layer4, layer3, layer2, layer1, stem)
        trainable = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
        if trainable_layers == 5:
            trainable.append("bn1")
        for name, p in self.named_parameters():
            p.requires_grad_(any(name.startswith(t) for t in trainable))

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # [B, 64, H/4, W/4]
        outs = []
        for s in self.stages:
            x = getattr(self, s)(x)
            if s in self.returned:
                outs.append(x)
        return outs  # FPN: [C2, C3, C4, C5]; C4 trunk: [C4]


def load_imagenet_weights(net: torchvision.models.ResNet, name: str, source: str) -> None:
    """Load ImageNet classification weights: `imagenet` via torchvision's weight enums, or a local file."""
    if source == "imagenet":
        enum = {
            "resnet18": torchvision.models.ResNet18_Weights,
            "resnet34": torchvision.models.ResNet34_Weights,
            "resnet50": torchvision.models.ResNet50_Weights,
            "resnet101": torchvision.models.ResNet101_Weights,
        }[name].IMAGENET1K_V1
        try:
            state = enum.get_state_dict(progress=True)
        except Exception as e:  # offline, proxy, ...
            raise WeightsError(
                f"could not download {name} ImageNet weights ({type(e).__name__}); download {enum.url} "
                f"elsewhere and pass it with --backbone-weights PATH"
            ) from None
    else:
        try:
            state = torch.load(source, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise WeightsError(f"{source}: backbone weights file not found") from None
        except Exception as e:
            raise WeightsError(f"{source}: not a readable state dict ({type(e).__name__})") from None
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("fc.") and "num_batches_tracked" not in k]
    if missing or unexpected:
        raise WeightsError(
            f"{source}: not a {name} state dict (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )

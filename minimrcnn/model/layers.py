"""Small building blocks shared by the RoI heads: the box head "4conv1fc", the mask FCN and the keypoint head
all start with the same tower of 3x3 convolutions."""

from __future__ import annotations

from torch import nn


def conv_gn_relu(cin: int, cout: int, norm: str) -> list[nn.Module]:
    """conv 3x3 (same size) -> GroupNorm (norm="gn") -> ReLU, with He (fan-out) initialization."""
    conv = nn.Conv2d(cin, cout, 3, padding=1, bias=norm == "none")
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    layers: list[nn.Module] = [conv]
    if norm == "gn":
        layers.append(nn.GroupNorm(32 if cout % 32 == 0 else 16, cout))
    return [*layers, nn.ReLU(inplace=True)]


def conv_tower(in_channels: int, dim: int, num_convs: int, norm: str = "none") -> nn.Sequential:
    """num_convs x (conv 3x3, norm, ReLU): [N, in_channels, S, S] -> [N, dim, S, S] (none for num_convs=0)."""
    layers: list[nn.Module] = []
    for i in range(num_convs):
        layers += conv_gn_relu(in_channels if i == 0 else dim, dim, norm)
    return nn.Sequential(*layers)

"""The mask branch: a small FCN on each positive RoI, its targets, its three losses, its inference.

FCN head (the paper's Figure 4, right):  [N, 256, 14, 14] -> 4 x (conv 3x3, 256, ReLU) -> deconv 2x2
stride 2 -> ReLU -> conv 1x1 -> [N, K, 28, 28] mask logits, one channel per class. Variants for the
ablations: `fcn2` (two convs), `MLPMaskHead` (fully connected, the paper's Table 2e), and the output
channels of the `agnostic` (1) and `softmax` (K, competing) losses. Inference (`mask_probabilities`)
keeps the predicted class's mask; pasting it into the image is `minimrcnn.model.paste`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from minimrcnn.model.layers import conv_tower


class MaskHead(nn.Module):
    """The FCN head: RoI features [N, C, S, S] -> num_convs x (conv 3x3, norm, ReLU) -> deconv 2x2 stride 2
    -> ReLU -> conv 1x1 -> mask logits [N, out_channels, 2S, 2S].

    num_convs=4 is the paper's FPN head, 2 the `fcn2` ablation; C4 uses 0: its RoI features already went
    through ResNet's conv5 (`roi_heads.Res5RoIHeads`), so the head is the deconv and the 1x1 predictor.
    `forward` computes the deconv and the predictor as two matmuls (`upsample_and_predict`); the layers hold
    the weights (`minimrcnn.convert` loads torchvision's into them).
    """

    def __init__(
        self, in_channels: int, out_channels: int, num_convs: int = 4, dim: int = 256, norm: str = "none"
    ) -> None:
        super().__init__()
        self.convs = conv_tower(in_channels, dim, num_convs, norm)  # [N, dim, S, S]
        self.deconv = nn.ConvTranspose2d(dim if num_convs else in_channels, dim, 2, stride=2)
        self.predictor = nn.Conv2d(dim, out_channels, 1)
        for m in (self.deconv, self.predictor):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return upsample_and_predict(self.convs(x), self.deconv, self.predictor)  # [N, out_channels, 2S, 2S]


def upsample_and_predict(x: Tensor, deconv: nn.ConvTranspose2d, predictor: nn.Conv2d) -> Tensor:
    """predictor(relu(deconv(x))) for the head's 2x2 stride-2 deconv and 1x1 predictor, as two matmuls.

    With kernel = stride = 2, each input pixel (i, j) paints its own 2x2 block of the output, pixels
    (2i + a, 2j + b), untouched by its neighbours: the deconvolution is one matrix product per pixel,
    [C_in] -> [2, 2, C_out], and the 1x1 predictor another, [C_out] -> [K]. Computed so, the wide
    [N, C_out, 2S, 2S] map stays pixel-major and is never re-laid out; only the input and the K-channel
    output are permuted. The same values and gradients as the two layers (tests/test_model.py), and faster
    on the CPU in bf16, where re-laying out the wide map costs most (`benchmarks/mask_head_tail.py` measures
    it; benchmarks/RESULTS.md has the figures).
    """
    n, c_in, s, _ = x.shape
    c_out, k = deconv.out_channels, predictor.out_channels
    w = deconv.weight.permute(0, 2, 3, 1).reshape(c_in, 4 * c_out)  # [C_in, C_out, 2, 2] -> [C_in, 2*2*C_out]
    pixels = x.permute(0, 2, 3, 1).reshape(n * s * s, c_in)  # [N*S*S, C_in]
    y = F.relu(torch.addmm(deconv.bias.repeat(4), pixels, w), inplace=True)  # [N*S*S, 2*2*C_out]
    y = y.view(n, s, s, 2, 2, c_out)  # ReLU'd in place before the view: on a view, autograd adds a copy
    z = F.linear(y, predictor.weight.view(k, c_out), predictor.bias)  # [N, S, S, 2, 2, K]
    return z.permute(0, 5, 1, 3, 2, 4).reshape(n, k, 2 * s, 2 * s)  # [N, K, 2S, 2S]: row 2i + a, col 2j + b


class MLPMaskHead(nn.Module):
    """The paper's Table 2e ablation: [N, C, S, S] -> fc 1024 -> fc 1024 -> fc -> [N, out, 2S, 2S].

    Fully connected layers see every position separately and lose the spatial layout the FCN keeps.
    """

    def __init__(self, in_channels: int, out_channels: int, pool_size: int = 14) -> None:
        super().__init__()
        self.out_channels, self.resolution = out_channels, 2 * pool_size
        self.fcs = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * pool_size**2, 1024),
            nn.ReLU(inplace=True),
            nn.Linear(1024, 1024),
            nn.ReLU(inplace=True),
            nn.Linear(1024, out_channels * self.resolution**2),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.fcs(x).view(x.shape[0], self.out_channels, self.resolution, self.resolution)


def mask_channels(loss: str, num_classes: int) -> int:
    """How many mask channels the head predicts for a mask loss.

    sigmoid: one binary mask per foreground class (+ an unused background channel, as in torchvision);
    softmax: one score per class incl. background, competing per pixel; agnostic: a single mask."""
    return 1 if loss == "agnostic" else num_classes


def mask_targets(
    gt_masks: Tensor, boxes: Tensor, matched: Tensor, size: int, aligned: bool = False
) -> Tensor:
    """Crop-and-resize each RoI's matched GT mask to size x size with RoIAlign: [N, size, size] in [0, 1].

    gt_masks [G, H, W] uint8, boxes [N, 4] (the positive proposals), matched [N] indices into gt_masks.
    aligned=False is torchvision's target (its weights were trained so); aligned=True samples at pixel
    centres, the convention under which pasting the target back returns the GT mask (see model/paste.py).
    """
    rois = torch.cat([matched[:, None].to(boxes.dtype), boxes], dim=1)  # [N, 5]
    masks = gt_masks[:, None].to(boxes.dtype)  # [G, 1, H, W]
    return torchvision.ops.roi_align(masks, rois, (size, size), 1.0, sampling_ratio=-1, aligned=aligned)[:, 0]


def mask_loss(logits: Tensor, labels: Tensor, targets: Tensor, kind: str) -> Tensor:
    """logits [N, C, M, M], labels [N] (GT class of each positive RoI, >= 1), targets [N, M, M] in [0, 1].

    sigmoid:  binary cross-entropy on the GT class's channel only; the other channels get no gradient.
    softmax:  per-pixel cross-entropy over all C channels; foreground pixels are labelled with the GT
              class, the rest with background (0): classes compete for every pixel (FCIS-style).
    agnostic: binary cross-entropy on the single channel.
    """
    if targets.numel() == 0:
        return logits.sum() * 0
    if kind == "softmax":
        pixel_labels = torch.where(
            targets >= 0.5, labels[:, None, None], torch.zeros_like(labels)[:, None, None]
        )
        return F.cross_entropy(logits, pixel_labels)
    channel = torch.zeros_like(labels) if kind == "agnostic" else labels
    chosen = logits[torch.arange(labels.shape[0], device=labels.device), channel]  # [N, M, M]
    return F.binary_cross_entropy_with_logits(chosen, targets)


def mask_probabilities(logits: Tensor, labels: Tensor, kind: str) -> Tensor:
    """At inference: the predicted class's mask as probabilities, [N, 1, M, M]."""
    idx = torch.arange(labels.shape[0], device=labels.device)
    if kind == "softmax":
        return F.softmax(logits, dim=1)[idx, labels][:, None]
    channel = torch.zeros_like(labels) if kind == "agnostic" else labels
    return torch.sigmoid(logits)[idx, channel][:, None]

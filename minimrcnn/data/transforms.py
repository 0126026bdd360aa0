"""What happens to a batch's images on their way into the model: the move to the device (uint8 bytes
converted to [0, 1] floats there), and the training augmentation that moves the image and its annotations
together, the horizontal flip.

Called as `image, target = flip(image, target)` with `image` a [3, H, W] float tensor and `target` the dict
of `CocoInstances` (boxes [N, 4] xyxy, masks [N, H, W], ...); `target` may be None. The trainer applies it
in its loop (`train.hflip`), drawing from torch's global generator, which checkpoints save and `--resume`
restores, so a resumed run flips the same images as an uninterrupted one. The other augmentation, scale
jitter, is the model's: in training, `ImageTransform` picks the short side among `ModelConfig.min_size`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

Target = dict[str, Any]


class RandomHorizontalFlip:
    """Mirror left-right with probability p: x -> W - x, so a box (x1, x2) becomes (W - x2, W - x1)."""

    def __init__(self, p: float = 0.5, keypoint_flip: Sequence[int] | None = None) -> None:
        self.p = p
        self.keypoint_flip = list(keypoint_flip) if keypoint_flip else None  # joint i becomes joint flip[i]

    def __call__(self, image: Tensor, target: Target | None = None) -> tuple[Tensor, Target | None]:
        if torch.rand(()) >= self.p:
            return image, target
        image = image.flip(-1)
        if target is not None:
            target = dict(target)
            w = image.shape[-1]
            boxes = target["boxes"]  # [N, 4]
            target["boxes"] = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], dim=1)
            if "masks" in target:
                target["masks"] = target["masks"].flip(-1)
            if "keypoints" in target:  # [N, K, 3]: x -> W - x, and a left hand becomes a right hand
                kps = target["keypoints"].clone()
                kps[..., 0] = torch.where(kps[..., 2] > 0, w - kps[..., 0], kps[..., 0])
                if self.keypoint_flip is not None:
                    kps = kps[:, self.keypoint_flip]
                target["keypoints"] = kps
        return image, target

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


def images_to_device(images: Sequence[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """[3, H, W] images -> [0, 1] float32 on `device`. uint8 images travel as bytes (a quarter of the
    float32 traffic) and are converted there; the result equals the CPU's x / 255 in float32 exactly."""
    out = []
    for im in images:  # a loop over images
        im = im.to(device, non_blocking=True)
        out.append(im.float().div_(255) if im.dtype == torch.uint8 else im)
    return out

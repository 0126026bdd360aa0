"""Transforms that move the image and its annotations together.

Each transform is called as `image, target = t(image, target)` with `image` a [3, H, W] float tensor and
`target` the dict of `CocoInstances` (boxes [N, 4] xyxy, masks [N, H, W], area [N], ...); `target` may be
None. Whatever moves the pixels moves the boxes and masks the same way, so a box stays the tight box of
its mask (within a pixel after resizing). Randomness comes from torch's generator, so `torch.manual_seed`
and the DataLoader's per-worker seeding make it reproducible.

The model resizes and normalizes its input itself (`ModelConfig.min_size`, `max_size`, `image_mean`);
these are for the data side: flipping for augmentation, resizing to look at or to pre-shrink data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

Target = dict[str, Any]


class Compose:
    def __init__(self, transforms: Sequence[Any]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: Tensor, target: Target | None = None) -> tuple[Tensor, Target | None]:
        for t in self.transforms:
            image, target = t(image, target)
        return image, target

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


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


def resized_shape(h: int, w: int, min_size: int, max_size: int) -> tuple[int, int]:
    """Scale so the short side becomes min_size, unless that makes the long side exceed max_size."""
    scale = min(min_size / min(h, w), max_size / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


class Resize:
    """Short side to `min_size`, long side at most `max_size`, aspect ratio kept."""

    def __init__(self, min_size: int, max_size: int) -> None:
        self.min_size, self.max_size = min_size, max_size

    def __call__(self, image: Tensor, target: Target | None = None) -> tuple[Tensor, Target | None]:
        h, w = image.shape[-2:]
        new_h, new_w = resized_shape(h, w, self.min_size, self.max_size)
        if (new_h, new_w) == (h, w):
            return image, target
        # antialias: when shrinking, average the pixels a destination pixel covers instead of skipping some
        size = (new_h, new_w)
        image = F.interpolate(image[None], size, mode="bilinear", align_corners=False, antialias=True)[0]
        if target is None:
            return image, target
        target = dict(target)
        sx, sy = new_w / w, new_h / h
        target["boxes"] = target["boxes"] * torch.tensor([sx, sy, sx, sy], dtype=target["boxes"].dtype)
        if "keypoints" in target:
            target["keypoints"] = target["keypoints"] * torch.tensor([sx, sy, 1.0])
        if "area" in target:
            target["area"] = target["area"] * (sx * sy)
        if "masks" in target:
            masks = target["masks"]  # [N, H, W] uint8
            if masks.shape[0] == 0:
                target["masks"] = masks.new_zeros((0, new_h, new_w))
            else:
                # "nearest-exact" samples at pixel centres, so a mask edge moves by at most half a pixel
                resized = F.interpolate(masks[None].float(), (new_h, new_w), mode="nearest-exact")[0]
                target["masks"] = resized.to(masks.dtype)
        return image, target

    def __repr__(self) -> str:
        return f"Resize(min_size={self.min_size}, max_size={self.max_size})"


class RandomResize:
    """Scale jitter: `Resize` with a short side drawn uniformly from `sizes`."""

    def __init__(self, sizes: Sequence[int], max_size: int) -> None:
        if not sizes:
            raise ValueError("RandomResize: sizes must not be empty")
        self.sizes, self.max_size = list(sizes), max_size

    def __call__(self, image: Tensor, target: Target | None = None) -> tuple[Tensor, Target | None]:
        size = self.sizes[int(torch.randint(len(self.sizes), ()))]
        return Resize(size, self.max_size)(image, target)

    def __repr__(self) -> str:
        return f"RandomResize(sizes={self.sizes}, max_size={self.max_size})"

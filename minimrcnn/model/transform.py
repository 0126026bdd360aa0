"""The first and last thing an image meets: normalize, resize, pad into a batch; and undo the resize.

Images arrive as a list of `[3, H, W]` floats in [0, 1], each its own size. The network needs one
`[B, 3, H', W']` tensor whose sides are multiples of the coarsest stride (32), so each image is
normalized, resized so that its short side is `min_size` (long side at most `max_size`), and pasted
into the top-left corner of a zero canvas. `image_sizes` remembers where each image ends, and
`to_original` maps the detections back onto the input images.
"""

from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from minimrcnn.model.paste import paste_masks_in_image


class ImageList:
    """A padded batch `tensors [B, 3, H, W]` plus each image's size before padding: (h, w)."""

    def __init__(self, tensors: Tensor, image_sizes: list[tuple[int, int]]) -> None:
        self.tensors = tensors
        self.image_sizes = image_sizes


def resize_boxes(boxes: Tensor, old_size: tuple[int, int], new_size: tuple[int, int]) -> Tensor:
    """Scale [N, 4] xyxy boxes from an image of old_size (h, w) to one of new_size."""
    ratio_h = torch.tensor(new_size[0], dtype=torch.float32, device=boxes.device) / old_size[0]
    ratio_w = torch.tensor(new_size[1], dtype=torch.float32, device=boxes.device) / old_size[1]
    x1, y1, x2, y2 = boxes.unbind(1)
    return torch.stack((x1 * ratio_w, y1 * ratio_h, x2 * ratio_w, y2 * ratio_h), dim=1)


def resize_keypoints(keypoints: Tensor, old_size: tuple[int, int], new_size: tuple[int, int]) -> Tensor:
    """Scale the (x, y) of [N, K, 3] keypoints from an image of old_size (h, w) to one of new_size."""
    ratio_h = torch.tensor(new_size[0], dtype=torch.float32, device=keypoints.device) / old_size[0]
    ratio_w = torch.tensor(new_size[1], dtype=torch.float32, device=keypoints.device) / old_size[1]
    out = keypoints.clone()
    out[..., 0] *= ratio_w
    out[..., 1] *= ratio_h
    return out


class ImageTransform(nn.Module):
    def __init__(
        self,
        min_size: tuple[int, ...],
        max_size: int,
        image_mean: tuple[float, float, float],
        image_std: tuple[float, float, float],
        size_divisible: int = 32,
    ) -> None:
        super().__init__()
        self.min_size = tuple(min_size)
        self.max_size = max_size
        self.image_mean = image_mean
        self.image_std = image_std
        self.size_divisible = size_divisible

    def normalize(self, image: Tensor) -> Tensor:
        mean = torch.as_tensor(self.image_mean, dtype=image.dtype, device=image.device)
        std = torch.as_tensor(self.image_std, dtype=image.dtype, device=image.device)
        return (image - mean[:, None, None]) / std[:, None, None]

    def resize(self, image: Tensor, target: dict[str, Tensor] | None) -> tuple[Tensor, dict | None]:
        """Short side to min_size (a random choice among min_size in training), long side <= max_size."""
        size = random.choice(self.min_size) if self.training else self.min_size[-1]
        h, w = image.shape[-2:]
        # output size = floor(h * scale) with scale in double precision (as torchvision): 200 px -> 256 px
        scale = min(size / min(h, w), self.max_size / max(h, w))
        # recompute_scale_factor=True: the output size is floor(h * scale), and the sampling grid follows it
        image = F.interpolate(
            image[None], scale_factor=scale, mode="bilinear", recompute_scale_factor=True, align_corners=False
        )[0]
        if target is None:
            return image, None
        target = dict(target)
        target["boxes"] = resize_boxes(target["boxes"], (h, w), tuple(image.shape[-2:]))
        if "keypoints" in target:
            target["keypoints"] = resize_keypoints(target["keypoints"], (h, w), tuple(image.shape[-2:]))
        if "masks" in target:
            masks = target["masks"][:, None].float()  # [N, 1, h, w]
            masks = F.interpolate(masks, scale_factor=scale, recompute_scale_factor=True)  # nearest
            target["masks"] = masks[:, 0].to(torch.uint8)
        return image, target

    def batch(self, images: list[Tensor]) -> Tensor:
        """Zero-pad every image to the largest height/width of the batch, rounded up to size_divisible."""
        d = self.size_divisible
        h = int(math.ceil(max(img.shape[1] for img in images) / d) * d)
        w = int(math.ceil(max(img.shape[2] for img in images) / d) * d)
        out = images[0].new_zeros((len(images), images[0].shape[0], h, w))  # [B, 3, H, W]
        for img, slot in zip(images, out):  # a loop over images
            slot[:, : img.shape[1], : img.shape[2]].copy_(img)
        return out

    def forward(
        self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None
    ) -> tuple[ImageList, list[dict[str, Tensor]] | None]:
        out_images, out_targets = [], [] if targets is not None else None
        for i, image in enumerate(images):
            if image.dim() != 3 or image.shape[0] != 3:
                raise ValueError(f"images[{i}]: expected a [3, H, W] tensor, got shape {tuple(image.shape)}")
            image, target = self.resize(self.normalize(image), targets[i] if targets is not None else None)
            out_images.append(image)
            if out_targets is not None:
                out_targets.append(target)
        sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in out_images]
        return ImageList(self.batch(out_images), sizes), out_targets

    def to_original(
        self,
        detections: list[dict[str, Tensor]],
        image_sizes: list[tuple[int, int]],
        original_sizes: list[tuple[int, int]],
        aligned_masks: bool = False,
    ) -> list[dict[str, Tensor]]:
        """Map boxes back to each original image and paste the masks at full resolution."""
        for det, size, original in zip(detections, image_sizes, original_sizes):
            det["boxes"] = resize_boxes(det["boxes"], size, original)
            if "keypoints" in det:
                det["keypoints"] = resize_keypoints(det["keypoints"], size, original)
            if "masks" in det:
                det["masks"] = paste_masks_in_image(
                    det["masks"], det["boxes"], original, aligned=aligned_masks
                )
        return detections

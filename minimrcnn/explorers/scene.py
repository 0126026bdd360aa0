"""What the explorers look at: generated shapes images (drawn in memory, nothing written to disk)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from minimrcnn.data.shapes import _annotation, generate_image


@lru_cache(maxsize=32)
def scene(index: int, size: int = 128, split: str = "val") -> tuple[np.ndarray, tuple]:
    """Image `index` of a shapes split: ([H, W, 3] uint8, its instances), cached (it is a pure function)."""
    image, instances = generate_image(split, index, image_size=size)
    image.setflags(write=False)
    return image, tuple(instances)


def annotations(index: int, size: int = 128, split: str = "val") -> list[dict]:
    """The COCO annotations the dataset writes for this image (image id = index + 1, ann ids from 1)."""
    _, instances = scene(index, size, split)
    return [_annotation(inst, k + 1, index + 1) for k, inst in enumerate(instances)]


def gt_boxes(index: int, size: int = 128, split: str = "val") -> tuple[Tensor, Tensor, Tensor]:
    """Non-crowd objects: boxes [G, 4] (x1, y1, x2, y2), category ids [G], visible masks [G, H, W] uint8."""
    _, instances = scene(index, size, split)
    anns = annotations(index, size, split)
    keep = [k for k, a in enumerate(anns) if not a["iscrowd"]]
    xywh = torch.tensor([anns[k]["bbox"] for k in keep], dtype=torch.float32).reshape(-1, 4)
    boxes = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)  # [G, 4]
    cats = torch.tensor([anns[k]["category_id"] for k in keep], dtype=torch.int64)
    masks = torch.from_numpy(
        np.stack([instances[k].visible for k in keep]) if keep else np.zeros((0, size, size))
    )
    return boxes, cats, masks.to(torch.uint8)


@lru_cache(maxsize=32)
def feature_map(index: int, stride: int, size: int = 128) -> Tensor:
    """A stand-in feature map at `stride`: the image's colours averaged over each stride x stride block,
    [1, 3, size / stride, size / stride] float64 in [0, 1]. Three channels so that pooled outputs can be shown
    as colour pictures; each cell's value is what its block of pixels looks like on average."""
    image, _ = scene(index, size)
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].to(torch.float64) / 255  # [1, 3, H, W]
    return F.avg_pool2d(x, stride)  # [1, 3, H/s, W/s]

"""Data: the synthetic shapes dataset, the COCO reader, transforms, batching and the COCO downloader.

Both datasets go through one class, `CocoInstances`, because both are COCO-format JSON on disk:

    root/<split>/*.png|jpg                     the images
    root/annotations/instances_<split>.json    COCO "instances" annotations

Bad input raises `DataError` (minimrcnn.errors, re-exported here), a ValueError whose message is one line
naming the file or field at fault.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from minimrcnn.errors import DataError

if TYPE_CHECKING:
    from minimrcnn.config import TrainConfig
    from minimrcnn.data.coco import CocoInstances


def build_dataset(train_cfg: TrainConfig, split: str, train: bool, uint8: bool = False) -> CocoInstances:
    """The dataset named by `train_cfg.dataset` ("shapes" or "coco") for one split.

    shapes: generated on first use under `data_root` (`num_train_images` / `num_val_images` images, or
    the defaults when those are 0). coco: images in `<data_root>/<split>/`, annotations in
    `<data_root>/annotations/instances_<split>.json`. `train=True` reads it as the trainer does: crowd
    regions dropped, images without objects skipped (`CocoInstances`' `drop_crowd` and `skip_empty`).

    No augmentation happens here: the trainer flips (train.hflip) in its loop, from the generators that
    checkpoints save, and the model's ImageTransform picks the training scale (model.min_size).
    `uint8=True`: images come as uint8 [0, 255] (the training loop converts them on the device).
    """
    from minimrcnn.data import shapes
    from minimrcnn.data.coco import CocoInstances

    root = Path(train_cfg.data_root)
    if train_cfg.dataset == "shapes":
        defaults = shapes.DEFAULT_NUM_IMAGES
        if split == train_cfg.train_split:
            num = train_cfg.num_train_images or defaults.get(split, defaults["train"])
        else:
            num = train_cfg.num_val_images or defaults.get(split, defaults["val"])
        images_dir, ann_file = shapes.ensure_shapes(root, split, num)
    elif train_cfg.dataset == "figures":
        from minimrcnn.data import figures

        defaults = figures.DEFAULT_NUM_IMAGES
        train_split = split == train_cfg.train_split
        num = (train_cfg.num_train_images if train_split else train_cfg.num_val_images) or defaults.get(
            split, defaults["train" if train_split else "val"]
        )
        images_dir, ann_file = figures.ensure_figures(root, split, num)
    elif train_cfg.dataset == "coco":
        images_dir, ann_file = root / split, root / "annotations" / f"instances_{split}.json"
    elif train_cfg.dataset == "coco_keypoints":
        images_dir, ann_file = root / split, root / "annotations" / f"person_keypoints_{split}.json"
    else:
        raise DataError(
            f"train.dataset={train_cfg.dataset!r}: expected 'shapes', 'figures', 'coco' or 'coco_keypoints'"
        )
    return CocoInstances(images_dir, ann_file, drop_crowd=train, skip_empty=train, uint8=uint8)


# The submodules are imported on first use, not here: `python -m minimrcnn.data.coco` imports this package
# before running coco.py as __main__, and an eager import would load coco.py twice (runpy warns about it).
_LAZY = {
    "CocoInstances": "coco",
    "ensure_shapes": "shapes",
    "ensure_figures": "figures",
    "GroupedBatchSampler": "samplers",
    "aspect_ratio_groups": "samplers",
    "collate": "samplers",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"minimrcnn.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'minimrcnn.data' has no attribute {name!r}")


__all__ = ["DataError", "build_dataset", *_LAZY]

"""Data: the synthetic datasets, the COCO reader, image files, transforms and batching.

Every dataset goes through one class, `CocoInstances`, because every one is COCO-format JSON on disk:

    root/<split>/*.png|jpg                       the images
    root/annotations/instances_<split>.json      COCO "instances" annotations (person_keypoints_<split>.json
                                                 for the keypoint datasets)

The generated datasets (shapes, figures) are written in that layout on first use. COCO itself is fetched
by `python -m minimrcnn.data.download --root data/coco`.

Bad input raises `DataError` (minimrcnn.errors, re-exported here), a ValueError whose message is one line
naming the file or field at fault.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from minimrcnn.config import TrainConfig
from minimrcnn.data import figures, shapes
from minimrcnn.data.coco import CocoInstances
from minimrcnn.errors import DataError


@dataclass(frozen=True)
class DatasetKind:
    annotations: str  # the annotation file's name in <root>/annotations/, with {split}
    generate: Callable[..., tuple[Path, Path]] | None = None  # ensure_*(root, split, num_images): generated
    default_sizes: dict[str, int] | None = None  # images per split when the config says 0


DATASETS: dict[str, DatasetKind] = {  # TrainConfig.validate() checks that train.dataset is one of these
    "shapes": DatasetKind("instances_{split}.json", shapes.ensure_shapes, shapes.DEFAULT_NUM_IMAGES),
    "figures": DatasetKind(
        "person_keypoints_{split}.json", figures.ensure_figures, figures.DEFAULT_NUM_IMAGES
    ),
    "coco": DatasetKind("instances_{split}.json"),
    "coco_keypoints": DatasetKind("person_keypoints_{split}.json"),
}


def split_size(train_cfg: TrainConfig, split: str) -> int:
    """How many images a generated dataset's split gets: the config's count, or the dataset's default."""
    sizes = DATASETS[train_cfg.dataset].default_sizes or {}
    is_train = split == train_cfg.train_split
    asked = train_cfg.num_train_images if is_train else train_cfg.num_val_images
    return asked or sizes.get(split, sizes.get("train" if is_train else "val", 0))


def build_dataset(train_cfg: TrainConfig, split: str, train: bool, uint8: bool = False) -> CocoInstances:
    """The dataset named by `train_cfg.dataset` (a key of DATASETS) for one split.

    Generated datasets (shapes, figures) are written under `data_root` on first use, `split_size` images.
    COCO: images in `<data_root>/<split>/`, annotations in `<data_root>/annotations/`. `train=True` reads
    it as the trainer does: crowd regions dropped, images without objects skipped (`CocoInstances`'
    `drop_crowd` and `skip_empty`), and a split with nothing to learn from refused.

    No augmentation happens here: the trainer flips (train.hflip) in its loop, from the generators that
    checkpoints save, and the model's ImageTransform picks the training scale (model.min_size).
    `uint8=True`: images come as uint8 [0, 255] (the training loop converts them on the device).
    """
    kind = DATASETS[train_cfg.dataset]
    root = Path(train_cfg.data_root)
    if kind.generate is not None:
        images_dir, ann_file = kind.generate(root, split, split_size(train_cfg, split))
    else:
        images_dir, ann_file = root / split, root / "annotations" / kind.annotations.format(split=split)
    return CocoInstances(images_dir, ann_file, drop_crowd=train, skip_empty=train, uint8=uint8)


__all__ = ["DATASETS", "DataError", "DatasetKind", "build_dataset", "split_size"]

"""`CocoInstances`: a COCO "instances" JSON and its image folder as a PyTorch dataset.

One sample is `(image, target)`:

    image   [3, H, W] float32 in [0, 1], RGB (grayscale, palette and RGBA images are converted);
            uint8 in [0, 255] with `uint8=True` (training ships bytes to the GPU and converts there)
    target  boxes    [N, 4] float32  (x1, y1, x2, y2) in pixels
            labels   [N]    int64    contiguous 1..K (0 is the background); `label_to_cat_id` maps back
            masks    [N, H, W] uint8 0/1, decoded from polygons or RLE by pycocotools
            area     [N]    float32  COCO's `area` field
            iscrowd  [N]    int64
            image_id int
            keypoints [N, K, 3] float32 (x, y, v), only for a person-keypoints JSON (categories list
                     `keypoints` names); `keypoint_names`, `keypoint_flip` and `skeleton` describe them

For training, `drop_crowd` removes crowd regions from the targets and `skip_empty` skips images left with
no object, and a file left with nothing to learn from is refused. Unusable annotations (a box under 1 px
once clipped to its image, a segmentation without a polygon of 3 points) are always dropped, and counted
by reason in a warning. The JSON is checked when it is loaded (`checks.py`), and so is every image file's
presence: a missing file stops the run before it starts, not hours in.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import pickle
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
import torch
from pycocotools.coco import COCO
from torch import Tensor
from torch.utils.data import Dataset

from minimrcnn.data.checks import check_coco_dict
from minimrcnn.data.images import read_image
from minimrcnn.errors import DataError

logger = logging.getLogger(__name__)

# why an annotation is dropped, as "N <reason>" in the log line and in errors
TOO_SMALL = "with a box under 1 px once clipped to the image"
NO_POLYGON = "without a mask (no polygon of 3 points in 'segmentation')"


class CocoInstances(Dataset):
    def __init__(
        self,
        images_dir: str | Path,
        ann_file: str | Path,
        *,
        drop_crowd: bool = False,
        skip_empty: bool = False,
        uint8: bool = False,
    ) -> None:
        self.images_dir, self.ann_file = Path(images_dir), Path(ann_file)
        self.drop_crowd, self.skip_empty, self.uint8 = drop_crowd, skip_empty, uint8
        if not self.images_dir.is_dir():
            raise DataError(f"{self.images_dir}: image directory not found")
        coco = load_coco(self.ann_file)
        self._coco: COCO | None = None  # the pycocotools index, rebuilt on demand (see `coco`)

        # ---- categories: COCO ids (1..90 with gaps on COCO) <-> contiguous labels 1..K
        cat_ids = sorted(coco.cats)
        self.label_to_cat_id: list[int] = [0, *cat_ids]  # [0] is the background, no COCO category
        self.cat_id_to_label: dict[int, int] = {c: i + 1 for i, c in enumerate(cat_ids)}
        self.class_names: list[str] = ["__background__"] + [coco.cats[c]["name"] for c in cat_ids]
        self.num_classes = len(self.class_names)
        # ---- keypoints (a COCO person-keypoints JSON): joint names, left<->right swap for flips, skeleton
        kp_cats = [coco.cats[c] for c in cat_ids if coco.cats[c].get("keypoints")]
        self.keypoint_names: list[str] = list(kp_cats[0]["keypoints"]) if kp_cats else []
        self.skeleton: list[list[int]] = [list(e) for e in kp_cats[0].get("skeleton", [])] if kp_cats else []
        self.keypoint_flip: list[int] = flip_indices(self.keypoint_names)

        # ---- the annotations each image keeps, decided once from the JSON alone (no image is opened)
        records, dropped = [], Counter()  # dropped: reason -> count
        for img_id in sorted(coco.imgs):
            info = coco.imgs[img_id]
            keep = []
            for ann in coco.imgToAnns.get(img_id, []):
                if drop_crowd and ann["iscrowd"]:
                    dropped["crowd"] += 1
                    continue
                if reason := _unusable(ann, info["width"], info["height"]):
                    dropped[reason] += 1
                    continue
                kps = ann.get("keypoints") if self.keypoint_names else None
                if kps is not None and len(kps) != 3 * len(self.keypoint_names):
                    raise DataError(
                        f"{self.ann_file}: annotation {ann['id']}: 'keypoints' must hold "
                        f"{3 * len(self.keypoint_names)} numbers, not {len(kps)}"
                    )
                keep.append(
                    (
                        ann["bbox"],
                        self.cat_id_to_label[ann["category_id"]],
                        ann["segmentation"],
                        ann["area"],
                        ann["iscrowd"],
                        kps,
                    )
                )
            if keep or not skip_empty:  # training skips images left with no object
                records.append((img_id, info["file_name"], int(info["height"]), int(info["width"]), keep))
        _log_dropped(self.ann_file, dropped, len(coco.anns), len(coco.imgs) - len(records), len(coco.imgs))
        if skip_empty and not records:
            raise DataError(f"{self.ann_file}: nothing to train on: {_found(dropped, coco)}")
        check_files_exist(self.images_dir, [r[1] for r in records], self.ann_file)
        self.ids: list[int] = [r[0] for r in records]
        # (height, width) of every image, from the JSON: what aspect-ratio grouping needs
        self.image_sizes: list[tuple[int, int]] = [(r[2], r[3]) for r in records]
        # Each record pickled into one byte array (as Detectron2 does): a DataLoader worker forked from this
        # process shares these pages, where millions of small Python objects would each be copied the
        # first time a worker touched their reference counts.
        blobs = [
            np.frombuffer(pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL), dtype=np.uint8) for r in records
        ]
        self._offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)  # [N + 1]
        self._records = np.concatenate(blobs) if blobs else np.zeros(0, dtype=np.uint8)
        del coco, records, blobs

    @property
    def coco(self) -> COCO:
        """The pycocotools COCO object of the annotation file (for COCOeval), built on first use."""
        if self._coco is None:
            self._coco = load_coco(self.ann_file)
        return self._coco

    def __len__(self) -> int:
        return len(self.ids)

    def aspect_ratio(self, index: int) -> float:
        """width / height of sample `index`, read from the JSON."""
        h, w = self.image_sizes[index]
        return w / h

    def _record(self, index: int) -> tuple[int, str, int, int, list[tuple]]:
        """(image_id, file_name, height, width, [(bbox, label, segmentation, area, iscrowd, kps), ...])"""
        return pickle.loads(self._records[self._offsets[index] : self._offsets[index + 1]].tobytes())

    def load_image(self, index: int) -> Tensor:
        """Image `index` alone: [3, H, W], float32 in [0, 1] or uint8 (`uint8=True`), size checked."""
        img_id, file_name, height, width, _ = self._record(index)
        path = self.images_dir / file_name
        image = read_image(path, self.ann_file, uint8=self.uint8)  # [3, H, W], EXIF orientation applied
        h, w = image.shape[1:]
        if (h, w) != (height, width):
            raise DataError(
                f"{path}: image is {w}x{h} (upright, as its EXIF orientation says) but "
                f"{self.ann_file.name} says {width}x{height}"
            )
        return image

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Any]]:
        return self.load_image(index), self._target(index)

    def _target(self, index: int) -> dict[str, Any]:
        # Built with numpy and handed to torch at the end: tiny per-sample ops are cheaper outside torch.
        img_id, _, h, w, anns = self._record(index)
        masks = np.zeros((len(anns), h, w), dtype=np.uint8)  # [N, H, W]
        for j, (_, _, segmentation, *_) in enumerate(anns):
            masks[j] = segmentation_to_mask(segmentation, h, w)
        boxes = np.array([a[0] for a in anns], dtype=np.float32).reshape(-1, 4)  # [N, 4] xywh
        boxes[:, 2:] += boxes[:, :2]  # -> xyxy
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        labels = np.array([a[1] for a in anns], dtype=np.int64)
        area = np.array([a[3] for a in anns], dtype=np.float32)
        iscrowd = np.array([a[4] for a in anns], dtype=np.int64)
        keep = masks.any(axis=(1, 2))  # [N] a polygon can still rasterize to nothing
        extra = {}
        if self.keypoint_names:  # (lengths checked when the records were built)
            k = len(self.keypoint_names)
            kps = np.array([a[5] or [0] * 3 * k for a in anns], dtype=np.float32).reshape(-1, 3 * k)
            extra["keypoints"] = torch.from_numpy(kps.reshape(-1, k, 3)[keep])  # [N, K, 3]
        return {
            "boxes": torch.from_numpy(boxes[keep]),
            "labels": torch.from_numpy(labels[keep]),
            "masks": torch.from_numpy(masks[keep]),
            "image_id": int(img_id),
            "area": torch.from_numpy(area[keep]),
            "iscrowd": torch.from_numpy(iscrowd[keep]),
            **extra,
        }


# ---------------------------------------------------------------------------------------------- helpers
def flip_indices(names: list[str]) -> list[int]:
    """For each joint, the joint it becomes in a mirrored image: left_x <-> right_x, others stay."""
    swap = {"left": "right", "right": "left"}
    out = []
    for name in names:
        side, _, rest = name.partition("_")
        twin = f"{swap[side]}_{rest}" if side in swap else name
        out.append(names.index(twin) if twin in names else names.index(name))
    return out


def load_coco(ann_file: Path) -> COCO:
    """Read and check a COCO instances JSON, then index it with pycocotools (parsed once, not twice)."""
    if not ann_file.is_file():
        raise DataError(f"{ann_file}: annotation file not found")
    try:
        with open(ann_file, encoding="utf-8") as f:
            dataset = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{ann_file}: not valid JSON ({e.msg}, line {e.lineno} column {e.colno})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{ann_file}: cannot read ({e})") from None
    check_coco_dict(dataset, ann_file)
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # createIndex prints progress lines
        coco.createIndex()
    return coco


def _unusable(ann: dict, width: int, height: int) -> str | None:
    """Why an annotation cannot teach anything (None if it can): its box, clipped to the image, is under
    1 px wide or high, or its polygon list has no polygon of 3 points (a detection-only export)."""
    x, y, w, h = ann["bbox"]
    x1, y1 = min(max(x, 0), width), min(max(y, 0), height)
    x2, y2 = min(max(x + w, 0), width), min(max(y + h, 0), height)
    if x2 - x1 < 1 or y2 - y1 < 1:
        return TOO_SMALL
    seg = ann["segmentation"]
    if isinstance(seg, list) and not any(len(poly) >= 6 for poly in seg):
        return NO_POLYGON
    return None


def _log_dropped(ann_file: Path, dropped: Counter, n_anns: int, skipped: int, n_images: int) -> None:
    """One line saying what was left out and why: unusable annotations are a warning; crowd regions and
    images left without an object (what training always leaves out) are counted at info level."""
    bad = {k: v for k, v in dropped.items() if k != "crowd"}
    parts = [f"{v} {k}" for k, v in bad.items()]
    if dropped["crowd"]:
        parts.append(f"{dropped['crowd']} crowd region{'s' * (dropped['crowd'] > 1)} (training ignores them)")
    if not parts:
        return
    line = f"{ann_file.name}: dropped {sum(dropped.values())} of {n_anns} annotations: {', '.join(parts)}"
    if skipped:
        line += f"; skipped {skipped} of {n_images} images (no object left)"
    (logger.warning if bad else logger.info)(line)


def _found(dropped: Counter, coco: COCO) -> str:
    """What a file with nothing to learn from holds, for its error message."""
    n_imgs, n_anns = len(coco.imgs), len(coco.anns)
    found = f"{n_imgs} image{'s' * (n_imgs != 1)}, {n_anns} annotation{'s' * (n_anns != 1)}"
    if not n_anns:
        return found
    why = [f"{dropped['crowd']} crowd regions (iscrowd=1, which training ignores)"] * bool(dropped["crowd"])
    why += [f"{dropped[k]} {k}" for k in (NO_POLYGON, TOO_SMALL) if dropped[k]]
    return f"{found}: {', '.join(why)}"


def check_files_exist(images_dir: Path, file_names: list[str], ann_file: Path) -> None:
    """Every listed image file is there (one directory listing, not a stat per file); else one line."""
    try:
        present = {e.name for e in os.scandir(images_dir)}
    except OSError as e:
        raise DataError(f"{images_dir}: cannot list the image folder ({e.strerror})") from None
    missing = [n for n in file_names if n not in present and not (images_dir / n).is_file()]
    if missing:
        more = f" ({len(missing)} of the {len(file_names)} listed images are missing)" * (len(missing) > 1)
        raise DataError(f"{images_dir / missing[0]}: image file not found (listed in {ann_file.name}){more}")


def segmentation_to_mask(segmentation: Any, h: int, w: int) -> np.ndarray:
    """A COCO segmentation (polygons, RLE or uncompressed RLE) -> [H, W] uint8 0/1, as COCO.annToMask."""
    if isinstance(segmentation, list):  # polygons: each rasterized, then merged into one RLE
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, h, w))
    elif isinstance(segmentation["counts"], list):  # uncompressed RLE
        rle = mask_utils.frPyObjects(segmentation, h, w)
    else:
        rle = segmentation
    return mask_utils.decode(rle)

"""What a COCO annotation file must hold before anything trusts it: each problem is one DataError line that
names the file, the entry and the field.

Checked once, when the file is loaded, so that a long run cannot fail hours in on an entry it reaches late:
required fields, their types (a bbox of strings, a `segmentation: null`), ids that appear twice (two images
with one id would be merged into one), references to unknown images or categories, and RLE masks whose
size is not their image's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from minimrcnn.errors import DataError

REQUIRED_FIELDS = {
    "images": ("id", "file_name", "height", "width"),
    "annotations": ("id", "image_id", "category_id", "bbox", "segmentation", "area", "iscrowd"),
    "categories": ("id", "name"),
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_coco_dict(dataset: Any, ann_file: Path) -> None:
    """Raise a DataError naming the first entry and field that the dataset or COCOeval cannot use."""
    if not isinstance(dataset, dict):
        raise DataError(f"{ann_file}: expected a JSON object at the top level, got {type(dataset).__name__}")
    for section, fields in REQUIRED_FIELDS.items():
        if section not in dataset:
            raise DataError(f"{ann_file}: missing required field '{section}'")
        if not isinstance(dataset[section], list):
            raise DataError(f"{ann_file}: field '{section}' must be a list")
        required = set(fields)
        for k, entry in enumerate(dataset[section]):
            if not isinstance(entry, dict) or not required.issubset(entry):
                missing = sorted(required - set(entry)) if isinstance(entry, dict) else list(fields)
                raise DataError(f"{ann_file}: {section}[{k}] is missing field '{missing[0]}'")
    sizes = _check_images(dataset["images"], ann_file)
    cat_ids = _unique_ids(dataset["categories"], "categories", ann_file)
    for k, cat in enumerate(dataset["categories"]):
        if not isinstance(cat["name"], str):
            raise DataError(f"{ann_file}: categories[{k}] field 'name' must be a string, not {cat['name']!r}")
    _unique_ids(dataset["annotations"], "annotations", ann_file)
    for k, ann in enumerate(dataset["annotations"]):
        _check_annotation(ann, k, sizes, cat_ids, ann_file)


def _unique_ids(entries: list[dict], section: str, ann_file: Path) -> set[int]:
    seen: dict[int, int] = {}
    for k, entry in enumerate(entries):
        i = entry["id"]
        if not _is_int(i):
            raise DataError(f"{ann_file}: {section}[{k}] field 'id' must be an integer, not {i!r}")
        if i in seen:
            raise DataError(f"{ann_file}: {section}[{seen[i]}] and {section}[{k}] have the same id {i}")
        seen[i] = k
    return set(seen)


def _check_images(images: list[dict], ann_file: Path) -> dict[int, tuple[int, int]]:
    """{image id: (height, width)}; two images with one id are refused, naming both files."""
    sizes: dict[int, tuple[int, int]] = {}
    first: dict[int, int] = {}
    for k, img in enumerate(images):
        i, name = img["id"], img["file_name"]
        if not _is_int(i):
            raise DataError(f"{ann_file}: images[{k}] field 'id' must be an integer, not {i!r}")
        if not isinstance(name, str) or not name:
            raise DataError(f"{ann_file}: images[{k}] field 'file_name' must be a file name, not {name!r}")
        if i in first:
            other = images[first[i]]["file_name"]
            raise DataError(
                f"{ann_file}: image id {i} is used twice, by {other!r} (images[{first[i]}]) "
                f"and {name!r} (images[{k}])"
            )
        for key in ("height", "width"):
            if not _is_int(img[key]) or img[key] < 1:
                raise DataError(
                    f"{ann_file}: images[{k}] ({name}) field '{key}' must be a positive integer, "
                    f"not {img[key]!r}"
                )
        first[i] = k
        sizes[i] = (img["height"], img["width"])
    return sizes


def _check_annotation(
    ann: dict, k: int, sizes: dict[int, tuple[int, int]], cat_ids: set[int], ann_file: Path
) -> None:
    where = f"{ann_file}: annotations[{k}] (id {ann['id']})"
    if ann["image_id"] not in sizes:
        raise DataError(f"{ann_file}: annotations[{k}] has unknown image_id {ann['image_id']!r}")
    if ann["category_id"] not in cat_ids:
        raise DataError(f"{ann_file}: annotations[{k}] has unknown category_id {ann['category_id']!r}")
    bbox = ann["bbox"]
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        raise DataError(f"{where} field 'bbox' must be [x, y, width, height] (4 numbers), not {bbox!r}")
    if not _is_number(ann["area"]):
        raise DataError(f"{where} field 'area' must be a number, not {ann['area']!r}")
    if ann["iscrowd"] not in (0, 1):
        raise DataError(f"{where} field 'iscrowd' must be 0 or 1, not {ann['iscrowd']!r}")
    seg = ann["segmentation"]
    if isinstance(seg, list):  # polygons: lists of x, y numbers ([] is allowed: no mask, dropped later)
        for poly in seg:
            if not isinstance(poly, list) or not all(_is_number(v) for v in poly):
                raise DataError(
                    f"{where} field 'segmentation' must hold polygons (lists of numbers), "
                    f"found {str(poly)[:40]!r}"
                )
    elif isinstance(seg, dict) and {"counts", "size"} <= set(seg):  # RLE, compressed or not
        h, w = sizes[ann["image_id"]]
        if seg["size"] != [h, w]:
            raise DataError(f"{where} RLE 'size' is {seg['size']!r}, but its image is [{h}, {w}] (h, w)")
        if not isinstance(seg["counts"], (str, list)):
            raise DataError(f"{where} RLE 'counts' must be a string or a list of integers")
    else:
        raise DataError(
            f"{where} field 'segmentation' must be a list of polygons or an RLE dict "
            f"(counts, size), not {str(seg)[:40]}"
        )

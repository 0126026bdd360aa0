"""The synthetic "shapes" dataset: circles, squares and triangles, written as a real COCO dataset.

Every image gets a textured gradient background, an optional "crowd" (a cluster of tiny shapes annotated
as one `iscrowd=1` region) and 1-6 shapes painted one after the other, so later shapes occlude earlier ones.
The output is laid out like COCO on disk, `root/<split>/*.png` and `root/annotations/instances_<split>.json`,
and read back by the same `CocoInstances` class that reads COCO itself. To exercise every part of that path:

- category ids are not contiguous (1, 3, 7), so the dataset has to map them to labels 1..K;
- an unoccluded shape is annotated with its polygon, an occluded one with a compressed RLE of its visible
  pixels, and a crowd with an uncompressed RLE (the three `segmentation` formats of COCO);
- `bbox` is the tight [x, y, w, h] box of the visible mask and `area` its pixel count.

The mask is the ground truth: a shape's polygon is rasterized with pycocotools and exactly those pixels are
painted, so the annotation decodes to the pixels that show the shape. Generation is deterministic: image i of
a split is drawn from its own random stream seeded by (seed, split, i).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
from PIL import Image

CATEGORIES = [  # ids deliberately not 1..K
    {"id": 1, "name": "circle", "supercategory": "shape"},
    {"id": 3, "name": "square", "supercategory": "shape"},
    {"id": 7, "name": "triangle", "supercategory": "shape"},
]
DEFAULT_NUM_IMAGES = {"train": 1000, "val": 100}  # other split names get the "val" count
GENERATOR_VERSION = 1  # bump when the drawing changes, so old datasets on disk are regenerated

MIN_VISIBLE = 0.5  # a new shape may not hide more than half of any shape (or crowd) already painted
PLACEMENT_TRIES = 20
CROWD_PROBABILITY = 0.2


@dataclass
class _Instance:
    category_id: int
    polygon: list[float]  # flat [x0, y0, x1, y1, ...]; for a crowd: empty
    full: np.ndarray  # [H, W] bool, the whole shape
    visible: np.ndarray  # [H, W] bool, what later shapes left uncovered
    crowd: bool = False


# ---------------------------------------------------------------------------------------------- public API
def ensure_shapes(
    root: str | Path, split: str, num_images: int, image_size: int = 128, seed: int = 0
) -> tuple[Path, Path]:
    """Generate a split once (again if made with other parameters); return (images_dir, ann_file)."""
    root = Path(root)
    images_dir, ann_file = root / split, root / "annotations" / f"instances_{split}.json"
    if num_images < 1:
        raise ValueError(f"shapes split {split!r}: num_images must be >= 1, got {num_images}")
    if image_size < 32:
        raise ValueError(f"shapes split {split!r}: image_size must be >= 32, got {image_size}")
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "split": split,
        "num_images": num_images,
        "image_size": image_size,
        "seed": seed,
    }
    write = partial(_write_split, images_dir, ann_file, split, num_images, image_size, seed)
    generate_once(root / "annotations" / f"shapes_{split}", manifest, images_dir, ann_file, write)
    return images_dir, ann_file


def generate_once(
    stem: Path, manifest: dict, images_dir: Path, ann_file: Path, write: Callable[[], None]
) -> None:
    """Run `write()` (which fills images_dir and writes ann_file) unless `<stem>.manifest.json` says that a
    complete split with exactly these parameters is there already. Safe when several processes call it."""
    manifest_file = stem.with_name(stem.name + ".manifest.json")
    images_dir.mkdir(parents=True, exist_ok=True)
    ann_file.parent.mkdir(parents=True, exist_ok=True)
    with _lock(stem.with_name(f".{stem.name}.lock")):  # several DDP ranks may arrive at once
        if not _is_complete(manifest_file, manifest, images_dir, ann_file):
            manifest_file.unlink(missing_ok=True)  # written last: its presence means "complete"
            for old in images_dir.glob("*.png"):
                old.unlink()
            write()
            _atomic_write(manifest_file, json.dumps(manifest, indent=1))


def generate_image(split: str, index: int, image_size: int = 128, seed: int = 0) -> tuple[np.ndarray, list]:
    """Draw image `index` of a split: ([H, W, 3] uint8, list of instances). Pure function of its arguments."""
    rng = np.random.default_rng([seed, zlib.crc32(split.encode()), index])
    h = w = image_size
    image = _background(rng, h, w)  # [H, W, 3] float32 in 0..255
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    instances: list[_Instance] = []
    scale = image_size / 128

    if rng.random() < CROWD_PROBABILITY:
        crowd = _crowd(rng, image, xx, yy, scale)
        if crowd is not None:
            instances.append(crowd)

    for _ in range(rng.integers(1, 7)):  # 1..6 shapes
        category = CATEGORIES[rng.integers(len(CATEGORIES))]["id"]
        size = math.exp(rng.uniform(math.log(8 * scale), math.log(72 * scale)))  # log-uniform extent in px
        angle = rng.uniform(0, 2 * math.pi)
        for _ in range(PLACEMENT_TRIES):
            r = size / 2
            cx, cy = rng.uniform(r + 1, w - r - 1), rng.uniform(r + 1, h - r - 1)
            polygon = _shape_polygon(category, cx, cy, r, angle)
            full = _rasterize(polygon, h, w)
            if full.sum() < 4 or not _keeps_others_visible(full, instances):
                continue
            for other in instances:
                other.visible &= ~full
            _paint(rng, image, full, xx, yy, cx, cy, r)
            instances.append(_Instance(category, polygon, full, full.copy()))
            break

    noise = 3.0 * rng.standard_normal(size=image.shape, dtype=np.float32)  # a little sensor noise everywhere
    return np.clip(image + noise, 0, 255).round().astype(np.uint8), instances


# ---------------------------------------------------------------------------------------------- drawing
def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A linear gradient between two random colours plus a random texture (blobs or stripes): [H, W, 3]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, 2 * math.pi)
    t = xx * math.cos(theta) + yy * math.sin(theta)
    t = (t - t.min()) / (t.max() - t.min())  # [H, W] in 0..1
    c0, c1 = rng.uniform(0, 255, size=3), rng.uniform(0, 255, size=3)
    image = c0 * (1 - t[..., None]) + c1 * t[..., None]  # [H, W, 3]
    kind = rng.integers(3)
    if kind == 0:  # low-frequency blobs: a coarse random grid, smoothly upsampled
        grid = rng.uniform(-1, 1, size=(6, 6)).astype(np.float32)
        blobs = np.asarray(Image.fromarray(grid).resize((w, h), Image.BICUBIC))
        image += rng.uniform(10, 30) * blobs[..., None] * rng.uniform(0.3, 1.0, size=3)
    elif kind == 1:  # stripes
        phi, period = rng.uniform(0, math.pi), rng.uniform(6, 24)
        stripes = np.sin(2 * math.pi * (xx * math.cos(phi) + yy * math.sin(phi)) / period)
        image += rng.uniform(8, 25) * stripes[..., None]
    return image.astype(np.float32)  # kind 2: plain gradient


def _shape_polygon(category_id: int, cx: float, cy: float, r: float, angle: float) -> list[float]:
    """A regular polygon inscribed in the circle (cx, cy, r): 3 sides, 4 sides, or many (a circle)."""
    sides = {1: 32 if r > 8 else 16, 3: 4, 7: 3}[category_id]
    t = angle + 2 * math.pi * np.arange(sides) / sides
    xy = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)  # [sides, 2]
    return [round(float(v), 2) for v in xy.reshape(-1)]  # rounded first: the JSON holds what we rasterize


def _rasterize(polygon: list[float], h: int, w: int) -> np.ndarray:
    """Polygon -> [H, W] bool, with the same rasterizer that later decodes the annotation."""
    rle = mask_utils.merge(mask_utils.frPyObjects([polygon], h, w))
    return mask_utils.decode(rle).astype(bool)


def _keeps_others_visible(new: np.ndarray, instances: list[_Instance]) -> bool:
    for other in instances:
        left = (other.visible & ~new).sum()
        if left < MIN_VISIBLE * other.full.sum() or left < 4:
            return False
    return True


def _paint(
    rng: np.random.Generator,
    image: np.ndarray,
    mask: np.ndarray,
    xx: np.ndarray,
    yy: np.ndarray,
    cx: float,
    cy: float,
    r: float,
) -> None:
    """Fill `mask` with a random colour that stands out from the background, shaded by a soft gradient."""
    under = image[mask].mean(axis=0)  # [3] mean background colour below the shape
    colour = rng.uniform(0, 255, size=3)
    for _ in range(10):
        if np.abs(colour - under).sum() >= 120:
            break
        colour = rng.uniform(0, 255, size=3)
    phi = rng.uniform(0, 2 * math.pi)
    x, y = xx[mask], yy[mask]  # [P] coordinates of the P pixels to fill
    shade = ((x - cx) * math.cos(phi) + (y - cy) * math.sin(phi)) / max(r, 1.0)  # [P] in about -1..1
    image[mask] = colour + rng.uniform(0, 30) * shade[:, None]  # [P, 3]


def _crowd(
    rng: np.random.Generator, image: np.ndarray, xx: np.ndarray, yy: np.ndarray, scale: float
) -> _Instance | None:
    """5-10 tiny shapes of one class packed together: annotated as a single crowd region."""
    h, w = image.shape[:2]
    category = CATEGORIES[rng.integers(len(CATEGORIES))]["id"]
    spread = rng.uniform(8, 16) * scale
    cx, cy = rng.uniform(spread + 6, w - spread - 6), rng.uniform(spread + 6, h - spread - 6)
    union = np.zeros((h, w), dtype=bool)
    for _ in range(rng.integers(5, 11)):
        r = rng.uniform(2.5, 4.5) * scale
        x, y = cx + rng.uniform(-spread, spread), cy + rng.uniform(-spread, spread)
        part = _rasterize(_shape_polygon(category, x, y, r, rng.uniform(0, 2 * math.pi)), h, w)
        _paint(rng, image, part, xx, yy, x, y, r)
        union |= part
    if union.sum() < 4:
        return None
    return _Instance(category, [], union, union.copy(), crowd=True)


# ---------------------------------------------------------------------------------------------- annotations
def uncompressed_rle(mask: np.ndarray) -> dict:
    """[H, W] bool -> COCO's uncompressed RLE: run lengths over the column-major pixels, zeros first."""
    flat = mask.reshape(-1, order="F").astype(np.uint8)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # indices where a new run starts
    runs = np.diff(np.concatenate([[0], change, [flat.size]]))
    counts = ([0] if flat[0] else []) + runs.tolist()
    return {"counts": counts, "size": [int(mask.shape[0]), int(mask.shape[1])]}


def _annotation(inst: _Instance, ann_id: int, image_id: int) -> dict:
    rle = mask_utils.encode(np.asfortranarray(inst.visible.astype(np.uint8)))
    if inst.crowd:
        segmentation = uncompressed_rle(inst.visible)
    elif inst.visible.sum() == inst.full.sum():  # nothing covers it: its polygon is exact
        segmentation = [inst.polygon]
    else:  # occluded: the visible pixels, compressed RLE with `counts` as a string (as in COCO results)
        segmentation = {"counts": rle["counts"].decode("ascii"), "size": list(rle["size"])}
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": inst.category_id,
        "segmentation": segmentation,
        "area": float(mask_utils.area(rle)),
        "bbox": [float(v) for v in mask_utils.toBbox(rle)],  # tight [x, y, w, h] of the visible mask
        "iscrowd": int(inst.crowd),
    }


def _write_split(images_dir: Path, ann_file: Path, split: str, num_images: int, size: int, seed: int) -> None:
    images, annotations = [], []
    for i in range(num_images):
        pixels, instances = generate_image(split, i, size, seed)
        file_name = f"{i:06d}.png"
        Image.fromarray(pixels).save(images_dir / file_name, compress_level=1)
        images.append({"id": i + 1, "file_name": file_name, "height": size, "width": size})
        for inst in instances:
            annotations.append(_annotation(inst, len(annotations) + 1, i + 1))
    dataset = {
        "info": {"description": f"minimrcnn synthetic shapes ({split})", "version": str(GENERATOR_VERSION)},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": CATEGORIES,
    }
    _atomic_write(ann_file, json.dumps(dataset, separators=(",", ":")))


def _is_complete(manifest_file: Path, manifest: dict, images_dir: Path, ann_file: Path) -> bool:
    try:
        if json.loads(manifest_file.read_text()) != manifest:
            return False
    except (OSError, ValueError):
        return False
    files = [images_dir / f"{i:06d}.png" for i in range(manifest["num_images"])]
    return ann_file.is_file() and all(f.is_file() for f in files)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive file lock (POSIX); a no-op where fcntl does not exist."""
    try:
        import fcntl
    except ImportError:  # Windows: single process assumed
        yield
        return
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)

"""The synthetic "figures" dataset: articulated stick figures, written as COCO person keypoints.

Each 128 x 128 image shows 1-4 stick figures on the textured backgrounds of the shapes dataset. A figure
has 9 joints (head, neck, hands, hip, knees, feet) in a random pose: the torso leans, the arms swing
anywhere, the legs bend at the knees. Figures are 32-100 px tall, may overlap (a later figure hides at
most half of an earlier one) and may stand partly outside the frame. The left limbs are painted darker
than the right ones, so "left" is something a network can see (as a person's face tells it on COCO).

Annotations follow COCO's person-keypoints format: `keypoints` is a flat [x1, y1, v1, ..., x9, y9, v9]
with v = 2 visible, v = 1 labelled but hidden (covered by a later figure), v = 0 not labelled (outside
the image; x = y = 0 as COCO writes it); `num_keypoints` counts v > 0; `segmentation` (an RLE of the
visible pixels), `bbox` (tight box of the visible mask) and `area` (its pixel count) as in the shapes
dataset. The category carries the joints' `keypoints` names and the `skeleton` (1-based joint pairs),
plus `keypoint_sigmas`, the per-joint OKS constants (COCO's sigma for the closest COCO joint; COCOeval
has no field for them, so the evaluator reads this one). Generation is deterministic per (seed, split, i).
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
from PIL import Image

from minimrcnn.data.shapes import _atomic_write, _background, generate_once

KEYPOINTS = [
    "head",
    "neck",
    "left_hand",
    "right_hand",
    "hip",
    "left_knee",
    "right_knee",
    "left_foot",
    "right_foot",
]
SKELETON = [[1, 2], [2, 3], [2, 4], [2, 5], [5, 6], [5, 7], [6, 8], [7, 9]]  # 1-based, as COCO
# COCO's sigmas of the nearest COCO joint: shoulders (head, neck), wrists, hips, knees, ankles
SIGMAS = [0.079, 0.079, 0.062, 0.062, 0.107, 0.087, 0.087, 0.089, 0.089]
CATEGORIES = [
    {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": KEYPOINTS,
        "skeleton": SKELETON,
        "keypoint_sigmas": SIGMAS,
    },
]
DEFAULT_NUM_IMAGES = {"train": 1000, "val": 100}
GENERATOR_VERSION = 2
MIN_VISIBLE = 0.5
PLACEMENT_TRIES = 20
LEFT = [2, 5, 7]  # joint indices on the left side (their limbs are painted darker)


@dataclass
class Figure:
    joints: np.ndarray  # [9, 2] float (x, y) in pixels, may lie outside the image
    full: np.ndarray  # [H, W] bool, all of the figure's pixels
    visible: np.ndarray  # [H, W] bool, what later figures left uncovered


# ---------------------------------------------------------------------------------------------- public API
def ensure_figures(
    root: str | Path, split: str, num_images: int, image_size: int = 128, seed: int = 0
) -> tuple[Path, Path]:
    """Generate a split once (again if made with other parameters); return (images_dir, ann_file)."""
    root = Path(root)
    images_dir, ann_file = root / split, root / "annotations" / f"person_keypoints_{split}.json"
    if num_images < 1:
        raise ValueError(f"figures split {split!r}: num_images must be >= 1, got {num_images}")
    if image_size < 64:
        raise ValueError(f"figures split {split!r}: image_size must be >= 64, got {image_size}")
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "split": split,
        "num_images": num_images,
        "image_size": image_size,
        "seed": seed,
    }
    write = partial(_write_split, images_dir, ann_file, split, num_images, image_size, seed)
    generate_once(root / "annotations" / f"figures_{split}", manifest, images_dir, ann_file, write)
    return images_dir, ann_file


def generate_image(
    split: str, index: int, image_size: int = 128, seed: int = 0
) -> tuple[np.ndarray, list[Figure]]:
    """Draw image `index` of a split: ([H, W, 3] uint8, figures in painting order). Pure function."""
    rng = np.random.default_rng([seed, zlib.crc32(b"figures/" + split.encode()), index])
    h = w = image_size
    image = _background(rng, h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    scale = image_size / 128
    figures: list[Figure] = []
    for _ in range(rng.integers(1, 5)):  # 1..4 figures
        height = math.exp(rng.uniform(math.log(32 * scale), math.log(100 * scale)))
        for _ in range(PLACEMENT_TRIES):
            # the hip may sit up to a fifth of the figure outside the frame: some joints leave the image
            m = 0.2 * height
            hip = np.array([rng.uniform(-m, w + m), rng.uniform(-m, h + m)])
            joints = _pose(rng, hip, height)
            strokes = _strokes(joints, height, xx, yy)  # body, left limbs, right limbs: [3, H, W] bool
            full = strokes.any(axis=0)
            if full.sum() < 0.5 * _drawn_area(height) or not _keeps_others_visible(full, figures):
                continue  # mostly outside the image, or hides too much of another figure
            for other in figures:
                other.visible &= ~full
            _paint(rng, image, strokes)
            figures.append(Figure(joints, full, full.copy()))
            break
    noise = 3.0 * rng.standard_normal(size=image.shape, dtype=np.float32)
    return np.clip(image + noise, 0, 255).round().astype(np.uint8), figures


def keypoint_triplets(fig: Figure, later: list[Figure], h: int, w: int) -> list[float]:
    """COCO's flat [x, y, v] * 9 for one figure, given the figures painted after it."""
    out: list[float] = []
    for x, y in fig.joints:
        col, row = int(math.floor(x)), int(math.floor(y))
        if not (0 <= col < w and 0 <= row < h):
            out += [0.0, 0.0, 0]  # not in the image: not labelled
            continue
        hidden = any(o.full[row, col] for o in later)
        out += [round(float(x), 2), round(float(y), 2), 1 if hidden else 2]
    return out


# ---------------------------------------------------------------------------------------------- drawing
def _pose(rng: np.random.Generator, hip: np.ndarray, height: float) -> np.ndarray:
    """9 joints from a hip position, a height and random angles (0 = straight down, radians)."""

    def step(start: np.ndarray, length: float, angle: float) -> np.ndarray:
        return start + length * np.array([math.sin(angle), math.cos(angle)])

    torso = rng.normal(math.pi, 0.25)  # up, leaning a little
    neck = step(hip, 0.38 * height, torso)
    head = step(neck, 0.14 * height, torso + rng.normal(0, 0.3))
    arms = [rng.uniform(0.2, 2.8), -rng.uniform(0.2, 2.8)]  # left arm on the figure's left (image right)
    hands = [step(neck, 0.34 * height, torso - math.pi + a) for a in arms]
    legs = [rng.uniform(0.0, 0.7), -rng.uniform(0.0, 0.7)]
    knees = [step(hip, 0.25 * height, torso - math.pi + a) for a in legs]
    bends = [rng.uniform(-0.9, 0.3), -rng.uniform(-0.9, 0.3)]
    feet = [step(k, 0.23 * height, torso - math.pi + a + b) for k, a, b in zip(knees, legs, bends)]
    return np.stack([head, neck, hands[0], hands[1], hip, knees[0], knees[1], feet[0], feet[1]])


def _segment(xx: np.ndarray, yy: np.ndarray, a: np.ndarray, b: np.ndarray, radius: float) -> np.ndarray:
    """Pixels whose centre lies within `radius` of the segment a-b: [H, W] bool."""
    px, py = xx + 0.5 - a[0], yy + 0.5 - a[1]
    d = b - a
    t = np.clip((px * d[0] + py * d[1]) / max(float(d @ d), 1e-6), 0, 1)
    return (px - t * d[0]) ** 2 + (py - t * d[1]) ** 2 <= radius**2


def _strokes(joints: np.ndarray, height: float, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    r = max(1.0, 0.055 * height)  # limb half-thickness
    body = _segment(xx, yy, joints[1], joints[4], r) | _segment(xx, yy, joints[0], joints[0], 0.09 * height)
    left = np.zeros_like(body)
    right = np.zeros_like(body)
    for a, b in SKELETON[1:]:
        a, b = a - 1, b - 1
        if a == 1 and b == 4:
            continue  # the torso is the body's
        side = left if b in LEFT else right
        side |= _segment(xx, yy, joints[a], joints[b], r)
    right &= ~left  # where limbs cross, the left one is in front
    body &= ~(left | right)
    return np.stack([body, left, right])


def _drawn_area(height: float) -> float:
    """Roughly how many pixels a whole figure covers (limbs ~ 2.2 heights of 2r, the head a disk)."""
    r = max(1.0, 0.055 * height)
    return 2.2 * height * 2 * r + math.pi * (0.09 * height) ** 2


def _keeps_others_visible(new: np.ndarray, figures: list[Figure]) -> bool:
    return all((o.visible & ~new).sum() >= max(MIN_VISIBLE * o.full.sum(), 4) for o in figures)


def _paint(rng: np.random.Generator, image: np.ndarray, strokes: np.ndarray) -> None:
    """Body in a colour that stands out from what is below, left limbs darker, right limbs lighter."""
    under = image[strokes.any(axis=0)].mean(axis=0)
    colour = rng.uniform(0, 255, size=3)
    for _ in range(10):
        if np.abs(colour - under).sum() >= 120:
            break
        colour = rng.uniform(0, 255, size=3)
    image[strokes[0]] = colour
    image[strokes[1]] = 0.45 * colour
    image[strokes[2]] = 0.45 * colour + 140


# ---------------------------------------------------------------------------------------------- annotations
def _annotation(fig: Figure, later: list[Figure], ann_id: int, image_id: int, h: int, w: int) -> dict:
    rle = mask_utils.encode(np.asfortranarray(fig.visible.astype(np.uint8)))
    keypoints = keypoint_triplets(fig, later, h, w)
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "segmentation": {"counts": rle["counts"].decode("ascii"), "size": list(rle["size"])},
        "area": float(mask_utils.area(rle)),
        "bbox": [float(v) for v in mask_utils.toBbox(rle)],
        "iscrowd": 0,
        "keypoints": keypoints,
        "num_keypoints": sum(v > 0 for v in keypoints[2::3]),
    }


def _write_split(images_dir: Path, ann_file: Path, split: str, num_images: int, size: int, seed: int) -> None:
    images, annotations = [], []
    for i in range(num_images):
        pixels, figures = generate_image(split, i, size, seed)
        file_name = f"{i:06d}.png"
        Image.fromarray(pixels).save(images_dir / file_name, compress_level=1)
        images.append({"id": i + 1, "file_name": file_name, "height": size, "width": size})
        for j, fig in enumerate(figures):
            if fig.visible.sum() == 0:
                continue
            annotations.append(_annotation(fig, figures[j + 1 :], len(annotations) + 1, i + 1, size, size))
    dataset = {
        "info": {"description": f"minimrcnn synthetic figures ({split})", "version": str(GENERATOR_VERSION)},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": CATEGORIES,
    }
    _atomic_write(ann_file, json.dumps(dataset, separators=(",", ":")))

"""Chapter 08 capstone: COCO box AP by hand, checked against pycocotools' ``COCOeval``.

``coco_box_ap(ground_truth, detections)`` takes COCO-format dicts (``image_id``, ``category_id``, ``bbox`` as
[x, y, w, h], and ``score`` for a detection) and returns COCO's AP, AP50 and AP75 as fractions: for each
category, keep each image's 100 best detections, match them greedily to the objects at each of the ten
IoU thresholds 0.50:0.05:0.95, pool the matches over the images in score order into a precision/recall curve,
read its interpolated precision at 101 recall points, and average over thresholds and categories (those with
at least one object). No crowd regions and no area ranges: the chapter's sections 5 and 6 add those.

The checker computes the expected numbers with ``COCOeval`` itself on each test set, and names the typical
mistakes by recomputing the AP with one of them switched on (``_mistaken_ap``).
"""

from __future__ import annotations

import contextlib
import io
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from minimrcnn.solutions.ch08 import greedy_match, interpolated_ap
from minimrcnn.solutions.checking import StudentError, call, report

__all__ = ["IOU_THRESHOLDS", "box_iou_xywh", "check_coco_box_ap", "coco_box_ap", "cocoeval_box_ap"]

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # COCO's 0.50:0.05:0.95
KEYS = ("AP", "AP50", "AP75")


def box_iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a [D, 4], b [G, 4] boxes as (x, y, w, h) -> [D, G] IoU (pycocotools' box IoU)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])  # [D, G, 2]: the overlap's top-left corner
    hi = np.minimum(a[:, None, :2] + a[:, None, 2:], b[None, :, :2] + b[None, :, 2:])  # its bottom-right
    inter = np.clip(hi - lo, 0, None).prod(-1)  # [D, G]: an empty overlap has a negative side
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def coco_box_ap(ground_truth: list[dict], detections: list[dict], max_dets: int = 100) -> dict[str, float]:
    """COCO's box AP, AP50 and AP75 (fractions) of ``detections`` against ``ground_truth`` (no crowds)."""
    gts, dts = defaultdict(list), defaultdict(list)  # (image, category) -> boxes / detections
    for g in ground_truth:
        gts[g["image_id"], g["category_id"]].append(g["bbox"])
    for d in detections:
        dts[d["image_id"], d["category_id"]].append(d)
    categories = sorted({c for _, c in gts})  # a category without objects has no AP (COCOeval: -1)
    images = sorted({i for i, _ in gts} | {i for i, _ in dts})
    ap = np.zeros((len(IOU_THRESHOLDS), len(categories)))  # [T, K]
    for k, cat in enumerate(categories):
        scores, hits, n_objects = [], [], 0
        for img in images:  # match within each image, in score order, at most max_dets detections
            objects = np.asarray(gts[img, cat], np.float64).reshape(-1, 4)
            found = sorted(dts[img, cat], key=lambda d: -d["score"])[:max_dets]  # stable, like COCOeval
            ious = box_iou_xywh([d["bbox"] for d in found], objects)  # [D, G]
            scores += [d["score"] for d in found]
            tp = [greedy_match(ious, t) >= 0 for t in IOU_THRESHOLDS]
            hits.append(np.stack(tp).reshape(len(IOU_THRESHOLDS), len(found)))  # [T, D]
            n_objects += len(objects)
        order = np.argsort(-np.asarray(scores), kind="mergesort")  # all images together, by score
        for ti, tp in enumerate(np.concatenate(hits, axis=1)[:, order]):  # tp [D] of threshold ti
            tp_sum, fp_sum = np.cumsum(tp), np.cumsum(~tp)
            ap[ti, k] = interpolated_ap(tp_sum / n_objects, tp_sum / np.maximum(tp_sum + fp_sum, 1))
    return {"AP": float(ap.mean()), "AP50": float(ap[0].mean()), "AP75": float(ap[5].mean())}


def cocoeval_box_ap(
    ground_truth: list[dict], detections: list[dict], image_ids: list[int], category_ids: list[int]
) -> dict[str, float]:
    """The same three numbers from pycocotools' ``COCOeval`` (``stats[0:3]``), quietly."""
    coco = COCO()
    coco.dataset = {
        "images": [{"id": i, "width": 640, "height": 480} for i in image_ids],
        "categories": [{"id": c, "name": str(c)} for c in category_ids],
        "annotations": [
            {**g, "id": j + 1, "area": g["bbox"][2] * g["bbox"][3], "iscrowd": 0}
            for j, g in enumerate(ground_truth)
        ],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes([dict(d) for d in detections]), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {key: float(ev.stats[i]) for i, key in enumerate(KEYS)}


# ----------------------------------------------------------------------------------------------
# the checker
# ----------------------------------------------------------------------------------------------


def _scene(rng: np.random.Generator, n_images: int, cats: list[int], crowded: bool = False) -> tuple:
    """Random objects and detections: jittered copies (some relabelled, some duplicated) and clutter."""
    gt, dt = [], []
    for img in range(1, n_images + 1):
        for _ in range(int(rng.integers(1, 6))):
            x, y = rng.uniform(0, 500, 2)
            w, h = rng.uniform(12, 140, 2)
            cat = int(rng.choice(cats))
            gt.append({"image_id": img, "category_id": cat, "bbox": [x, y, w, h]})
            for _ in range(int(rng.integers(0, 3))):  # 0, 1 or 2 detections of this object
                j = rng.normal(0, rng.choice([0.03, 0.1]), 4) * [w, h, w, h]  # a tight or a loose fit
                label = cat if rng.random() < 0.8 else int(rng.choice(cats))
                box = [x + j[0], y + j[1], w + j[2], h + j[3]]
                dt.append({"image_id": img, "category_id": label, "bbox": box})
        for _ in range(int(rng.integers(0, 4))):  # clutter
            box = [*rng.uniform(0, 560, 2), *rng.uniform(8, 80, 2)]
            dt.append({"image_id": img, "category_id": int(rng.choice(cats)), "bbox": box})
    for d in dt:
        d["bbox"] = [float(v) for v in np.maximum(d["bbox"], [0, 0, 2, 2])]
        d["score"] = float(rng.uniform(0.05, 1.0))
    if crowded:  # image 1: an exact detection of a first-category object, ranked below 110 confident misses
        x, y = rng.uniform(0, 500, 2)
        box = [float(x), float(y), 60.0, 40.0]
        gt.append({"image_id": 1, "category_id": cats[0], "bbox": box})
        dt.append({"image_id": 1, "category_id": cats[0], "bbox": box, "score": 0.04})
        for _ in range(110):  # past COCOeval's 100 detections per image and category: the hit is cut
            box = [float(v) for v in (*rng.uniform(0, 560, 2), *rng.uniform(8, 80, 2))]
            score = float(rng.uniform(0.5, 1))
            dt.append({"image_id": 1, "category_id": cats[0], "bbox": box, "score": score})
    return gt, dt


def _cases() -> list[tuple[str, list, list, list[int], list[int]]]:
    rng = np.random.default_rng(808)
    cases = []
    for label, n, crowded in (
        ("6 images, 3 categories", 6, False),
        ("10 images", 10, False),
        ("an image with over 100 detections of one category", 3, True),
    ):
        gt, dt = _scene(rng, n, [1, 2, 3], crowded)
        cases.append((label, gt, dt, list(range(1, n + 1)), [1, 2, 3]))
    gt, dt = _scene(rng, 5, [1, 2])
    dt = [d for d in dt if d["category_id"] != 2]  # category 2: objects but no detection (AP 0)
    dt += [{**d, "category_id": 4} for d in dt[:3]]  # category 4: detections but no object (left out)
    cases.append(("a category never detected, one never annotated", gt, dt, list(range(1, 6)), [1, 2, 3, 4]))
    return cases


def _mistaken_ap(gt: list[dict], dt: list[dict], mistake: str) -> dict[str, float]:
    """``coco_box_ap`` with one typical mistake, to recognize it in a student's numbers."""
    if mistake == "no cap":
        return coco_box_ap(gt, dt, max_dets=10**9)
    if mistake == "agnostic":  # matching across categories: every object and detection as one class
        return coco_box_ap([{**g, "category_id": 0} for g in gt], [{**d, "category_id": 0} for d in dt])
    if mistake == "per image":  # one AP per image, averaged, instead of pooling the images' detections
        values = [
            coco_box_ap([g for g in gt if g["image_id"] == i], [d for d in dt if d["image_id"] == i])
            for i in sorted({g["image_id"] for g in gt})
        ]
        return {key: float(np.mean([v[key] for v in values])) for key in KEYS}
    if mistake == "empty categories":  # a detected category without objects counted as AP 0
        n_cats = len({g["category_id"] for g in gt} | {d["category_id"] for d in dt})
        right = coco_box_ap(gt, dt)
        return {key: v * len({g["category_id"] for g in gt}) / n_cats for key, v in right.items()}
    raise ValueError(mistake)


_MISTAKES = (
    ("no cap", "keep at most 100 detections per image and category (the best-scoring), as COCOeval does."),
    ("agnostic", "match per category: a detection can only find an object of its own category."),
    (
        "per image",
        "pool each category's detections from all images into one ranking before computing "
        "precision and recall; averaging per-image APs is not COCO's AP.",
    ),
    ("empty categories", "average only over categories with at least one object (COCOeval skips others)."),
)


def _as_dict(out: Any) -> dict[str, float]:
    if not isinstance(out, dict) or not set(KEYS) <= set(out):
        raise StudentError(f"return a dict with the keys {', '.join(KEYS)}; got {type(out).__name__}.")
    try:
        values = {key: float(out[key]) for key in KEYS}
    except (TypeError, ValueError):
        raise StudentError("the values of AP, AP50 and AP75 must be numbers.") from None
    if not all(np.isfinite(v) for v in values.values()):
        raise StudentError(f"an AP is not a finite number: {values}.")
    return values


def _diagnose(got: dict[str, float], want: dict[str, float], gt: list, dt: list) -> str:
    near = lambda a, b: all(abs(a[key] - b[key]) < 1e-6 for key in KEYS)  # noqa: E731
    if near({key: v / 100 for key, v in got.items()}, want):
        return "return fractions in [0, 1], not percent."
    if abs(got["AP"] - want["AP50"]) < 1e-6 and abs(want["AP"] - want["AP50"]) > 1e-6:
        return "your AP is AP50: COCO's AP is the mean over the ten IoU thresholds 0.50, 0.55, ..., 0.95."
    if abs(got["AP50"] - want["AP50"]) < 1e-6 and abs(got["AP75"] - want["AP75"]) > 1e-6:
        return "AP50 is right but AP75 is not: read the threshold 0.75 (the sixth), and match on IoU >= t."
    for mistake, message in _MISTAKES:
        if near(got, _mistaken_ap(gt, dt, mistake)):
            return message
    return "; ".join(f"{key} {got[key]:.4f}, COCOeval says {want[key]:.4f}" for key in KEYS)


def check_coco_box_ap(fn: Callable[[list[dict], list[dict]], dict[str, float]]) -> bool:
    """Check a student's ``coco_box_ap(ground_truth, detections)`` against COCOeval; print a verdict."""
    name = "coco_box_ap (capstone)"
    cases = _cases()
    try:
        for label, gt, dt, image_ids, category_ids in cases:
            want = cocoeval_box_ap(gt, dt, image_ids, category_ids)
            got = _as_dict(call(fn, [dict(g) for g in gt], [dict(d) for d in dt]))
            if all(abs(got[key] - want[key]) < 1e-6 for key in KEYS):
                continue
            raise StudentError(f"{label}: {_diagnose(got, want, gt, dt)}")
    except StudentError as err:
        return report(name, [str(err)], len(cases), "")
    return report(name, [], len(cases), "AP, AP50 and AP75 equal COCOeval's to 1e-6.")

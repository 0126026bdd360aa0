"""COCO evaluation: run the model over a dataset, write COCO-format results, score them with COCOeval."""

from __future__ import annotations

import contextlib
import io
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pycocotools.mask as mask_utils
import torch
from pycocotools.cocoeval import COCOeval
from torch.utils.data import DataLoader, Dataset

from minimrcnn.data.samplers import collate
from minimrcnn.data.transforms import images_to_device
from minimrcnn.engine import distributed as dist
from minimrcnn.engine.progress import progress_bar
from minimrcnn.errors import DataError

if TYPE_CHECKING:
    from pycocotools.coco import COCO

    from minimrcnn.data.coco import CocoInstances

logger = logging.getLogger(__name__)

METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
KEYPOINT_METRICS = ("AP", "AP50", "AP75", "APm", "APl")  # COCOeval's keypoint summary has no APs


def to_coco_results(
    det: dict[str, torch.Tensor], image_id: int, label_to_cat_id: list[int]
) -> list[dict[str, Any]]:
    """One image's detections -> COCO result dicts (bbox as xywh; segmentation as RLE of mask >= 0.5)."""
    boxes = det["boxes"].cpu()
    xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()
    scores, labels = det["scores"].cpu().tolist(), det["labels"].cpu().tolist()
    rles = [None] * len(scores)
    if "masks" in det and len(scores):
        binary = (det["masks"][:, 0] >= 0.5).cpu().numpy().astype(np.uint8)  # [N, H, W]
        rles = mask_utils.encode(np.asfortranarray(binary.transpose(1, 2, 0)))
        for r in rles:
            r["counts"] = r["counts"].decode("ascii")
    out = []
    for box, score, label, rle in zip(xywh, scores, labels, rles):
        r = {
            "image_id": int(image_id),
            "category_id": int(label_to_cat_id[label]),
            "bbox": box,
            "score": score,
        }
        if rle is not None:
            r["segmentation"] = rle
        out.append(r)
    if "keypoints" in det:  # [N, K, 3] (x, y, 1) -> flat [x1, y1, v1, ...]; scored by the box's score
        for r, kps in zip(out, det["keypoints"].cpu().flatten(1).tolist()):
            r["keypoints"] = kps
    return out


class ImagesOnly(Dataset):
    """What prediction reads: each image (uint8 when the dataset can) and its id, no ground truth decoded."""

    def __init__(self, dataset: Dataset, indices: list[int]) -> None:
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, int]]:
        index = self.indices[i]
        if hasattr(self.dataset, "load_image"):  # CocoInstances: the image file only
            return self.dataset.load_image(index), {"image_id": int(self.dataset.ids[index])}
        image, target = self.dataset[index]
        return image, {"image_id": int(target["image_id"])}


def category_map(
    dataset: CocoInstances, class_names: list[str] | None, label_to_cat_id: list[int] | None
) -> list[int]:
    """label -> category id of the evaluated `dataset`, for a model trained with `class_names` and
    `label_to_cat_id` (what its checkpoint saved). The same ids with the same names: the model's own ids.
    Other ids: matched by name (a warning lists them). A category on one side only: a DataError naming it,
    since AP would be computed over other classes than the model's (or not at all: an IndexError deep in
    the results)."""
    where = getattr(dataset, "ann_file", "the evaluated dataset")
    theirs = dict(zip(dataset.class_names[1:], dataset.label_to_cat_id[1:]))  # name -> id, evaluated file
    if class_names is None or label_to_cat_id is None:  # a checkpoint from before the names were saved
        return list(dataset.label_to_cat_id)
    mine = dict(zip(class_names[1:], label_to_cat_id[1:]))
    missing = [n for n in mine if n not in theirs]
    extra = [n for n in theirs if n not in mine]
    if missing or extra or len(theirs) != len(dataset.class_names) - 1:
        side = (
            f"has no category {missing[0]!r}, which the model predicts"
            if missing
            else f"has category {extra[0]!r} (id {theirs[extra[0]]}), which the model does not know"
            if extra
            else "has two categories with one name"
        )
        names = ", ".join(class_names[1:])
        raise DataError(f"{where}: {side}; the model's classes: {names}")
    moved = [f"{n} {mine[n]}->{theirs[n]}" for n in mine if mine[n] != theirs[n]]
    if moved:
        logger.warning(
            f"{where}: categories matched to the model's by name, their ids differ ({', '.join(moved)})"
        )
    return [0] + [theirs[n] for n in class_names[1:]]


@torch.no_grad()
def predict_dataset(
    model: torch.nn.Module,
    dataset: CocoInstances,
    device: torch.device,
    batch_size: int = 2,
    progress: bool = True,
    num_workers: int = 0,
    label_to_cat_id: list[int] | None = None,
) -> list[dict[str, Any]]:
    """COCO results for this process's shard of the dataset (all of it when not distributed). Labels become
    category ids through `label_to_cat_id` (default: the dataset's own; see `category_map`)."""
    label_to_cat_id = dataset.label_to_cat_id if label_to_cat_id is None else label_to_cat_id
    model.eval()
    indices = list(range(dist.rank(), len(dataset), dist.world_size()))
    loader = DataLoader(
        ImagesOnly(dataset, indices),
        batch_size=batch_size,
        collate_fn=collate,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    results: list[dict[str, Any]] = []
    for images, targets in progress_bar(loader, desc="eval", enabled=progress and dist.is_main()):
        outputs = model(images_to_device(images, device))
        for out, tgt in zip(outputs, targets):
            results += to_coco_results(out, tgt["image_id"], label_to_cat_id)
    return results


def coco_evaluate(
    coco_gt: COCO,
    results: list[dict[str, Any]],
    iou_types: tuple[str, ...] = ("bbox", "segm"),
    image_ids: list[int] | None = None,
) -> dict[str, dict[str, float]]:
    """COCOeval's summary numbers (fractions in [0, 1]; None where a size range has no objects) per IoU type.

    Segmentation results are scored without their boxes, so that each mask is sized by its own area.
    """
    metrics: dict[str, dict[str, float]] = {}
    for iou_type in iou_types:
        names = KEYPOINT_METRICS if iou_type == "keypoints" else METRICS
        field = {"bbox": "bbox", "segm": "segmentation", "keypoints": "keypoints"}[iou_type]
        usable = [r for r in results if field in r]
        if iou_type == "segm":
            # COCOeval reads a result's area from its "bbox" when it has one, so a mask would be sized by its
            # box and land in the wrong APs/APm/APl range. Without the box, loadRes takes the mask's area.
            usable = [{k: v for k, v in r.items() if k != "bbox"} for r in usable]
        if not usable:  # no detection: AP 0 where there was something to find, else not applicable
            gt = coco_gt.getAnnIds(imgIds=image_ids if image_ids is not None else [], iscrowd=False)
            metrics[iou_type] = dict.fromkeys(names, 0.0 if gt else None)
            continue
        with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints a lot
            coco_dt = coco_gt.loadRes(usable)
            ev = COCOeval(coco_gt, coco_dt, iou_type)
            if image_ids is not None:
                ev.params.imgIds = image_ids
            if iou_type == "keypoints":
                ev.params.kpt_oks_sigmas = keypoint_sigmas(coco_gt)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        metrics[iou_type] = {k: not_applicable_as_none(v) for k, v in zip(names, ev.stats)}
    return metrics


def not_applicable_as_none(value: float) -> float | None:
    """COCOeval writes -1 for a summary with nothing to measure (no ground truth in that size range, e.g.
    APl on 128-px images): "not applicable", not an AP of 0. None here, null in eval.json, "—" in tables."""
    return None if value < 0 else float(value)


def keypoint_sigmas(coco_gt: COCO) -> np.ndarray:
    """OKS's per-joint constants: the category's `keypoint_sigmas` if it has them, else COCO's 17."""
    cat = next(c for c in coco_gt.cats.values() if c.get("keypoints"))
    if "keypoint_sigmas" in cat:
        return np.asarray(cat["keypoint_sigmas"], dtype=np.float64)
    k = len(cat["keypoints"])
    if k != 17:
        raise ValueError(
            f"category {cat['name']!r}: {k} keypoints but no 'keypoint_sigmas' (COCO's are for 17)"
        )
    return COCOeval(iouType="keypoints").params.kpt_oks_sigmas


def evaluate(
    model: torch.nn.Module,
    dataset: CocoInstances,
    device: torch.device,
    batch_size: int = 2,
    progress: bool = True,
    num_workers: int = 0,
    label_to_cat_id: list[int] | None = None,
) -> dict:
    """Distributed-aware: every process predicts its shard, rank 0 gathers and scores. Returns
    {"bbox": {...}, "segm": {...}} (+ "keypoints") on every process, plus the raw results on rank 0 under
    "results" (an empty list on the other ranks, which never build the COCO index), and "note": why AP is
    not applicable ("—"), when it is not, else None (also logged as a warning).
    `label_to_cat_id`: the model's label -> this dataset's category id (`category_map`; default: the
    dataset's own order, right only when the model was trained on the same categories)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    shard = predict_dataset(model, dataset, device, batch_size, progress, num_workers, label_to_cat_id)
    parts = dist.gather_to_main(shard)
    results: list[dict[str, Any]] = []
    metrics, note = None, None
    if dist.is_main():
        results = [r for part in parts for r in part]
        iou_types = ("bbox", "segm") if model_has_masks(model) else ("bbox",)
        if getattr(getattr(model, "module", model).cfg, "keypoint_on", False):
            iou_types += ("keypoints",)
        note = nothing_to_score(dataset)
        if note is not None:
            logger.warning(note)
        metrics = coco_evaluate(dataset.coco, results, iou_types, image_ids=list(dataset.ids))
    metrics, note = dist.broadcast_from_main((metrics, note))
    return {**metrics, "results": results, "note": note}


def nothing_to_score(dataset: CocoInstances) -> str | None:
    """Why COCO AP is not applicable on `dataset` (no image, no annotation, only crowd regions), or None."""
    where = getattr(getattr(dataset, "ann_file", None), "name", "the evaluated dataset")
    ids = list(dataset.ids)
    anns = dataset.coco.loadAnns(dataset.coco.getAnnIds(imgIds=ids)) if ids else []
    crowd = sum(bool(a.get("iscrowd", 0)) for a in anns)
    if len(anns) > crowd:
        return None
    if not ids:
        found = "no image"
    elif not anns:
        found = f"{len(ids)} images and no annotation"
    else:
        found = f"{len(ids)} images, {crowd} annotations, all crowd regions (iscrowd=1: AP ignores them)"
    return f"{where}: {found}; with no object to score, AP is not applicable (shown as —)"


def model_has_masks(model: torch.nn.Module) -> bool:
    model = getattr(model, "module", model)
    return bool(model.cfg.mask_on)


def format_metrics(metrics: dict[str, dict[str, float]]) -> str:
    lines = [f"{'':6s}" + "".join(f"{m:>7s}" for m in METRICS)]
    for iou_type, row in (("bbox", "bbox"), ("segm", "segm"), ("keypoints", "kpt")):
        if iou_type in metrics:
            got = metrics[iou_type]
            cells = [f"{'—':>7s}" if got.get(m) is None else f"{100 * got[m]:7.1f}" for m in METRICS]
            lines.append(f"{row:6s}" + "".join(cells))
    return "\n".join(lines)

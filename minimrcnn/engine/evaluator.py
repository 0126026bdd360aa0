"""COCO evaluation: run the model over a dataset, write COCO-format results, score them with COCOeval."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
import torch
from pycocotools.cocoeval import COCOeval
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from minimrcnn.data.samplers import collate
from minimrcnn.data.transforms import images_to_device
from minimrcnn.engine import distributed as dist

METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
KEYPOINT_METRICS = ("AP", "AP50", "AP75", "APm", "APl")  # COCOeval's keypoint summary has no APs


def to_coco_results(det: dict[str, torch.Tensor], image_id: int, label_to_cat_id) -> list[dict[str, Any]]:
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

    def __init__(self, dataset, indices: list[int]):
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, int]]:
        index = self.indices[i]
        if hasattr(self.dataset, "load_image"):  # CocoInstances: the image file only
            return self.dataset.load_image(index), {"image_id": int(self.dataset.ids[index])}
        image, target = self.dataset[index]
        return image, {"image_id": int(target["image_id"])}


@torch.no_grad()
def predict_dataset(
    model, dataset, device: torch.device, batch_size: int = 2, progress: bool = True, num_workers: int = 0
) -> list[dict[str, Any]]:
    """COCO results for this process's shard of the dataset (all of it when not distributed)."""
    model.eval()
    indices = list(range(dist.rank(), len(dataset), dist.world_size()))
    loader = DataLoader(ImagesOnly(dataset, indices), batch_size=batch_size, collate_fn=collate,
                        num_workers=num_workers, pin_memory=device.type == "cuda")  # fmt: skip
    results: list[dict[str, Any]] = []
    for images, targets in tqdm(loader, desc="eval", disable=not (progress and dist.is_main()), leave=False):
        outputs = model(images_to_device(images, device))
        for out, tgt in zip(outputs, targets):
            results += to_coco_results(out, tgt["image_id"], dataset.label_to_cat_id)
    return results


def coco_evaluate(
    coco_gt, results: list[dict[str, Any]], iou_types=("bbox", "segm"), image_ids: list[int] | None = None
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
        if not usable:
            metrics[iou_type] = dict.fromkeys(names, 0.0)
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


def keypoint_sigmas(coco_gt) -> np.ndarray:
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
    model, dataset, device: torch.device, batch_size: int = 2, progress: bool = True, num_workers: int = 0
) -> dict:
    """Distributed-aware: every process predicts its shard, rank 0 gathers and scores. Returns
    {"bbox": {...}, "segm": {...}} (+ "keypoints") on every process, plus the raw results on rank 0 under
    "results" (an empty list on the other ranks, which never build the COCO index)."""
    shard = predict_dataset(model, dataset, device, batch_size, progress, num_workers)
    parts = dist.gather_to_main(shard)
    results: list[dict[str, Any]] = []
    metrics = None
    if dist.is_main():
        results = [r for part in parts for r in part]
        iou_types = ("bbox", "segm") if model_has_masks(model) else ("bbox",)
        if getattr(getattr(model, "module", model).cfg, "keypoint_on", False):
            iou_types += ("keypoints",)
        metrics = coco_evaluate(dataset.coco, results, iou_types, image_ids=list(dataset.ids))
    metrics = dist.broadcast_from_main(metrics)
    return {**metrics, "results": results}


def model_has_masks(model) -> bool:
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

"""Previews of a trained run: its predictions on a few fixed validation images, small enough to commit.

`save_samples(run_dir)` loads a run's `checkpoint.pt`, predicts the images `SAMPLE_IMAGE_IDS` of the shapes
val split and writes `<run_dir>/samples.json` (COCO results with RLE masks, a few KB); `mask_figure` draws
the ground truth next to the predictions of several runs. Checkpoints are too large to commit, the samples
are not. After a sweep, while the checkpoints are still on disk:

    python -m minimrcnn.ablations.previews results/ablations     # samples.json for every run lacking one
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minimrcnn.ablations.sets import variants

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

    from minimrcnn.data.coco import CocoInstances

SAMPLES_FILE = "samples.json"
SAMPLE_IMAGE_IDS = (2, 4, 12, 21)  # shapes val images: a crowd region, occlusions, small shapes, larger ones


def _sample_dataset(data_root: str | Path) -> CocoInstances:
    """The shapes val split under data_root as it is on disk (generated with the defaults if absent)."""
    from minimrcnn.data import build_dataset
    from minimrcnn.data.coco import CocoInstances
    from minimrcnn.presets import shapes_cpu

    root = Path(data_root)
    if (root / "annotations" / "instances_val.json").is_file() and (root / "val").is_dir():
        return CocoInstances(root / "val", root / "annotations" / "instances_val.json")
    tc = shapes_cpu().train
    tc.data_root = str(root)
    return build_dataset(tc, tc.val_split, train=False)


def save_samples(
    run_dir: str | Path,
    data_root: str | Path = "data/shapes",
    image_ids: tuple[int, ...] = SAMPLE_IMAGE_IDS,
    score_thresh: float = 0.05,
) -> Path:
    """Predict a few validation images with the run's checkpoint.pt; write <run_dir>/samples.json."""
    import torch

    from minimrcnn.engine.checkpoint import load_model
    from minimrcnn.engine.evaluator import to_coco_results

    run_dir = Path(run_dir)
    model, state = load_model(str(run_dir / "checkpoint.pt"), torch.device("cpu"))
    dataset = _sample_dataset(data_root)
    index = {img_id: i for i, img_id in enumerate(dataset.ids)}
    present = tuple(i for i in image_ids if i in index)
    image_ids = present or tuple(dataset.ids[: len(image_ids)])  # a small set may lack the usual ids
    detections = []
    with torch.no_grad():
        for img_id in image_ids:
            image, _ = dataset[index[img_id]]
            det = model([image])[0]
            keep = det["scores"] >= score_thresh
            det = {k: v[keep] for k, v in det.items()}
            detections += to_coco_results(det, img_id, state.get("label_to_cat_id", dataset.label_to_cat_id))
    path = run_dir / SAMPLES_FILE
    path.write_text(
        json.dumps(
            {"iteration": int(state["iteration"]), "image_ids": list(image_ids), "detections": detections}
        )
    )
    return path


def _stale(run_dir: Path) -> bool:
    """No samples.json yet, or one made from another iteration than the run's eval.json (an older run)."""
    samples, ev = run_dir / SAMPLES_FILE, run_dir / "eval.json"
    if not samples.is_file():
        return True
    done = json.loads(ev.read_text()).get("iteration") if ev.is_file() else None
    return done is not None and json.loads(samples.read_text())["iteration"] != done


def load_samples(run_dir: str | Path, data_root: str | Path | None = None) -> dict[str, Any] | None:
    """<run_dir>/samples.json; made (again) from the run's checkpoint first if it is missing or older than the
    run's eval.json and data_root is given; None when there is neither samples.json nor a checkpoint."""
    run_dir = Path(run_dir)
    path = run_dir / SAMPLES_FILE
    if data_root is not None and (run_dir / "checkpoint.pt").is_file() and _stale(run_dir):
        save_samples(run_dir, data_root)
    return json.loads(path.read_text()) if path.is_file() else None


def detections_from_results(
    results: list[dict[str, Any]], img_id: int, cat_id_to_label: dict[int, int]
) -> dict[str, torch.Tensor]:
    """One image's COCO result dicts (as `to_coco_results` writes them) back in the model's output form, to
    draw: {"boxes" [N, 4] x1y1x2y2, "scores" [N], "labels" [N] (contiguous), "masks" [N, 1, H, W] of 0/1}."""
    import numpy as np
    import pycocotools.mask as mask_utils
    import torch

    dets = [d for d in results if d["image_id"] == img_id]
    boxes = [[x, y, x + w, y + h] for x, y, w, h in (d["bbox"] for d in dets)]  # COCO's x, y, w, h
    out = {
        "boxes": torch.tensor(boxes).reshape(-1, 4),  # [N, 4], also for N = 0
        "scores": torch.tensor([d["score"] for d in dets]),
        "labels": torch.tensor([cat_id_to_label[d["category_id"]] for d in dets], dtype=torch.int64),
    }
    if dets and all("segmentation" in d for d in dets):
        masks = np.stack([mask_utils.decode(d["segmentation"]) for d in dets])  # [N, H, W]
        out["masks"] = torch.from_numpy(masks).float()[:, None]
    return out


def mask_figure(
    results_dir: str | Path,
    names: list[str],
    seed: int = 0,
    data_root: str | Path = "data/shapes",
    score_thresh: float = 0.5,
    live_dir: str | Path | None = None,
    live_names: tuple[str, ...] = (),
    image_ids: tuple[int, ...] | None = None,
    max_images: int = 2,
    labels: dict[str, str] | None = None,
    panel_size: float = 2.6,
) -> tuple[Figure | None, list[str]]:
    """One row per validation image: its ground truth, then each run's predicted masks beside it.

    A variant's predictions come from <results_dir>/runs/<name>-s<seed>/samples.json (made from that run's
    checkpoint if only the checkpoint is there). Live runs (`live_names`) come from `live_dir` instead.
    `image_ids`: which of the sample images to draw (default: the first `max_images`); `labels`: column
    titles by variant name (default: the variants' labels). Returns (figure or None, runs without
    predictions).
    """
    import matplotlib.pyplot as plt

    from minimrcnn.viz import draw_detections, draw_targets

    labels = labels if labels is not None else {v.name: v.label for v in variants().values()}
    columns, missing = [], []
    runs = [(n, Path(results_dir), "") for n in names]
    runs += [(n, Path(live_dir or ""), ", live") for n in live_names]
    for name, root, mark in runs:
        try:
            samples = load_samples(root / "runs" / f"{name}-s{seed}", data_root)
        except Exception as e:  # e.g. a checkpoint that no longer loads: say so, draw the others
            samples = None
            mark += f" ({type(e).__name__}: {str(e)[:80]})"
        if samples is None:
            missing.append(name + mark)
        else:
            columns.append((labels.get(name, name) + mark, samples))
    if not columns:
        return None, missing
    dataset = _sample_dataset(data_root)
    index = {img_id: i for i, img_id in enumerate(dataset.ids)}
    have = columns[0][1]["image_ids"]
    image_ids = [i for i in image_ids if i in have] if image_ids is not None else have[:max_images]
    image_ids = image_ids or have[:1]
    n_rows, n_cols = len(image_ids), len(columns) + 1
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(panel_size * n_cols, panel_size * n_rows + 0.3), squeeze=False
    )
    for i, img_id in enumerate(image_ids):
        image, target = dataset[index[img_id]]
        draw_targets(image, target, dataset.class_names, ax=axes[i, 0])
        for j, (_, samples) in enumerate(columns, start=1):
            det = detections_from_results(samples["detections"], img_id, dataset.cat_id_to_label)
            draw_detections(image, det, dataset.class_names, score_thresh, ax=axes[i, j])
        axes[i, 0].set_title(f"ground truth, image {img_id}", fontsize=9)
    for j, (label, _) in enumerate(columns, start=1):
        axes[0, j].set_title(label, fontsize=9)
    fig.tight_layout(pad=0.3)
    return fig, missing


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m minimrcnn.ablations.previews",
        description="Write samples.json (predicted masks on a few val images) for every "
        "run of an ablation sweep that has a checkpoint and no samples yet, or samples of an older run.",
    )
    p.add_argument("out", type=Path, nargs="?", default=Path("results/ablations"), help="the sweep's --out")
    p.add_argument("--data-root", default="data/shapes")
    p.add_argument("--force", action="store_true", help="rewrite existing samples.json")
    args = p.parse_args(argv)
    failed = 0
    for ckpt in sorted((args.out / "runs").glob("*/checkpoint.pt")):
        if args.force or _stale(ckpt.parent):
            try:
                print(save_samples(ckpt.parent, args.data_root).as_posix())
            except Exception as e:  # one bad run must not stop the others
                failed += 1
                print(f"{ckpt.parent.as_posix()}: failed ({type(e).__name__}: {e})")
    return 1 if failed else 0


if __name__ == "__main__":
    from minimrcnn.errors import run_command

    run_command(main)

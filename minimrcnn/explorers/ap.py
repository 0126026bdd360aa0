"""Chapter 08: the IoU threshold and the score threshold against matches, the precision-recall curve and AP.

The detections are stand-ins for a model's, made once and fixed: every object of six shapes images found
with some probability by a jittered box (`BoxCoder.decode`) whose score grows with its overlap, some found
twice, some given the wrong class, plus false alarms on the background. Everything measured is COCOeval's:
the explorer runs `pycocotools.cocoeval.COCOeval` at the chosen IoU threshold on the detections that pass the
score threshold and draws its matches (`evalImgs`), its interpolated precision at the 101 recall points
(`eval["precision"]`), and their mean, the AP, as COCOeval's summary computes it.

    from minimrcnn.explorers.ap import ap_explorer, ap_figure
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from minimrcnn import ops
from minimrcnn.data.shapes import CATEGORIES
from minimrcnn.explorers.panel import Explorer, new_figure, one_thread, reuse_axes
from minimrcnn.explorers.scene import annotations, scene

IMAGES = (0, 1, 3, 5, 11, 17)  # validation images with 3 to 6 objects of every size
SIZE = 128
START = dict(iou_threshold=0.5, score_threshold=0.0)
FIGSIZE = (12.0, 5.4)
CAT_COLORS = {1: "tab:blue", 3: "tab:orange", 7: "tab:green"}
NAMES = {c["id"]: c["name"] for c in CATEGORIES}


@dataclass
class APReading:
    """What the AP picture shows, in numbers."""

    ap: float  # COCOeval's AP at this IoU threshold (mean over classes and the 101 recall points)
    ap_per_class: dict[int, float]  # category id -> AP
    precision: np.ndarray  # [101, K] COCOeval's interpolated precision (-1: no ground truth)
    tp: int  # detections matched to an object
    fp: int  # detections matched to none (not counting those COCOeval ignores)
    missed: int  # objects no detection matched
    num_detections: int  # detections at or above the score threshold


@lru_cache(maxsize=1)
def ground_truth() -> COCO:
    """The six images' annotations as a pycocotools COCO index (ids renumbered to be unique)."""
    anns = []
    for index in IMAGES:
        for a in annotations(index, SIZE):
            anns.append(a | {"id": len(anns) + 1})
    dataset = {
        "images": [{"id": i + 1, "width": SIZE, "height": SIZE} for i in IMAGES],
        "annotations": anns,
        "categories": CATEGORIES,
    }
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


@lru_cache(maxsize=1)
def detections(seed: int = 0) -> tuple[dict, ...]:
    """The stand-in detections as COCO results (bbox x, y, w, h; score; category), in a fixed order."""
    rng = np.random.default_rng(seed)
    coder = ops.BoxCoder((1.0, 1.0, 1.0, 1.0))
    out: list[dict] = []
    for index in IMAGES:
        for a in annotations(index, SIZE):
            if a["iscrowd"]:
                continue
            x, y, w, h = a["bbox"]
            gt = torch.tensor([[x, y, x + w, y + h]], dtype=torch.float64)
            copies = int(rng.random() < 0.88) + int(rng.random() < 0.25)  # missed, found, or found twice
            for k in range(copies):
                spread = rng.uniform(0.02, 0.15) * (1.8 if k else 1.0)
                delta = torch.from_numpy(rng.normal(0, spread, size=(1, 4)) * [1, 1, 1.4, 1.4])
                box = ops.clip_boxes_to_image(coder.decode(delta, gt)[:, 0], (SIZE, SIZE))[0]
                iou = float(ops.box_iou(box[None], gt)[0, 0])
                score = float(np.clip(0.2 + 0.75 * iou + rng.normal(0, 0.1), 0.02, 0.99)) * (0.7 if k else 1)
                cat = a["category_id"] if rng.random() < 0.9 else int(rng.choice([1, 3, 7]))
                out.append(_result(index, box.tolist(), score, cat))
        for _ in range(rng.poisson(1.5)):  # false alarms on the background
            x, y = rng.uniform(0, SIZE - 24, size=2)
            w, h = rng.uniform(8, 40, size=2)
            box = [x, y, min(x + w, SIZE), min(y + h, SIZE)]
            out.append(_result(index, box, float(rng.uniform(0.05, 0.7)), int(rng.choice([1, 3, 7]))))
    return tuple(out)


def _result(index: int, box: list[float], score: float, cat: int) -> dict:
    x1, y1, x2, y2 = box
    return {"image_id": index + 1, "category_id": cat, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score}


def evaluate(iou_threshold: float, score_threshold: float) -> tuple[COCOeval | None, list[dict]]:
    """COCOeval (box) at one IoU threshold, on the detections scoring at least `score_threshold`, for all
    sizes and up to 100 detections per image (the settings of COCOeval's headline AP). None: no detection."""
    gt = ground_truth()
    results = [dict(r) for r in detections() if r["score"] >= score_threshold]
    if not results:
        return None, results
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.params.iouThrs = np.array([iou_threshold])
        ev.params.areaRng, ev.params.areaRngLbl, ev.params.maxDets = [[0, 1e10]], ["all"], [100]
        ev.evaluate()
        ev.accumulate()
    return ev, results


def _layout(fig: Figure) -> tuple[Axes, ...]:
    """Six images in two rows, the precision-recall curves on the right (the last axes)."""
    gs = fig.add_gridspec(
        2,
        5,
        width_ratios=(1, 1, 1, 0.15, 1.9),
        wspace=0.06,
        hspace=0.16,
        left=0.01,
        right=0.94,
        top=0.86,
        bottom=0.14,
    )
    images = [fig.add_subplot(gs[r, c]) for r in range(2) for c in range(3)]
    for ax in images:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.legend(
        handles=[
            Line2D([], [], color="lime", lw=2, label="true positive"),
            Line2D([], [], color="red", lw=2, label="false positive (duplicate, wrong class, poor box)"),
            Line2D([], [], color="cyan", lw=2, ls="--", label="missed object"),
        ],
        loc="lower left",
        bbox_to_anchor=(0.01, 0.0),
        ncol=3,
        fontsize=9,
        frameon=False,
    )
    return (*images, fig.add_subplot(gs[:, 4]))


def _boxes(ax: Axes, xywh: list[list[float]], **kw) -> None:
    if xywh:
        x, y, w, h = np.asarray(xywh, dtype=float).T
        polys = np.stack([np.stack(c, 1) for c in ((x, y), (x + w, y), (x + w, y + h), (x, y + h))], 1)
        ax.add_collection(PolyCollection(list(polys), facecolors="none", **kw))


@one_thread
def draw_ap(fig: Figure, *, iou_threshold: float, score_threshold: float) -> APReading:
    """Six images with COCOeval's matches (true and false positives, missed objects) and the PR curves."""
    ev, results = evaluate(iou_threshold, score_threshold)
    gt = ground_truth()
    cat_ids = sorted(gt.getCatIds())
    precision = np.full((101, len(cat_ids)), -1.0) if ev is None else ev.eval["precision"][0, :, :, 0, 0]
    valid = precision > -1
    ap = float(precision[valid].mean()) if ev is not None and valid.any() else 0.0
    ap_per_class = {
        c: float(precision[:, k][valid[:, k]].mean()) if ev is not None and valid[:, k].any() else 0.0
        for k, c in enumerate(cat_ids)
    }
    kind: dict[int, str] = {}  # detection id (loadRes numbers them 1..N in order) -> "tp" / "fp" / "ignored"
    missed: list[int] = []  # annotation ids
    for e in ev.evalImgs if ev is not None else []:
        if e is None:
            continue
        for d, m, ign in zip(e["dtIds"], e["dtMatches"][0], e["dtIgnore"][0]):
            kind[d] = "ignored" if ign else ("tp" if m > 0 else "fp")
        missed += [g for g, m, ign in zip(e["gtIds"], e["gtMatches"][0], e["gtIgnore"]) if m == 0 and not ign]
    if ev is None:  # nothing detected: every object is missed
        missed = [a["id"] for a in gt.dataset["annotations"] if not a["iscrowd"]]
    counts = {k: sum(v == k for v in kind.values()) for k in ("tp", "fp")}
    reading = APReading(ap, ap_per_class, precision, counts["tp"], counts["fp"], len(missed), len(results))

    *image_axes, ax_pr = reuse_axes(fig, "ap", _layout)
    missed_set = set(missed)
    for ax, index in zip(image_axes, IMAGES):
        image, _ = scene(index, SIZE)
        ax.imshow(image, extent=(0, SIZE, SIZE, 0), interpolation="nearest")
        anns = gt.imgToAnns[index + 1]
        _boxes(
            ax,
            [a["bbox"] for a in anns if a["id"] in missed_set],
            edgecolors="cyan",
            linewidths=1.6,
            linestyles="--",
        )
        mine = [(d, r) for d, r in enumerate(results, start=1) if r["image_id"] == index + 1]
        _boxes(ax, [r["bbox"] for d, r in mine if kind.get(d) == "fp"], edgecolors="red", linewidths=1.4)
        _boxes(ax, [r["bbox"] for d, r in mine if kind.get(d) == "tp"], edgecolors="lime", linewidths=1.4)
        ax.set_xlim(0, SIZE)
        ax.set_ylim(SIZE, 0)

    recall = np.linspace(0, 1, 101)
    for k, c in enumerate(cat_ids):
        if valid[:, k].any():
            ax_pr.plot(
                recall,
                np.where(valid[:, k], precision[:, k], np.nan),
                color=CAT_COLORS.get(c),
                lw=1.8,
                label=f"{NAMES.get(c, c)}: AP {ap_per_class[c]:.3f}",
            )
    ax_pr.set_xlim(0, 1.01)
    ax_pr.set_ylim(0, 1.02)
    ax_pr.set_xlabel("recall", fontsize=9)
    ax_pr.set_ylabel("precision (interpolated)", fontsize=9)
    ax_pr.yaxis.tick_right()
    ax_pr.yaxis.set_label_position("right")
    ax_pr.tick_params(labelsize=8)
    ax_pr.grid(alpha=0.3)
    if ax_pr.lines:
        ax_pr.legend(fontsize=9, loc="lower left")
    ax_pr.set_title(f"COCOeval's precision-recall curves\nAP@IoU={iou_threshold:.2f}: {ap:.3f}", fontsize=10)
    fig.suptitle(
        f"IoU >= {iou_threshold:.2f}, score >= {score_threshold:.2f}: {len(results)} detections, "
        f"{reading.tp} true positives, {reading.fp} false positives, {reading.missed} objects missed",
        fontsize=10,
        x=0.3,
        y=0.97,
    )
    return reading


def ap_figure(**values) -> Figure:
    """The AP explorer's picture as a plain figure (the starting state unless values are given)."""
    fig = new_figure(*FIGSIZE)
    draw_ap(fig, **(START | values))
    return fig


def ap_explorer(**values) -> Explorer:
    """The IoU threshold that makes a match, and the score threshold that drops detections."""
    import ipywidgets as W

    values = START | values
    style = dict(
        continuous_update=True, readout_format=".2f", step=0.05, style={"description_width": "110px"}
    )
    controls = {
        "iou_threshold": W.FloatSlider(
            value=values["iou_threshold"], min=0.5, max=0.95, description="IoU threshold", **style
        ),
        "score_threshold": W.FloatSlider(
            value=values["score_threshold"], min=0.0, max=0.95, description="score threshold", **style
        ),
    }
    title = "Matches, precision-recall and AP: move the IoU and score thresholds"
    return Explorer(draw_ap, controls, FIGSIZE, title=title, columns=2)

"""Pictures of what a run learned, written into its run folder so nobody has to write code to see them.

    curves.png       the loss terms and the learning rate against the iteration (from metrics.jsonl)
    predictions.png  a few held-out images: ground truth on the left, the model's detections on the right
                     (masks, boxes, 'label score' tags; keypoints too when the targets/outputs have them)

The curves are drawn by the same functions as the notebooks' live plot (`minimrcnn.live`).
`python -m minimrcnn.train` writes both at the end of a run, `python -m minimrcnn.evaluate` writes
predictions.png for the split it scored (and curves.png when the run's metrics.jsonl is next to the weights).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch.utils.data import Dataset

from minimrcnn.viz import color, draw_detections, draw_targets

CURVES_FILE = "curves.png"
PREDICTIONS_FILE = "predictions.png"
LOSS_TERMS = ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask")
KEYPOINT_TERM = "loss_keypoint"  # a keypoint model's extra term (chapter 10); drawn when the records have it
LABELS = {
    "loss_objectness": "RPN objectness",
    "loss_rpn_box_reg": "RPN box",
    "loss_classifier": "classifier",
    "loss_box_reg": "box regression",
    "loss_mask": "mask",
    "loss_keypoint": "keypoint",
    "loss": "total",
}


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of `<run_dir>/metrics.jsonl` (one dict per logging step), in order."""
    text = (Path(run_dir) / "metrics.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def plot_losses(
    ax: Axes,
    records: Sequence[dict[str, Any]],
    keys: Sequence[str] = (*LOSS_TERMS, KEYPOINT_TERM, "loss"),
    logy: bool = True,
    total: int | None = None,
) -> None:
    """One line per loss key present in the records, against the iteration (the total in black)."""
    its = [r["iteration"] for r in records]
    for k, key in enumerate(keys):
        pts = [(i, r[key]) for i, r in zip(its, records) if key in r]
        if not pts:
            continue
        xs, ys = zip(*pts)
        style = {"color": "black", "lw": 2.0} if key == "loss" else {"color": color(k), "lw": 1.4}
        ax.plot(xs, ys, label=LABELS.get(key, key), **style)
    if logy:
        ax.set_yscale("log")
    if total:
        ax.set_xlim(0, total)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (mean over each logging window)")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7, loc="lower left", ncol=2)


def plot_lr(ax: Axes, records: Sequence[dict[str, Any]], total: int | None = None) -> None:
    """The learning rate the optimizer used, against the iteration."""
    pts = [(r["iteration"], r["lr"]) for r in records if "lr" in r]
    if pts:
        xs, ys = zip(*pts)
        ax.plot(xs, ys, color="gray", lw=1.5)
    if total:
        ax.set_xlim(0, total)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("iteration")
    ax.set_title("learning rate", fontsize=9)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    ax.grid(alpha=0.3)


def _new_figure(figsize: tuple[float, float], dpi: int) -> Figure:
    fig = Figure(figsize=figsize, dpi=dpi)  # not pyplot's: nothing global, nothing shown
    FigureCanvasAgg(fig)
    return fig


def save_curves(run_dir: str | Path, out: str | Path | None = None, dpi: int = 80) -> Path | None:
    """Loss terms (log scale) and lr by iteration from `<run_dir>/metrics.jsonl`; None: nothing logged."""
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.jsonl").is_file():
        return None
    records = read_metrics(run_dir)
    if not records:
        return None
    fig = _new_figure((10.0, 3.4), dpi)
    ax, ax_lr = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})
    plot_losses(ax, records)
    plot_lr(ax_lr, records)
    last = records[-1]
    ax.set_title(
        f"{run_dir.name}: {last['iteration']} iterations, final loss {last['loss']:.3f}",
        fontsize=9,
        loc="left",
    )
    fig.tight_layout()
    path = Path(out) if out else run_dir / CURVES_FILE
    fig.savefig(path)
    return path


def pick_images(n_dataset: int, n: int) -> list[int]:
    """n indices spread evenly over the dataset (the same ones on every call)."""
    n = min(n, n_dataset)
    return [round(i * (n_dataset - 1) / max(1, n - 1)) for i in range(n)] if n > 1 else list(range(n))


@torch.no_grad()
def save_predictions(
    model: torch.nn.Module,
    dataset: Dataset,
    out: str | Path,
    num_images: int = 4,
    score_thresh: float = 0.5,
    device: torch.device | str = "cpu",
    title: str = "",
    dpi: int = 80,
) -> Path:
    """A grid: one row per held-out image, ground truth on the left, the detections >= score_thresh right."""
    model.eval()
    names = list(getattr(dataset, "class_names", []) or []) or None
    skeleton = getattr(dataset, "skeleton", None) or None
    indices = pick_images(len(dataset), num_images)
    fig = _new_figure((6.4, 3.2 * len(indices) + (0.3 if title else 0.0)), dpi)
    axes = fig.subplots(len(indices), 2, squeeze=False)
    for row, i in zip(axes, indices):
        image, target = dataset[i]
        det = {k: v.cpu() for k, v in model([image.to(device)])[0].items()}
        draw_targets(image, target, names, ax=row[0], title=f"image {i}: ground truth", skeleton=skeleton)
        kept = int((det["scores"] >= score_thresh).sum())
        shown = f"predicted: {kept} with score >= {score_thresh}"
        draw_detections(image, det, names, score_thresh, row[1], shown, skeleton)  # (+ keypoints, if any)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(out)
    fig.savefig(path)
    return path


def write_report(
    run_dir: str | Path,
    model: torch.nn.Module,
    dataset: Dataset,
    device: torch.device | str = "cpu",
    num_images: int = 4,
    score_thresh: float = 0.5,
    curves_from: str | Path | None = None,
) -> list[Path]:
    """curves.png (when there is a metrics.jsonl in `curves_from`, default run_dir) and predictions.png in
    run_dir. Returns the files written."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    curves = save_curves(curves_from or run_dir, run_dir / CURVES_FILE)
    written = [curves] if curves is not None else []
    split = getattr(dataset, "split", None) or Path(getattr(dataset, "images_dir", "held-out")).name
    written.append(
        save_predictions(
            model,
            dataset,
            run_dir / PREDICTIONS_FILE,
            num_images,
            score_thresh,
            device,
            title=f"{run_dir.name}: {split} images",
        )
    )
    return written

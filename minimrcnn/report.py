"""Pictures of what a run learned, written into its run folder so nobody has to write code to see them.

    curves.png       the loss terms and the learning rate against the iteration (from metrics.jsonl)
    predictions.png  a few held-out images: ground truth on the left, the model's detections on the right
                     (masks, boxes, 'label score' tags; keypoints too when the targets/outputs have them)

`python -m minimrcnn.train` writes both at the end of a run, `python -m minimrcnn.evaluate` writes
predictions.png for the split it scored (and curves.png when the run's metrics.jsonl is next to the weights).
"""

from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from minimrcnn.live import plot_losses, plot_lr, read_metrics
from minimrcnn.viz import draw_detections, draw_targets

CURVES_FILE = "curves.png"
PREDICTIONS_FILE = "predictions.png"


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
    ax.set_title(f"{run_dir.name}: {last['iteration']} iterations, final loss {last['loss']:.3f}",
                 fontsize=9, loc="left")  # fmt: skip
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
    dataset,
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
    dataset,
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
    written.append(save_predictions(model, dataset, run_dir / PREDICTIONS_FILE, num_images, score_thresh,
                                    device, title=f"{run_dir.name}: {split} images"))  # fmt: skip
    return written

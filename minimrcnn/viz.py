"""Drawing: images, boxes, masks and detections with matplotlib (used by the chapters and by predict)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle
from torch import Tensor

PALETTE = np.array(
    [
        [0.90, 0.10, 0.10],
        [0.10, 0.55, 0.90],
        [0.15, 0.75, 0.25],
        [0.95, 0.60, 0.05],
        [0.60, 0.25, 0.85],
        [0.05, 0.75, 0.75],
        [0.90, 0.30, 0.65],
        [0.55, 0.55, 0.10],
        [0.40, 0.40, 0.40],
        [0.00, 0.35, 0.55],
    ]
)


def color(i: int) -> np.ndarray:
    return PALETTE[int(i) % len(PALETTE)]


def to_numpy_image(image: Tensor | np.ndarray) -> np.ndarray:
    """[3, H, W] float in [0, 1] (or [H, W, 3] uint8/float) -> [H, W, 3] float in [0, 1]."""
    if isinstance(image, Tensor):
        image = image.detach().cpu()
        if image.dim() == 3 and image.shape[0] in (1, 3):
            image = image.permute(1, 2, 0)
        image = image.numpy()
    image = np.asarray(image, dtype=np.float32)
    if image.max() > 1.5:
        image = image / 255.0
    return np.clip(image, 0, 1)


def show_image(image: Tensor | np.ndarray, ax: Axes | None = None, title: str | None = None) -> Axes:
    ax = ax or plt.gca()
    ax.imshow(to_numpy_image(image))
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def draw_boxes(
    ax: Axes,
    boxes: Tensor | np.ndarray,
    colors: list | np.ndarray | str | None = None,
    labels: list[str] | None = None,
    linewidth: float = 1.5,
    linestyle: str = "-",
    alpha: float = 1.0,
    fontsize: float = 9,
) -> None:
    """Draw [N, 4] xyxy boxes (pixel corners) on ax, with optional text labels at their top-left (fontsize in
    points: 9 stays readable when a notebook shows the figure scaled down)."""
    boxes = np.asarray(torch.as_tensor(boxes).detach().cpu(), dtype=np.float64).reshape(-1, 4)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        c = colors if isinstance(colors, str) else (color(i) if colors is None else colors[i])
        ax.add_patch(
            Rectangle(
                (x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=c, lw=linewidth, ls=linestyle, alpha=alpha
            )
        )
        if labels is not None:
            ax.text(
                x1,
                y1 - 1,
                labels[i],
                color="white",
                fontsize=fontsize,
                va="bottom",
                bbox={"facecolor": c, "alpha": 0.8, "pad": 1, "edgecolor": "none"},
            )


def overlay_masks(
    image: Tensor | np.ndarray,
    masks: Tensor | np.ndarray,
    colors: np.ndarray | None = None,
    alpha: float = 0.5,
    threshold: float = 0.5,
) -> np.ndarray:
    """Blend [N, H, W] (or [N, 1, H, W]) masks onto an image; returns [H, W, 3] floats."""
    out = to_numpy_image(image).copy()
    m = torch.as_tensor(masks).detach().cpu().float()
    if m.dim() == 4:
        m = m[:, 0]
    for i, mask in enumerate(m.numpy() >= threshold):
        c = color(i) if colors is None else colors[i]
        out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(c)
    return out


def draw_keypoints(
    ax: Axes,
    keypoints: Tensor | np.ndarray,
    skeleton: list[list[int]] | None = None,
    colors: list | np.ndarray | None = None,
    visible: Tensor | np.ndarray | None = None,
) -> None:
    """Draw [N, K, 3] keypoints (x, y, v) as dots joined by the skeleton's 1-based joint pairs.

    Joints with v = 0 (or `visible` False, e.g. a low keypoint score) are left out; v = 1 (labelled but
    hidden) is drawn hollow."""
    kps = np.asarray(torch.as_tensor(keypoints).detach().cpu(), dtype=np.float64).reshape(
        -1, *np.shape(keypoints)[-2:]
    )
    shown = kps[..., 2] > 0 if visible is None else np.asarray(torch.as_tensor(visible).cpu(), dtype=bool)
    for i, (person, on) in enumerate(zip(kps, shown)):
        c = color(i) if colors is None else colors[i]
        for a, b in skeleton or []:
            if on[a - 1] and on[b - 1]:
                ax.plot(person[[a - 1, b - 1], 0], person[[a - 1, b - 1], 1], color=c, lw=1.5, alpha=0.9)
        hidden = on & (person[:, 2] == 1)
        ax.scatter(person[on & ~hidden, 0], person[on & ~hidden, 1], s=9, color=c, edgecolors="white", lw=0.5)
        ax.scatter(person[hidden, 0], person[hidden, 1], s=9, facecolors="none", edgecolors=c, lw=0.8)


def draw_detections(
    image: Tensor,
    detections: dict[str, Tensor],
    class_names: list[str] | None = None,
    score_thresh: float = 0.5,
    ax: Axes | None = None,
    title: str | None = None,
    skeleton: list[list[int]] | None = None,
) -> Axes:
    """Image with masks, boxes and 'label score' tags of the detections scoring >= score_thresh, and
    their keypoints joined by `skeleton` when the detections have `keypoints` [N, K, 3]."""
    ax = ax or plt.gca()
    keep = detections["scores"] >= score_thresh
    boxes, labels, scores = detections["boxes"][keep], detections["labels"][keep], detections["scores"][keep]
    colors = np.stack([color(int(c)) for c in labels]) if len(labels) else None
    shown = image
    if "masks" in detections and len(labels):
        shown = overlay_masks(image, detections["masks"][keep], colors)
    show_image(shown, ax, title)
    names = [f"{class_names[int(c)] if class_names else int(c)} {s:.2f}" for c, s in zip(labels, scores)]
    if len(labels):
        draw_boxes(ax, boxes, list(colors), names)
        if "keypoints" in detections:
            draw_keypoints(ax, detections["keypoints"][keep], skeleton, list(colors))
    return ax


def draw_targets(
    image: Tensor,
    target: dict[str, Tensor],
    class_names: list[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    skeleton: list[list[int]] | None = None,
) -> Axes:
    """Ground truth drawn like detections (score 1)."""
    det = dict(target)
    det["scores"] = torch.ones(len(target["labels"]))
    if "masks" in det:
        det["masks"] = det["masks"].float()
    return draw_detections(image, det, class_names, 0.0, ax, title, skeleton)

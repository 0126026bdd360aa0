"""Chapter 05: how fine must the mask head's output be? Mask resolution and binarization threshold against
the pasted mask's IoU with the object.

The mask drawn is the best an m x m head could predict: the object's own target, `mask_head.mask_targets`
(RoIAlign of the ground-truth mask over its box), pasted back into the image by `paste.paste_masks_in_image`
and cut at the threshold, exactly as inference does with a predicted mask. What is lost is lost to the
resolution and the threshold alone.

    from minimrcnn.explorers.masks import masks_explorer, masks_figure
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from torch import Tensor

from minimrcnn.data.shapes import CATEGORIES
from minimrcnn.explorers.panel import Explorer, new_figure, one_thread, reuse_axes
from minimrcnn.explorers.scene import gt_boxes, scene
from minimrcnn.model.mask_head import mask_targets
from minimrcnn.model.paste import paste_masks_in_image
from minimrcnn.viz_roi import mask_iou, mask_overlay

IMAGE_INDEX, IMAGE_SIZE = 15, 256  # a 102-px and a 52-px triangle and a 23-px square
RESOLUTIONS = (14, 28, 56)
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)  # the curve's x axis
START = dict(resolution=28, threshold=0.5, aligned=False, object_index=1)
FIGSIZE = (12.0, 4.4)
NAMES = {c["id"]: c["name"] for c in CATEGORIES}


@dataclass
class MaskReading:
    """What the masks picture shows, in numbers."""

    box: Tensor  # [4] the object's box
    target: Tensor  # [M, M] mask_targets: the m x m mask a perfect head would predict
    pasted: Tensor  # [H, W] paste_masks_in_image: that mask back in the image, probabilities
    binary: Tensor  # [H, W] pasted >= threshold
    gt: Tensor  # [H, W] the object's visible pixels
    iou: float  # mask IoU of binary and gt


def objects(image_index: int = IMAGE_INDEX) -> list[tuple[str, int]]:
    """(label, index) of the image's objects, for a drop-down."""
    boxes, cats, _ = gt_boxes(image_index, IMAGE_SIZE)
    out = []
    for k, (b, c) in enumerate(zip(boxes.tolist(), cats.tolist())):
        out.append((f"{NAMES[c]}, {b[2] - b[0]:.0f} x {b[3] - b[1]:.0f} px", k))
    return out


def round_trip(
    object_index: int, resolution: int, aligned: bool, image_index: int = IMAGE_INDEX
) -> tuple[Tensor, Tensor]:
    """The object's m x m target [m, m] and the pasted probabilities [H, W]."""
    boxes, _, masks = gt_boxes(image_index, IMAGE_SIZE)
    box = boxes[object_index : object_index + 1]  # [1, 4]
    target = mask_targets(masks, box, torch.tensor([object_index]), resolution, aligned=aligned)  # [1, M, M]
    pasted = paste_masks_in_image(target[:, None], box, (IMAGE_SIZE, IMAGE_SIZE), aligned=aligned)
    return target[0], pasted[0, 0]  # [M, M], [H, W]


@lru_cache(maxsize=64)
def iou_curves(object_index: int, aligned: bool, image_index: int = IMAGE_INDEX) -> np.ndarray:
    """[len(RESOLUTIONS), len(THRESHOLDS)] mask IoU of every resolution at every threshold."""
    gt = gt_boxes(image_index, IMAGE_SIZE)[2][object_index].bool().numpy()
    rows = []
    for m in RESOLUTIONS:
        pasted = round_trip(object_index, m, aligned, image_index)[1].numpy()
        rows.append([mask_iou(gt, pasted >= t) for t in THRESHOLDS])
    return np.array(rows)


def _layout(fig: Figure) -> tuple[Axes, ...]:
    gs = fig.add_gridspec(
        1, 5, width_ratios=(1, 1, 1, 1, 1.25), wspace=0.12, left=0.01, right=0.98, top=0.84, bottom=0.2
    )
    axes = tuple(fig.add_subplot(gs[k]) for k in range(5))
    for ax in axes[:4]:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[4].yaxis.tick_right()
    axes[4].yaxis.set_label_position("right")
    return axes


def _contour(ax: Axes, values: Tensor, view: tuple[float, ...], level: float, color: str) -> None:
    """The `level` contour of an image-sized map, drawn over the visible part only (pixel centres at +0.5)."""
    c0, c1, r1, r0 = (int(v) for v in view)
    ys, xs = np.arange(r0, r1) + 0.5, np.arange(c0, c1) + 0.5
    part = values[r0:r1, c0:c1].numpy()
    if part.min() < level <= part.max():
        ax.contour(xs, ys, part, levels=[level], colors=color, linewidths=1.5)


@one_thread
def draw_masks(
    fig: Figure,
    *,
    resolution: int,
    threshold: float,
    aligned: bool,
    object_index: int,
    image_index: int = IMAGE_INDEX,
) -> MaskReading:
    """The object, its m x m target, the target pasted back, what the threshold keeps against the object,
    and the IoU of every resolution and threshold."""
    image, _ = scene(image_index, IMAGE_SIZE)
    boxes, cats, masks = gt_boxes(image_index, IMAGE_SIZE)
    box, gt = boxes[object_index], masks[object_index].bool()
    target, pasted = round_trip(object_index, resolution, aligned, image_index)
    binary = pasted >= threshold
    iou = mask_iou(gt, binary)
    reading = MaskReading(box, target, pasted, binary, gt, iou)

    x1, y1, x2, y2 = box.tolist()
    pad = max(4.0, 0.12 * max(x2 - x1, y2 - y1))
    view = (max(0.0, x1 - pad), min(IMAGE_SIZE, x2 + pad), min(IMAGE_SIZE, y2 + pad), max(0.0, y1 - pad))
    ax_obj, ax_target, ax_paste, ax_cut, ax_curve = reuse_axes(fig, "masks", _layout)
    extent = (0, IMAGE_SIZE, IMAGE_SIZE, 0)
    ax_obj.imshow(image, extent=extent, interpolation="nearest")
    _contour(ax_obj, gt.float(), view, 0.5, "cyan")
    ax_obj.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="gold", lw=1.5))
    ax_obj.set_title(
        f"the object: {NAMES[int(cats[object_index])]}\nbox {x2 - x1:.0f} x {y2 - y1:.0f} px", fontsize=10
    )
    ax_target.imshow(target.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax_target.set_title(
        f"its {resolution} x {resolution} target\n(what a perfect head predicts)", fontsize=10
    )
    ax_paste.imshow(pasted.numpy(), cmap="gray", vmin=0, vmax=1, extent=extent, interpolation="nearest")
    _contour(ax_paste, pasted, view, threshold, "orange")
    ax_paste.set_title(f"pasted into the image\n(orange: probability {threshold:.2f})", fontsize=10)
    ax_cut.imshow(mask_overlay(gt, binary), extent=extent, interpolation="nearest")
    extra, missed = int((binary & ~gt).sum()), int((gt & ~binary).sum())
    ax_cut.set_title(
        f">= {threshold:.2f} against the object\nIoU {iou:.3f}: {extra} px extra, {missed} missed",
        fontsize=10,
    )
    ax_cut.legend(
        handles=[
            Patch(color=(0.55, 0.55, 0.55), label="both"),
            Patch(color=(0.85, 0.15, 0.15), label="extra"),
            Patch(color=(0.15, 0.35, 0.9), label="missed"),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.01),
        fontsize=9,
        ncol=3,
        frameon=False,
    )
    for ax in (ax_obj, ax_paste, ax_cut):
        ax.set_xlim(view[0], view[1])
        ax.set_ylim(view[2], view[3])

    curves = iou_curves(object_index, bool(aligned), image_index)
    for m, row, color in zip(RESOLUTIONS, curves, ("tab:green", "tab:red", "tab:purple")):
        ax_curve.plot(THRESHOLDS, row, color=color, lw=2.4 if m == resolution else 1.2, label=f"{m} x {m}")
    ax_curve.plot([threshold], [iou], "ko", ms=6)
    ax_curve.set_xlabel("binarization threshold", fontsize=9)
    ax_curve.set_ylabel("mask IoU", fontsize=9)
    ax_curve.set_ylim(max(0.0, float(curves.min()) - 0.02), 1.0)
    ax_curve.tick_params(labelsize=8)
    ax_curve.grid(alpha=0.3)
    ax_curve.legend(fontsize=9, loc="lower center")
    ax_curve.set_title(f"every resolution and threshold\naligned={bool(aligned)}", fontsize=10)
    return reading


def masks_figure(**values) -> Figure:
    """The masks explorer's picture as a plain figure (the starting state unless values are given)."""
    fig = new_figure(*FIGSIZE)
    draw_masks(fig, **(START | values))
    return fig


def masks_explorer(**values) -> Explorer:
    """Mask resolution (14 / 28 / 56), binarization threshold, the paste convention, and which object."""
    import ipywidgets as W

    values = START | values
    controls = {
        "resolution": W.ToggleButtons(options=RESOLUTIONS, value=values["resolution"], description="m x m"),
        "threshold": W.FloatSlider(
            value=values["threshold"],
            min=0.05,
            max=0.95,
            step=0.05,
            readout_format=".2f",
            description="threshold",
        ),
        "aligned": W.Checkbox(value=values["aligned"], description="aligned (pixel-centre paste)"),
        "object_index": W.Dropdown(
            options=objects(values.get("image_index", IMAGE_INDEX)),
            value=values["object_index"],
            description="object",
        ),
    }
    fixed = {k: v for k, v in values.items() if k not in controls}
    title = "Mask resolution and threshold: the best an m x m mask can do once pasted"
    return Explorer(lambda fig, **v: draw_masks(fig, **v, **fixed), controls, FIGSIZE, title=title, columns=2)

"""Chapter 04: anchor sizes and ratios, the two IoU thresholds of the RPN's matching, and NMS.

Everything drawn is computed by the package: the anchors by `model.anchors.AnchorGenerator` (tiled over the
four levels of the shapes preset, strides 4 to 32), their labels by `RPN.assign_targets` (the `Matcher` with
the RPN's low-quality rule: every object keeps its best anchors), and the surviving proposals by `ops.nms`.
The proposals are stand-ins for a trained RPN's: each object's box jittered with `BoxCoder.decode`, scored
by how well it overlaps the object, plus a few boxes on the background.

    from minimrcnn.explorers.anchors import anchors_explorer, anchors_figure
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch import Tensor

from minimrcnn import ops
from minimrcnn.explorers.panel import Explorer, new_figure, one_thread, reuse_axes
from minimrcnn.explorers.scene import gt_boxes, scene
from minimrcnn.model.anchors import AnchorGenerator
from minimrcnn.model.rpn import RPN, RPNHead

IMAGE_INDEX = 1  # six shapes from 14 to 64 px: every level of anchors has something to match
STRIDES = (4, 8, 16, 32)  # shapes_cpu's P2..P5
RATIOS = {"1": (1.0,), "1:2, 1:1, 2:1": (0.5, 1.0, 2.0), "1:4 .. 4:1": (0.25, 0.5, 1.0, 2.0, 4.0)}
START = dict(smallest=16, ratios="1:2, 1:1, 2:1", fg_iou=0.7, bg_iou=0.3, nms_iou=0.7)
FIGSIZE = (12.0, 5.8)
LEVEL_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")


@dataclass
class AnchorReading:
    """What the anchors picture shows, in numbers."""

    anchors: Tensor  # [P, 4] every anchor of every level
    gt: Tensor  # [G, 4] the objects
    labels: Tensor  # [P] RPN.assign_targets: 1 object, 0 background, -1 ignored
    best_iou: Tensor  # [P] each anchor's IoU with the object it overlaps most
    proposals: Tensor  # [N, 4] the stand-in proposals
    scores: Tensor  # [N]
    kept: Tensor  # [M] indices of the proposals NMS keeps, by decreasing score

    def count(self, label: int) -> int:
        return int((self.labels == label).sum())


def level_sizes(smallest: int) -> tuple[tuple[int, ...], ...]:
    """One anchor size per level, doubling with the stride as in the presets (16 -> 16, 32, 64, 128)."""
    return tuple((int(smallest) * 2**level,) for level in range(len(STRIDES)))


def image_anchors(size: int, smallest: int, ratios: tuple[float, ...]) -> list[Tensor]:
    """AnchorGenerator's anchors for a `size x size` image, one [H_l * W_l * A, 4] tensor per level."""
    generator = AnchorGenerator(level_sizes(smallest), ratios)
    maps = [torch.zeros(1, 1, size // s, size // s) for s in STRIDES]  # only their shapes count
    return generator.grid_anchors(maps, (size, size))


def stand_in_proposals(gt: Tensor, size: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """8 jittered copies of every object's box scored by their IoU with it (plus noise), and 6 background
    boxes with low scores: ([N, 4], [N])."""
    g = torch.Generator().manual_seed(seed)
    ref = gt.repeat_interleave(8, dim=0)  # [8 G, 4]
    deltas = torch.randn(len(ref), 4, generator=g) * torch.tensor([0.12, 0.12, 0.18, 0.18])
    boxes = ops.BoxCoder((1.0, 1.0, 1.0, 1.0)).decode(deltas, ref)[:, 0]  # [8 G, 4]
    iou = ops.box_iou(boxes, ref).diagonal()  # [8 G]
    scores = (0.25 + 0.7 * iou + 0.08 * torch.randn(len(ref), generator=g)).clamp(0.01, 0.99)
    xy = torch.rand(6, 2, generator=g) * size * 0.8
    background = torch.cat([xy, xy + 12 + torch.rand(6, 2, generator=g) * 30], dim=1)
    boxes = ops.clip_boxes_to_image(torch.cat([boxes, background]), (size, size))
    scores = torch.cat([scores, 0.05 + 0.35 * torch.rand(6, generator=g)])
    return boxes, scores


def _rects(boxes: Tensor) -> list[np.ndarray]:
    x1, y1, x2, y2 = boxes.double().numpy().T
    corners = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    return list(np.stack([np.stack(c, 1) for c in corners], 1))


def _boxes(ax: Axes, boxes: Tensor, **kw) -> None:
    ax.add_collection(PolyCollection(_rects(boxes), facecolors="none", **kw))


def _layout(fig: Figure) -> tuple[Axes, Axes, Axes]:
    gs = fig.add_gridspec(
        1, 3, width_ratios=(0.75, 1, 1), wspace=0.08, left=0.01, right=0.99, top=0.86, bottom=0.17
    )
    axes = tuple(fig.add_subplot(gs[k]) for k in range(3))
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return axes


@one_thread
def draw_anchors(
    fig: Figure,
    *,
    smallest: int,
    ratios: str,
    fg_iou: float,
    bg_iou: float,
    nms_iou: float,
    image_index: int = IMAGE_INDEX,
) -> AnchorReading:
    """Left: the anchors of one position on every level. Middle: which anchors the RPN calls object,
    background or ignored. Right: which stand-in proposals survive NMS at `nms_iou`."""
    image, _ = scene(image_index)
    size = image.shape[0]
    gt = gt_boxes(image_index)[0]  # [G, 4]
    per_level = image_anchors(size, smallest, RATIOS[ratios])
    anchors = torch.cat(per_level)  # [P, 4]
    bg_iou = min(bg_iou, fg_iou)
    rpn = RPN(
        AnchorGenerator(level_sizes(smallest), RATIOS[ratios]),
        RPNHead(1, len(RATIOS[ratios])),
        fg_iou_thresh=fg_iou,
        bg_iou_thresh=bg_iou,
    )
    labels = rpn.assign_targets([anchors], [{"boxes": gt}])[0][0]  # [P]
    best_iou = ops.box_iou(gt, anchors).max(dim=0).values  # [P]
    proposals, scores = stand_in_proposals(gt, size)
    kept = ops.nms(proposals, scores, nms_iou)
    reading = AnchorReading(anchors, gt, labels, best_iou, proposals, scores, kept)

    ax_one, ax_match, ax_nms = reuse_axes(fig, "anchors", _layout)
    for ax in (ax_one, ax_match, ax_nms):
        ax.imshow(image, extent=(0, size, size, 0), interpolation="nearest")
        ax.set_xlim(0, size)
        ax.set_ylim(size, 0)

    # the anchors of one position per level, all centred on the image's middle
    centre = size // 2
    for s, anc, color in zip(STRIDES, per_level, LEVEL_COLORS):
        n = size // s
        a = len(RATIOS[ratios])
        pos = (centre // s) * n + centre // s  # the position whose anchors are centred at (centre, centre)
        _boxes(ax_one, anc[pos * a : (pos + 1) * a], edgecolors=color, linewidths=1.6)
    ax_one.legend(
        handles=[
            Line2D([], [], color=c, lw=2, label=f"stride {s}: {size_[0]} px")
            for s, c, size_ in zip(STRIDES, LEVEL_COLORS, level_sizes(smallest))
        ],
        loc="upper left",
        bbox_to_anchor=(0, -0.01),
        fontsize=9,
        frameon=False,
        ncol=2,
    )
    ax_one.set_title(f"the anchors of one position\n{len(RATIOS[ratios])} ratio(s) x 4 levels", fontsize=10)

    positive, ignored = labels == 1, labels == -1
    strong = positive & (best_iou >= fg_iou)
    _boxes(ax_match, anchors[ignored], edgecolors="orange", linewidths=0.5, alpha=0.45)
    _boxes(ax_match, gt, edgecolors="cyan", linewidths=2.2)
    _boxes(ax_match, anchors[strong], edgecolors="lime", linewidths=1.4)
    _boxes(ax_match, anchors[positive & ~strong], edgecolors="lime", linewidths=1.4, linestyles="--")
    ax_match.set_title(
        f"{len(anchors)} anchors: {int(positive.sum())} object, {int(ignored.sum())} ignored,\n"
        f"{reading.count(0)} background (IoU < {bg_iou:.2f}, not drawn)",
        fontsize=10,
    )
    ax_match.legend(
        handles=[
            Line2D([], [], color="cyan", lw=2, label="object (ground truth)"),
            Line2D([], [], color="lime", lw=1.5, label=f"object: IoU >= {fg_iou:.2f}"),
            Line2D([], [], color="lime", lw=1.5, ls="--", label="object: its best anchor, IoU lower"),
            Line2D([], [], color="orange", lw=1, label=f"ignored: IoU {bg_iou:.2f} .. {fg_iou:.2f}"),
        ],
        loc="upper left",
        bbox_to_anchor=(0, -0.01),
        fontsize=9,
        frameon=False,
        ncol=1,
    )

    dropped = torch.ones(len(proposals), dtype=torch.bool)
    dropped[kept] = False
    _boxes(ax_nms, proposals[dropped], edgecolors="0.85", linewidths=0.8, linestyles=":")
    colors = [(1.0, 1.0 - float(sc), 0.0) for sc in scores[kept]]  # yellow (low score) to red (high)
    _boxes(ax_nms, proposals[kept], edgecolors=colors, linewidths=2.0)
    ax_nms.set_title(
        f"NMS at IoU {nms_iou:.2f}: {len(kept)} of {len(proposals)} proposals kept\n"
        f"(stand-ins: jittered object boxes, scored by their overlap)",
        fontsize=10,
    )
    ax_nms.legend(
        handles=[
            Line2D([], [], color="red", lw=2, label="kept (redder: higher score)"),
            Line2D([], [], color="0.7", lw=1.5, ls=":", label="suppressed by a kept box"),
        ],
        loc="upper left",
        bbox_to_anchor=(0, -0.01),
        fontsize=9,
        frameon=False,
        ncol=1,
    )
    return reading


def anchors_figure(**values) -> Figure:
    """The anchors explorer's picture as a plain figure (the starting state unless values are given)."""
    fig = new_figure(*FIGSIZE)
    draw_anchors(fig, **(START | values))
    return fig


def anchors_explorer(**values) -> Explorer:
    """Anchor sizes and ratios, the RPN's two IoU thresholds, and the NMS threshold."""
    import ipywidgets as W

    values = START | values
    label = {"description_width": "130px"}  # wide enough for the longest label, "object IoU >="
    style = dict(continuous_update=True, readout_format=".2f", step=0.05, style=label)
    controls = {
        "smallest": W.Dropdown(
            options=[8, 16, 32], value=values["smallest"], description="smallest size", style=label
        ),
        "ratios": W.Dropdown(
            options=list(RATIOS), value=values["ratios"], description="ratios (h:w)", style=label
        ),
        "fg_iou": W.FloatSlider(
            value=values["fg_iou"], min=0.3, max=0.95, description="object IoU >=", **style
        ),
        "bg_iou": W.FloatSlider(
            value=values["bg_iou"], min=0.0, max=0.7, description="background <", **style
        ),
        "nms_iou": W.FloatSlider(value=values["nms_iou"], min=0.1, max=1.0, description="NMS IoU", **style),
    }
    fixed = {k: v for k, v in values.items() if k not in controls}
    title = "Anchors, matching and NMS: change the anchors and the thresholds"
    return Explorer(lambda fig, **v: draw_anchors(fig, **v, **fixed), controls, FIGSIZE, title=title)

"""Chapters 01 and 02: move an RoI over a feature grid and watch RoIPool round it and RoIAlign sample it.

Both explorers ask the package's own operators what they do, with no second implementation: which feature
cells each RoIPool bin reads and the bilinear weight RoIAlign gives each cell come from running
`ops.roi_pool` / `ops.roi_align` on a one-hot map (`viz_roi.cells_read`); bin centers and sample points come
from running them on a map of cell coordinates (`viz_roi.bin_centers_seen`, `viz_roi.sample_points_seen`);
the pooled outputs are the ops' outputs on a stand-in feature map (the image averaged over each cell, so the
output is a small colour picture of what the RoI read).

    from minimrcnn.explorers.roi import roipool_explorer, roipool_figure
    roipool_figure()      # the starting picture, a plain figure
    roipool_explorer()    # the live panel
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from torch import Tensor

from minimrcnn import ops
from minimrcnn.explorers.panel import Explorer, new_figure, one_thread, reuse_axes
from minimrcnn.explorers.scene import feature_map, scene
from minimrcnn.viz_roi import bin_centers_seen, cells_read, sample_points_seen, sampling_grid

IMAGE_INDEX = 8  # a validation shapes image with one large square turned 45 degrees
# the starting RoI: around that square, a little off it, at sub-pixel coordinates
START = dict(x1=18.6, y1=40.3, width=54.9, height=55.4, output_size=7, stride=16, bin_row=1, bin_col=2)
STRIDES = (4, 8, 16, 32)
FIGSIZE = (10.5, 6.0)
PICK = "lime"  # the chosen bin, on the grid and in the outputs
READ = (0.0, 0.9, 1.0)  # cells a bin reads (cyan): stands out on the image's pink and on the dark square


@dataclass
class RoIPoolReading:
    """What the RoIPool picture shows, in numbers."""

    box: tuple[float, float, float, float]  # the RoI, image pixels
    snapped: tuple[float, float, float, float]  # the cells it covers after the first rounding, image pixels
    cells: Tensor  # [k, k, H, W] 1 where bin (i, j) reads cell (r, c): ops.roi_pool on a one-hot map
    pooled: Tensor  # [3, k, k] ops.roi_pool on the feature map
    center_shift: Tensor  # [2, k, k] (dx, dy) image pixels: bin centers read minus the ideal centers

    @property
    def corner_shift(self) -> tuple[float, ...]:
        return tuple(s - b for s, b in zip(self.snapped, self.box))


@dataclass
class RoIAlignReading:
    """What the RoIAlign picture shows, in numbers."""

    box: tuple[float, float, float, float]
    grid: tuple[int, int]  # samples per bin along y and x
    samples: tuple[Tensor, Tensor]  # (x, y), each [k g_h, k g_w], image pixels
    weights: Tensor  # [k, k, H, W] each cell's bilinear weight in each bin: ops.roi_align on a one-hot map
    aligned: Tensor  # [3, k, k] ops.roi_align on the feature map
    pooled: Tensor  # [3, k, k] ops.roi_pool on the same map and RoI
    center_shift: Tensor  # [2, k, k] (dx, dy) image pixels: centers of the samples minus the ideal centers


def roi_box(x1: float, y1: float, width: float, height: float, size: int) -> tuple[float, ...]:
    """The controls' RoI as (x1, y1, x2, y2), kept inside a `size x size` image."""
    x2, y2 = min(x1 + width, float(size)), min(y1 + height, float(size))
    return (float(x1), float(y1), x2, y2)


def ideal_centers(box: tuple[float, ...], k: int) -> Tensor:
    """[2, k, k] (x, y) of the centers of the box cut into k x k equal bins."""
    x1, y1, x2, y2 = box
    t = (torch.arange(k, dtype=torch.float64) + 0.5) / k
    cx, cy = x1 + (x2 - x1) * t, y1 + (y2 - y1) * t
    return torch.stack([cx[None, :].expand(k, k), cy[:, None].expand(k, k)])


def _background(ax: Axes, index: int, stride: int) -> tuple[int, int]:
    image, _ = scene(index)
    h, w = image.shape[:2]
    ax.imshow(image, extent=(0, w, h, 0), interpolation="nearest")
    ax.vlines(np.arange(0, w + 1, stride), 0, h, colors="white", lw=0.7, alpha=0.6)
    ax.hlines(np.arange(0, h + 1, stride), 0, w, colors="white", lw=0.7, alpha=0.6)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xticks(np.arange(0, w + 1, 32))
    ax.set_yticks(np.arange(0, h + 1, 32))
    ax.tick_params(labelsize=8)
    return h, w


def _rects(boxes: np.ndarray) -> list[np.ndarray]:
    """[N, 4] (x1, y1, x2, y2) -> polygons for a PolyCollection."""
    x1, y1, x2, y2 = boxes.T
    return list(
        np.stack(
            [np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1), np.stack([x1, y2], 1)], 1
        )
    )


def _rect(ax: Axes, box: tuple[float, ...], **kw: Any) -> Rectangle:
    x1, y1, x2, y2 = box
    return ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, **kw))


def _show_output(ax: Axes, values: Tensor, title: str) -> None:
    """A [3, k, k] pooled output as a colour picture, one square per bin."""
    k = values.shape[-1]
    ax.imshow(values.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest", extent=(0, k, k, 0))
    ax.set_title(title, fontsize=10)


@one_thread
def draw_roipool(
    fig: Figure,
    *,
    x1: float,
    y1: float,
    width: float,
    height: float,
    output_size: int,
    stride: int,
    bin_row: int = 0,
    bin_col: int = 0,
    image_index: int = IMAGE_INDEX,
) -> RoIPoolReading:
    """RoIPool on one RoI: the box rounded to the feature grid, the cells one bin reads, every bin's ideal
    center against the center of what it reads, the RoI's own pixels and the output (`ops.roi_pool`)."""
    image, _ = scene(image_index)
    size = image.shape[0]
    k, s = int(output_size), int(stride)
    i, j = min(int(bin_row), k - 1), min(int(bin_col), k - 1)
    box = roi_box(x1, y1, width, height, size)
    fmap = feature_map(image_index, s)  # [1, 3, H, W]
    cells = cells_read(ops.roi_pool, box, s, k, tuple(fmap.shape[-2:]))  # [k, k, H, W]
    pooled = ops.roi_pool(fmap, torch.tensor([[0.0, *box]], dtype=fmap.dtype), k, 1 / s)[0]  # [3, k, k]
    seen_x, seen_y = bin_centers_seen(
        ops.roi_pool, torch.tensor([box], dtype=torch.float64), s, k, (size, size)
    )  # [1, k, k]
    ideal = ideal_centers(box, k)  # [2, k, k]
    shift = torch.stack([seen_x[0], seen_y[0]]) - ideal  # [2, k, k]
    rows, cols = torch.where(cells.amax((0, 1)) > 0)  # every cell some bin reads
    snapped = tuple(float(v) * s for v in (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1))
    reading = RoIPoolReading(box, snapped, cells, pooled, shift)

    ax, ax_crop, ax_out = reuse_axes(fig, "roi", _layout)
    _background(ax, image_index, s)
    _bin_lines(ax, box, k)
    mine_r, mine_c = torch.where(cells[i, j] > 0)
    mine = np.stack([mine_c, mine_r, mine_c + 1, mine_r + 1], 1).astype(float) * s
    ax.add_collection(PolyCollection(_rects(mine), facecolors=(*READ, 0.45), edgecolors=READ, lw=1))
    _rect(ax, snapped, color="red", lw=2, ls="--")
    _rect(ax, box, color="gold", lw=2)
    bx, by = np.linspace(box[0], box[2], k + 1), np.linspace(box[1], box[3], k + 1)
    _rect(ax, (bx[j], by[i], bx[j + 1], by[i + 1]), color=PICK, lw=2)
    ix, iy = ideal.reshape(2, -1).numpy()
    sx, sy = (ideal + shift).reshape(2, -1).numpy()
    segments = np.stack([np.stack([ix, iy], 1), np.stack([sx, sy], 1)], 1)  # [k*k, 2, 2]
    ax.add_collection(LineCollection(segments, colors="white", linewidths=1.0))
    ax.scatter(sx, sy, s=14, c="cyan", edgecolors="k", linewidths=0.5, zorder=3)
    ax.scatter(ix, iy, s=30, c="gold", marker="+", linewidths=1.2, zorder=4)
    dist = shift.norm(dim=0)
    corner = max(abs(v) for v in reading.corner_shift)
    ax.set_title(
        f"RoIPool, stride {s}, {k} x {k} bins: the box's corners move up to {corner:.1f} px,\n"
        f"bin centers {dist.mean():.1f} px on average (at most {dist.max():.1f}); "
        f"bin ({i}, {j}) reads {len(mine_r.unique())} x {len(mine_c.unique())} cells",
        fontsize=10,
    )
    _legend(
        ax,
        [
            Line2D([], [], color="gold", lw=2, label="the RoI and its ideal bins"),
            Line2D([], [], color="red", lw=2, ls="--", label="after rounding to cells"),
            Line2D([], [], color=PICK, lw=2, label=f"ideal bin ({i}, {j})"),
            Patch(facecolor=(*READ, 0.45), edgecolor=READ, label=f"cells bin ({i}, {j}) reads"),
            Line2D([], [], color="gold", marker="+", ls="", ms=8, label="ideal bin centers"),
            Line2D(
                [], [], color="cyan", marker="o", mec="k", ls="", ms=5, label="centers of what RoIPool reads"
            ),
        ],
    )

    ax_crop.imshow(image, extent=(0, size, size, 0), interpolation="nearest")
    ax_crop.set_xlim(box[0], box[2])
    ax_crop.set_ylim(box[3], box[1])
    ax_crop.set_title(f"the RoI's pixels\n{box[2] - box[0]:.1f} x {box[3] - box[1]:.1f} px", fontsize=10)
    _show_output(ax_out, pooled, f"RoIPool output\n{k} x {k}, max per bin")
    _rect(ax_out, (j, i, j + 1, i + 1), color=PICK, lw=2)
    return reading


def _layout(fig: Figure) -> tuple[Axes, Axes, Axes]:
    """The feature grid large on the left, two k x k-sized pictures on the right."""
    gs = fig.add_gridspec(
        1, 3, width_ratios=(2.1, 1, 1), wspace=0.12, left=0.03, right=0.99, top=0.87, bottom=0.17
    )
    axes = fig.add_subplot(gs[0]), fig.add_subplot(gs[1]), fig.add_subplot(gs[2])
    for ax in axes[1:]:
        ax.set_xticks([])
        ax.set_yticks([])
    return axes


def _legend(ax: Axes, handles: list) -> None:
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(-0.02, -0.06),
        fontsize=9,
        ncol=3,
        frameon=False,
        handlelength=1.8,
        columnspacing=1.0,
    )


def _bin_lines(ax: Axes, box: tuple[float, ...], k: int) -> None:
    """The box cut into k x k equal bins (thin gold lines)."""
    bx, by = np.linspace(box[0], box[2], k + 1), np.linspace(box[1], box[3], k + 1)
    ax.vlines(bx, box[1], box[3], colors="gold", lw=0.6)
    ax.hlines(by, box[0], box[2], colors="gold", lw=0.6)


@one_thread
def draw_roialign(
    fig: Figure,
    *,
    x1: float,
    y1: float,
    width: float,
    height: float,
    output_size: int,
    stride: int,
    aligned: bool = True,
    sampling_ratio: int = 2,
    bin_row: int = 0,
    bin_col: int = 0,
    image_index: int = IMAGE_INDEX,
) -> RoIAlignReading:
    """RoIAlign on one RoI: its exact bins, every sample point, one bin's bilinear weights on the cells, and
    its output next to RoIPool's for the same RoI."""
    image, _ = scene(image_index)
    size = image.shape[0]
    k, s = int(output_size), int(stride)
    i, j = min(int(bin_row), k - 1), min(int(bin_col), k - 1)
    box = roi_box(x1, y1, width, height, size)
    fmap = feature_map(image_index, s)  # [1, 3, H, W]
    roi = torch.tensor([[0.0, *box]], dtype=fmap.dtype)
    kw = dict(sampling_ratio=int(sampling_ratio), aligned=bool(aligned))
    out = ops.roi_align(fmap, roi, k, 1 / s, **kw)[0]  # [3, k, k]
    pooled = ops.roi_pool(fmap, roi, k, 1 / s)[0]  # [3, k, k]
    weights = cells_read(ops.roi_align, box, s, k, tuple(fmap.shape[-2:]), **kw)  # [k, k, H, W]
    grid = sampling_grid(box, s, k, int(sampling_ratio), bool(aligned))
    px, py = sample_points_seen(ops.roi_align, box, s, k, grid, (size, size), aligned=bool(aligned))
    seen_x, seen_y = bin_centers_seen(
        ops.roi_align, torch.tensor([box], dtype=torch.float64), s, k, (size, size), **kw
    )
    shift = torch.stack([seen_x[0], seen_y[0]]) - ideal_centers(box, k)  # [2, k, k]

    ax, ax_out, ax_pool = reuse_axes(fig, "roi", _layout)
    _background(ax, image_index, s)
    w = weights[i, j]  # [H, W]
    rows, cols = torch.where(w > 5e-3)  # cells that count (a weight under 0.005 would print as 0.00)
    cells = np.stack([cols, rows, cols + 1, rows + 1], 1).astype(float) * s
    alpha = (0.15 + 0.6 * w[rows, cols] / w.max()).numpy()
    face = np.concatenate([np.tile([READ], (len(alpha), 1)), alpha[:, None]], 1)
    ax.add_collection(PolyCollection(_rects(cells), facecolors=face, edgecolors="none"))
    if len(rows) <= 25 and s >= 16:  # room for the numbers
        for r, c in zip(rows.tolist(), cols.tolist()):
            ax.text(
                (c + 0.5) * s,
                (r + 0.75) * s,
                f"{w[r, c]:.2f}",
                ha="center",
                va="center",
                fontsize=9,
                color="black",
                bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8),
            )
    _bin_lines(ax, box, k)
    bx, by = np.linspace(box[0], box[2], k + 1), np.linspace(box[1], box[3], k + 1)
    _rect(ax, box, color="gold", lw=2)
    _rect(ax, (bx[j], by[i], bx[j + 1], by[i + 1]), color=PICK, lw=2)
    gh, gw = max(grid[0], 1), max(grid[1], 1)
    ax.scatter(px.flatten(), py.flatten(), s=7, c="white", edgecolors="black", linewidths=0.4, zorder=3)
    mine = (slice(i * gh, (i + 1) * gh), slice(j * gw, (j + 1) * gw))  # this bin's samples
    ax.scatter(
        px[mine].flatten(), py[mine].flatten(), s=28, c="red", edgecolors="white", linewidths=0.8, zorder=4
    )
    dx, dy = (round(v, 1) + 0.0 for v in shift.reshape(2, -1).mean(1).tolist())  # + 0.0: no "-0.0"
    ax.set_title(
        f"RoIAlign, stride {s}, aligned={bool(aligned)}, {grid[0]} x {grid[1]} samples per bin:\n"
        f"bin centers off by ({dx:+.1f}, {dy:+.1f}) px on average, {shift.norm(dim=0).max():.1f} at most",
        fontsize=10,
    )
    _legend(
        ax,
        [
            Line2D([], [], color="gold", lw=2, label="the RoI and its bins"),
            Line2D([], [], color="white", mec="black", marker="o", ls="", ms=4, label="sample points"),
            Line2D(
                [], [], color="red", mec="white", marker="o", ls="", ms=6, label=f"bin ({i}, {j})'s samples"
            ),
            Line2D([], [], color=PICK, lw=2, label=f"bin ({i}, {j})"),
            Patch(facecolor=(*READ, 0.6), label="its bilinear weight on each cell"),
        ],
    )
    _show_output(ax_out, out, f"RoIAlign output\n{k} x {k}, mean of samples")
    _rect(ax_out, (j, i, j + 1, i + 1), color=PICK, lw=2)
    diff = (out - pooled).abs().mean()
    _show_output(ax_pool, pooled, f"RoIPool output, same RoI\nmean |difference| {diff:.3f}")
    return RoIAlignReading(box, grid, (px, py), weights, out, pooled, shift)


# ------------------------------------------------------------------------------------------- figures, panels
def roipool_figure(**values) -> Figure:
    """The RoIPool explorer's picture as a plain figure (the starting state unless values are given)."""
    fig = new_figure(*FIGSIZE)
    draw_roipool(fig, **(START | values))
    return fig


def roialign_figure(**values) -> Figure:
    """The RoIAlign explorer's picture as a plain figure (the starting state unless values are given)."""
    fig = new_figure(*FIGSIZE)
    draw_roialign(fig, **(START | values))
    return fig


def _roi_controls(values: dict) -> dict:
    import ipywidgets as W

    size = scene(values.get("image_index", IMAGE_INDEX))[0].shape[0]
    style = dict(continuous_update=True, readout_format=".1f", step=0.1, style={"description_width": "60px"})
    return {
        "x1": W.FloatSlider(value=values["x1"], min=0, max=size - 4, description="x1 (px)", **style),
        "y1": W.FloatSlider(value=values["y1"], min=0, max=size - 4, description="y1 (px)", **style),
        "width": W.FloatSlider(value=values["width"], min=2, max=size, description="width", **style),
        "height": W.FloatSlider(value=values["height"], min=2, max=size, description="height", **style),
        "output_size": W.IntSlider(value=values["output_size"], min=1, max=14, description="output"),
        "stride": W.Dropdown(options=STRIDES, value=values["stride"], description="stride"),
        "bin_row": W.IntSlider(value=values["bin_row"], min=0, max=13, description="bin row"),
        "bin_col": W.IntSlider(value=values["bin_col"], min=0, max=13, description="bin column"),
    }


def roipool_explorer(**values) -> Explorer:
    """Move and resize the RoI (sub-pixel), choose the output size and the stride; see the cells each bin
    reads, the displacement of the bins, and the pooled output."""
    values = START | values
    controls = _roi_controls(values)
    fixed = {k: v for k, v in values.items() if k not in controls}
    return Explorer(
        lambda fig, **v: draw_roipool(fig, **v, **fixed),
        controls,
        FIGSIZE,
        title="RoIPool: move the RoI and watch the roundings",
    )


def roialign_explorer(**values) -> Explorer:
    """The same RoI under RoIAlign: sampling points, one bin's bilinear weights, `aligned` on and off, and
    the output next to RoIPool's."""
    import ipywidgets as W

    values = {"aligned": True, "sampling_ratio": 2} | START | values
    controls = _roi_controls(values) | {
        "aligned": W.Checkbox(value=values["aligned"], description="aligned (half-pixel shift)"),
        "sampling_ratio": W.Dropdown(
            options=[("1", 1), ("2", 2), ("3", 3), ("adaptive (-1)", -1)],
            value=values["sampling_ratio"],
            description="samples",
        ),
    }
    fixed = {k: v for k, v in values.items() if k not in controls}
    title = "RoIAlign: sample points, bilinear weights, and the output next to RoIPool's"
    return Explorer(lambda fig, **v: draw_roialign(fig, **v, **fixed), controls, FIGSIZE, title=title)

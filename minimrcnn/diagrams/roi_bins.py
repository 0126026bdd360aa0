"""RoIPool's quantized bins against RoIAlign's bilinear samples (the paper's Figure 3), read off the ops."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from minimrcnn import ops
from minimrcnn.diagrams.drawing import FONT
from minimrcnn.viz_roi import draw_box


def draw_roi_bins(
    box: tuple[float, float, float, float] = (11.3, 9.8, 46.6, 38.5),
    stride: int = 8,
    output_size: int = 2,
    sampling_ratio: int = 2,
    grid: int = 8,
    aligned: bool = True,
) -> Figure:
    """The paper's Figure 3: one RoI (image pixels) on a `grid x grid` feature map of stride `stride`.
    Left, RoIPool: the feature cells each output bin takes its max over (the box snapped to the grid).
    Right, RoIAlign: exact bins, `sampling_ratio` x `sampling_ratio` bilinear samples per bin, and one
    sample's 4 weights.
    Both are read off the package's own ops applied to a one-hot probe (one channel per feature cell)."""
    probe = torch.eye(grid * grid, dtype=torch.float64).reshape(1, grid * grid, grid, grid)  # [1, G², G, G]
    rois = torch.tensor([[0.0, *box]], dtype=torch.float64)
    cells = ops.roi_pool(probe, rois, output_size, 1 / stride)[0]  # [G², S, S]: 1 where a cell is in a bin
    n = output_size * sampling_ratio  # an n x n RoIAlign with one sample per bin has the same samples
    weights = ops.roi_align(probe, rois, n, 1 / stride, sampling_ratio=1, aligned=aligned)[0]  # [G², n, n]
    centres = (torch.arange(grid, dtype=torch.float64) + 0.5) * stride  # cell centres, image pixels
    cy, cx = centres.repeat_interleave(grid), centres.repeat(grid)  # [G²]: channel c is cell (c // G, c % G)
    sx, sy = (weights * cx[:, None, None]).sum(0), (weights * cy[:, None, None]).sum(0)  # [n, n] samples
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 5.8), facecolor="white")
    side, colors = grid * stride, ["#2b6cb0", "#c53030", "#2f855a", "#6b46c1", "#b7791f", "#319795"]
    titles = ("RoIPool: bins snapped to the feature grid", "RoIAlign: exact bins, bilinear samples")
    for ax, title in zip(axes, titles):
        for v in range(0, side + 1, stride):
            ax.axhline(v, color="#9a9a9a", lw=0.8)
            ax.axvline(v, color="#9a9a9a", lw=0.8)
        draw_box(ax, box, "RoI", lw=2.2, color="#1a1a1a", zorder=5)
        ticks = range(0, side + 1, stride)
        ax.set(xlim=(0, side), ylim=(side, 0), aspect="equal", xticks=ticks, yticks=ticks, facecolor="white")
        ax.set_title(title, fontsize=FONT + 1)
        ax.tick_params(labelsize=FONT - 1)
        ax.set_xlabel(f"image pixels (a feature cell is {stride}×{stride})", fontsize=FONT)
    snapped = [float(side), float(side), 0.0, 0.0]  # the union of the cells RoIPool reads
    for b in range(output_size * output_size):
        for c in torch.nonzero(cells[:, b // output_size, b % output_size] > 0.5)[:, 0].tolist():
            x, y = c % grid * stride, c // grid * stride
            axes[0].add_patch(Rectangle((x, y), stride, stride, color=colors[b % 6], alpha=0.28))
            snapped = [
                min(snapped[0], x),
                min(snapped[1], y),
                max(snapped[2], x + stride),
                max(snapped[3], y + stride),
            ]
    moved = max(abs(a - b) for a, b in zip(snapped, box))
    draw_box(axes[0], snapped, "what RoIPool reads", lw=2.0, ls="--", color="#c05621", zorder=6)
    axes[0].text(
        side / 2,
        side - 1.5,
        f"a corner moves by up to {moved:.1f} px; darker cells: in two bins",
        ha="center",
        va="bottom",
        fontsize=FONT,
        bbox=dict(fc="white", ec="none", alpha=0.85),
    )
    bw, bh = (box[2] - box[0]) / output_size, (box[3] - box[1]) / output_size
    for k in range(1, output_size):
        axes[1].plot([box[0] + k * bw] * 2, [box[1], box[3]], color="#1a1a1a", lw=1.2, ls="--")
        axes[1].plot([box[0], box[2]], [box[1] + k * bh] * 2, color="#1a1a1a", lw=1.2, ls="--")
    axes[1].scatter(cx, cy, s=9, color="#9a9a9a", zorder=3, label="feature values (cell centres)")
    axes[1].scatter(sx.flatten(), sy.flatten(), s=36, color="#c53030", zorder=7, label="sampling points")
    w0, x0, y0 = weights[:, 0, 0], float(sx[0, 0]), float(sy[0, 0])  # the first sample: four weights > 0
    for c in torch.nonzero(w0 > 0)[:, 0].tolist():
        axes[1].plot([x0, float(cx[c])], [y0, float(cy[c])], color="#c53030", lw=1.0)
        axes[1].text(
            float(cx[c]),
            float(cy[c]) - 0.6,
            f"{float(w0[c]):.2f}",
            fontsize=FONT - 1,
            ha="center",
            va="bottom",
            color="#7b1f1f",
            bbox=dict(fc="white", ec="none", alpha=0.8),
            zorder=8,
        )
    for ax in axes:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=FONT - 1, frameon=False)
    fig.tight_layout()
    return fig

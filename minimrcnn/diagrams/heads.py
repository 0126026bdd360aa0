"""The parts one at a time, each with the model's recorded shapes.

draw_fpn(cfg)            the top-down pathway with its lateral 1x1 and output 3x3 convs (chapter 03)
draw_rpn_head(cfg)       the shared 3x3 conv, the two 1x1 siblings and the anchors of one position (04)
draw_mask_head(cfg)      the box and mask heads (paper, Figure 4: right for FPN, left for C4) (05)
draw_keypoint_head(cfg)  the keypoint head: convs, deconv, 2x upsampling to heatmaps (10)
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle

from minimrcnn.config import Config, ModelConfig
from minimrcnn.diagrams.drawing import COLORS, FONT, arrow, canvas, model_cfg, node
from minimrcnn.diagrams.shapes import Shapes, label, record_shapes
from minimrcnn.model.anchors import cell_anchors
from minimrcnn.presets import figures_cpu


def draw_fpn(cfg: Config | ModelConfig | None = None) -> Figure:
    """FPN's top-down pathway: lateral 1x1 convs, 2x nearest upsampling and addition, 3x3 output convs.
    A C4 config has no pyramid: its trunk C2..C4 is drawn instead, the RPN and RoI pooling reading C4."""
    m = model_cfg(cfg)
    s = record_shapes(m)
    stages = [k for k in ("C2", "C3", "C4", "C5") if k in s]
    rows = len(stages) + (1 if m.fpn else 0)
    fig, ax = canvas(18.6, 1.75 * rows + 1.6)
    ys = [0.7 + 1.75 * i for i in range(rows)]
    for i, c in enumerate(stages):
        node(ax, "backbone", (0.3, ys[i]), 3.0, 1.2, [c, (label(s, c), c)])
        if i:
            arrow(ax, (1.8, ys[i - 1] + 1.2), (1.8, ys[i]))
    if not m.fpn:
        arrow(ax, (3.3, ys[-1] + 0.6), (6.5, ys[-1] + 0.6), label(s, "C4"), "C4")
        ax.text(
            6.7,
            ys[-1] + 0.6,
            "the only map: the RPN and the RoI pooler read C4 (stride 16);\nconv5 "
            "runs per RoI, in the box and mask heads (the C4 model: no FPN)",
            va="center",
            fontsize=FONT,
        )
        return fig
    ax.text(1.8, ys[-1] + 0.6, "ResNet stages", ha="center", va="center", fontsize=FONT, weight="bold")
    ax.text(11.6, ys[-1] + 1.45, "FPN", ha="center", fontsize=FONT + 1, weight="bold")
    for i in range(len(stages)):
        y = ys[i] + 0.6
        # the operation above the arrow, the lateral's shape below it: on one line they ran into the C boxes
        arrow(ax, (3.3, y), (7.4, y), "lateral 1×1 conv")
        lateral = label(s, f"L{i + 2}")
        ax.text(5.35, y - 0.12, lateral, ha="center", va="top", fontsize=FONT - 1, gid=f"shape:L{i + 2}")
        ax.add_patch(plt.Circle((7.75, y), 0.35, fc="white", ec=COLORS["fpn"][1], lw=1.8))
        ax.text(
            7.75,
            y,
            "+" if i + 1 < len(stages) else "",
            ha="center",
            va="center",
            fontsize=FONT + 3,
            color=COLORS["fpn"][1],
        )  # the top level has nothing to add: it starts the pathway
        arrow(ax, (8.1, y), (13.0, y), "3×3 conv")
        node(ax, "fpn", (13.0, ys[i]), 3.0, 1.2, [f"P{i + 2}", (label(s, f"P{i + 2}"), f"P{i + 2}")])
        if i + 1 < len(stages):
            arrow(ax, (7.75, ys[i + 1] + 0.25), (7.75, y + 0.35))
            ax.text(7.95, (ys[i + 1] + y) / 2 + 0.25, "2× nearest upsampling", fontsize=FONT - 1, va="center")
    top = f"P{len(stages) + 2}"
    arrow(ax, (14.5, ys[-2] + 1.2), (14.5, ys[-1]), "", None)
    ax.text(14.65, ys[-1] - 0.27, "max-pool 1×1, stride 2", fontsize=FONT - 1, va="center")
    node(ax, "fpn", (13.0, ys[-1]), 3.0, 1.2, [top, (label(s, top), top)])
    extra = "for the RPN only" if len(stages) == 4 else "no C5: P4\nsubsampled"
    ax.text(16.2, ys[-1] + 0.6, extra, fontsize=FONT - 1, va="center")
    return fig


def draw_rpn_head(cfg: Config | ModelConfig | None = None) -> Figure:
    """The RPN head (shared 3x3 conv, then 1x1 objectness and 1x1 box-delta convs) with the recorded shapes
    on every level, and the anchors centred on one position of each level (the package's cell_anchors)."""
    m = model_cfg(cfg)
    s = record_shapes(m)
    levels = [k.split(".")[-1] for k in s if k.startswith("rpn.logits.")]
    fig = plt.figure(figsize=(12.5, 4.6), facecolor="white")
    ax = fig.add_axes((0, 0, 0.68, 1))
    _, ax = canvas(17.0, 9.2, ax)
    h = 0.55 * len(levels) + 1.1
    y0 = 4.6 - h / 2
    node(
        ax,
        "fpn" if m.fpn else "backbone",
        (0.2, y0),
        3.6,
        h,
        ["input map"] + [(f"{lv}  {label(s, lv)}", lv) for lv in levels],
    )
    node(
        ax,
        "rpn",
        (5.0, y0),
        3.6,
        h,
        ["3×3 conv, ReLU"] + [(label(s, f"rpn.conv.{lv}"), f"rpn.conv.{lv}") for lv in levels],
    )
    arrow(ax, (3.8, 4.6), (5.0, 4.6))
    a = s[f"rpn.logits.{levels[0]}"][1]
    for y, kind, what in ((6.9, "logits", f"{a} objectness logits"), (2.3, "deltas", f"4 × {a} box deltas")):
        lines = [(f"{lv}  {label(s, f'rpn.{kind}.{lv}')}", f"rpn.{kind}.{lv}") for lv in levels]
        node(ax, "rpn", (10.4, y - h / 2), 5.0, h, [f"1×1 conv: {what}", *lines], fs=9.5)
        arrow(ax, (8.6, 4.6), (10.4, y))
    where = "every level" if m.fpn else "the C4 map"
    ax.text(
        0.2,
        0.25,
        f"the same head slides over {where}: {label(s, 'anchors')} anchors per image, one "
        "objectness logit and 4 deltas each",
        fontsize=FONT - 1,
        color="#555555",
    )
    ax2 = fig.add_axes((0.71, 0.14, 0.27, 0.76))
    sizes = tuple((z,) for z in m.anchor_sizes) if m.fpn else (tuple(m.anchor_sizes),)
    colors = ["#2b6cb0", "#2f855a", "#6b46c1", "#c05621", "#c53030"]
    for i, (lv, sz) in enumerate(zip(levels if m.fpn else [levels[0]], sizes)):
        for j, (x1, y1, x2, y2) in enumerate(cell_anchors(sz, m.aspect_ratios).tolist()):
            ax2.add_patch(
                Rectangle(
                    (x1, y1),
                    x2 - x1,
                    y2 - y1,
                    fill=False,
                    lw=1.4,
                    ec=colors[i % 5],
                    label=f"{lv}: {', '.join(map(str, sz))} px" if j == 0 else None,
                )
            )
    r = max(m.anchor_sizes) * max(max(m.aspect_ratios), 1 / min(m.aspect_ratios)) ** 0.5 / 2 * 1.05
    ax2.set(xlim=(-r, r), ylim=(r, -r), aspect="equal")
    ax2.set_title(f"{a} anchors per position (h/w {', '.join(map(str, m.aspect_ratios))})", fontsize=FONT)
    ax2.tick_params(labelsize=FONT - 1)
    ax2.legend(fontsize=FONT - 1, loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2, frameon=False)
    return fig


def _chain(ax: Axes, x: float, y: float, items: list[tuple[str, str]], s: Shapes, part: str) -> float:
    """Tensors as blocks, each after an arrow naming the op that makes it (none before an item whose op is
    ""). A map is a box (face ~ its side, depth ~ log channels), a vector a bar. Returns the last x."""
    fill, edge = COLORS[part]
    for op, name in items:
        if op:
            arrow(ax, (x, y), (x + 2.6, y), op)
            x += 2.6
        shape = s[name][1:]
        if len(shape) == 3:
            side, depth = 0.3 * shape[-1] ** 0.5, 0.07 * max(1, shape[0]).bit_length()
        else:
            side, depth = 0.22 * max(1, shape[0]).bit_length(), 0.0
        w = side if depth else 0.28
        x0, y0, dx, dy = x, y - side / 2, depth, depth * 0.7
        top, right = y0 + side, x0 + w
        for poly in (
            [(x0, top), (x0 + dx, top + dy), (right + dx, top + dy), (right, top)],
            [(right, y0), (right + dx, y0 + dy), (right + dx, top + dy), (right, top)],
        ):
            ax.add_patch(Polygon(poly, fc=edge, alpha=0.25, ec=edge, lw=1.0))  # the top and the side
        ax.add_patch(Rectangle((x0, y0), w, side, fc=fill, ec=edge, lw=1.6))
        ax.text(
            x0 + (w + dx) / 2,
            y0 - 0.12,
            label(s, name),
            ha="center",
            va="top",
            fontsize=FONT,
            gid=f"shape:{name}",
        )
        x += w + dx
    return x


def draw_mask_head(cfg: Config | ModelConfig | None = None) -> Figure:
    """The box and mask heads as the paper's Figure 4 draws them: right (FPN) or left (C4, res5 shared)."""
    m = model_cfg(cfg)
    if not m.mask_on:
        raise ValueError("draw_mask_head: this config has no mask head (model.mask_on=False)")
    s = record_shapes(m)
    fig, ax = canvas(19.0, 9.0)
    yb, ym, note = 6.6, 2.6, "shapes per RoI (C×H×W), recorded from the model"
    if m.fpn:
        convs = f"{m.box_head_convs}× conv 3×3, fc" if m.box_head == "4conv1fc" else "fc, fc"
        ax.text(0.3, yb + 1.1, f"RoI → {m.box_pool_size}×{m.box_pool_size}", fontsize=FONT, weight="bold")
        xb = _chain(ax, 0.6, yb, [("", "box.pooled"), (convs, "box.features")], s, "box")
        ax.text(0.3, ym + 1.5, f"RoI → {m.mask_pool_size}×{m.mask_pool_size}", fontsize=FONT, weight="bold")
        n = {"fcn4": 4, "fcn2": 2}.get(m.mask_head, 0)
        mask_ops = (
            [("fc, fc, fc", "mask.logits")]
            if m.mask_head == "mlp"
            else [
                (f"{n}× conv 3×3", "mask.convs"),
                ("deconv 2×2, ×2", "mask.deconv"),
                ("conv 1×1", "mask.logits"),
            ]
        )
        xm = _chain(ax, 0.6, ym, [("", "mask.pooled"), *mask_ops], s, "mask")
        note = "Figure 4 (right) of the paper, the FPN heads; " + note
    else:
        x = _chain(ax, 0.3, 4.6, [("", "roi.pooled"), ("res5", "res5")], s, "roi")
        ax.plot([x, x + 0.3], [4.6, 4.6], color="#333333", lw=1.3)
        ax.plot([x + 0.3] * 2, [ym, yb], color="#333333", lw=1.3)
        xb = _chain(ax, x + 0.3, yb, [("average pool", "box.features")], s, "box")
        mask_ops = [("deconv 2×2, ×2", "mask.deconv"), ("conv 1×1", "mask.logits")]
        xm = _chain(ax, x + 0.3, ym, mask_ops, s, "mask")
        note = "Figure 4 (left) of the paper, C4: conv5 (res5) runs per RoI and feeds both branches; " + note
    for dy, name, what in ((0.9, "box.class_logits", "class"), (-0.9, "box.deltas", "box Δ")):
        arrow(ax, (xb, yb), (xb + 2.2, yb + dy), "fc", above=dy > 0)
        node(ax, "box", (xb + 2.2, yb + dy - 0.4), 2.3, 0.8, [(f"{what} {label(s, name)}", name)])
    ax.text(
        xm + 0.3,
        ym,
        f"one {s['mask.logits'][-1]}×{s['mask.logits'][-1]}\nmask per class",
        fontsize=FONT,
        va="center",
    )
    ax.text(0.3, 0.3, note, fontsize=FONT - 1, color="#555555")
    return fig


def draw_keypoint_head(cfg: Config | ModelConfig | None = None) -> Figure:
    """The keypoint head: convs, a 4x4 stride-2 deconv, bilinear 2x upsampling to one heatmap per joint."""
    m = model_cfg(cfg, figures_cpu)
    if not m.keypoint_on:
        raise ValueError(
            "draw_keypoint_head: this config has no keypoint head (model.keypoint_on=False; "
            "the keypoint head needs the FPN)"
        )
    s = record_shapes(m)
    fig, ax = canvas(19.5, 6.0)
    items = [
        ("", "keypoint.pooled"),
        (f"{m.keypoint_head_convs}× conv 3×3", "keypoint.convs"),
        ("deconv 4×4, ×2", "keypoint.deconv"),
        ("bilinear ×2", "keypoint.logits"),
    ]
    ax.text(0.3, 4.3, f"RoI → {m.keypoint_pool_size}×{m.keypoint_pool_size}", fontsize=FONT, weight="bold")
    x = _chain(ax, 0.6, 3.0, items, s, "keypoint")
    ax.text(x + 0.3, 3.0, f"one heatmap\nper joint ({m.num_keypoints})", fontsize=FONT, va="center")
    ax.text(0.3, 0.3, "shapes per RoI, recorded from the model: C×H×W", fontsize=FONT - 1, color="#555555")
    return fig

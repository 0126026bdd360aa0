"""The whole model in one drawing (chapter 00), and the same drawing as each chapter's you-are-here strip.

draw_architecture(cfg)   backbone -> FPN -> RPN -> RoIAlign -> box / mask / keypoint heads
you_are_here(chapter)    one row, that chapter's part highlighted, the rest grey
"""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minimrcnn.config import Config, ModelConfig
from minimrcnn.diagrams.drawing import (
    FONT,
    GREY_EDGE,
    GREY_TEXT,
    PARTS,
    arrow,
    canvas,
    model_cfg,
    node,
    part_state,
    present_parts,
)
from minimrcnn.diagrams.shapes import label, record_shapes
from minimrcnn.presets import figures_cpu, shapes_cpu

CHAPTER_PARTS: dict[int, tuple[str, ...]] = {
    0: PARTS,
    1: ("roi",),
    2: ("roi",),
    3: ("backbone", "fpn"),
    4: ("rpn",),
    5: ("mask",),
    6: ("rpn", "box", "mask"),
    7: PARTS,
    8: ("outputs",),
    9: ("box", "mask"),
    10: ("keypoint",),
}
TOPICS = {
    0: "a tour",
    1: "RoIPool",
    2: "RoIAlign",
    3: "backbone and FPN",
    4: "anchors and the RPN",
    5: "the mask head",
    6: "the losses",
    7: "training",
    8: "evaluation",
    9: "ablations",
    10: "keypoints",
}


HEADS = {  # part: (row y, input, output, name)
    "box": (6.4, "box.pooled", "box.features", "box head"),
    "mask": (3.7, "mask.pooled", "mask.logits", "mask head"),
    "keypoint": (1.0, "keypoint.pooled", "keypoint.logits", "keypoint head"),
}


def draw_architecture(
    cfg: Config | ModelConfig | None = None, ax: Axes | None = None, highlight: tuple[str, ...] | None = None
) -> Figure:
    """The whole model with the recorded shape on every arrow (the paper's Figures 1 and 4, in one).
    highlight: parts (of PARTS) drawn in colour, the rest grey; parts this config lacks are dashed."""
    m = model_cfg(cfg)
    s, present = record_shapes(m), present_parts(m)
    fig, ax = canvas(23.0, 8.4, ax)
    st = {p: part_state(p, present, highlight) for p in PARTS}
    dim = {p: st[p] != "on" for p in PARTS}
    node(ax, "image", (0.2, 3.7), 1.9, 1.6, ["image", (label(s, "image"), "image")], state=st["image"])
    stages = [k for k in ("C2", "C3", "C4", "C5") if k in s]
    ys = [0.9 + 1.45 * i for i in range(5)]  # one row per level, finest at the bottom
    ax.text(
        3.85,
        ys[len(stages) - 1] + 1.3,
        m.backbone.replace("resnet", "ResNet-"),
        ha="center",
        fontsize=FONT,
        weight="bold",
        color="#1a1a1a" if st["backbone"] == "on" else GREY_TEXT,
    )
    for i, c in enumerate(stages):
        node(ax, "backbone", (2.75, ys[i]), 2.2, 1.1, [c, (label(s, c), c)], state=st["backbone"], fs=9.5)
        if i:
            arrow(ax, (3.85, ys[i - 1] + 1.1), (3.85, ys[i]), dim=dim["backbone"])
    arrow(ax, (2.1, 4.5), (2.75, ys[0] + 0.55), dim=dim["backbone"])
    spine = 8.95  # the maps gather on a vertical line that feeds the RPN and the RoI pooler
    if m.fpn:
        pl = [k for k in ("P2", "P3", "P4", "P5", "P6") if k in s]
        ax.text(
            7.3,
            ys[len(pl) - 1] + 1.3,
            "FPN",
            ha="center",
            fontsize=FONT,
            weight="bold",
            color="#1a1a1a" if st["fpn"] == "on" else GREY_TEXT,
        )
        for i, p in enumerate(pl):
            node(ax, "fpn", (6.2, ys[i]), 2.2, 1.1, [p, (label(s, p), p)], state=st["fpn"], fs=9.5)
            ax.plot([8.4, spine], [ys[i] + 0.55] * 2, color=GREY_EDGE if dim["fpn"] else "#333333", lw=1.3)
            if i < len(stages):
                arrow(ax, (4.95, ys[i] + 0.55), (6.2, ys[i] + 0.55), "1×1" if i == 0 else "", dim=dim["fpn"])
            if 0 < i < len(stages):  # top-down: the coarser sum, upsampled 2x, enters the finer level
                arrow(ax, (7.9, ys[i]), (7.9, ys[i - 1] + 1.1), dim=dim["fpn"])
        arrow(ax, (6.7, ys[len(pl) - 2] + 1.1), (6.7, ys[len(pl) - 1]), dim=dim["fpn"])  # subsampled top
        maps, pooled_from, top = f"P2–P{len(pl) + 1}", "P2–P5", ys[len(pl) - 1] + 0.55
        ax.plot([spine] * 2, [ys[0] + 0.55, top], color=GREY_EDGE if dim["fpn"] else "#333333", lw=1.3)
    else:
        node(ax, "fpn", (6.2, ys[0]), 2.2, 1.6, ["no FPN", "(C4 model)"], state="off")
        maps = pooled_from = "C4"
        ax.plot([4.95, spine], [ys[2] + 0.55] * 2, color="#333333", lw=1.3)
        ax.plot([spine] * 2, [3.4, 6.5], color="#333333", lw=1.3)
    a_per = len(m.aspect_ratios) * (1 if m.fpn else len(m.anchor_sizes))
    node(
        ax,
        "rpn",
        (10.4, 5.6),
        3.0,
        1.8,
        ["RPN", "3×3 conv + two 1×1", f"{a_per} anchors / position"],
        state=st["rpn"],
        fs=9.5,
    )
    text = "#1a1a1a" if st["rpn"] == "on" else GREY_TEXT
    arrow(ax, (spine, 6.5), (10.4, 6.5), maps, dim=dim["rpn"])
    arrow(ax, (11.9, 5.6), (11.9, 4.2), dim=dim["rpn"])
    ax.text(
        12.0,
        4.9,
        f"proposals\n{label(s, 'proposals')}",
        fontsize=FONT - 1,
        va="center",
        ha="left",
        gid="shape:proposals",
        color=text,
    )
    ax.text(
        11.9,
        7.55,
        f"anchors {label(s, 'anchors')}",
        ha="center",
        fontsize=FONT - 1,
        gid="shape:anchors",
        color=text,
    )
    sampling = "adaptive" if m.sampling_ratio <= 0 else f"{m.sampling_ratio}×{m.sampling_ratio}"
    pool_name = {"roialign": "RoIAlign", "roipool": "RoIPool", "roiwarp": "RoIWarp"}[m.pooler]
    node(
        ax,
        "roi",
        (10.4, 2.4),
        3.0,
        1.8,
        [pool_name, f"aligned={m.aligned}", f"{sampling} samples / bin"],
        state=st["roi"],
        fs=9.5,
    )
    arrow(ax, (spine, 3.3), (10.4, 3.3), pooled_from, dim=dim["roi"])
    sub = {"box": m.box_head, "mask": m.mask_head, "keypoint": f"{m.keypoint_head_convs} convs + deconv"}
    if not m.fpn:
        sub |= {"box": "res5 + avg pool", "mask": "res5 + deconv"}
    meaning = {"mask": "mask per class", "keypoint": "heatmap per joint"}
    ax.plot([13.4, 13.9], [3.3, 3.3], color="#333333", lw=1.3)
    ax.plot([13.9, 13.9], [HEADS["keypoint"][0] + 0.8, HEADS["box"][0] + 0.8], color="#333333", lw=1.3)
    for part, (y, src, out, name) in HEADS.items():
        on, src = present[part], src if m.fpn else "roi.pooled"
        lines = [name, sub[part] if on else "off in this config"]
        node(ax, part, (16.2, y), 2.4, 1.6, lines, state=st[part], fs=9.5)
        arrow(ax, (13.9, y + 0.8), (16.2, y + 0.8), label(s, src) if on else "", src, dim=dim[part])
        if not on:
            continue
        arrow(ax, (18.6, y + 0.8), (20.2, y + 0.8), label(s, out), out, dim=dim["outputs"])
        lines = (
            [
                ("class " + label(s, "box.class_logits"), "box.class_logits"),
                ("box Δ " + label(s, "box.deltas"), "box.deltas"),
            ]
            if part == "box"
            else [meaning[part]]
        )
        node(
            ax,
            "outputs",
            (20.2, y + 0.1),
            2.6,
            1.4,
            ["outputs", *lines],
            state=st["outputs"],
            fs=9.5,
            gid=f"part:outputs.{part}",
        )
    ax.text(
        0.2,
        0.15,
        "shapes recorded by running the model (training mode): C×H×W per image for maps, per "
        f"RoI for the heads; {s['box.features'][0]} RoIs sampled per image",
        fontsize=9,
        color="#555555",
    )
    return fig


STRIP = {
    "image": "image",
    "backbone": "backbone",
    "fpn": "FPN",
    "rpn": "RPN",
    "roi": "RoI pooling",
    "box": "box head",
    "mask": "mask head",
    "keypoint": "keypoints",
    "outputs": "outputs",
}


def you_are_here(chapter: int, cfg: Config | ModelConfig | None = None) -> Figure:
    """The architecture reduced to one row, the parts of `chapter` (CHAPTER_PARTS) in colour, the rest grey.
    cfg: the model drawn; figures_cpu (with a keypoint head) for chapter 10, else shapes_cpu."""
    m = model_cfg(cfg, figures_cpu if chapter == 10 else shapes_cpu)
    s, present, highlight = record_shapes(m), present_parts(m), CHAPTER_PARTS[chapter]
    fig, ax = canvas(21.8, 3.0)
    n_maps = sum(k in s for k in ("P2", "P3", "P4", "P5", "P6"))
    detail = {
        "image": (label(s, "image"), "image"),
        "backbone": m.backbone.replace("resnet", "ResNet-"),
        "fpn": f"P2–P{n_maps + 1}" if m.fpn else "off (C4)",
        "rpn": (f"{s['anchors'][0]} anchors", "anchors"),
        "roi": {"roialign": "RoIAlign", "roipool": "RoIPool", "roiwarp": "RoIWarp"}[m.pooler],
        "box": (f"{s['box.class_logits'][1]} classes", "box.class_logits"),
        "mask": (label(s, "mask.logits"), "mask.logits") if m.mask_on else "off",
        "keypoint": "off",
        "outputs": ", ".join(["boxes"] + ["masks"] * m.mask_on + ["joints"] * m.keypoint_on),
    }
    if m.keypoint_on:
        detail["keypoint"] = (label(s, "keypoint.logits"), "keypoint.logits")
    x, w, gap, xs = 0.15, 2.05, 0.3, {}
    for i, part in enumerate(PARTS):
        xs[part] = x
        state = part_state(part, present, highlight)
        node(ax, part, (x, 0.3), w, 1.75, [STRIP[part], detail[part]], state=state, fs=9.5)
        step = w + gap + (0.3 if part in ("roi", "keypoint") else 0)
        if i + 1 < len(PARTS) and part not in ("box", "mask"):  # the three heads sit side by side
            arrow(ax, (x + w, 1.17), (x + step, 1.17))
        x += step
    ax.plot([xs["box"], xs["keypoint"] + w], [0.15] * 2, color="#555555", lw=1.2)  # the heads: one stage
    names = ", ".join(STRIP[p] for p in highlight) if highlight != PARTS else "the whole model"
    title = f"Chapter {chapter:02d} · {TOPICS[chapter]} · you are here: {names}"
    ax.text(0.15, 2.45, title, fontsize=FONT + 1, weight="bold", color="#1a1a1a", va="center")
    return fig

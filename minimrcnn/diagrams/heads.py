"""Architecture diagrams drawn from the real model, so that a picture cannot drift from the code.

`record_shapes(cfg)` builds `MaskRCNN` from the config, runs it once (training mode, one dummy image and one
object, so that every branch runs) with forward hooks, and returns the shape of every tensor the drawings
label. Every number on an arrow comes from there; nothing is typed in. Labels read `C x H x W` for a map
(per image) or a RoI feature (per RoI), `D` for a vector; anchors and proposals are per image, `[count, 4]`.

    draw_architecture(cfg)   backbone -> FPN -> RPN -> RoIAlign -> box / mask / keypoint heads (chapter 00)
    you_are_here(chapter)    the same drawing as a one-row strip, that chapter's part highlighted
    draw_roi_bins()          RoIPool's quantized bins against RoIAlign's bilinear samples (paper, Figure 3)
    draw_fpn(cfg)            the top-down pathway with its lateral 1x1 and output 3x3 convs (chapter 03)
    draw_rpn_head(cfg)       the shared 3x3 conv, the two 1x1 siblings and the anchors of one position (04)
    draw_mask_head(cfg)      the box and mask heads (paper, Figure 4: right for FPN, left for C4) (05)
    draw_keypoint_head(cfg)  the keypoint head: convs, deconv, 2x upsampling to heatmaps (10)

Each returns a matplotlib Figure on a white background (readable in a dark notebook theme too).
`python -m minimrcnn.diagrams --out docs/` writes architecture.png (`--all`: every drawing).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
from functools import lru_cache
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Polygon, Rectangle

from minimrcnn import ops
from minimrcnn.config import Config, ModelConfig
from minimrcnn.model.anchors import cell_anchors
from minimrcnn.model.mask_rcnn import MaskRCNN
from minimrcnn.presets import figures_cpu, shapes_cpu

PARTS = ("image", "backbone", "fpn", "rpn", "roi", "box", "mask", "keypoint", "outputs")
CHAPTER_PARTS: dict[int, tuple[str, ...]] = {
    0: PARTS, 1: ("roi",), 2: ("roi",), 3: ("backbone", "fpn"), 4: ("rpn",), 5: ("mask",),
    6: ("rpn", "box", "mask"), 7: PARTS, 8: ("outputs",), 9: ("box", "mask"), 10: ("keypoint",),
}  # fmt: skip
TOPICS = {0: "a tour", 1: "RoIPool", 2: "RoIAlign", 3: "backbone and FPN", 4: "anchors and the RPN",
          5: "the mask head", 6: "the losses", 7: "training", 8: "evaluation", 9: "ablations",
          10: "keypoints"}  # fmt: skip
COLORS = {  # part: (fill, edge), pastel fills with dark edges: legible on a white page and when printed
    "image": ("#ececec", "#4a4a4a"), "backbone": ("#dbe8f7", "#2b6cb0"), "fpn": ("#daf1df", "#2f855a"),
    "rpn": ("#ebe0f6", "#6b46c1"), "roi": ("#fde6cc", "#c05621"), "box": ("#fbdfdf", "#c53030"),
    "mask": ("#fbdfdf", "#c53030"), "keypoint": ("#fbdfdf", "#c53030"), "outputs": ("#f4f1e4", "#5f5a3a"),
}  # fmt: skip
GREY_FILL, GREY_EDGE, GREY_TEXT = "#f3f3f3", "#b4b4b4", "#8c8c8c"
FONT = 10  # points; figures are at most ~11 inches wide, so this stays >= 9 pt in a notebook
Shapes = dict[str, tuple[int, ...]]


# ---------------------------------------------------------------------------------------- the shapes
def record_shapes(cfg: Config | ModelConfig) -> Shapes:
    """Run the model once with forward hooks and return {name: shape}. Cached per model config.

    Names: image; C2..C5 (backbone stages); L2..L5 (FPN lateral 1x1), P2..P6 (FPN outputs); per level
    rpn.conv.<level>, rpn.logits.<level>, rpn.deltas.<level>; anchors, proposals (per image); roi.pooled, res5
    (C4); box.pooled, box.features, box.class_logits, box.deltas; mask.pooled, mask.convs, mask.deconv,
    mask.logits; the same four for keypoint.
    """
    m = cfg.model if isinstance(cfg, Config) else cfg
    return dict(_record(tuple(dataclasses.asdict(m).items())))


@lru_cache(maxsize=16)
def _record(key: tuple) -> tuple[tuple[str, tuple[int, ...]], ...]:
    cfg = ModelConfig(**dict(key))
    shapes: Shapes = {}
    seen: dict[str, torch.Tensor] = {}

    def on(module: torch.nn.Module, name: str, pick=lambda out: out, pre: bool = False):
        """Record pick(output).shape (pre: the first input's shape) under `name`, at every call."""

        def save(_m, *args) -> None:
            t = pick(args[0][0] if pre else args[-1])
            shapes[name], seen[name] = tuple(t.shape), t

        return module.register_forward_pre_hook(save) if pre else module.register_forward_hook(save)

    with torch.random.fork_rng(devices=[]):  # leave the caller's random state as it was
        torch.manual_seed(0)
        model = MaskRCNN(cfg).train()  # training: every branch runs on the sampled RoIs, whatever the weights
        model.transform.eval()  # the test-time short side, not a random one of a multi-scale recipe
        body, fpn, rpn, heads = model.backbone.body, model.backbone.fpn, model.rpn, model.roi_heads
        levels = [f"P{i + 2}" for i in range(len(body.stages) + 1)] if fpn is not None else ["C4"]
        hooks = [on(model.backbone, "image", pre=True), on(rpn.anchor_generator, "anchors", lambda o: o[0]),
                 on(rpn, "proposals", lambda o: o[0][0]), on(heads.box_predictor, "box.features", pre=True),
                 on(heads.box_predictor, "box.class_logits", lambda o: o[0]),
                 on(heads.box_predictor, "box.deltas", lambda o: o[1])]  # fmt: skip
        hooks += [on(getattr(body, stage), f"C{i + 2}") for i, stage in enumerate(body.stages)]
        for i, lv in enumerate(levels):
            hooks += [on(rpn.head, f"rpn.logits.{lv}", lambda o, i=i: o[0][i]),
                      on(rpn.head, f"rpn.deltas.{lv}", lambda o, i=i: o[1][i])]  # fmt: skip
            hooks += [on(fpn, lv, lambda o, i=i: o[i])] if fpn is not None else []
        if fpn is not None:
            hooks += [on(lat, f"L{i + 2}") for i, lat in enumerate(fpn.lateral)]
            hooks.append(on(heads.box_pooler, "box.pooled"))
        else:
            hooks += [on(heads.pooler, "roi.pooled"), on(heads.res5, "res5")]
        for b in ("mask", "keypoint"):
            head = getattr(heads, f"{b}_head")
            if head is not None:
                hooks += [on(head, f"{b}.pooled", pre=True), on(head, f"{b}.logits")]
                hooks += [on(head.convs, f"{b}.convs")] if hasattr(head, "convs") else []
        rpn_conv: list[tuple[int, ...]] = []  # the shared conv runs once per level, in the levels' order
        hooks.append(rpn.head.conv.register_forward_hook(lambda _m, _i, o: rpn_conv.append(tuple(o.shape))))
        size = min(cfg.min_size[-1], cfg.max_size)
        target = {"boxes": torch.tensor([[0.2, 0.25, 0.7, 0.8]]) * size, "labels": torch.tensor([1]),
                  "masks": torch.zeros(1, size, size, dtype=torch.uint8)}  # fmt: skip
        target["masks"][:, size // 4 : size * 3 // 4, size // 4 : size * 3 // 4] = 1
        if cfg.keypoint_on:
            xy = torch.rand(1, cfg.num_keypoints, 2) * 0.4 * size + 0.3 * size  # inside the box
            target["keypoints"] = torch.cat([xy, torch.full((1, cfg.num_keypoints, 1), 2.0)], dim=2)
        with torch.no_grad():
            model([torch.rand(3, size, size)], [target])
            for b in ("mask", "keypoint"):  # the mask head folds its deconv into matmuls: run the layer
                head = getattr(heads, f"{b}_head")
                if f"{b}.convs" in seen and hasattr(head, "deconv"):
                    shapes[f"{b}.deconv"] = tuple(head.deconv(seen[f"{b}.convs"]).shape)
        for h in hooks:
            h.remove()
    shapes |= {f"rpn.conv.{lv}": s for lv, s in zip(levels, rpn_conv)}
    return tuple(shapes.items())


def label(shapes: Shapes, name: str) -> str:
    """The text a drawing prints for a recorded tensor: 64×32×32 (batch or RoI dimension dropped)."""
    s = shapes[name]
    return "×".join(map(str, s if name in ("anchors", "proposals") else s[1:]))


# ---------------------------------------------------------------------------------------- drawing helpers
def _canvas(width: float, height: float, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """An axes whose data units are half-inches, on a white figure, with no frame."""
    if ax is None:
        fig = plt.figure(figsize=(width / 2, height / 2), facecolor="white")
        ax = fig.add_axes((0, 0, 1, 1))
    fig = ax.figure
    ax.set_facecolor("white")
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    return fig, ax


def _node(ax: Axes, part: str, xy: tuple[float, float], w: float, h: float, lines: list, *,
          state: str = "on", fs: float = FONT, gid: str | None = None) -> Rectangle:  # fmt: skip
    """A box of `part`'s colours (state on), grey (dim) or grey and dashed (off: not in this config).
    lines: strings or (string, shape name) pairs; the named ones carry gid "shape:<name>" for the tests."""
    fill, edge = COLORS[part] if state == "on" else (GREY_FILL, GREY_EDGE)
    rect = Rectangle(xy, w, h, facecolor=fill, edgecolor=edge, lw=2.0 if state == "on" else 1.2,
                     ls="--" if state == "off" else "-", gid=gid or f"part:{part}")  # fmt: skip
    ax.add_patch(rect)
    n = len(lines)
    for i, line in enumerate(lines):
        text, name = line if isinstance(line, tuple) else (line, None)
        y = xy[1] + h / 2 + (n / 2 - i - 0.5) * h / max(n, 1) * 0.82
        ax.text(xy[0] + w / 2, y, text, ha="center", va="center", fontsize=fs, gid=name and f"shape:{name}",
                color="#1a1a1a" if state == "on" else GREY_TEXT, weight="bold" if i == 0 else "normal")
    return rect


Point = tuple[float, float]


def _arrow(ax: Axes, a: Point, b: Point, text: str = "", name: str | None = None, *, above: bool = True,
           dim: bool = False, fs: float = FONT - 1, style: str = "-|>") -> None:  # fmt: skip
    """An arrow from a to b, `text` at its middle (gid "shape:<name>" when it is a recorded shape)."""
    color = GREY_EDGE if dim else "#333333"
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle=style, mutation_scale=11, lw=1.3, color=color))
    if text:
        x, y = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
        ax.text(x, y + (0.12 if above else -0.12), text, ha="center", va="bottom" if above else "top",
                fontsize=fs, color=GREY_TEXT if dim else "#1a1a1a", gid=name and f"shape:{name}")


def _present(m: ModelConfig) -> dict[str, bool]:
    return {p: True for p in PARTS} | {"fpn": m.fpn, "mask": m.mask_on, "keypoint": m.keypoint_on}


def _state(part: str, present: dict[str, bool], highlight: tuple[str, ...] | None) -> str:
    if not present[part]:
        return "off"
    return "on" if highlight is None or part in highlight else "dim"


def _model_cfg(cfg: Config | ModelConfig | None, default=shapes_cpu) -> ModelConfig:
    cfg = default() if cfg is None else cfg
    return cfg.model if isinstance(cfg, Config) else cfg


# ---------------------------------------------------------------------------------------- the architecture
HEADS = {  # part: (row y, input, output, name)
    "box": (6.4, "box.pooled", "box.features", "box head"),
    "mask": (3.7, "mask.pooled", "mask.logits", "mask head"),
    "keypoint": (1.0, "keypoint.pooled", "keypoint.logits", "keypoint head"),
}


def draw_architecture(cfg: Config | ModelConfig | None = None, ax: Axes | None = None,
                      highlight: tuple[str, ...] | None = None) -> Figure:  # fmt: skip
    """The whole model with the recorded shape on every arrow (the paper's Figures 1 and 4, in one).
    highlight: parts (of PARTS) drawn in colour, the rest grey; parts this config lacks are dashed."""
    m = _model_cfg(cfg)
    s, present = record_shapes(m), _present(m)
    fig, ax = _canvas(23.0, 8.4, ax)
    st = {p: _state(p, present, highlight) for p in PARTS}
    dim = {p: st[p] != "on" for p in PARTS}
    _node(ax, "image", (0.2, 3.7), 1.9, 1.6, ["image", (label(s, "image"), "image")], state=st["image"])
    stages = [k for k in ("C2", "C3", "C4", "C5") if k in s]
    ys = [0.9 + 1.45 * i for i in range(5)]  # one row per level, finest at the bottom
    ax.text(3.85, ys[len(stages) - 1] + 1.3, m.backbone.replace("resnet", "ResNet-"), ha="center",
            fontsize=FONT, weight="bold", color="#1a1a1a" if st["backbone"] == "on" else GREY_TEXT)
    for i, c in enumerate(stages):
        _node(ax, "backbone", (2.75, ys[i]), 2.2, 1.1, [c, (label(s, c), c)], state=st["backbone"], fs=9.5)
        if i:
            _arrow(ax, (3.85, ys[i - 1] + 1.1), (3.85, ys[i]), dim=dim["backbone"])
    _arrow(ax, (2.1, 4.5), (2.75, ys[0] + 0.55), dim=dim["backbone"])
    spine = 8.95  # the maps gather on a vertical line that feeds the RPN and the RoI pooler
    if m.fpn:
        pl = [k for k in ("P2", "P3", "P4", "P5", "P6") if k in s]
        ax.text(7.3, ys[len(pl) - 1] + 1.3, "FPN", ha="center", fontsize=FONT, weight="bold",
                color="#1a1a1a" if st["fpn"] == "on" else GREY_TEXT)  # fmt: skip
        for i, p in enumerate(pl):
            _node(ax, "fpn", (6.2, ys[i]), 2.2, 1.1, [p, (label(s, p), p)], state=st["fpn"], fs=9.5)
            ax.plot([8.4, spine], [ys[i] + 0.55] * 2, color=GREY_EDGE if dim["fpn"] else "#333333", lw=1.3)
            if i < len(stages):
                _arrow(ax, (4.95, ys[i] + 0.55), (6.2, ys[i] + 0.55), "1×1" if i == 0 else "", dim=dim["fpn"])
            if 0 < i < len(stages):  # top-down: the coarser sum, upsampled 2x, enters the finer level
                _arrow(ax, (7.9, ys[i]), (7.9, ys[i - 1] + 1.1), dim=dim["fpn"])
        _arrow(ax, (6.7, ys[len(pl) - 2] + 1.1), (6.7, ys[len(pl) - 1]), dim=dim["fpn"])  # subsampled top
        maps, pooled_from, top = f"P2–P{len(pl) + 1}", "P2–P5", ys[len(pl) - 1] + 0.55
        ax.plot([spine] * 2, [ys[0] + 0.55, top], color=GREY_EDGE if dim["fpn"] else "#333333", lw=1.3)
    else:
        _node(ax, "fpn", (6.2, ys[0]), 2.2, 1.6, ["no FPN", "(C4 model)"], state="off")
        maps = pooled_from = "C4"
        ax.plot([4.95, spine], [ys[2] + 0.55] * 2, color="#333333", lw=1.3)
        ax.plot([spine] * 2, [3.4, 6.5], color="#333333", lw=1.3)
    a_per = len(m.aspect_ratios) * (1 if m.fpn else len(m.anchor_sizes))
    _node(ax, "rpn", (10.4, 5.6), 3.0, 1.8, ["RPN", "3×3 conv + two 1×1", f"{a_per} anchors / position"],
          state=st["rpn"], fs=9.5)  # fmt: skip
    text = "#1a1a1a" if st["rpn"] == "on" else GREY_TEXT
    _arrow(ax, (spine, 6.5), (10.4, 6.5), maps, dim=dim["rpn"])
    _arrow(ax, (11.9, 5.6), (11.9, 4.2), dim=dim["rpn"])
    ax.text(12.0, 4.9, f"proposals\n{label(s, 'proposals')}", fontsize=FONT - 1, va="center", ha="left",
            gid="shape:proposals", color=text)  # fmt: skip
    ax.text(11.9, 7.55, f"anchors {label(s, 'anchors')}", ha="center", fontsize=FONT - 1, gid="shape:anchors",
            color=text)  # fmt: skip
    sampling = "adaptive" if m.sampling_ratio <= 0 else f"{m.sampling_ratio}×{m.sampling_ratio}"
    pool_name = {"roialign": "RoIAlign", "roipool": "RoIPool", "roiwarp": "RoIWarp"}[m.pooler]
    _node(ax, "roi", (10.4, 2.4), 3.0, 1.8, [pool_name, f"aligned={m.aligned}", f"{sampling} samples / bin"],
          state=st["roi"], fs=9.5)  # fmt: skip
    _arrow(ax, (spine, 3.3), (10.4, 3.3), pooled_from, dim=dim["roi"])
    sub = {"box": m.box_head, "mask": m.mask_head, "keypoint": f"{m.keypoint_head_convs} convs + deconv"}
    if not m.fpn:
        sub |= {"box": "res5 + avg pool", "mask": "res5 + deconv"}
    meaning = {"mask": "mask per class", "keypoint": "heatmap per joint"}
    ax.plot([13.4, 13.9], [3.3, 3.3], color="#333333", lw=1.3)
    ax.plot([13.9, 13.9], [HEADS["keypoint"][0] + 0.8, HEADS["box"][0] + 0.8], color="#333333", lw=1.3)
    for part, (y, src, out, name) in HEADS.items():
        on, src = present[part], src if m.fpn else "roi.pooled"
        lines = [name, sub[part] if on else "off in this config"]
        _node(ax, part, (16.2, y), 2.4, 1.6, lines, state=st[part], fs=9.5)
        _arrow(ax, (13.9, y + 0.8), (16.2, y + 0.8), label(s, src) if on else "", src, dim=dim[part])
        if not on:
            continue
        _arrow(ax, (18.6, y + 0.8), (20.2, y + 0.8), label(s, out), out, dim=dim["outputs"])
        lines = ([("class " + label(s, "box.class_logits"), "box.class_logits"),
                  ("box Δ " + label(s, "box.deltas"), "box.deltas")] if part == "box" else [meaning[part]])
        _node(ax, "outputs", (20.2, y + 0.1), 2.6, 1.4, ["outputs", *lines], state=st["outputs"],
              fs=9.5, gid=f"part:outputs.{part}")  # fmt: skip
    ax.text(0.2, 0.15, "shapes recorded by running the model (training mode): C×H×W per image for maps, per "
            f"RoI for the heads; {s['box.features'][0]} RoIs sampled per image", fontsize=9, color="#555555")
    return fig


STRIP = {"image": "image", "backbone": "backbone", "fpn": "FPN", "rpn": "RPN", "roi": "RoI pooling",
         "box": "box head", "mask": "mask head", "keypoint": "keypoints", "outputs": "outputs"}  # fmt: skip


def you_are_here(chapter: int, cfg: Config | ModelConfig | None = None) -> Figure:
    """The architecture reduced to one row, the parts of `chapter` (CHAPTER_PARTS) in colour, the rest grey.
    cfg: the model drawn; figures_cpu (with a keypoint head) for chapter 10, else shapes_cpu."""
    m = _model_cfg(cfg, figures_cpu if chapter == 10 else shapes_cpu)
    s, present, highlight = record_shapes(m), _present(m), CHAPTER_PARTS[chapter]
    fig, ax = _canvas(21.8, 3.0)
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
        state = _state(part, present, highlight)
        _node(ax, part, (x, 0.3), w, 1.75, [STRIP[part], detail[part]], state=state, fs=9.5)
        step = w + gap + (0.3 if part in ("roi", "keypoint") else 0)
        if i + 1 < len(PARTS) and part not in ("box", "mask"):  # the three heads sit side by side
            _arrow(ax, (x + w, 1.17), (x + step, 1.17))
        x += step
    ax.plot([xs["box"], xs["keypoint"] + w], [0.15] * 2, color="#555555", lw=1.2)  # the heads: one stage
    names = ", ".join(STRIP[p] for p in highlight) if highlight != PARTS else "the whole model"
    title = f"Chapter {chapter:02d} · {TOPICS[chapter]} · you are here: {names}"
    ax.text(0.15, 2.45, title, fontsize=FONT + 1, weight="bold", color="#1a1a1a", va="center")
    return fig


# ---------------------------------------------------------------------------------------- RoIPool vs RoIAlign
def draw_roi_bins(box: tuple[float, float, float, float] = (11.3, 9.8, 46.6, 38.5), stride: int = 8,
                  output_size: int = 2, sampling_ratio: int = 2, grid: int = 8, aligned: bool = True
                  ) -> Figure:  # fmt: skip
    """The paper's Figure 3: one RoI (image pixels) on a `grid x grid` feature map of stride `stride`.
    Left, RoIPool: the feature cells each output bin takes its max over (the box snapped to the grid).
    Right, RoIAlign: exact bins, `sampling_ratio`² bilinear samples per bin, and one sample's 4 weights.
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
        ax.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, lw=2.2, ec="#1a1a1a",
                               label="RoI", zorder=5))  # fmt: skip
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
            snapped = [min(snapped[0], x), min(snapped[1], y), max(snapped[2], x + stride),
                       max(snapped[3], y + stride)]  # fmt: skip
    moved = max(abs(a - b) for a, b in zip(snapped, box))
    axes[0].add_patch(Rectangle(snapped[:2], snapped[2] - snapped[0], snapped[3] - snapped[1], fill=False,
                                lw=2.0, ls="--", ec="#c05621", label="what RoIPool reads", zorder=6))
    axes[0].text(side / 2, side - 1.5, f"a corner moves by up to {moved:.1f} px; darker cells: in two bins",
                 ha="center", va="bottom", fontsize=FONT, bbox=dict(fc="white", ec="none", alpha=0.85))
    bw, bh = (box[2] - box[0]) / output_size, (box[3] - box[1]) / output_size
    for k in range(1, output_size):
        axes[1].plot([box[0] + k * bw] * 2, [box[1], box[3]], color="#1a1a1a", lw=1.2, ls="--")
        axes[1].plot([box[0], box[2]], [box[1] + k * bh] * 2, color="#1a1a1a", lw=1.2, ls="--")
    axes[1].scatter(cx, cy, s=9, color="#9a9a9a", zorder=3, label="feature values (cell centres)")
    axes[1].scatter(sx.flatten(), sy.flatten(), s=36, color="#c53030", zorder=7, label="sampling points")
    w0, x0, y0 = weights[:, 0, 0], float(sx[0, 0]), float(sy[0, 0])  # the first sample: four weights > 0
    for c in torch.nonzero(w0 > 0)[:, 0].tolist():
        axes[1].plot([x0, float(cx[c])], [y0, float(cy[c])], color="#c53030", lw=1.0)
        axes[1].text(float(cx[c]), float(cy[c]) - 0.6, f"{float(w0[c]):.2f}", fontsize=FONT - 1, ha="center",
                     va="bottom", color="#7b1f1f", bbox=dict(fc="white", ec="none", alpha=0.8), zorder=8)
    for ax in axes:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=FONT - 1, frameon=False)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------- FPN, RPN, heads
def draw_fpn(cfg: Config | ModelConfig | None = None) -> Figure:
    """FPN's top-down pathway: lateral 1x1 convs, 2x nearest upsampling and addition, 3x3 output convs.
    A C4 config has no pyramid: its trunk C2..C4 is drawn instead, the RPN and RoI pooling reading C4."""
    m = _model_cfg(cfg)
    s = record_shapes(m)
    stages = [k for k in ("C2", "C3", "C4", "C5") if k in s]
    rows = len(stages) + (1 if m.fpn else 0)
    fig, ax = _canvas(18.6, 1.75 * rows + 1.6)
    ys = [0.7 + 1.75 * i for i in range(rows)]
    for i, c in enumerate(stages):
        _node(ax, "backbone", (0.3, ys[i]), 3.0, 1.2, [c, (label(s, c), c)])
        if i:
            _arrow(ax, (1.8, ys[i - 1] + 1.2), (1.8, ys[i]))
    if not m.fpn:
        _arrow(ax, (3.3, ys[-1] + 0.6), (6.5, ys[-1] + 0.6), label(s, "C4"), "C4")
        ax.text(6.7, ys[-1] + 0.6, "the only map: the RPN and the RoI pooler read C4 (stride 16);\nconv5 "
                "runs per RoI, in the box and mask heads (the C4 model: no FPN)", va="center", fontsize=FONT)
        return fig
    ax.text(1.8, ys[-1] + 0.6, "ResNet stages", ha="center", va="center", fontsize=FONT, weight="bold")
    ax.text(11.6, ys[-1] + 1.45, "FPN", ha="center", fontsize=FONT + 1, weight="bold")
    for i in range(len(stages)):
        y = ys[i] + 0.6
        _arrow(ax, (3.3, y), (7.4, y), f"lateral 1×1 conv → {label(s, f'L{i + 2}')}", f"L{i + 2}")
        ax.add_patch(plt.Circle((7.75, y), 0.35, fc="white", ec=COLORS["fpn"][1], lw=1.8))
        ax.text(7.75, y, "+" if i + 1 < len(stages) else "", ha="center", va="center", fontsize=FONT + 3,
                color=COLORS["fpn"][1])  # the top level has nothing to add: it starts the pathway
        _arrow(ax, (8.1, y), (13.0, y), "3×3 conv")
        _node(ax, "fpn", (13.0, ys[i]), 3.0, 1.2, [f"P{i + 2}", (label(s, f"P{i + 2}"), f"P{i + 2}")])
        if i + 1 < len(stages):
            _arrow(ax, (7.75, ys[i + 1] + 0.25), (7.75, y + 0.35))
            ax.text(7.95, (ys[i + 1] + y) / 2 + 0.25, "2× nearest upsampling", fontsize=FONT - 1, va="center")
    top = f"P{len(stages) + 2}"
    _arrow(ax, (14.5, ys[-2] + 1.2), (14.5, ys[-1]), "", None)
    ax.text(14.65, ys[-1] - 0.27, "max-pool 1×1, stride 2", fontsize=FONT - 1, va="center")
    _node(ax, "fpn", (13.0, ys[-1]), 3.0, 1.2, [top, (label(s, top), top)])
    extra = "for the RPN only" if len(stages) == 4 else "no C5: P4\nsubsampled"
    ax.text(16.2, ys[-1] + 0.6, extra, fontsize=FONT - 1, va="center")
    return fig


def draw_rpn_head(cfg: Config | ModelConfig | None = None) -> Figure:
    """The RPN head (shared 3x3 conv, then 1x1 objectness and 1x1 box-delta convs) with the recorded shapes
    on every level, and the anchors centred on one position of each level (the package's cell_anchors)."""
    m = _model_cfg(cfg)
    s = record_shapes(m)
    levels = [k.split(".")[-1] for k in s if k.startswith("rpn.logits.")]
    fig = plt.figure(figsize=(12.5, 4.6), facecolor="white")
    ax = fig.add_axes((0, 0, 0.68, 1))
    _, ax = _canvas(17.0, 9.2, ax)
    h = 0.55 * len(levels) + 1.1
    y0 = 4.6 - h / 2
    _node(ax, "fpn" if m.fpn else "backbone", (0.2, y0), 3.6, h,
          ["input map"] + [(f"{lv}  {label(s, lv)}", lv) for lv in levels])  # fmt: skip
    _node(ax, "rpn", (5.0, y0), 3.6, h, ["3×3 conv, ReLU"] + [(label(s, f"rpn.conv.{lv}"), f"rpn.conv.{lv}")
                                                             for lv in levels])  # fmt: skip
    _arrow(ax, (3.8, 4.6), (5.0, 4.6))
    a = s[f"rpn.logits.{levels[0]}"][1]
    for y, kind, what in ((6.9, "logits", f"{a} objectness logits"), (2.3, "deltas", f"4 × {a} box deltas")):
        lines = [(f"{lv}  {label(s, f'rpn.{kind}.{lv}')}", f"rpn.{kind}.{lv}") for lv in levels]
        _node(ax, "rpn", (10.4, y - h / 2), 5.0, h, [f"1×1 conv: {what}", *lines], fs=9.5)
        _arrow(ax, (8.6, 4.6), (10.4, y))
    where = "every level" if m.fpn else "the C4 map"
    ax.text(0.2, 0.25, f"the same head slides over {where}: {label(s, 'anchors')} anchors per image, one "
            "objectness logit and 4 deltas each", fontsize=FONT - 1, color="#555555")
    ax2 = fig.add_axes((0.71, 0.14, 0.27, 0.76))
    sizes = tuple((z,) for z in m.anchor_sizes) if m.fpn else (tuple(m.anchor_sizes),)
    colors = ["#2b6cb0", "#2f855a", "#6b46c1", "#c05621", "#c53030"]
    for i, (lv, sz) in enumerate(zip(levels if m.fpn else [levels[0]], sizes)):
        for j, (x1, y1, x2, y2) in enumerate(cell_anchors(sz, m.aspect_ratios).tolist()):
            ax2.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.4, ec=colors[i % 5],
                                    label=f"{lv}: {', '.join(map(str, sz))} px" if j == 0 else None))
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
            _arrow(ax, (x, y), (x + 2.6, y), op)
            x += 2.6
        shape = s[name][1:]
        if len(shape) == 3:
            side, depth = 0.3 * shape[-1] ** 0.5, 0.07 * max(1, shape[0]).bit_length()
        else:
            side, depth = 0.22 * max(1, shape[0]).bit_length(), 0.0
        w = side if depth else 0.28
        x0, y0, dx, dy = x, y - side / 2, depth, depth * 0.7
        top, right = y0 + side, x0 + w
        for poly in ([(x0, top), (x0 + dx, top + dy), (right + dx, top + dy), (right, top)],
                     [(right, y0), (right + dx, y0 + dy), (right + dx, top + dy), (right, top)]):  # fmt: skip
            ax.add_patch(Polygon(poly, fc=edge, alpha=0.25, ec=edge, lw=1.0))  # the top and the side
        ax.add_patch(Rectangle((x0, y0), w, side, fc=fill, ec=edge, lw=1.6))
        ax.text(x0 + (w + dx) / 2, y0 - 0.12, label(s, name), ha="center", va="top", fontsize=FONT,
                gid=f"shape:{name}")
        x += w + dx
    return x


def draw_mask_head(cfg: Config | ModelConfig | None = None) -> Figure:
    """The box and mask heads as the paper's Figure 4 draws them: right (FPN) or left (C4, res5 shared)."""
    m = _model_cfg(cfg)
    if not m.mask_on:
        raise ValueError("draw_mask_head: this config has no mask head (model.mask_on=False)")
    s = record_shapes(m)
    fig, ax = _canvas(19.0, 9.0)
    yb, ym, note = 6.6, 2.6, "shapes per RoI (C×H×W), recorded from the model"
    if m.fpn:
        convs = f"{m.box_head_convs}× conv 3×3, fc" if m.box_head == "4conv1fc" else "fc, fc"
        ax.text(0.3, yb + 1.1, f"RoI → {m.box_pool_size}×{m.box_pool_size}", fontsize=FONT, weight="bold")
        xb = _chain(ax, 0.6, yb, [("", "box.pooled"), (convs, "box.features")], s, "box")
        ax.text(0.3, ym + 1.5, f"RoI → {m.mask_pool_size}×{m.mask_pool_size}", fontsize=FONT, weight="bold")
        n = {"fcn4": 4, "fcn2": 2}.get(m.mask_head, 0)
        mask_ops = [("fc, fc, fc", "mask.logits")] if m.mask_head == "mlp" else [
            (f"{n}× conv 3×3", "mask.convs"), ("deconv 2×2, ×2", "mask.deconv"), ("conv 1×1", "mask.logits")]
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
        _arrow(ax, (xb, yb), (xb + 2.2, yb + dy), "fc", above=dy > 0)
        _node(ax, "box", (xb + 2.2, yb + dy - 0.4), 2.3, 0.8, [(f"{what} {label(s, name)}", name)])
    ax.text(xm + 0.3, ym, f"one {s['mask.logits'][-1]}×{s['mask.logits'][-1]}\nmask per class", fontsize=FONT,
            va="center")
    ax.text(0.3, 0.3, note, fontsize=FONT - 1, color="#555555")
    return fig


def draw_keypoint_head(cfg: Config | ModelConfig | None = None) -> Figure:
    """The keypoint head: convs, a 4x4 stride-2 deconv, bilinear 2x upsampling to one heatmap per joint."""
    m = _model_cfg(cfg, figures_cpu)
    if not m.keypoint_on:
        raise ValueError("draw_keypoint_head: this config has no keypoint head (model.keypoint_on=False; "
                         "the keypoint head needs the FPN)")
    s = record_shapes(m)
    fig, ax = _canvas(19.5, 6.0)
    items = [("", "keypoint.pooled"), (f"{m.keypoint_head_convs}× conv 3×3", "keypoint.convs"),
             ("deconv 4×4, ×2", "keypoint.deconv"), ("bilinear ×2", "keypoint.logits")]
    ax.text(0.3, 4.3, f"RoI → {m.keypoint_pool_size}×{m.keypoint_pool_size}", fontsize=FONT, weight="bold")
    x = _chain(ax, 0.6, 3.0, items, s, "keypoint")
    ax.text(x + 0.3, 3.0, f"one heatmap\nper joint ({m.num_keypoints})", fontsize=FONT, va="center")
    ax.text(0.3, 0.3, "shapes per RoI, recorded from the model: C×H×W", fontsize=FONT - 1, color="#555555")
    return fig


# ---------------------------------------------------------------------------------------- files and notebooks
def png(fig: Figure, dpi: int = 100, colors: int = 64) -> bytes:
    """The figure as a PNG quantized to `colors` colours (flat drawings lose nothing; files shrink ~3x)."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    out = io.BytesIO()
    Image.open(buf).convert("RGB").quantize(colors=colors).save(out, format="png", optimize=True)
    return out.getvalue()


def show(fig: Figure) -> None:
    """Display a drawing in a notebook as a small PNG, and close it."""
    from IPython.display import Image, display

    display(Image(data=png(fig), format="png"))
    plt.close(fig)


DRAWINGS = {"architecture": draw_architecture, "roi_bins": draw_roi_bins, "fpn": draw_fpn,
            "rpn_head": draw_rpn_head, "mask_head": draw_mask_head, "keypoint_head": draw_keypoint_head}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Draw the architecture diagrams from the real model.")
    parser.add_argument("--out", default="docs", help="folder for the PNGs (default: docs)")
    parser.add_argument("--all", action="store_true", help="every drawing, not only architecture.png")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, draw in DRAWINGS.items() if args.all else [("architecture", draw_architecture)]:
        fig = draw()
        (out / f"{name}.png").write_bytes(png(fig))
        plt.close(fig)
        print(f"wrote {out / f'{name}.png'} ({(out / f'{name}.png').stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()

"""The drawings' shared vocabulary: the parts and their colours, boxes, arrows, and a figure as a small PNG.

Every drawing is a matplotlib Figure on a white background (readable in a dark notebook theme too), on an
axes whose data units are half-inches.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from minimrcnn.config import Config, ModelConfig
from minimrcnn.presets import shapes_cpu

PARTS = ("image", "backbone", "fpn", "rpn", "roi", "box", "mask", "keypoint", "outputs")
COLORS = {  # part: (fill, edge), pastel fills with dark edges: legible on a white page and when printed
    "image": ("#ececec", "#4a4a4a"),
    "backbone": ("#dbe8f7", "#2b6cb0"),
    "fpn": ("#daf1df", "#2f855a"),
    "rpn": ("#ebe0f6", "#6b46c1"),
    "roi": ("#fde6cc", "#c05621"),
    "box": ("#fbdfdf", "#c53030"),
    "mask": ("#fbdfdf", "#c53030"),
    "keypoint": ("#fbdfdf", "#c53030"),
    "outputs": ("#f4f1e4", "#5f5a3a"),
}
GREY_FILL, GREY_EDGE, GREY_TEXT = "#f3f3f3", "#b4b4b4", "#8c8c8c"
FONT = 10  # points; figures are at most ~11 inches wide, so this stays >= 9 pt in a notebook
Point = tuple[float, float]


def canvas(width: float, height: float, ax: Axes | None = None) -> tuple[Figure, Axes]:
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


def node(
    ax: Axes,
    part: str,
    xy: tuple[float, float],
    w: float,
    h: float,
    lines: list,
    *,
    state: str = "on",
    fs: float = FONT,
    gid: str | None = None,
) -> Rectangle:
    """A box of `part`'s colours (state on), grey (dim) or grey and dashed (off: not in this config).
    lines: strings or (string, shape name) pairs; the named ones carry gid "shape:<name>" for the tests."""
    fill, edge = COLORS[part] if state == "on" else (GREY_FILL, GREY_EDGE)
    rect = Rectangle(
        xy,
        w,
        h,
        facecolor=fill,
        edgecolor=edge,
        lw=2.0 if state == "on" else 1.2,
        ls="--" if state == "off" else "-",
        gid=gid or f"part:{part}",
    )
    ax.add_patch(rect)
    n = len(lines)
    for i, line in enumerate(lines):
        text, name = line if isinstance(line, tuple) else (line, None)
        y = xy[1] + h / 2 + (n / 2 - i - 0.5) * h / max(n, 1) * 0.82
        ax.text(
            xy[0] + w / 2,
            y,
            text,
            ha="center",
            va="center",
            fontsize=fs,
            gid=name and f"shape:{name}",
            color="#1a1a1a" if state == "on" else GREY_TEXT,
            weight="bold" if i == 0 else "normal",
        )
    return rect


def arrow(
    ax: Axes,
    a: Point,
    b: Point,
    text: str = "",
    name: str | None = None,
    *,
    above: bool = True,
    dim: bool = False,
    fs: float = FONT - 1,
    style: str = "-|>",
) -> None:
    """An arrow from a to b, `text` at its middle (gid "shape:<name>" when it is a recorded shape)."""
    color = GREY_EDGE if dim else "#333333"
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle=style, mutation_scale=11, lw=1.3, color=color))
    if text:
        x, y = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
        ax.text(
            x,
            y + (0.12 if above else -0.12),
            text,
            ha="center",
            va="bottom" if above else "top",
            fontsize=fs,
            color=GREY_TEXT if dim else "#1a1a1a",
            gid=name and f"shape:{name}",
        )


def present_parts(m: ModelConfig) -> dict[str, bool]:
    """{part: whether this config has it}: the FPN and the mask and keypoint heads can be off."""
    return {p: True for p in PARTS} | {"fpn": m.fpn, "mask": m.mask_on, "keypoint": m.keypoint_on}


def part_state(part: str, present: dict[str, bool], highlight: tuple[str, ...] | None) -> str:
    """How `node` draws a part: on (in colour), dim (grey: not highlighted) or off (not in this config)."""
    if not present[part]:
        return "off"
    return "on" if highlight is None or part in highlight else "dim"


def model_cfg(cfg: Config | ModelConfig | None, default: Callable[[], Config] = shapes_cpu) -> ModelConfig:
    """The ModelConfig a drawing shows: cfg's (a Config or a ModelConfig), or default()'s when cfg is None."""
    cfg = default() if cfg is None else cfg
    return cfg.model if isinstance(cfg, Config) else cfg


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

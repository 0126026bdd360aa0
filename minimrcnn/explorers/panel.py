"""The thin control panel every explorer shares: widgets in, one reused Figure out, as PNG bytes.

An explorer is a pure draw function, `draw(fig, **values) -> reading`, that clears `fig`, draws the picture
for the given control values and returns the numbers it shows (a dataclass the tests compare with the
package's ops). `Explorer` wires ipywidgets controls to it: on every change it calls the draw function on
the same Figure, renders it to PNG and puts the bytes into an `ipywidgets.Image`. Rendering straight to
bytes (no pyplot, no `Output` widget, no new figure per change) keeps a redraw cheap, and the picture is a
plain image that the browser swaps in place. ipywidgets is imported only when a panel is made.
"""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Callable
from typing import Any

import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 72  # the chapters' figure resolution; small images keep a redraw fast


def one_thread(draw: Callable[..., Any]) -> Callable[..., Any]:
    """Run a draw function with one torch thread (restored afterwards). An explorer's tensors are tiny, so a
    second thread cannot speed an op up, but waking it costs more than the op on a busy two-core machine."""

    @functools.wraps(draw)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return draw(*args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return wrapped


def new_figure(width: float, height: float) -> Figure:
    """A Figure outside pyplot (nothing shows it or keeps it alive behind our back), white background so that
    it reads the same in a light and a dark notebook theme."""
    fig = Figure(figsize=(width, height), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def reuse_axes(fig: Figure, key: object, make: Callable[[Figure], tuple[Axes, ...]]) -> tuple[Axes, ...]:
    """The axes `make(fig)` built on an earlier draw of the same `key` (the same layout), emptied of what was
    drawn on them; built now, on a cleared figure, the first time. Making axes (their ticks and spines) is
    most of the cost of a small figure, so a redraw keeps them and only replaces the pictures."""
    kept = getattr(fig, "_explorer_axes", None)
    if kept is not None and kept[0] == key:
        for ax in kept[1]:
            for artist in [*ax.images, *ax.collections, *ax.patches, *ax.lines, *ax.texts]:
                artist.remove()
            if ax.legend_ is not None:
                ax.legend_.remove()
        return kept[1]
    fig.clear()
    axes = make(fig)
    fig._explorer_axes = (key, axes)  # type: ignore[attr-defined]
    return axes


def png_bytes(fig: Figure) -> bytes:
    """Render `fig` to PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


class Explorer:
    """Controls (name -> widget), a draw function, one Figure and the `ipywidgets.Image` that shows it.

    `reading` is what the last draw returned, `png` the last picture's bytes and `last_redraw_s` how long the
    last redraw took (draw and render). `set(**values)` moves controls from code (tests, benchmarks, a
    lecture script) exactly as a reader would: each change fires the same callback.
    """

    def __init__(
        self,
        draw: Callable[..., Any],
        controls: dict[str, Any],
        figsize: tuple[float, float],
        title: str = "",
        columns: int = 3,
    ) -> None:
        import ipywidgets as W

        self.draw, self.controls = draw, controls
        self.fig = new_figure(*figsize)
        self.reading: Any = None
        self.png = b""
        self.last_redraw_s = 0.0
        self.image = W.Image(format="png", layout=W.Layout(width=f"{int(figsize[0] * DPI)}px"))
        self.image.add_class("minimrcnn-explorer-image")
        self.error = W.HTML()
        widgets = list(controls.values())
        rows = [W.HBox(widgets[i : i + columns]) for i in range(0, len(widgets), columns)]
        header = [W.HTML(f"<b>{title}</b>")] if title else []
        self.widget = W.VBox([*header, *rows, self.error, self.image])
        self.widget.add_class("minimrcnn-explorer")
        for c in widgets:
            c.observe(self._changed, names="value")
        self.redraw()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def values(self) -> dict[str, Any]:
        return {name: c.value for name, c in self.controls.items()}

    def _changed(self, change: dict[str, Any]) -> None:
        try:
            self.redraw()
        except Exception as e:  # shown in the panel: ipywidgets would only log it
            self.error.value = f"<b style='color:#b00'>redraw failed</b>: {type(e).__name__}: {e}"
            raise

    def redraw(self) -> None:
        start = time.perf_counter()
        self.reading = self.draw(self.fig, **self.values())
        self.png = png_bytes(self.fig)
        self.image.value = self.png
        self.error.value = ""
        self.last_redraw_s = time.perf_counter() - start

    def set(self, **values: Any) -> None:
        """Move controls by name (one callback per control changed)."""
        for name, value in values.items():
            self.controls[name].value = value

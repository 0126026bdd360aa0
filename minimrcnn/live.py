"""Live feedback while a model trains in a notebook: a loss plot that redraws itself in place.

    from minimrcnn.live import LivePlot
    live = LivePlot(total=cfg.train.iters)
    train(cfg, "runs/x", progress=False, on_log=live)
    live.close()

`train` calls `on_log(record)` every `log_every` iterations with one dict, the line it also appends to
`metrics.jsonl`: `{"iteration": 120, "lr": ..., "loss_objectness": ..., ..., "loss": ..., "time": 31.4}`
(the loss terms are means over the last `log_every` iterations, `time` counts seconds since this call to
`train` began). `LivePlot` keeps the records and redraws one figure: the loss terms against the iteration
on a log scale, the learning rate beside them, and a title that says how far the run is.

In a notebook the figure is one output updated in place (an IPython display id), so the saved notebook
keeps only the last frame. Outside a notebook (a script, a test) nothing is displayed; the figure is still
drawn and is available as `live.fig`. Why not tqdm's notebook bar? It is an ipywidgets widget: a saved
notebook stores the widget's state plus a text copy frozen at 0%, and that frozen text is what GitHub shows.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from minimrcnn.engine.progress import format_seconds
from minimrcnn.report import KEYPOINT_TERM, LABELS, LOSS_TERMS, plot_losses, plot_lr, read_metrics

# what a notebook imports from here: the live plot, and the run's records and curve labels it draws
__all__ = ["LABELS", "LOSS_TERMS", "LivePlot", "progress_line", "read_metrics"]


def progress_line(record: dict[str, Any], total: int | None = None, start: int = 0) -> str:
    """'iteration 120 / 300 (40%) · 31 s · about 47 s left · loss 0.812' for one record ('done' at the end).

    `start` is the iteration this call to `train` began at (0, or the checkpoint's when resuming): the
    record's `time` counts from there, so the speed is `time / (iteration - start)`.
    """
    it, elapsed = int(record["iteration"]), float(record.get("time", 0.0))
    parts = [f"iteration {it}" + (f" / {total} ({100 * it / total:.0f}%)" if total else "")]
    parts.append(format_seconds(elapsed))
    if total and it >= total:
        parts.append("done")
    elif total and it > start and elapsed > 0:
        parts.append(f"about {format_seconds(elapsed / (it - start) * (total - it))} left")
    if "loss" in record:
        parts.append(f"loss {record['loss']:.3f}")
    return " · ".join(parts)


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the environment
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class LivePlot:
    """An `on_log` callback that keeps the trainer's records and redraws a loss plot as they arrive.

    total:        the run's last iteration (`cfg.train.iters`): fixes the x axis and gives the time left.
    keys:         which record fields to draw (default: the five loss terms and their sum).
    every:        redraw after every `every`-th record (drawing takes ~0.1 s; records come every few s).
    print_every:  also print a progress line whenever the iteration reaches a multiple of this (0: never).
    records:      earlier records to start from, e.g. `read_metrics(run)` before resuming that run.
    display:      show the figure in the notebook (None: only when running inside a Jupyter kernel).
    """

    def __init__(
        self,
        total: int | None = None,
        keys: Sequence[str] = (*LOSS_TERMS, KEYPOINT_TERM, "loss"),
        every: int = 1,
        print_every: int = 0,
        title: str = "",
        records: Sequence[dict[str, Any]] = (),
        figsize: tuple[float, float] = (9.0, 3.3),
        dpi: int = 72,
        show_lr: bool = True,
        display: bool | None = None,
    ) -> None:
        self.total, self.keys, self.every, self.print_every = total, tuple(keys), max(1, every), print_every
        self.title, self.dpi, self.show_lr = title, dpi, show_lr
        self.records: list[dict[str, Any]] = [dict(r) for r in records]
        self.start: int | None = None  # the iteration the current call to `train` began at
        self.draws = 0
        self.display = _in_notebook() if display is None else display
        self._handle = None  # the notebook output we update in place
        self.fig = Figure(figsize=figsize, dpi=dpi)  # not pyplot's: the notebook must not show it twice
        FigureCanvasAgg(self.fig)
        if show_lr:
            self.ax, self.ax_lr = self.fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})
        else:
            self.ax, self.ax_lr = self.fig.subplots(), None

    def __call__(self, record: dict[str, Any]) -> None:
        it = int(record["iteration"])
        if self.start is None:  # first record of this call to `train`
            # a resumed run starts again after its checkpoint: forget what was logged past that point
            self.records = [r for r in self.records if r["iteration"] < it]
            self.start = self.records[-1]["iteration"] if self.records else 0
        elif self.records and it <= self.records[-1]["iteration"]:
            self.records = [r for r in self.records if r["iteration"] < it]
        self.records.append(dict(record))
        if self.print_every and (it % self.print_every == 0 or (self.total and it >= self.total)):
            print(self.progress)
        if len(self.records) % self.every == 0:
            self.draw()

    @property
    def progress(self) -> str:
        if not self.records:
            return "waiting for the first record"
        return progress_line(self.records[-1], self.total, self.start or 0)

    def draw(self, final: bool = False) -> None:
        """Redraw the figure from all records; in a notebook, replace the previous frame with it."""
        self.ax.clear()
        plot_losses(self.ax, self.records, self.keys, total=self.total)
        if self.ax_lr is not None:
            self.ax_lr.clear()
            plot_lr(self.ax_lr, self.records, self.total)
        head = f"{self.title}: " if self.title else ""
        self.ax.set_title(head + self.progress, fontsize=9, loc="left")
        if self.draws == 0 or final:  # the layout barely changes between frames, and costs a third of one
            self.fig.tight_layout()
        self.draws += 1
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png", dpi=self.dpi)
        self._emit(buf.getvalue())

    def _emit(self, png: bytes) -> None:
        if not self.display:
            return
        from IPython.display import Image, display

        image = Image(data=png, format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)

    def close(self) -> Figure:
        """Draw the last frame (in case `every` skipped it) and return the figure."""
        if self.records:
            self.draw(final=True)
        return self.fig

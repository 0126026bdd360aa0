"""Progress of long work: a bar on a terminal, plain lines in a log file.

A progress bar redraws itself with carriage returns; written to a file (`python -m minimrcnn.train > log
2>&1`, nohup, a cluster job, CI) those become thousands of fragments. So, as Detectron2's logger does,
`Progress` draws a tqdm bar only when its stream is a terminal, and otherwise prints one plain line per
logging step: what is done, the losses, the learning rate, seconds per step and the time left.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def draws_a_bar(stream: TextIO) -> bool:
    """A terminal, or a Jupyter kernel's output (tqdm.auto draws a notebook bar there), but not a file."""
    if type(stream).__name__ == "OutStream":  # ipykernel's
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def format_seconds(seconds: float) -> str:
    """45 -> '45 s', 125 -> '2:05', 3725 -> '1:02:05'."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """`total` steps of work named `desc`, starting at `initial`; silent when `enabled` is False.

    update() after each step; log(record) at logging steps (the bar's postfix, or a plain line); note(text)
    for a message of its own (printed even when disabled: it is not progress, it is news)."""

    def __init__(
        self, total: int, *, desc: str, initial: int = 0, enabled: bool = True, stream: TextIO | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.desc, self.total, self.n, self.enabled = desc, total, initial, enabled
        self.start_n, self.t0 = initial, time.perf_counter()
        self.bar = None
        if enabled and draws_a_bar(self.stream):
            self.bar = tqdm(
                total=total, initial=initial, desc=desc, file=self.stream, dynamic_ncols=True, mininterval=0.5
            )

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.bar is not None:
            self.bar.update(n)

    def set_total(self, total: int) -> None:
        self.total = total
        if self.bar is not None:
            self.bar.total = total
            self.bar.refresh()

    def rate(self) -> float:
        """Seconds per step since this Progress began (0 before the first step)."""
        done = self.n - self.start_n
        return (time.perf_counter() - self.t0) / done if done > 0 else 0.0

    def log(self, values: dict[str, Any]) -> None:
        """Show values (floats are rounded) at a logging step: as the bar's postfix, or as one plain line."""
        if not self.enabled:
            return
        shown = {k: f"{v:.3g}" if isinstance(v, float) else str(v) for k, v in values.items()}
        if self.bar is not None:
            self.bar.set_postfix(shown, refresh=False)
            return
        rate = self.rate()
        eta = format_seconds(rate * max(self.total - self.n, 0))
        fields = "  ".join(f"{k} {v}" for k, v in shown.items())
        print(f"{self.desc} {self.n}/{self.total}  {fields}  {rate:.3f} s/it  eta {eta}", flush=True)

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress_bar(iterable: Iterable[T], *, desc: str, enabled: bool = True) -> Iterable[T]:
    """`iterable` with a bar on a terminal or in a notebook; in a file, the items alone (no fragments)."""
    if not (enabled and draws_a_bar(sys.stderr)):
        return iterable
    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True, mininterval=0.5)

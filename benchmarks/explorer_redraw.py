"""How long an explorer takes to redraw after a control moves (draw + render to PNG, what a reader waits for).

    .venv/bin/python benchmarks/explorer_redraw.py [--changes 20] [--seed 0]

Each explorer's panel is made once (its first draw is not counted), then `--changes` random control changes
are applied one at a time through the panel, exactly as a slider would (`Explorer.set`). Prints the median
and the maximum redraw time per explorer, wall clock and this process's CPU time: on a shared machine the
wall clock includes waiting for a core, the CPU time does not. The target is ~200 ms on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

import matplotlib

matplotlib.use("Agg")

from minimrcnn import explorers  # noqa: E402
from minimrcnn.explorers.panel import Explorer  # noqa: E402


def random_value(widget, rng: random.Random):
    """A value a reader could set on this widget, different from the current one when possible."""
    if hasattr(widget, "options") and widget.options:
        values = [o[1] if isinstance(o, tuple) else o for o in widget.options]
        others = [v for v in values if v != widget.value] or values
        return rng.choice(others)
    if isinstance(widget.value, bool):
        return not widget.value
    lo, hi, step = widget.min, widget.max, widget.step
    n = int(round((hi - lo) / step))
    value = lo + step * rng.randint(0, n)
    return type(widget.value)(round(value, 6))


def measure(panel: Explorer, changes: int, rng: random.Random) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    names = list(panel.controls)
    for _ in range(changes):
        name = rng.choice(names)
        value = random_value(panel.controls[name], rng)
        c0, w0 = time.process_time(), time.perf_counter()
        panel.set(**{name: value})
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, load average {load:.2f}; {args.changes} random control changes each")
    print(f"{'explorer':20s} {'wall median':>12s} {'wall max':>9s} {'CPU median':>11s} {'CPU max':>8s}  (ms)")
    for name in ("roipool", "roialign", "anchors", "masks", "ap"):
        panel = getattr(explorers, f"{name}_explorer")()
        wall, cpu = measure(panel, args.changes, rng)
        ms = [1e3 * statistics.median(wall), 1e3 * max(wall), 1e3 * statistics.median(cpu), 1e3 * max(cpu)]
        print(f"{name:20s} {ms[0]:12.0f} {ms[1]:9.0f} {ms[2]:11.0f} {ms[3]:8.0f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

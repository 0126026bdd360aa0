"""Chapter 09 (ablations): exercise solution and checker.

Exercise, ``paired_gain``: how much better variant A is than variant B, paired by seed. Runs with the same
seed share the initialization and the data order, so the per-seed difference cancels much of the run-to-run
noise; its mean and its spread (sample standard deviation) say how large and how reliable the gain is.
The solution is the package's own ``minimrcnn.ablation_results.paired_gain``, which the panel and the
chapter's verdicts use.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from minimrcnn.ablation_results import paired_gain
from minimrcnn.solutions.checking import StudentError, call, report

__all__ = ["check_paired_gain", "paired_gain"]


def _run(ap: float, ap75: float, box: float) -> dict[str, Any]:
    return {"segm": {"AP": ap, "AP75": ap75}, "bbox": {"AP": box, "AP75": box}}


def _cases() -> list[tuple[list[dict], list[dict], str, str]]:
    a = [_run(0.312, 0.30, 0.40), _run(0.298, 0.27, 0.41), _run(0.305, 0.31, 0.39)]
    b = [_run(0.281, 0.24, 0.38), _run(0.290, 0.26, 0.40), _run(0.262, 0.23, 0.40)]
    return [
        (a, b, "segm", "AP"),
        (a[:2], b[:2], "segm", "AP75"),
        (b, a, "bbox", "AP"),
        (a[:1], b[:1], "segm", "AP"),
    ]


def check_paired_gain(fn: Callable[..., tuple[float, float]]) -> bool:
    """Check a student's ``paired_gain(runs_a, runs_b, iou_type, metric)``; print a verdict."""
    name = "paired_gain"
    cases = _cases()
    try:
        for a, b, iou_type, metric in cases:
            want_mean, want_spread = paired_gain(a, b, iou_type, metric)
            out = call(fn, a, b, iou_type, metric)
            try:
                got_mean, got_spread = (float(x) for x in out)
            except (TypeError, ValueError):
                raise StudentError(f"return a pair (mean, spread); got {out!r}.") from None
            if abs(got_mean - want_mean) > 1e-6:
                if abs(got_mean + want_mean) < 1e-6:
                    raise StudentError("the sign is flipped: the gain of A over B is A - B.")
                if abs(100 * got_mean - want_mean) < 1e-4:
                    raise StudentError("report AP points: the eval dicts hold fractions, multiply by 100.")
                raise StudentError(
                    f"mean gain {got_mean:.3f}, expected {want_mean:.3f} ({iou_type} {metric})."
                )
            if abs(got_spread - want_spread) > 1e-6:
                diffs = [100 * (x[iou_type][metric] - y[iou_type][metric]) for x, y in zip(a, b)]
                pop = statistics.pstdev(diffs)
                sa = statistics.stdev([100 * x[iou_type][metric] for x in a]) if len(a) > 1 else 0.0
                sb = statistics.stdev([100 * y[iou_type][metric] for y in b]) if len(b) > 1 else 0.0
                if len(diffs) > 1 and abs(got_spread - pop) < 1e-6:
                    raise StudentError(
                        "that is the population standard deviation (divides by n); with a "
                        "handful of seeds use the sample one (n - 1), statistics.stdev."
                    )
                if len(diffs) > 1 and abs(got_spread - (sa**2 + sb**2) ** 0.5) < 1e-6:
                    raise StudentError(
                        "that combines the two variants' own spreads (unpaired); take the "
                        "spread of the per-seed differences instead."
                    )
                if len(diffs) == 1:
                    raise StudentError("with a single seed there is no spread to estimate: return 0.")
                raise StudentError(f"spread {got_spread:.3f}, expected {want_spread:.3f}.")
    except StudentError as err:
        return report(name, [str(err)], len(cases), "")
    return report(name, [], len(cases), "Paired by seed: the difference's mean and its sample spread.")

"""Chapter 01 (RoIPool and its two roundings): exercise solutions and checkers.

Exercise 1, ``feature_grid_box``: the first rounding, a box in image pixels -> integer feature cells.
Exercise 2, ``bin_boundaries``: the second rounding, a run of cells -> ``n_bins`` integer bins.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from minimrcnn.solutions.checking import StudentError, call, check_answer, report

__all__ = [
    "answers",
    "bin_boundaries",
    "check_answer_distinct_cells",
    "check_answer_round_72",
    "check_bin_boundaries",
    "check_feature_grid_box",
    "feature_grid_box",
    "round_half_away_from_zero",
]


def round_half_away_from_zero(v: float) -> int:
    """C's ``round()``: 2.5 -> 3, -2.5 -> -3 (Python's ``round`` and ``torch.round`` give 2 and -2)."""
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


def feature_grid_box(box: Sequence[float], spatial_scale: float) -> tuple[int, int, int, int]:
    """First rounding of RoIPool: map ``(x1, y1, x2, y2)`` (image pixels) to feature-cell indices.

    Every coordinate is multiplied by ``spatial_scale`` (1 / stride) and rounded to the nearest
    integer, halves away from zero. The result names the first and the last cell of the RoI
    (both included) along x and along y.
    """
    return tuple(round_half_away_from_zero(float(v) * spatial_scale) for v in box)  # type: ignore[return-value]


def bin_boundaries(roi_start: int, roi_length: int, n_bins: int) -> list[tuple[int, int]]:
    """Second rounding of RoIPool: split ``roi_length`` cells starting at ``roi_start`` into bins.

    The ideal bin ``i`` covers ``[i * L / n, (i + 1) * L / n)`` cells. RoIPool widens it to whole
    cells: the start is rounded down (floor) and the end rounded up (ceil). Ends are exclusive, so
    bin ``i`` reads cells ``start, start + 1, ..., end - 1``. Neighbouring bins may share a cell.
    """
    size = roi_length / n_bins
    return [(roi_start + math.floor(i * size), roi_start + math.ceil((i + 1) * size)) for i in range(n_bins)]


# ----------------------------------------------------------------------------------------------
# checkers
# ----------------------------------------------------------------------------------------------

_BOX_CASES: list[tuple[tuple[float, float, float, float], float]] = [
    ((40.0, 24.0, 200.0, 136.0), 1 / 16),  # 40/16 = 2.5, 24/16 = 1.5, 136/16 = 8.5: exact halves
    ((10.3, 7.9, 97.2, 61.0), 1 / 16),
    ((0.0, 0.0, 31.0, 33.0), 1 / 32),
    ((48.0, 80.0, 112.0, 176.0), 1 / 32),  # 1.5, 2.5, 3.5, 5.5
    ((5.0, 3.0, 13.0, 27.0), 1 / 2),  # 2.5, 1.5, 6.5, 13.5
    ((123.4, 56.7, 301.9, 250.1), 1 / 8),
    ((-24.0, -8.0, 40.0, 56.0), 1 / 16),  # negative halves round away from zero too
    ((3.2, 9.7, 4.1, 10.2), 1.0),
]


def _as_int_tuple(out: object, n: int, what: str) -> tuple[int, ...]:
    try:
        vals = [float(v) for v in out]  # type: ignore[union-attr]
    except Exception:
        raise StudentError(f"return {what}; got {type(out).__name__}") from None
    if len(vals) != n:
        raise StudentError(f"return {what}; got {len(vals)} values")
    if any(v != math.floor(v) for v in vals):
        raise StudentError(
            "some values are fractional: the point of this step is to snap them to whole cells (round them)."
        )
    return tuple(int(v) for v in vals)


def check_feature_grid_box(fn: Callable[[Sequence[float], float], Sequence[int]]) -> bool:
    """Check a student's ``feature_grid_box(box, spatial_scale)``; print a verdict, return True if right."""
    name = "feature_grid_box"
    wrong: list[tuple[tuple[float, ...], float, tuple[int, ...], tuple[int, ...]]] = []
    try:
        for box, scale in _BOX_CASES:
            got = _as_int_tuple(call(fn, box, scale), 4, "four integers (x1, y1, x2, y2)")
            want = feature_grid_box(box, scale)
            if got != want:
                wrong.append((box, scale, got, want))
    except StudentError as err:
        return report(name, [str(err)], len(_BOX_CASES), "")
    if not wrong:
        return report(
            name, [], len(_BOX_CASES), "Halves (like 40/16 = 2.5) go away from zero, just as RoIPool does."
        )

    def matches(alt: Callable[[float, float], int]) -> bool:
        return all(got == tuple(alt(v, s) for v in box) for box, s, got, _ in wrong)

    box, scale, got, want = wrong[0]
    problems = [f"for box {box} at spatial_scale {scale:g} you return {got}, RoIPool uses {want}."]
    if matches(lambda v, s: round(v * s)):
        problems.append(
            "You only differ at exact halves: Python's round() (and torch.round) round half to even "
            "(2.5 -> 2), but RoIPool uses C's round(), which rounds halves away from zero (2.5 -> 3)."
        )
    elif matches(lambda v, s: math.floor(v * s)) or matches(lambda v, s: math.trunc(v * s)):
        problems.append(
            "That is floor (or int()): RoIPool rounds to the *nearest* cell, it does not truncate."
        )
    elif matches(lambda v, s: math.ceil(v * s)):
        problems.append("That is ceil: RoIPool rounds to the *nearest* cell.")
    elif matches(lambda v, s: round_half_away_from_zero(v / s)):
        problems.append("You divided by spatial_scale; it is 1/stride already, so multiply by it.")
    elif matches(lambda v, s: round_half_away_from_zero(v)):
        problems.append(
            "You rounded the image coordinates; scale them to the feature map first (times spatial_scale)."
        )
    elif all(got == (w[1], w[0], w[3], w[2]) for _, _, got, w in wrong):
        problems.append("x and y are swapped: boxes are (x1, y1, x2, y2), return them in the same order.")
    return report(name, problems, len(_BOX_CASES), "")


_BIN_CASES: list[tuple[int, int, int]] = [
    (3, 14, 7),  # exact: 2 cells per bin
    (2, 10, 7),  # 10/7 cells per bin: bins overlap
    (0, 5, 7),  # fewer cells than bins: several bins read the same cell
    (5, 1, 7),  # a one-cell RoI
    (4, 9, 2),
    (1, 23, 7),
    (6, 3, 4),
]


def check_bin_boundaries(fn: Callable[[int, int, int], Sequence[tuple[int, int]]]) -> bool:
    """Check a student's ``bin_boundaries(roi_start, roi_length, n_bins)``; print a verdict."""
    name = "bin_boundaries"
    wrong = []
    try:
        for start, length, n in _BIN_CASES:
            out = call(fn, start, length, n)
            try:
                pairs = [_as_int_tuple(p, 2, "(start, end) pairs") for p in out]
            except TypeError:
                raise StudentError(f"return a list of (start, end) pairs; got {type(out).__name__}") from None
            if len(pairs) != n:
                raise StudentError(
                    f"return one (start, end) pair per bin: asked for {n} bins, got {len(pairs)}."
                )
            want = bin_boundaries(start, length, n)
            if pairs != want:
                wrong.append((start, length, n, pairs, want))
    except StudentError as err:
        return report(name, [str(err)], len(_BIN_CASES), "")
    if not wrong:
        return report(
            name, [], len(_BIN_CASES), "Starts round down, ends round up, so bins may overlap by a cell."
        )

    def matches(alt: Callable[[int, int, int], list[tuple[int, int]]]) -> bool:
        return all(got == alt(s, L, n) for s, L, n, got, _ in wrong)

    s0, L0, n0, got, want = wrong[0]
    problems = [f"bin_boundaries({s0}, {L0}, {n0}) returns {got}, RoIPool uses {want}."]
    if matches(lambda s, L, n: bin_boundaries(0, L, n)):
        problems.append("Your bins start at cell 0: add roi_start (the bins live inside the RoI).")
    elif matches(lambda s, L, n: [(s + round(i * L / n), s + round((i + 1) * L / n)) for i in range(n)]):
        problems.append("You rounded to nearest; RoIPool floors the start and ceils the end of every bin.")
    elif matches(
        lambda s, L, n: [(s + math.floor(i * L / n), s + math.floor((i + 1) * L / n)) for i in range(n)]
    ):
        problems.append("Your ends round down: RoIPool rounds the end *up* (ceil), so no bin is ever empty.")
    elif matches(lambda s, L, n: [(s + a, s + b - 1) for a, b in bin_boundaries(0, L, n)]):
        problems.append(
            "Your ends are one too small: make the end exclusive (bin reads cells start .. end-1)."
        )
    elif matches(lambda s, L, n: [(s + i * (L // n), s + (i + 1) * (L // n)) for i in range(n)]):
        problems.append(
            "Integer division L // n throws the remainder away; use the float size L / n, then floor/ceil."
        )
    return report(name, problems, len(_BIN_CASES), "")


# ----------------------------------------------------------------------------------------------
# numeric answers to the chapter's questions
# ----------------------------------------------------------------------------------------------


def answers() -> dict[str, Any]:
    """The right values, from the solutions above (which the exercise checkers hold to torchvision's)."""
    x1 = 72 / 16
    return {
        "round_72": (round_half_away_from_zero(x1), round(x1)),
        "distinct_cells": len({c for a, b in bin_boundaries(0, 3, 7) for c in range(a, b)}),
    }


def check_answer_round_72(answer: Any) -> bool:
    """Question 1: (the cell RoIPool's first rounding picks for x1 = 72 at stride 16, Python's round)."""
    return check_answer(
        "question 1 (x1 = 72 at stride 16)",
        answer,
        answers()["round_72"],
        form="(RoIPool's cell, Python's round)",
        mistakes=(
            ((4, 5), "swapped: C's round sends 4.5 away from zero, Python's to the even 4."),
            ((5, 5), "Python's round(4.5) is 4: it rounds halves to the even neighbour."),
            ((4, 4), "RoIPool rounds like C's round(): 4.5 goes away from zero, to 5."),
        ),
        why="72/16 = 4.5: RoIPool (C's round) picks cell 5, Python's round gives 4, so a Python version "
        "that uses round() disagrees with torchvision on every coordinate that lands on a half.",
    )


def check_answer_distinct_cells(answer: Any) -> bool:
    """Question 2: how many distinct cells 7 bins can read from a RoI 3 cells wide."""
    return check_answer(
        "question 2 (distinct cells)",
        answer,
        answers()["distinct_cells"],
        form="a whole number of cells",
        mistakes=((7, "7 bins, but there are only 3 cells to read: most bins repeat a neighbour."),),
        why="Only 3: the 7 bins repeat them (some read two at once): no detail finer than 3 cells.",
    )

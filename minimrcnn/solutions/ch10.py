"""Chapter 10 (keypoints): exercise solutions and checkers.

Exercise 1, ``keypoint_cell``: the training target of one keypoint, the index of the cell of its RoI's
m x m grid that holds it (row * m + col), or -1 when it is ignored (not labelled, v = 0, or outside the box).
The reference is the package's ``minimrcnn.model.keypoint_head.keypoint_targets``.
Exercise 2, ``oks``: object keypoint similarity of D detections with one ground-truth person, as COCOeval
computes it: the mean over labelled joints of exp(-d^2 / (2 s^2 k^2)), with s^2 the object's area and
k = 2 sigma the joint's constant.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from minimrcnn.model.keypoint_head import keypoint_targets
from minimrcnn.solutions.checking import StudentError, call, report

__all__ = ["check_keypoint_cell", "check_oks", "keypoint_cell", "oks"]


def keypoint_cell(x: float, y: float, v: int, box: tuple[float, float, float, float], m: int) -> int:
    """(x, y, v) of a keypoint and its RoI (x1, y1, x2, y2) -> row * m + col of its cell, -1 if ignored."""
    kp = torch.tensor([[[x, y, v]]], dtype=torch.float32)  # [1, 1, 3]
    index, valid = keypoint_targets(kp, torch.tensor([box], dtype=torch.float32), m)
    return int(index[0, 0]) if bool(valid[0, 0]) else -1


def oks(det_xy: np.ndarray, gt: np.ndarray, area: float, sigmas: np.ndarray) -> np.ndarray:
    """det_xy [D, J, 2] detected joints, gt [J, 3] (x, y, v), the person's area A, sigmas [J] -> [D] OKS.

    Only the labelled joints (v > 0) count; at least one must be labelled."""
    det_xy, gt, sigmas = np.asarray(det_xy, float), np.asarray(gt, float), np.asarray(sigmas, float)
    d2 = ((det_xy - gt[None, :, :2]) ** 2).sum(-1)  # [D, J] squared distances in pixels
    kappa2 = (2 * sigmas) ** 2  # [J] COCO's per-joint constant kappa_i = 2 sigma_i, squared
    e = d2 / kappa2 / (area + np.spacing(1)) / 2  # d^2 / (2 A kappa^2)
    labelled = gt[:, 2] > 0
    return np.exp(-e[:, labelled]).mean(axis=1)


# ----------------------------------------------------------------------------------------------
# checkers
# ----------------------------------------------------------------------------------------------
def _cell_cases() -> list[tuple[float, float, int, tuple[float, float, float, float], int]]:
    box = (10.0, 20.0, 66.0, 76.0)  # 56 px: one pixel per cell
    wide = (0.0, 0.0, 112.0, 28.0)  # 2 px per column, 0.5 px per row at m = 56
    return [
        (30.5, 41.9, 2, box, 56),
        (10.0, 20.0, 2, box, 56),
        (66.0, 76.0, 2, box, 56),  # on the far corner: the last cell
        (30.5, 41.9, 1, box, 56),  # labelled, hidden: still a target
        (30.5, 41.9, 0, box, 56),  # not labelled
        (9.9, 40.0, 2, box, 56),  # outside, left
        (40.0, 76.5, 2, box, 56),  # outside, below
        (57.3, 9.7, 2, wide, 56),
        (57.3, 9.7, 2, wide, 28),
        (3.2, 27.9, 2, wide, 7),
    ]


def check_keypoint_cell(fn: Callable[..., int]) -> bool:
    """Check a student's ``keypoint_cell(x, y, v, box, m)``; print a verdict."""
    name = "keypoint_cell"
    cases = _cell_cases()
    try:
        for x, y, v, box, m in cases:
            want = keypoint_cell(x, y, v, box, m)
            out = call(fn, x, y, v, box, m)
            try:
                got = int(out)
                if got != out:
                    raise ValueError
            except (TypeError, ValueError, RuntimeError):
                raise StudentError(f"return one int (the cell index, or -1); got {out!r}.") from None
            if got == want:
                continue
            where = f"keypoint ({x}, {y}, v={v}) in box {box}, m = {m}"
            if want == -1:
                raise StudentError(f"{where}: expected -1 (ignored), got {got}.")
            if got == -1:
                raise StudentError(f"{where}: expected cell {want}, got -1 (v = 1 is labelled: it counts).")
            row, col = divmod(want, m)
            if got == col * m + row:
                raise StudentError(f"{where}: rows and columns are swapped; index = row * m + col.")
            x1, y1, x2, y2 = box
            if got == round((y - y1) * m / (y2 - y1)) * m + round((x - x1) * m / (x2 - x1)):
                raise StudentError(f"{where}: round down (floor), do not round to the nearest cell.")
            raise StudentError(f"{where}: expected cell {want} (row {row}, col {col}), got {got}.")
    except StudentError as err:
        return report(name, [str(err)], len(cases), "")
    return report(name, [], len(cases), "A one-hot target: one cell per labelled joint inside its box.")


def _oks_cases() -> list[tuple[np.ndarray, np.ndarray, float, np.ndarray]]:
    rng = np.random.default_rng(10)
    cases = []
    for k, d, area in ((9, 4, 900.0), (17, 3, 5000.0), (5, 1, 120.0)):
        gt = np.concatenate([rng.uniform(0, 100, (k, 2)), rng.integers(0, 3, (k, 1))], axis=1)
        gt[0, 2] = 2  # at least one labelled joint
        det = gt[None, :, :2] + rng.normal(0, 3, (d, k, 2))
        cases.append((det, gt, area, rng.uniform(0.025, 0.11, k)))
    return cases


def check_oks(fn: Callable[..., np.ndarray]) -> bool:
    """Check a student's ``oks(det_xy, gt, area, sigmas)``; print a verdict."""
    name = "oks"
    cases = _oks_cases()
    try:
        for det, gt, area, sigmas in cases:
            want = oks(det, gt, area, sigmas)
            out = call(fn, det.copy(), gt.copy(), area, sigmas.copy())
            try:
                got = np.asarray(out, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise StudentError(f"return an array of D similarities; got {type(out).__name__}.") from None
            if got.shape != want.shape:
                raise StudentError(f"expected {want.shape[0]} values (one per detection), got {got.size}.")
            if not np.all(np.isfinite(got)):
                raise StudentError("some similarities are not finite.")
            if np.allclose(got, want, atol=1e-9):
                continue
            d2 = ((det - gt[None, :, :2]) ** 2).sum(-1)
            labelled = gt[:, 2] > 0
            every = np.exp(-d2 / (2 * sigmas) ** 2 / area / 2).mean(axis=1)
            if not labelled.all() and np.allclose(got, every, atol=1e-9):
                raise StudentError("average over the labelled joints only (v > 0), not all J.")
            no_two = np.exp(-d2 / sigmas**2 / area / 2)[:, labelled].mean(axis=1)
            if np.allclose(got, no_two, atol=1e-9):
                raise StudentError("COCO's constant is k = 2 * sigma: divide by (2 sigma)^2.")
            sqrt_area = np.exp(-d2 / (2 * sigmas) ** 2 / math.sqrt(area) / 2)[:, labelled].mean(axis=1)
            if np.allclose(got, sqrt_area, atol=1e-9):
                raise StudentError("the scale s^2 is the area itself (s is its square root).")
            raise StudentError(f"OKS {np.round(got, 4).tolist()}, expected {np.round(want, 4).tolist()}.")
    except StudentError as err:
        return report(name, [str(err)], len(cases), "")
    return report(name, [], len(cases), "OKS is to keypoints what IoU is to boxes.")

"""Chapter 08 (evaluation): exercise solutions and checkers.

Exercise 1, ``mask_iou``: pairwise IoU of binary masks, [N, H, W] x [M, H, W] -> [N, M], the way
``pycocotools.mask.iou`` computes it (intersection / union in pixels, 0 when the union is empty).
Exercise 2, ``greedy_match``: COCO's matching at one IoU threshold. Detections, sorted by score, each take
the not-yet-matched ground truth they overlap most, if that IoU is at least the threshold.
Exercise 3, ``interpolated_ap``: COCO's 101-point interpolated average precision from the running
precision and recall of the score-sorted detections.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pycocotools.mask as mask_utils

from minimrcnn.solutions.checking import StudentError, call, close, report

__all__ = [
    "check_greedy_match",
    "check_interpolated_ap",
    "check_mask_iou",
    "greedy_match",
    "interpolated_ap",
    "mask_iou",
]


def mask_iou(masks_a: np.ndarray, masks_b: np.ndarray) -> np.ndarray:
    """masks_a [N, H, W], masks_b [M, H, W], 0/1 (or bool) -> [N, M] float64 IoU."""
    a = masks_a.reshape(len(masks_a), -1).astype(np.float64)  # [N, HW]
    b = masks_b.reshape(len(masks_b), -1).astype(np.float64)  # [M, HW]
    inter = a @ b.T  # [N, M] pixels in both
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def greedy_match(ious: np.ndarray, threshold: float) -> np.ndarray:
    """ious [D, G] (detections already sorted by decreasing score) -> [D] int: the matched ground truth's
    index, or -1. A ground truth is matched at most once; a detection takes the unmatched ground truth with
    the highest IoU, provided that IoU is >= threshold."""
    matched_gt = np.full(ious.shape[1], False)
    out = np.full(ious.shape[0], -1, dtype=np.int64)
    for d in range(ious.shape[0]):
        best, best_iou = -1, threshold
        for g in range(ious.shape[1]):
            if matched_gt[g] or ious[d, g] < best_iou:
                continue
            best, best_iou = g, ious[d, g]
        if best >= 0:
            matched_gt[best] = True
            out[d] = best
    return out


def interpolated_ap(recall: np.ndarray, precision: np.ndarray, num_points: int = 101) -> float:
    """recall, precision [D] after each of the D score-sorted detections -> AP in [0, 1].

    1. Interpolate: the precision at recall r becomes the best precision at any recall >= r (running
       maximum from the right), which makes the curve non-increasing.
    2. Read it at recall thresholds 0, 0.01, ..., 1.00: the first detection whose recall reaches the
       threshold. Thresholds beyond the final recall score 0.
    3. Average the 101 values.
    """
    if len(recall) == 0:
        return 0.0
    envelope = np.maximum.accumulate(np.asarray(precision, dtype=np.float64)[::-1])[::-1]
    thresholds = np.linspace(0.0, 1.0, num_points)
    idx = np.searchsorted(recall, thresholds, side="left")  # first detection with recall >= threshold
    values = np.where(idx < len(recall), envelope[np.minimum(idx, len(recall) - 1)], 0.0)
    return float(values.mean())


# ----------------------------------------------------------------------------------------------
# checkers
# ----------------------------------------------------------------------------------------------


def _blobs(rng: np.random.Generator, k: int, size: int) -> np.ndarray:
    out = np.zeros((k, size, size), dtype=np.uint8)
    for i in range(k):
        x, y = rng.integers(0, size - 4, 2)
        w, h = rng.integers(3, size // 2, 2)
        out[i, y : y + h, x : x + w] = 1
        out[i][rng.random((size, size)) < 0.05] = 1  # some stray pixels
    return out


def _mask_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(8)
    return [
        (_blobs(rng, n, size), _blobs(rng, m, size)) for n, m, size in ((3, 4, 12), (1, 5, 20), (6, 2, 16))
    ]


def _coco_iou(a: np.ndarray, b: np.ndarray, crowd: bool = False) -> np.ndarray:
    ra = mask_utils.encode(np.asfortranarray(a.transpose(1, 2, 0)))
    rb = mask_utils.encode(np.asfortranarray(b.transpose(1, 2, 0)))
    return np.asarray(mask_utils.iou(ra, rb, [int(crowd)] * len(b)), dtype=np.float64).reshape(len(a), len(b))


def check_mask_iou(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> bool:
    """Check a student's ``mask_iou(masks_a, masks_b)``; print a verdict."""
    name = "mask_iou"
    cases = _mask_cases()
    try:
        for a, b in cases:
            want = _coco_iou(a, b)
            got = call(fn, a.copy(), b.copy())
            try:
                got = np.asarray(got.detach().cpu() if hasattr(got, "detach") else got, dtype=np.float64)
            except (TypeError, ValueError):
                raise StudentError(f"return an [N, M] array of IoUs; got {type(got).__name__}.") from None
            if got.shape != want.shape:
                if got.shape == want.T.shape:
                    raise StudentError(f"shape {got.shape}: rows are masks_a, columns masks_b -> [N, M].")
                raise StudentError(
                    f"shape {got.shape} for {len(a)} and {len(b)} masks: return the [N, M] matrix of every "
                    "pair (broadcast, or flatten the masks and use a matrix product)."
                )
            if close(got, want):
                continue
            af, bf = a.reshape(len(a), -1).astype(float), b.reshape(len(b), -1).astype(float)
            inter = af @ bf.T
            alternatives = [
                (
                    _coco_iou(a, b, crowd=True),
                    "that is intersection / area(masks_a): COCO's crowd rule. "
                    "For ordinary objects divide by the union.",
                ),
                (inter / bf.sum(1)[None, :], "you divided by the area of masks_b; divide by the union."),
                (
                    inter / (af.sum(1)[:, None] + bf.sum(1)[None, :]),
                    "the union is |A| + |B| - |A and B|: subtract the intersection, or it is counted twice.",
                ),
                (
                    2 * inter / (af.sum(1)[:, None] + bf.sum(1)[None, :]),
                    "that is the Dice coefficient "
                    "2|A and B| / (|A| + |B|); IoU divides the intersection by the union.",
                ),
                (np.floor(want), "integer division: convert the pixel counts to float before dividing."),
            ]
            for alt, msg in alternatives:
                if close(got, alt):
                    raise StudentError(msg)
            raise StudentError(f"IoU differs from pycocotools' by up to {np.abs(got - want).max():.4f}.")
    except StudentError as err:
        return report(name, [str(err)], len(cases), "")
    return report(name, [], len(cases), "It agrees with pycocotools.mask.iou.")


def _match_cases() -> list[tuple[np.ndarray, float]]:
    rng = np.random.default_rng(9)
    cases = []
    for d, g, t in ((6, 4, 0.5), (8, 3, 0.75), (3, 6, 0.5), (5, 5, 0.3)):
        ious = rng.random((d, g)) * (rng.random((d, g)) < 0.6)
        cases.append((ious, t))
    ious = np.array([[0.9, 0.6], [0.8, 0.2], [0.55, 0.1]])  # the best GT of det 1 is already taken
    cases.append((ious, 0.5))
    return cases


def check_greedy_match(fn: Callable[[np.ndarray, float], np.ndarray]) -> bool:
    """Check a student's ``greedy_match(ious, threshold)``; print a verdict."""
    name = "greedy_match"
    cases = _match_cases()
    try:
        for ious, t in cases:
            want = greedy_match(ious, t)
            out = call(fn, ious.copy(), t)
            try:
                got = (
                    np.asarray(out.detach().cpu() if hasattr(out, "detach") else out)
                    .astype(np.int64)
                    .reshape(-1)
                )
            except (TypeError, ValueError):
                raise StudentError(
                    f"return an integer array (one entry per detection); got {out!r}."
                ) from None
            if got.shape != want.shape:
                raise StudentError(f"return one entry per detection ({len(want)}), got {got.shape[0]}.")
            if np.array_equal(got, want):
                continue
            used = got[got >= 0]
            if len(set(used.tolist())) < len(used):
                raise StudentError(
                    "a ground truth was matched twice: once a detection has taken it, "
                    "later (lower-scoring) detections must look elsewhere; they are duplicates."
                )
            if np.any((got >= 0) & (ious[np.arange(len(got)), np.maximum(got, 0)] < t)):
                raise StudentError(f"a match with IoU below the threshold {t}: only IoU >= threshold counts.")
            greedy_any = np.where(ious.max(1) >= t, ious.argmax(1), -1)
            if np.array_equal(got, greedy_any):
                raise StudentError(
                    "each detection took its best ground truth even when an earlier detection "
                    "already had it; skip the taken ones."
                )
            raise StudentError(
                f"for ious=\n{np.round(ious, 2)}\nthreshold {t}: expected {want.tolist()}, "
                f"got {got.tolist()}."
            )
    except StudentError as err:
        return report(name, [str(err)], len(cases), "")
    return report(name, [], len(cases), "Greedy, score order, one match per object: COCO's rule.")


def _pr_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(10)
    cases = []
    for d, n_gt in ((12, 8), (30, 10), (5, 9), (40, 40)):
        tp = rng.random(d) < np.linspace(0.9, 0.2, d)
        tp_sum, fp_sum = np.cumsum(tp), np.cumsum(~tp)
        tp_sum = np.minimum(tp_sum, n_gt)
        cases.append((tp_sum / n_gt, tp_sum / (tp_sum + fp_sum)))
    return cases


def check_interpolated_ap(fn: Callable[[np.ndarray, np.ndarray], float]) -> bool:
    """Check a student's ``interpolated_ap(recall, precision)``; print a verdict."""
    name = "interpolated_ap"
    cases = _pr_cases()
    try:
        for rec, prec in cases:
            want = interpolated_ap(rec, prec)
            out = call(fn, rec.copy(), prec.copy())
            try:
                got = float(out)
            except (TypeError, ValueError):
                raise StudentError(f"return one number (the AP); got {type(out).__name__}.") from None
            if abs(got - want) < 1e-9:
                continue
            thr = np.linspace(0, 1, 101)
            idx = np.searchsorted(rec, thr, side="left")
            raw = np.where(idx < len(rec), prec[np.minimum(idx, len(rec) - 1)], 0.0).mean()
            env = np.maximum.accumulate(prec[::-1])[::-1]
            reached = np.where(idx < len(rec), env[np.minimum(idx, len(rec) - 1)], np.nan)
            thr11 = np.linspace(0, 1, 11)
            idx11 = np.searchsorted(rec, thr11, side="left")
            voc11 = np.where(idx11 < len(rec), env[np.minimum(idx11, len(rec) - 1)], 0.0).mean()
            trapz = float(np.sum(np.diff(np.concatenate([[0], rec])) * prec))
            alternatives = [
                (
                    raw,
                    "no interpolation: first replace each precision by the best precision at any higher "
                    "recall (a running maximum from the right), then read it at the 101 recall thresholds.",
                ),
                (
                    np.nanmean(reached),
                    "thresholds above the final recall must count as precision 0 "
                    "(average over all 101 thresholds, not only the ones reached).",
                ),
                (voc11, "that is the 11-point (PASCAL VOC 2007) version; COCO reads 101 points."),
                (
                    trapz,
                    "that is the raw area under the curve (sum of precision x recall step); COCO "
                    "averages the interpolated precision at 101 fixed recall thresholds.",
                ),
                (want * 100, None),
            ]
            for alt, msg in alternatives:
                if abs(got - alt) < 1e-9:
                    raise StudentError(msg or "return AP as a fraction in [0, 1], not in percent.")
            raise StudentError(f"got {got:.6f}, expected {want:.6f}.")
    except StudentError as err:
        return report(name, [str(err)], len(cases), "")
    return report(
        name, [], len(cases), "Running max from the right, 101 recall thresholds, zeros past the end."
    )

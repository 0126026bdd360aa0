"""Chapters 08-09 exercises: the checkers accept the solutions, name typical mistakes, never raise.

The solutions are checked against the reference implementations: ``mask_iou`` against
``pycocotools.mask.iou``, ``interpolated_ap`` against ``COCOeval``'s accumulated precision on a tiny dataset,
and ``paired_gain`` against ``minimrcnn.ablations.results.compare`` on a results dict.
"""

from __future__ import annotations

import contextlib
import io
import statistics

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from minimrcnn.ablations import results as ablation_results
from minimrcnn.solutions import ch08, ch09


def _verdict(check, student, capsys) -> str:
    assert check(student) is False
    return capsys.readouterr().out


def _flat(a, b):
    return a.reshape(len(a), -1).astype(float), b.reshape(len(b), -1).astype(float)


@pytest.mark.parametrize(
    ("student", "message"),
    [
        (
            lambda a, b: (lambda x, y: 2 * (x @ y.T) / (x.sum(1)[:, None] + y.sum(1)[None]))(*_flat(a, b)),
            "Dice",
        ),
        (lambda a, b: (lambda x, y: (x @ y.T) / x.sum(1)[:, None])(*_flat(a, b)), "crowd"),
        (lambda a, b: (lambda x, y: (x @ y.T) / (x.sum(1)[:, None] + y.sum(1)[None]))(*_flat(a, b)), "twice"),
        (lambda a, b: np.floor(ch08.mask_iou(a, b)), "integer division"),
        (lambda a, b: ch08.mask_iou(a, b)[:, :1], "every pair"),
    ],
    ids=["dice", "crowd", "union", "intdiv", "shape"],
)
def test_mask_iou_mistakes(student, message, capsys):
    assert message in _verdict(ch08.check_mask_iou, student, capsys)


@pytest.mark.parametrize(
    ("student", "message"),
    [
        (lambda ious, t: np.where(ious.max(1) >= t, ious.argmax(1), -1), "matched twice"),
        (lambda ious, t: ch08.greedy_match(ious, 0.0), "below the threshold"),
        (lambda ious, t: ch08.greedy_match(ious, t)[:-1], "one entry per detection"),
    ],
    ids=["duplicates", "threshold", "length"],
)
def test_greedy_match_mistakes(student, message, capsys):
    assert message in _verdict(ch08.check_greedy_match, student, capsys)


def _raw(rec, prec):
    idx = np.searchsorted(rec, np.linspace(0, 1, 101), side="left")
    return np.where(idx < len(rec), prec[np.minimum(idx, len(rec) - 1)], 0.0).mean()


@pytest.mark.parametrize(
    ("student", "message"),
    [
        (_raw, "no interpolation"),
        (lambda r, p: 100 * ch08.interpolated_ap(r, p), "percent"),
        (lambda r, p: float(np.sum(np.diff(np.concatenate([[0], r])) * p)), "raw area"),
    ],
    ids=["raw", "percent", "trapz"],
)
def test_interpolated_ap_mistakes(student, message, capsys):
    assert message in _verdict(ch08.check_interpolated_ap, student, capsys)


def test_mask_iou_matches_pycocotools():
    rng = np.random.default_rng(0)
    a = (rng.random((4, 10, 12)) < 0.4).astype(np.uint8)
    b = (rng.random((3, 10, 12)) < 0.4).astype(np.uint8)
    enc = lambda m: mask_utils.encode(np.asfortranarray(m.transpose(1, 2, 0)))  # noqa: E731
    np.testing.assert_allclose(ch08.mask_iou(a, b), mask_utils.iou(enc(a), enc(b), [0, 0, 0]))


def test_interpolated_ap_matches_cocoeval():
    """One image, one category, one IoU threshold: our AP from COCOeval's own matches == its precision."""
    gt_boxes = [[0, 0, 10, 10], [20, 0, 10, 10], [40, 0, 10, 10], [60, 0, 10, 10]]
    dets = [
        ([0, 0, 10, 10], 0.9),
        ([80, 0, 10, 10], 0.8),
        ([20, 1, 10, 10], 0.7),
        ([0, 1, 10, 10], 0.6),
        ([60, 0, 9, 10], 0.5),
    ]
    coco = COCO()
    coco.dataset = {
        "images": [{"id": 1, "width": 100, "height": 20}],
        "categories": [{"id": 1, "name": "x"}],
        "annotations": [
            {"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": 100, "iscrowd": 0}
            for i, b in enumerate(gt_boxes)
        ],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
        res = coco.loadRes([{"image_id": 1, "category_id": 1, "bbox": b, "score": s} for b, s in dets])
        ev = COCOeval(coco, res, "bbox")
        ev.evaluate()
        ev.accumulate()
    want = ev.eval["precision"][0, :, 0, 0, 2].mean()
    ious = np.array(mask_utils.iou([d[0] for d in dets], gt_boxes, [0] * 4))
    tp = ch08.greedy_match(ious, 0.5) >= 0
    tp_sum, fp_sum = np.cumsum(tp), np.cumsum(~tp)
    assert ch08.interpolated_ap(tp_sum / 4, tp_sum / (tp_sum + fp_sum)) == pytest.approx(want, abs=1e-12)


def test_paired_gain_is_the_package_one_and_compare_pairs_by_seed():
    assert ch09.paired_gain is ablation_results.paired_gain  # one implementation: the panel's
    runs = {
        "a": [{"segm": {"AP": x}} for x in (0.31, 0.30, 0.33)],
        "b": [{"segm": {"AP": x}} for x in (0.28, 0.29, 0.27)],
    }
    mean, spread = ch09.paired_gain(runs["a"], runs["b"])
    assert mean == pytest.approx(10 / 3) and spread == pytest.approx(statistics.stdev([3, 1, 6]))
    results = {"seeds": [0, 1, 2], "runs": runs}
    assert ablation_results.compare(results, "a", "b") == pytest.approx((mean, spread, 3))


def test_mask_head_cost_counts_the_layers():
    """Chapter 09's cost of a mask head: the multiply-adds of its layers, by hand, for 28x28 and 56x56."""
    from minimrcnn.presets import shapes_cpu

    m = shapes_cpu().model
    c, d, k = m.fpn_channels, m.mask_head_dim, m.num_classes

    def by_hand(s: int) -> int:  # 14x14 pooled: 4 convs 3x3, a 2x2 deconv, a 1x1 predictor on 2s x 2s
        return s * s * d * 9 * c + 3 * s * s * d * 9 * d + s * s * d * d * 4 + (2 * s) ** 2 * k * d

    macs, seconds = ch09.mask_head_cost(m, rois=2, repeats=1)
    assert macs == by_hand(14) and seconds > 0
    m.mask_resolution = 56
    assert ch09.mask_head_cost(m, rois=2, repeats=1)[0] == by_hand(28) == 4 * by_hand(14)

"""Chapter 08's capstone: COCO box AP by hand. The reference equals pycocotools' COCOeval, and the checker
names the typical mistakes (the contract every checker keeps is in test_chapter_checkers.py)."""

from __future__ import annotations

import numpy as np
import pytest

from minimrcnn.solutions import ch08_capstone as cap


@pytest.mark.parametrize("case", cap._cases(), ids=lambda c: c[0])
def test_reference_is_cocoeval(case):
    _, gt, dt, image_ids, category_ids = case
    want = cap.cocoeval_box_ap(gt, dt, image_ids, category_ids)
    got = cap.coco_box_ap(gt, dt)
    assert got == pytest.approx(want, abs=1e-9)
    assert 0 < got["AP"] < got["AP50"] <= 1  # the cases are neither trivial nor hopeless


def test_reference_is_cocoeval_on_more_scenes():
    rng = np.random.default_rng(1)
    for n in (1, 4, 12):
        gt, dt = cap._scene(rng, n, [2, 5, 7])
        want = cap.cocoeval_box_ap(gt, dt, list(range(1, n + 1)), [2, 5, 7])
        assert cap.coco_box_ap(gt, dt) == pytest.approx(want, abs=1e-9)


def test_box_iou_is_pycocotools():
    import pycocotools.mask as mask_utils

    rng = np.random.default_rng(2)
    a, b = rng.uniform(1, 50, (5, 4)), rng.uniform(1, 50, (3, 4))
    np.testing.assert_allclose(cap.box_iou_xywh(a, b), mask_utils.iou(a, b, [0, 0, 0]), atol=1e-12)


def _percent(gt, dt):
    return {k: 100 * v for k, v in cap.coco_box_ap(gt, dt).items()}


def _ap50_as_ap(gt, dt):
    right = cap.coco_box_ap(gt, dt)
    return {**right, "AP": right["AP50"]}


def _mistake(name):
    return lambda gt, dt: cap._mistaken_ap(gt, dt, name)


@pytest.mark.parametrize(
    ("student", "message"),
    [
        (_percent, "not percent"),
        (_ap50_as_ap, "your AP is AP50"),
        (_mistake("no cap"), "at most 100 detections"),
        (_mistake("agnostic"), "match per category"),
        (_mistake("per image"), "pool each category"),
        (_mistake("empty categories"), "at least one object"),
        (lambda gt, dt: [0.1, 0.2, 0.3], "return a dict"),
        (lambda gt, dt: {"AP": "high", "AP50": 1, "AP75": 1}, "must be numbers"),
    ],
    ids=["percent", "ap50", "no-cap", "agnostic", "per-image", "empty-categories", "list", "string"],
)
def test_checker_names_the_mistake(student, message, capsys):
    assert cap.check_coco_box_ap(student) is False
    out = capsys.readouterr().out
    assert out.startswith("\u2717") and message in out

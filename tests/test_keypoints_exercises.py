"""Chapter 10's checkers name the usual mistakes (the shared contract is in test_chapter_checkers.py)."""

import math

import numpy as np
import pytest

from minimrcnn.solutions import ch10


def _cell_rounded(x, y, v, box, m):
    x1, y1, x2, y2 = box
    col, row = round((x - x1) * m / (x2 - x1)), round((y - y1) * m / (y2 - y1))
    return row * m + col if v > 0 and 0 <= col < m and 0 <= row < m else -1


def _cell_swapped(x, y, v, box, m):
    cell = ch10.keypoint_cell(x, y, v, box, m)
    return cell if cell < 0 else (cell % m) * m + cell // m


def _cell_visible_only(x, y, v, box, m):
    return ch10.keypoint_cell(x, y, v, box, m) if v == 2 else -1


@pytest.mark.parametrize(
    ("student", "message"),
    [(_cell_rounded, "round down"), (_cell_swapped, "swapped"), (_cell_visible_only, "v = 1 is labelled")],
)
def test_keypoint_cell_mistakes(student, message, capsys):
    assert ch10.check_keypoint_cell(student) is False
    assert message in capsys.readouterr().out


def _oks_all_joints(det, gt, area, sigmas):
    d2 = ((det - gt[None, :, :2]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * sigmas) ** 2 / area / 2).mean(axis=1)


def _oks_sigma(det, gt, area, sigmas):
    d2 = ((det - gt[None, :, :2]) ** 2).sum(-1)
    return np.exp(-d2 / sigmas**2 / area / 2)[:, gt[:, 2] > 0].mean(axis=1)


def _oks_sqrt_area(det, gt, area, sigmas):
    d2 = ((det - gt[None, :, :2]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * sigmas) ** 2 / math.sqrt(area) / 2)[:, gt[:, 2] > 0].mean(axis=1)


@pytest.mark.parametrize(
    ("student", "message"),
    [(_oks_all_joints, "labelled joints only"), (_oks_sigma, "2 * sigma"), (_oks_sqrt_area, "area itself")],
)
def test_oks_mistakes(student, message, capsys):
    assert ch10.check_oks(student) is False
    assert message in capsys.readouterr().out


def test_oks_equals_cocoeval():
    from pycocotools.cocoeval import COCOeval

    det, gt, area, sigmas = ch10._oks_cases()[0]
    ev = COCOeval(iouType="keypoints")
    ev.params.kpt_oks_sigmas = sigmas
    ev.params.imgIds, ev.params.catIds = [1], [1]
    ev._gts = {(1, 1): [{"keypoints": gt.reshape(-1).tolist(), "area": area, "bbox": [0, 0, 100, 100]}]}
    ev._dts = {(1, 1): [{"keypoints": np.concatenate([d, np.ones((len(d), 1))], 1).reshape(-1).tolist(),
                         "score": 1.0 - i / 10} for i, d in enumerate(det)]}  # fmt: skip
    ev.params.maxDets = [100]
    np.testing.assert_allclose(ev.computeOks(1, 1)[:, 0], ch10.oks(det, gt, area, sigmas), rtol=1e-12)

"""The live explorers (minimrcnn.explorers): each draw function's numbers against an independent reference
(torchvision's ops, the chapters' from-scratch solutions, COCOeval through the package's evaluator), and
each panel's picture changing when a control moves. No browser: ipywidgets runs without a front end."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
import torchvision
from matplotlib.figure import Figure

from minimrcnn import explorers, ops
from minimrcnn.engine.evaluator import coco_evaluate
from minimrcnn.explorers import anchors, ap, masks, roi
from minimrcnn.explorers.panel import new_figure, png_bytes
from minimrcnn.explorers.scene import feature_map, gt_boxes
from minimrcnn.solutions.ch01 import bin_boundaries, feature_grid_box
from minimrcnn.solutions.ch02 import bin_sample_points


@pytest.fixture
def fig() -> Figure:
    return new_figure(10, 5)


@pytest.mark.parametrize("stride, k", [(16, 7), (8, 4), (4, 14), (32, 2)])
def test_roipool_reading_matches_torchvision_and_the_chapter(fig, stride, k):
    values = roi.START | dict(x1=21.3, y1=37.8, width=58.6, height=44.5, stride=stride, output_size=k)
    r = roi.draw_roipool(fig, **values)
    box = r.box
    fmap = feature_map(roi.IMAGE_INDEX, stride)
    want = torchvision.ops.roi_pool(fmap, torch.tensor([[0.0, *box]], dtype=fmap.dtype), k, 1 / stride)[0]
    torch.testing.assert_close(r.pooled, want, rtol=0, atol=0)
    # the cells each bin reads, against chapter 01's two roundings
    c1, r1, c2, r2 = feature_grid_box(box, 1 / stride)
    assert r.snapped == (c1 * stride, r1 * stride, (c2 + 1) * stride, (r2 + 1) * stride)
    rows, cols = bin_boundaries(r1, r2 - r1 + 1, k), bin_boundaries(c1, c2 - c1 + 1, k)
    h, w = fmap.shape[-2:]
    for i, (y0, y1) in enumerate(rows):
        for j, (x0, x1) in enumerate(cols):
            expected = torch.zeros(h, w, dtype=torch.float64)
            expected[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)] = 1
            torch.testing.assert_close(r.cells[i, j], expected)
    # a box off the grid is read off-centre: the shift the picture reports is RoIPool's, and not zero
    assert r.center_shift.abs().max() > 0.5


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [1, 2, -1])
def test_roialign_reading_matches_torchvision_and_the_chapter(fig, aligned, sampling_ratio):
    stride, k = 8, 5
    values = roi.START | dict(stride=stride, output_size=k, aligned=aligned, sampling_ratio=sampling_ratio)
    r = roi.draw_roialign(fig, **values)
    fmap = feature_map(roi.IMAGE_INDEX, stride)
    rois = torch.tensor([[0.0, *r.box]], dtype=fmap.dtype)
    want = torchvision.ops.roi_align(fmap, rois, k, 1 / stride, sampling_ratio, aligned)[0]
    torch.testing.assert_close(r.aligned, want)
    torch.testing.assert_close(r.pooled, torchvision.ops.roi_pool(fmap, rois, k, 1 / stride)[0])
    # the weights drawn are the op itself: weights x map gives the output, and each bin's weights sum to 1
    torch.testing.assert_close(torch.einsum("ijhw,chw->cij", r.weights, fmap[0]), r.aligned)
    torch.testing.assert_close(r.weights.sum((-2, -1)), torch.ones(k, k, dtype=torch.float64))
    # the sample points drawn, against chapter 02's from-scratch bin_sample_points (feature cells -> pixels)
    px, py = r.samples
    gh, gw = r.grid
    for i, j in [(0, 0), (2, 3), (k - 1, k - 1)]:
        ys, xs = bin_sample_points(r.box, k, (i, j), 1 / stride, sampling_ratio, aligned)
        assert (len(ys), len(xs)) == (gh, gw)
        got_x = px[i * gh : (i + 1) * gh, j * gw : (j + 1) * gw]
        got_y = py[i * gh : (i + 1) * gh, j * gw : (j + 1) * gw]
        np.testing.assert_allclose(got_x[0].numpy(), (np.array(xs) + 0.5) * stride, atol=1e-9)
        np.testing.assert_allclose(got_y[:, 0].numpy(), (np.array(ys) + 0.5) * stride, atol=1e-9)
    # aligned=False reads every bin half a cell down and to the right of its centre; aligned=True does not
    shift = r.center_shift.reshape(2, -1).mean(1)
    torch.testing.assert_close(shift, torch.full((2,), 0.0 if aligned else stride / 2, dtype=torch.float64))


@pytest.mark.parametrize("smallest, ratios, fg, bg", [(16, "1:2, 1:1, 2:1", 0.7, 0.3), (8, "1", 0.5, 0.4)])
def test_anchor_labels_are_the_matchers_and_nms_is_torchvisions(fig, smallest, ratios, fg, bg):
    r = anchors.draw_anchors(fig, smallest=smallest, ratios=ratios, fg_iou=fg, bg_iou=bg, nms_iou=0.5)
    gt = gt_boxes(anchors.IMAGE_INDEX)[0]
    a = len(anchors.RATIOS[ratios])
    assert len(r.anchors) == a * sum((128 // s) ** 2 for s in anchors.STRIDES)
    matches = ops.Matcher(fg, bg, allow_low_quality_matches=True)(ops.box_iou(gt, r.anchors))
    assert r.count(1) == int((matches >= 0).sum()) > 0
    assert r.count(0) == int((matches == ops.BACKGROUND).sum())
    assert r.count(-1) == int((matches == ops.IGNORE).sum())
    assert r.count(1) >= len(gt)  # every object keeps at least its best anchor
    torch.testing.assert_close(r.kept, torchvision.ops.nms(r.proposals, r.scores, 0.5))
    assert 0 < len(r.kept) < len(r.proposals)
    looser = anchors.draw_anchors(fig, smallest=smallest, ratios=ratios, fg_iou=fg, bg_iou=bg, nms_iou=0.9)
    assert len(looser.kept) > len(r.kept)


def test_mask_iou_is_the_pasted_masks_and_finer_masks_fit_better(fig):
    ious = {}
    for m in masks.RESOLUTIONS:
        r = masks.draw_masks(fig, resolution=m, threshold=0.5, aligned=False, object_index=2)
        gt = gt_boxes(masks.IMAGE_INDEX, masks.IMAGE_SIZE)[2][2].numpy().astype(bool)
        binary = r.pasted.numpy() >= 0.5
        assert r.target.shape == (m, m)
        assert r.pasted.shape == gt.shape
        assert r.iou == pytest.approx((binary & gt).sum() / (binary | gt).sum())
        ious[m] = r.iou
    assert ious[14] < ious[28] < ious[56]  # a 102-px triangle: a 14 x 14 mask loses its corners
    low = masks.draw_masks(fig, resolution=28, threshold=0.1, aligned=False, object_index=2)
    assert low.binary.sum() > r.binary.sum()  # a lower threshold keeps more pixels


@pytest.mark.parametrize("iou, metric", [(0.5, "AP50"), (0.75, "AP75")])
def test_ap_is_cocoevals(fig, iou, metric):
    r = ap.draw_ap(fig, iou_threshold=iou, score_threshold=0.0)
    want = coco_evaluate(ap.ground_truth(), [dict(d) for d in ap.detections()], ("bbox",))["bbox"][metric]
    assert r.ap == pytest.approx(want, abs=1e-12)
    objects = sum(not a["iscrowd"] for a in ap.ground_truth().dataset["annotations"])
    assert r.tp + r.missed == objects  # one detection per matched object
    assert r.tp + r.fp <= r.num_detections == len(ap.detections())


def test_score_threshold_drops_detections_and_recall(fig):
    everything = ap.draw_ap(fig, iou_threshold=0.5, score_threshold=0.0)
    confident = ap.draw_ap(fig, iou_threshold=0.5, score_threshold=0.6)
    assert confident.num_detections < everything.num_detections
    assert confident.fp < everything.fp and confident.missed > everything.missed
    nothing = ap.draw_ap(fig, iou_threshold=0.5, score_threshold=1.0)
    assert (nothing.ap, nothing.num_detections, nothing.tp) == (0.0, 0, 0)


@pytest.mark.parametrize(
    "make, control, value",
    [
        (explorers.roipool_explorer, "x1", 30.2),
        (explorers.roipool_explorer, "stride", 8),
        (explorers.roialign_explorer, "aligned", False),
        (explorers.roialign_explorer, "sampling_ratio", -1),
        (explorers.anchors_explorer, "fg_iou", 0.5),
        (explorers.anchors_explorer, "nms_iou", 0.3),
        (explorers.masks_explorer, "resolution", 14),
        (explorers.masks_explorer, "threshold", 0.2),
        (explorers.ap_explorer, "iou_threshold", 0.8),
        (explorers.ap_explorer, "score_threshold", 0.5),
    ],
)
def test_moving_a_control_redraws_the_picture(make, control, value):
    panel = make()
    before, reading = bytes(panel.image.value), panel.reading
    assert before.startswith(b"\x89PNG") and before == panel.png
    panel.set(**{control: value})
    assert bytes(panel.image.value) != before
    assert panel.reading is not reading and panel.error.value == ""


@pytest.mark.parametrize(
    "figure, make",
    [
        (explorers.roipool_figure, explorers.roipool_explorer),
        (explorers.roialign_figure, explorers.roialign_explorer),
        (explorers.anchors_figure, explorers.anchors_explorer),
        (explorers.masks_figure, explorers.masks_explorer),
        (explorers.ap_figure, explorers.ap_explorer),
    ],
)
def test_starting_figure_is_the_panels_first_picture(figure, make):
    """What a reader without a kernel sees in the committed notebook is what the live panel opens with."""
    assert png_bytes(figure()) == make().png

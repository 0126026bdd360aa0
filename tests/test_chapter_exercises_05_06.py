"""Chapters 05-06 exercises: the checkers accept the solutions, name typical mistakes, never raise.

The solutions themselves are checked against the package: ``predicted_mask_probs`` against
``mask_probabilities``, ``expand_box`` against the integer boxes that ``paste_masks_in_image`` writes
into, ``box_regression_loss`` against ``box_losses`` and ``sigmoid_mask_loss`` against
``mask_loss(kind="sigmoid")``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from minimrcnn.model.box_head import box_losses
from minimrcnn.model.mask_head import mask_loss, mask_probabilities
from minimrcnn.model.paste import paste_masks_in_image
from minimrcnn.solutions import ch05, ch06


def _verdict(check, student, capsys) -> str:
    assert check(student) is False
    out = capsys.readouterr().out
    assert out.startswith("\u2717")
    return out


# ---------------------------------------------------------------------------------------------- ch05


def _arange(logits):
    return torch.arange(logits.shape[0])


@pytest.mark.parametrize(
    ("student", "message"),
    [
        (lambda lg, lab: torch.sigmoid(lg[_arange(lg), lab]), "keep a channel dimension"),
        (lambda lg, lab: torch.sigmoid(lg[:, lab]), "Pair RoI i"),
        (lambda lg, lab: torch.sigmoid(lg), "expected"),
        (lambda lg, lab: lg[_arange(lg), lab][:, None], "missing sigmoid"),
        (lambda lg, lab: torch.softmax(lg, 1)[_arange(lg), lab][:, None], "softmax"),
        (lambda lg, lab: torch.sigmoid(lg[_arange(lg), lab - 1])[:, None], "off by one"),
        (lambda lg, lab: torch.sigmoid(lg[:, :1]), "channel 0"),
        (lambda lg, lab: torch.sigmoid(lg.max(1, keepdim=True).values), "highest-scoring"),
        (lambda lg, lab: torch.sigmoid(torch.sigmoid(lg[_arange(lg), lab]))[:, None], "twice"),
        (lambda lg, lab: (lg[_arange(lg), lab] >= 0)[:, None], "thresholded"),
        (lambda lg, lab: (lg[_arange(lg), lab] >= 0).float()[:, None], "thresholded"),
    ],
    ids=[
        "no-channel-dim",
        "logits[:, labels]",
        "all-channels",
        "no-sigmoid",
        "softmax",
        "off-by-one",
        "channel-0",
        "max-channel",
        "sigmoid-twice",
        "bool-mask",
        "float-mask",
    ],
)
def test_predicted_mask_probs_mistakes(student, message, capsys):
    assert message in _verdict(ch05.check_predicted_mask_probs, student, capsys)


def _grow(boxes, m, p):
    s = (m + 2 * p) / m
    c, half = (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2:] - boxes[:, :2]) / 2 * s
    return torch.cat([c - half, c + half], dim=1)


@pytest.mark.parametrize(
    ("student", "message"),
    [
        (lambda b, m, p: _grow(b, m, p), "whole pixels"),
        (lambda b, m, p: _grow(b, m, p).trunc(), "integers"),
        (lambda b, m, p: _grow(b, m, p).floor().long(), "floor"),
        (lambda b, m, p: _grow(b, m, p).round().long(), "rounded"),
        (lambda b, m, p: b.long(), "not enlarged"),
        (lambda b, m, p: torch.cat([b[:, :2] - p, b[:, 2:] + p], 1).long(), "image pixels"),
        (
            lambda b, m, p: torch.cat(
                [b[:, :2], b[:, :2] + (b[:, 2:] - b[:, :2]) * (m + 2 * p) / m], 1
            ).long(),
            "centre",
        ),
        (lambda b, m, p: _grow(b, m + 4 * p, -p).long(), "inverse"),
        (lambda b, m, p: _grow(b, m, p).long()[:, :2], "shape"),
        (lambda b, m, p: _grow(b, m, p).long() + 1, "expected"),
    ],
    ids=[
        "float",
        "float-trunc",
        "floor",
        "round",
        "not-enlarged",
        "pixels",
        "corner",
        "shrunk",
        "shape",
        "other",
    ],
)
def test_expand_box_mistakes(student, message, capsys):
    assert message in _verdict(ch05.check_expand_box, student, capsys)


def test_predicted_mask_probs_is_mask_probabilities():
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(6, 5, 7, 7, generator=g), torch.tensor([1, 4, 2, 2, 3, 1])
    torch.testing.assert_close(
        ch05.predicted_mask_probs(logits, labels), mask_probabilities(logits, labels, "sigmoid")
    )


def test_expand_box_is_where_paste_writes():
    """A mask of ones pasted with padding 0 fills exactly the pixels of expand_box(box, M, 0)."""
    boxes = torch.tensor([[3.3, 7.9, 20.2, 30.4], [-5.6, -2.2, 9.5, 6.1], [30.5, 1.0, 39.9, 12.7]])
    pasted = paste_masks_in_image(torch.ones(3, 1, 8, 8), boxes, (40, 40), padding=0)[:, 0]
    for mask, (x0, y0, x1, y1) in zip(pasted, ch05.expand_box(boxes, 8, 0).tolist()):
        want = torch.zeros(40, 40)
        want[max(y0, 0) : y1 + 1, max(x0, 0) : x1 + 1] = 1
        torch.testing.assert_close(mask, want)


# ---------------------------------------------------------------------------------------------- ch06


def _pos(labels):
    return torch.where(labels > 0)[0]


def _gt_deltas(d, labels):
    p = _pos(labels)
    return d.reshape(d.shape[0], -1, 4)[p, labels[p]]


@pytest.mark.parametrize(
    ("student", "message"),
    [
        (
            lambda d, lab, t, beta=1 / 9: (
                F.smooth_l1_loss(_gt_deltas(d, lab), t[_pos(lab)], beta=beta, reduction="sum")
                / len(_pos(lab))
            ),
            "positive RoIs",
        ),
        (
            lambda d, lab, t, beta=1 / 9: F.smooth_l1_loss(_gt_deltas(d, lab), t[_pos(lab)], beta=beta),
            "reduction='mean'",
        ),
        (
            lambda d, lab, t, beta=1 / 9: (
                F.smooth_l1_loss(_gt_deltas(d, lab), t[_pos(lab)], reduction="sum") / lab.numel()
            ),
            "pass the `beta` argument",
        ),
        (
            lambda d, lab, t, beta=1 / 9: ch06.box_regression_loss(d, lab, t, 1 / 9),
            "pass the `beta` argument",
        ),
        (lambda d, lab, t: ch06.box_regression_loss(d, lab, t), "give your function a `beta` argument"),
        (
            lambda d, lab, t, beta=1 / 9: (
                F.l1_loss(_gt_deltas(d, lab), t[_pos(lab)], reduction="sum") / lab.numel()
            ),
            "plain L1",
        ),
        (
            lambda d, lab, t, beta=1 / 9: (
                F.smooth_l1_loss(d[_pos(lab), :4], t[_pos(lab)], beta=beta, reduction="sum") / lab.numel()
            ),
            "background's deltas",
        ),
        (
            lambda d, lab, t, beta=1 / 9: (
                F.smooth_l1_loss(
                    d.reshape(len(lab), -1, 4)[_pos(lab), lab[_pos(lab)] - 1],
                    t[_pos(lab)],
                    beta=beta,
                    reduction="sum",
                )
                / lab.numel()
            ),
            "off by one",
        ),
        (
            lambda d, lab, t, beta=1 / 9: (
                F.smooth_l1_loss(
                    d.reshape(len(lab), 4, -1)[_pos(lab), :, lab[_pos(lab)]],
                    t[_pos(lab)],
                    beta=beta,
                    reduction="sum",
                )
                / lab.numel()
            ),
            "layout",
        ),
        (
            lambda d, lab, t, beta=1 / 9: (
                F.smooth_l1_loss(
                    d.reshape(len(lab), -1, 4)[torch.arange(len(lab)), lab], t, beta=beta, reduction="sum"
                )
                / lab.numel()
            ),
            "positive RoIs",
        ),
        (
            lambda d, lab, t, beta=1 / 9: (
                F.smooth_l1_loss(_gt_deltas(d, lab), t[_pos(lab)], beta=beta, reduction="none") / lab.numel()
            ),
            "single number",
        ),
        (lambda d, lab, t, beta=1 / 9: 2 * ch06.box_regression_loss(d, lab, t, beta), "expected"),
    ],
    ids=[
        "per-positive",
        "mean",
        "beta-1-always",
        "beta-1/9-always",
        "no-beta-argument",
        "l1",
        "class-0",
        "off-by-one",
        "layout",
        "negatives",
        "no-reduce",
        "other",
    ],
)
def test_box_regression_loss_mistakes(student, message, capsys):
    assert message in _verdict(ch06.check_box_regression_loss, student, capsys)


def _chosen(lg, lab):
    return lg[torch.arange(lg.shape[0]), lab]


BCE = F.binary_cross_entropy_with_logits


@pytest.mark.parametrize(
    ("student", "message"),
    [
        (lambda lg, lab, t: BCE(lg, t[:, None].expand_as(lg)), "all K channels"),
        (lambda lg, lab, t: BCE(_chosen(lg, lab - 1), t), "off by one"),
        (lambda lg, lab, t: BCE(lg[:, 0], t), "channel 0"),
        (lambda lg, lab, t: mask_loss(lg, lab, t, "softmax"), "softmax"),
        (lambda lg, lab, t: BCE(_chosen(lg, lab), t, reduction="sum"), "do not sum"),
        (lambda lg, lab, t: BCE(_chosen(lg, lab), t, reduction="sum") / lg.shape[0], "summed over pixels"),
        (lambda lg, lab, t: BCE(torch.sigmoid(_chosen(lg, lab)), t), "twice"),
        (lambda lg, lab, t: BCE(_chosen(lg, lab), (t >= 0.5).float()), "soft"),
        (lambda lg, lab, t: BCE(_chosen(lg, lab), 1 - t), "flipped"),
        (lambda lg, lab, t: F.binary_cross_entropy(_chosen(lg, lab), t), "binary_cross_entropy_with_logits"),
        (lambda lg, lab, t: BCE(_chosen(lg, lab), t, reduction="none"), "single number"),
        (lambda lg, lab, t: BCE(_chosen(lg, lab), t).long(), "dtype"),
    ],
    ids=[
        "all-channels",
        "off-by-one",
        "channel-0",
        "softmax",
        "sum",
        "per-roi-sum",
        "sigmoid-twice",
        "hard-targets",
        "flipped",
        "bce-on-logits",
        "no-reduce",
        "int",
    ],
)
def test_sigmoid_mask_loss_mistakes(student, message, capsys):
    assert message in _verdict(ch06.check_sigmoid_mask_loss, student, capsys)


def test_box_regression_loss_is_box_losses():
    g = torch.Generator().manual_seed(1)
    labels = torch.tensor([0, 2, 0, 1, 3, 0, 0, 1])
    deltas, targets = torch.randn(8, 16, generator=g), torch.randn(8, 4, generator=g)
    want = box_losses(torch.zeros(8, 4), deltas, labels, targets)["loss_box_reg"]
    torch.testing.assert_close(ch06.box_regression_loss(deltas, labels, targets), want)


def test_box_regression_loss_accepts_any_beta(capsys):
    """beta = 1 (Fast R-CNN's) is not wrong: a function that honours its `beta` argument passes, whatever
    its default; at beta = 1/9 it must equal the package's box_losses."""

    def student(d, lab, t, beta=1.0):
        return F.smooth_l1_loss(_gt_deltas(d, lab), t[_pos(lab)], beta=beta, reduction="sum") / lab.numel()

    assert ch06.check_box_regression_loss(student) is True
    assert "any beta" in capsys.readouterr().out
    g = torch.Generator().manual_seed(3)
    labels = torch.tensor([0, 2, 1, 0])
    deltas, targets = torch.randn(4, 12, generator=g), torch.randn(4, 4, generator=g)
    want = F.smooth_l1_loss(_gt_deltas(deltas, labels), targets[_pos(labels)], beta=1.0, reduction="sum") / 4
    torch.testing.assert_close(ch06.box_regression_loss(deltas, labels, targets, beta=1.0), want)


def test_sigmoid_mask_loss_is_mask_loss():
    g = torch.Generator().manual_seed(2)
    logits, labels, targets = (
        torch.randn(4, 5, 9, 9, generator=g),
        torch.tensor([1, 4, 4, 2]),
        torch.rand(4, 9, 9),
    )
    torch.testing.assert_close(
        ch06.sigmoid_mask_loss(logits, labels, targets), mask_loss(logits, labels, targets, "sigmoid")
    )

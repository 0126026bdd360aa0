"""Chapters 03-04 exercises: the checkers accept the solutions, reject typical mistakes, never raise.

The solutions themselves are checked against the package: the top-down merge rebuilds `FPN`, the level
rule is `RoILevelMapper`, `iou` is `box_iou` and `encode` is the RPN's `BoxCoder`.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from minimrcnn.model.fpn import FPN
from minimrcnn.model.poolers import RoILevelMapper
from minimrcnn.ops import BoxCoder, box_iou
from minimrcnn.solutions import ch03, ch04


def _verdict(check, student, capsys) -> str:
    assert check(student) is False
    out = capsys.readouterr().out
    assert out.startswith("\u2717")
    return out


# ---------------------------------------------------------------------------------------------- chapter 03
def test_solutions_rebuild_the_package_fpn():
    torch.manual_seed(0)
    fpn = FPN([8, 16, 32, 64], 6).eval()
    feats = [torch.randn(2, c, s, s + 3) for c, s in zip([8, 16, 32, 64], [40, 20, 10, 5])]
    with torch.no_grad():
        laterals = [F.conv2d(f, m.weight, m.bias) for f, m in zip(feats, fpn.lateral)]
        outs = [F.conv2d(t, m.weight, m.bias, padding=1) for t, m in zip(ch03.top_down(laterals), fpn.output)]
        outs.append(F.max_pool2d(outs[-1], 1, 2))
        for ours, theirs in zip(outs, fpn(feats)):
            torch.testing.assert_close(ours, theirs)


def test_fpn_level_is_the_package_mapper():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(500, 2, generator=g) * 300
    wh = torch.exp(torch.rand(500, 2, generator=g) * 7)
    boxes = torch.cat([xy, xy + wh], dim=1)
    assert torch.equal(ch03.fpn_level(boxes), RoILevelMapper()(boxes) + 2)


def _merge(laterals, combine):
    out = [laterals[-1]]
    for lat in reversed(laterals[:-1]):
        out.insert(0, combine(lat, out[0]))
    return out


@pytest.mark.parametrize(
    ("student", "expected"),
    [
        (
            lambda ls: (
                [ls[i] + F.interpolate(ls[i + 1], size=ls[i].shape[-2:]) for i in range(len(ls) - 1)]
                + [ls[-1]]
            ),
            "coarser *merged* map",
        ),
        (
            lambda ls: _merge(
                ls, lambda lat, m: lat + F.interpolate(m, size=lat.shape[-2:], mode="bilinear")
            ),
            "bilinear",
        ),
        (lambda ls: _merge(ls, lambda lat, m: lat + F.interpolate(m, scale_factor=2)), "factor of 2"),
        (lambda ls: ch03.top_down(ls)[::-1], "finest first"),
        (lambda ls: ch03.top_down(ls)[:3], "one merged map per input level"),
        (lambda ls: ch03.top_down(ls)[0], "single tensor"),
        (lambda ls: list(ls), "returned the laterals unchanged"),
    ],
    ids=["no-accumulation", "bilinear", "scale-factor-2", "reversed", "missing-M5", "tensor", "identity"],
)
def test_top_down_names_the_mistake(student, expected, capsys):
    assert expected in _verdict(ch03.check_top_down, student, capsys)


def _side(b):
    return torch.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))


@pytest.mark.parametrize(
    ("student", "expected"),
    [
        (lambda b: ch03.fpn_level(b) - 2, "off by two"),
        (lambda b: ch03.fpn_level(b).float(), "dtype"),
        (lambda b: torch.floor(4 + torch.log2(_side(b) / 224)).long(), "missing clamp"),
        (lambda b: torch.round(4 + torch.log2(_side(b) / 224)).clamp(2, 5).long(), "floors"),
        (lambda b: torch.ceil(4 + torch.log2(_side(b) / 224)).clamp(2, 5).long(), "that is ceil"),
        (lambda b: torch.floor(4 + torch.log(_side(b) / 224)).clamp(2, 5).long(), "natural log"),
        (lambda b: torch.floor(4 + torch.log2(_side(b) ** 2 / 224**2)).clamp(2, 5).long(), "not the area"),
        (
            lambda b: torch.floor(4 + torch.log2((b[:, 2] - b[:, 0]) / 224)).clamp(2, 5).long(),
            "geometric mean",
        ),
        (lambda b: torch.floor(4 - torch.log2(_side(b) / 224)).clamp(2, 5).long(), "sign"),
        (lambda b: ch03.fpn_level(b)[:, None], "shape"),
        (lambda b: ch03.fpn_level(b).tolist(), "return a tensor"),
    ],
    ids=["index", "float", "no-clamp", "round", "ceil", "ln", "area", "width", "sign", "2d", "list"],
)
def test_fpn_level_names_the_mistake(student, expected, capsys):
    assert expected in _verdict(ch03.check_fpn_level, student, capsys)


# ---------------------------------------------------------------------------------------------- chapter 04
def test_iou_and_encode_are_the_package_ops():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(60, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + 1 + torch.rand(60, 2, generator=g) * 80], dim=1)
    torch.testing.assert_close(ch04.iou(boxes[:25], boxes[25:]), box_iou(boxes[:25], boxes[25:]))
    torch.testing.assert_close(
        ch04.encode(boxes[:30], boxes[30:]), BoxCoder((1, 1, 1, 1)).encode(boxes[:30], boxes[30:])
    )


def _iou_with(inter_fn, union_fn):
    def student(b1, b2):
        a1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
        a2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
        inter = inter_fn(b1, b2)
        return inter / union_fn(a1[:, None], a2[None, :], inter)

    return student


def _raw_overlap(b1, b2):
    tl = torch.max(b1[:, None, :2], b2[None, :, :2])
    br = torch.min(b1[:, None, 2:], b2[None, :, 2:])
    return br - tl


def _iou_plus_one(b1, b2):
    a1 = (b1[:, 2] - b1[:, 0] + 1) * (b1[:, 3] - b1[:, 1] + 1)
    a2 = (b2[:, 2] - b2[:, 0] + 1) * (b2[:, 3] - b2[:, 1] + 1)
    wh = (_raw_overlap(b1, b2) + 1).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (a1[:, None] + a2[None, :] - inter)


@pytest.mark.parametrize(
    ("student", "expected"),
    [
        (lambda b1, b2: ch04.iou(b2, b1), "transposed"),
        (lambda b1, b2: ch04.iou(b1, b2).diagonal(), "Broadcast"),
        (
            _iou_with(lambda b1, b2: _raw_overlap(b1, b2).prod(-1), lambda a1, a2, i: a1 + a2 - i),
            "clamp the overlap's width and height",
        ),
        (
            _iou_with(
                lambda b1, b2: _raw_overlap(b1, b2).prod(-1).clamp(min=0), lambda a1, a2, i: a1 + a2 - i
            ),
            "separately",
        ),
        (_iou_plus_one, "off by one"),
        (
            _iou_with(lambda b1, b2: _raw_overlap(b1, b2).clamp(min=0).prod(-1), lambda a1, a2, i: a1 + a2),
            "counts the intersection twice",
        ),
        (
            _iou_with(
                lambda b1, b2: _raw_overlap(b1, b2).clamp(min=0).prod(-1), lambda a1, a2, i: torch.min(a1, a2)
            ),
            "smaller of the two areas",
        ),
        (lambda b1, b2: (ch04.iou(b1, b2) > 0.5).long(), "dtype"),
    ],
    ids=[
        "transposed",
        "pairwise",
        "no-clamp",
        "clamp-product",
        "plus-one",
        "union-no-minus",
        "over-min",
        "int",
    ],
)
def test_iou_names_the_mistake(student, expected, capsys):
    assert expected in _verdict(ch04.check_iou, student, capsys)


def _centres(b):
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return b[:, 0] + w / 2, b[:, 1] + h / 2, w, h


def _encode_no_log(gt, anc):
    gx, gy, gw, gh = _centres(gt)
    ax, ay, aw, ah = _centres(anc)
    return torch.stack([(gx - ax) / aw, (gy - ay) / ah, gw / aw, gh / ah], dim=1)


def _encode_unnormalized(gt, anc):
    gx, gy, gw, gh = _centres(gt)
    ax, ay, aw, ah = _centres(anc)
    return torch.stack([gx - ax, gy - ay, torch.log(gw / aw), torch.log(gh / ah)], dim=1)


@pytest.mark.parametrize(
    ("student", "expected"),
    [
        (lambda gt, a: ch04.encode(a, gt), "arguments swapped"),
        (lambda gt, a: ch04.encode(gt, a)[:, [1, 0, 3, 2]], "x and y are swapped"),
        (lambda gt, a: ch04.encode(gt, a) * torch.tensor([10.0, 10.0, 5.0, 5.0]), "box head's weights"),
        (_encode_no_log, "take the log"),
        (_encode_unnormalized, "divide the centre offsets"),
        (lambda gt, a: ch04.encode(gt, a).T, "transposed"),
        (lambda gt, a: ch04.encode(gt, a)[:, :2], "shape"),
        (lambda gt, a: ch04.encode(gt, a) + torch.tensor([0.0, 0.0, 0.0, 0.1]), "dh"),
    ],
    ids=["swapped-args", "xy", "weights", "no-log", "no-normalization", "transposed", "2-cols", "dh-only"],
)
def test_encode_names_the_mistake(student, expected, capsys):
    assert expected in _verdict(ch04.check_encode, student, capsys)


def test_encode_round_trip_through_the_package_decoder():
    gt, anchors = ch04._encode_cases()
    decoded = BoxCoder((1, 1, 1, 1)).decode(ch04.encode(gt, anchors), anchors)[:, 0]
    torch.testing.assert_close(decoded, gt, atol=1e-4, rtol=1e-5)
    assert math.isclose(float(ch04.encode(gt[:1], gt[:1]).abs().sum()), 0.0)

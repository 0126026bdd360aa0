"""Capstones of chapters 04 and 06: the reference solutions equal the package, the checkers name typical
mistakes, and the chapters show the solutions' current source in their folded answers.

- ``rpn_proposals`` (after chapter 04) against ``RPN.select_proposals`` on a real RPN's outputs;
- ``roi_heads_losses`` (after chapter 06) against ``RoIHeads`` in training mode inside a real ``MaskRCNN``.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import torch

from minimrcnn.model.mask_rcnn import MaskRCNN
from minimrcnn.model.rpn import flatten_levels
from minimrcnn.presets import shapes_cpu
from minimrcnn.solutions import ch04, ch04_capstone, ch05, ch06, ch06_capstone

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"


def _verdict(check, student, capsys) -> str:
    assert check(student) is False
    out = capsys.readouterr().out
    assert out.startswith("\u2717")
    return out


# ---------------------------------------------------------------------------------------------- ch04


@pytest.mark.parametrize("training", [False, True], ids=["test-time", "training"])
def test_rpn_proposals_is_the_rpn(training):
    """On a real (seeded, untrained) RPN: the reference gives RPN.forward's proposals, box for box."""
    torch.manual_seed(0)
    model = MaskRCNN(shapes_cpu().model).train(training)
    g = torch.Generator().manual_seed(1)
    images = [torch.rand(3, 128, 128, generator=g), torch.rand(3, 96, 128, generator=g)]
    with torch.no_grad():
        batch, _ = model.transform(images)
        feats = model.backbone(batch.tensors)
        for layer in (model.rpn.head.cls_logits, model.rpn.head.bbox_pred):  # spread-out scores and boxes
            layer.weight.normal_(0, 0.5, generator=g)
        targets = [{"boxes": torch.tensor([[10.0, 20.0, 60.0, 50.0]])}] * len(images)  # for training mode
        proposals, _ = model.rpn(batch, feats, targets)
        logits, deltas = model.rpn.head(feats)
        per_level = [lg[0].numel() for lg in logits]
        flat_logits, flat_deltas = flatten_levels(logits, deltas)
        anchors = model.rpn.anchor_generator(feats, tuple(batch.tensors.shape[-2:]), len(images))
    rpn = model.rpn
    for i, size in enumerate(batch.image_sizes):
        boxes, scores = ch04_capstone.rpn_proposals(
            anchors[i], flat_logits[i], flat_deltas[i], per_level, size, rpn.pre_nms_top_n,
            rpn.post_nms_top_n, rpn.nms_thresh, rpn.min_size,
        )  # fmt: skip
        assert len(boxes) > 10
        torch.testing.assert_close(boxes, proposals[i])
        assert bool((scores[:-1] >= scores[1:]).all())


MISTAKES = ch04_capstone._MISTAKES


@pytest.mark.parametrize(("mistake", "message"), MISTAKES, ids=[m for m, _ in MISTAKES])
def test_rpn_proposals_checker_names_mistakes(mistake, message, capsys):
    def student(**case):
        return ch04_capstone._variant(case, mistake)

    assert message in _verdict(ch04_capstone.check_rpn_proposals, student, capsys)


def test_rpn_proposals_checker_names_logits_and_order(capsys):
    def logits(**case):
        boxes, scores = ch04_capstone.rpn_proposals(**case)
        return boxes, torch.logit(scores)

    def unsorted(**case):
        boxes, scores = ch04_capstone.rpn_proposals(**case)
        order = torch.arange(len(boxes)).flip(0)
        return boxes[order], scores[order]

    def one_tensor(**case):
        return ch04_capstone.rpn_proposals(**case)[0]

    assert "not logits" in _verdict(ch04_capstone.check_rpn_proposals, logits, capsys)
    assert "best first" in _verdict(ch04_capstone.check_rpn_proposals, unsorted, capsys)
    assert "two tensors" in _verdict(ch04_capstone.check_rpn_proposals, one_tensor, capsys)


def test_rpn_proposals_cases_exercise_every_step():
    """Each mistake changes the result of at least one case (otherwise the checker could not see it)."""
    for mistake, _ in ch04_capstone._MISTAKES:
        assert any(
            not ch04_capstone._same(ch04_capstone._package(c), ch04_capstone._variant(c, mistake))
            for c in ch04_capstone._cases()
        ), mistake


# ---------------------------------------------------------------------------------------------- ch06


def _batch():
    """A real MaskRCNN (shapes_cpu, seeded) in training mode: its features and RPN proposals for 2 images."""
    torch.manual_seed(0)
    model = MaskRCNN(shapes_cpu().model).train()
    g = torch.Generator().manual_seed(2)
    sizes = [(128, 128), (128, 128)]
    targets = [ch06_capstone._targets(g, s, n) for s, n in zip(sizes, (4, 2))]
    images = [torch.rand(3, *s, generator=g) for s in sizes]
    with torch.no_grad():
        batch, tgts = model.transform(images, targets)
        feats = model.backbone(batch.tensors)
        model.rpn.eval()  # the test-time top-n: fewer proposals, a faster test
        proposals, _ = model.rpn(batch, feats)
    return model.roi_heads, feats, batch.image_sizes, proposals, tgts


@pytest.mark.parametrize("seed", [0, 1])
def test_roi_heads_losses_is_roi_heads(seed):
    heads, feats, sizes, proposals, targets = _batch()
    torch.manual_seed(seed)
    with torch.no_grad():
        _, want = heads(feats, [p.clone() for p in proposals], sizes, targets)
        torch.manual_seed(seed)
        got = ch06_capstone.roi_heads_losses(
            proposals, targets,
            lambda b: heads.box_predictor(heads.box_features(feats, b, sizes)),
            lambda b: heads.mask_logits(feats, b, sizes),
            batch_size_per_image=heads.sampler.batch_size, positive_fraction=heads.sampler.positive_fraction,
            reg_weights=heads.box_coder.weights, aligned=heads.aligned,
        )  # fmt: skip
    assert set(got) == set(want)
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-6)


def _changed(**change):
    def student(proposals, targets, box_branch, mask_branch, **kw):
        return ch06_capstone.roi_heads_losses(proposals, targets, box_branch, mask_branch, **(kw | change))

    return student


def _extra_draw(proposals, targets, box_branch, mask_branch, **kw):
    torch.rand(1)  # one random number too many: the sample is no longer the package's
    return ch06_capstone.roi_heads_losses(proposals, targets, box_branch, mask_branch, **kw)


def _no_mask(*args, **kw):
    losses = ch06_capstone.roi_heads_losses(*args, **kw)
    del losses["loss_mask"]
    return losses


@pytest.mark.parametrize(
    ("student", "message"),
    [
        (_changed(reg_weights=(1.0, 1.0, 1.0, 1.0)), "(10, 10, 5, 5)"),
        (_changed(aligned=False), "Pass `aligned`"),
        (_changed(iou_thresh=0.7), "Check the matching"),
        (_extra_draw, "Draw it as BalancedSampler does"),
        (_no_mask, "return a dict"),
    ],
    ids=["unweighted-targets", "not-aligned", "threshold", "other-draws", "missing-key"],
)
def test_roi_heads_losses_checker_names_mistakes(student, message, capsys):
    assert message in _verdict(ch06_capstone.check_roi_heads_losses, student, capsys)


# ---------------------------------------------------------------------------------------------- chapters


def _markdown(name: str) -> str:
    nb = json.loads((CHAPTERS / name).read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


@pytest.mark.parametrize(
    ("chapter", "functions"),
    [
        ("04_anchors_rpn.ipynb", [ch04.iou, ch04.encode, ch04_capstone.rpn_proposals]),
        ("05_mask_head.ipynb", [ch05.predicted_mask_probs, ch05.expand_box]),
        ("06_losses.ipynb", [ch06.box_regression_loss, ch06.sigmoid_mask_loss,
                             ch06_capstone.roi_heads_losses]),  # fmt: skip
    ],
)
def test_chapters_fold_the_current_solutions(chapter, functions):
    """The folded solutions in a chapter are the package's reference solutions as they are now."""
    text = _markdown(chapter)
    for fn in functions:
        source = inspect.getsource(fn).rstrip()
        assert f"```python\n{source}\n```" in text, f"{chapter}: {fn.__name__}'s folded solution is stale"


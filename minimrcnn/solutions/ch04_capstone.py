"""Chapter 04 capstone: the RPN's proposals of one image, from its raw head outputs.

``rpn_proposals`` assembles the chapter end to end: decode every anchor's deltas into a box, keep the
best ``pre_nms_top_n`` anchors of each pyramid level, clip to the image, drop empty boxes, run NMS within
each level, keep the best ``post_nms_top_n`` of the image. ``check_rpn_proposals`` compares a student's
version with the package's ``RPN.select_proposals`` on the same anchors, logits and deltas.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from minimrcnn.model.anchors import AnchorGenerator
from minimrcnn.model.rpn import RPN, RPNHead
from minimrcnn.ops.boxes import BoxCoder, nms
from minimrcnn.solutions.checking import StudentError, call, close, report

__all__ = ["check_rpn_proposals", "rpn_proposals"]


def rpn_proposals(
    anchors: Tensor,
    logits: Tensor,
    deltas: Tensor,
    anchors_per_level: list[int],
    image_size: tuple[int, int],
    pre_nms_top_n: int,
    post_nms_top_n: int,
    nms_thresh: float = 0.7,
    min_size: float = 1e-3,
) -> tuple[Tensor, Tensor]:
    """One image's proposals from its raw RPN outputs.

    anchors [P, 4], logits [P], deltas [P, 4] (dx, dy, dw, dh), all in the anchors' order, level by level
    (``anchors_per_level`` anchors each); image_size (height, width). Returns the proposals [n, 4] and
    their objectness probabilities [n], best first, n <= post_nms_top_n.
    """
    # 1. decode: the anchor's centre moves by (dx w_a, dy h_a), its size is scaled by (e^dw, e^dh)
    clip = math.log(1000.0 / 16)  # the largest dw, dh exponentiated: a wild dw cannot give a huge box
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]  # [P]
    ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
    cx, cy = ax + deltas[:, 0] * aw, ay + deltas[:, 1] * ah
    w = aw * torch.exp(deltas[:, 2].clamp(max=clip))
    h = ah * torch.exp(deltas[:, 3].clamp(max=clip))
    boxes = torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=1)  # [P, 4]

    # 2. the best pre_nms_top_n anchors of each level, and the level each one comes from
    top, level, start = [], [], 0
    for k, n in enumerate(anchors_per_level):
        idx = logits[start : start + n].topk(min(pre_nms_top_n, n)).indices + start
        top.append(idx)
        level.append(torch.full_like(idx, k))
        start += n
    top, level = torch.cat(top), torch.cat(level)  # [T], [T]
    boxes, scores = boxes[top], torch.sigmoid(logits[top])  # objectness probabilities

    # 3. clip to the image; 4. drop the boxes that clipping made (nearly) empty
    height, width = image_size
    boxes = torch.stack(
        [
            boxes[:, 0].clamp(0, width),
            boxes[:, 1].clamp(0, height),
            boxes[:, 2].clamp(0, width),
            boxes[:, 3].clamp(0, height),
        ],
        dim=1,
    )
    ok = torch.where((boxes[:, 2] - boxes[:, 0] >= min_size) & (boxes[:, 3] - boxes[:, 1] >= min_size))[0]
    boxes, scores, level = boxes[ok], scores[ok], level[ok]

    # 5. NMS within each level: a box of one level never suppresses a box of another
    keep = []
    for k in level.unique().tolist():
        idx = torch.where(level == k)[0]
        keep.append(idx[nms(boxes[idx], scores[idx], nms_thresh)])
    keep = torch.cat(keep) if keep else torch.zeros(0, dtype=torch.int64)

    # 6. all levels together, best first, at most post_nms_top_n
    keep = keep[scores[keep].argsort(descending=True)][:post_nms_top_n]
    return boxes[keep], scores[keep]


# ----------------------------------------------------------------------------------------------
# checker
# ----------------------------------------------------------------------------------------------


def _cases() -> list[dict[str, Any]]:
    """Anchors of shapes_cpu's pyramid (P2..P5 on 128 x 128, sizes 16..128, 3 ratios) with random head
    outputs: a few huge dw (the clamp), boxes pushed out of the image (clipping empties them), an image
    smaller than the padded batch (clip to the image, not the batch), tight and loose top-n."""
    gen = AnchorGenerator(((16,), (32,), (64,), (128,)), (0.5, 1.0, 2.0))
    feats = [torch.zeros(1, 1, 128 // s, 128 // s) for s in (4, 8, 16, 32)]
    per_level = [len(a) for a in gen.grid_anchors(feats, (128, 128))]
    anchors = gen(feats, (128, 128), 1)[0]  # [4080, 4]
    g = torch.Generator().manual_seed(4)
    cases = []
    for size, pre, post, thresh in (
        ((128, 128), 300, 100, 0.7),
        ((100, 120), 40, 30, 0.7),
        ((128, 96), 1000, 2000, 0.5),
    ):
        logits = torch.randn(len(anchors), generator=g) * 2
        deltas = torch.randn(len(anchors), 4, generator=g) * 0.4
        big = torch.randperm(len(anchors), generator=g)[:60]
        deltas[big[:30], 2:] = 6.0  # exp(6) would grow a box 400 times: the clamp stops it at 62.5
        deltas[big[30:], 0] = -12.0  # far to the left: clipping leaves an empty box
        logits[big] += 3.0  # and make them score high, so that they reach the top-k
        cases.append(
            dict(
                anchors=anchors,
                logits=logits,
                deltas=deltas,
                anchors_per_level=per_level,
                image_size=size,
                pre_nms_top_n=pre,
                post_nms_top_n=post,
                nms_thresh=thresh,
            )
        )
    return cases


def _package(
    case: dict[str, Any], dw_clip: float = math.log(1000.0 / 16), min_size: float = 1e-3
) -> tuple[Tensor, Tensor]:
    """The package's answer: BoxCoder.decode, then RPN.select_proposals, on the same inputs."""
    pre, post = case["pre_nms_top_n"], case["post_nms_top_n"]
    gen = AnchorGenerator(((16,), (32,), (64,), (128,)), (0.5, 1.0, 2.0))
    rpn = RPN(
        gen,
        RPNHead(1, 3),
        pre_nms_top_n=(pre, pre),
        post_nms_top_n=(post, post),
        nms_thresh=case["nms_thresh"],
    )
    rpn.min_size = min_size
    boxes = BoxCoder((1.0, 1.0, 1.0, 1.0), clip=dw_clip).decode(case["deltas"], case["anchors"])[:, 0]
    props, scores = rpn.select_proposals(
        boxes[None], case["logits"][None], [case["image_size"]], case["anchors_per_level"]
    )
    return props[0], scores[0]


def _variant(case: dict[str, Any], mistake: str) -> tuple[Tensor, Tensor]:
    """The package's pipeline with one step done wrong: what a typical mistake returns."""
    c = dict(case)
    if mistake == "keep_empty":
        return _package(c, min_size=-math.inf)
    if mistake == "one_level":  # top-k and NMS over the whole image, as if it were a single level
        c["anchors_per_level"] = [len(c["anchors"])]
        c["pre_nms_top_n"] = c["pre_nms_top_n"] * len(case["anchors_per_level"])
    elif mistake == "global_nms":  # top-k per level, but one NMS across the levels
        boxes, scores = _package({**c, "nms_thresh": 1.0, "post_nms_top_n": 10**9})
        keep = nms(boxes, scores, c["nms_thresh"])[: c["post_nms_top_n"]]
        return boxes[keep], scores[keep]
    elif mistake == "swap_hw":
        c["image_size"] = c["image_size"][::-1]
    elif mistake == "no_clip":
        c["image_size"] = (10**6, 10**6)
    elif mistake == "no_top_n":
        c["post_nms_top_n"] = 10**9
    return _package(c)


_MISTAKES = (
    (
        "one_level",
        "take the top pre_nms_top_n anchors of *each level* and run NMS within each level; "
        "you treated the whole image as one level.",
    ),
    (
        "global_nms",
        "run NMS within each level (a P2 box must not suppress a P3 box): loop over the "
        "levels, or use the level as the group of a batched NMS.",
    ),
    ("swap_hw", "image_size is (height, width): x is clipped to [0, width], y to [0, height]."),
    ("no_clip", "clip the boxes to the image (x to [0, width], y to [0, height]) before NMS."),
    ("keep_empty", "drop the boxes that clipping left empty (width or height below min_size) before NMS."),
    ("no_top_n", "keep at most post_nms_top_n proposals (the best ones, all levels together)."),
)


def _outputs(fn: Callable[..., Any], case: dict[str, Any]) -> tuple[Tensor, Tensor]:
    out = call(fn, **{k: (v.clone() if isinstance(v, Tensor) else v) for k, v in case.items()})
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, Tensor) for t in out)):
        raise StudentError("return two tensors: the proposals [n, 4] and their scores [n].")
    boxes, scores = out
    if boxes.dim() != 2 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:1]:
        raise StudentError(
            f"return proposals [n, 4] and scores [n]; got {list(boxes.shape)} and {list(scores.shape)}."
        )
    return boxes.detach(), scores.detach()


def _same(a: tuple[Tensor, Tensor], b: tuple[Tensor, Tensor]) -> bool:
    return close(a[0], b[0]) and close(a[1], b[1])


def check_rpn_proposals(fn: Callable[..., tuple[Tensor, Tensor]]) -> bool:
    """Check a student's ``rpn_proposals``; print a verdict, return True if right."""
    name = "rpn_proposals"
    cases = _cases()
    try:
        got = [_outputs(fn, case) for case in cases]
        want = [_package(case) for case in cases]
        wrong = [n for n in range(len(cases)) if not _same(got[n], want[n])]
        if wrong:
            n = wrong[0]
            case, (boxes, scores), (want_boxes, want_scores) = cases[n], got[n], want[n]
            where = (
                f"case {n + 1} (image {case['image_size'][0]} x {case['image_size'][1]}, pre_nms_top_n "
                f"{case['pre_nms_top_n']}, post_nms_top_n {case['post_nms_top_n']})"
            )
            if close(boxes, want_boxes) and close(scores, torch.logit(want_scores.double())):
                raise StudentError(f"{where}: return probabilities (the sigmoid of the logits), not logits.")
            order = scores.argsort(descending=True)
            if close(boxes[order], want_boxes) and close(scores[order], want_scores):
                raise StudentError(f"{where}: the right proposals, but return them best first.")
            for mistake, message in _MISTAKES:  # a mistake is named only if it explains every case
                if all(_same(g, _variant(c, mistake)) for g, c in zip(got, cases)):
                    raise StudentError(f"{where}: {message}")
            raise StudentError(
                f"{where}: you return {len(boxes)} proposals, RPN.select_proposals returns {len(want_boxes)}"
                + ("; the numbers differ." if len(boxes) == len(want_boxes) else ".")
                + " Check the steps in order: decode, top-k per level, clip, remove empty boxes, NMS per "
                "level, top-n."
            )
    except StudentError as err:
        return report(name, [str(err)], len(cases), "")
    return report(name, [], len(cases), "Your proposals are RPN.select_proposals' proposals, box for box.")

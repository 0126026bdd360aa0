"""Chapter 05 (the mask head): exercise solutions and checkers.

Exercise 1, ``predicted_mask_probs``: from K-channel mask logits, keep the channel of each RoI's
predicted class and turn it into probabilities (what the model hands to the paste step).
Exercise 2, ``expand_box``: the first step of pasting: grow each box so that it matches the mask once
the mask is padded by ``padding`` cells, then snap it to integer pixels (truncating, like torchvision).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from minimrcnn.model.mask_head import mask_probabilities
from minimrcnn.solutions.checking import StudentError, call, check_answer, close, report

__all__ = [
    "answers",
    "check_answer_fc_params",
    "check_expand_box",
    "check_predicted_mask_probs",
    "expand_box",
    "predicted_mask_probs",
]


def predicted_mask_probs(logits: Tensor, labels: Tensor) -> Tensor:
    """logits [N, K + 1, m, m], labels [N] (the class the box branch predicted) -> [N, 1, m, m] in (0, 1).

    Every channel is an independent binary mask; RoI i only needs channel ``labels[i]``, through a sigmoid.
    """
    idx = torch.arange(logits.shape[0], device=logits.device)
    return torch.sigmoid(logits[idx, labels])[:, None]


def expand_box(boxes: Tensor, mask_size: int, padding: int = 1) -> Tensor:
    """boxes [N, 4] float (x1, y1, x2, y2) -> [N, 4] int64: the box of the padded mask, in whole pixels.

    The padded mask has ``mask_size + 2 * padding`` cells where the box held ``mask_size``, so the box
    grows about its centre by the factor ``(mask_size + 2 * padding) / mask_size``. The corners are then
    converted to integers by truncation toward zero (``.to(torch.int64)``), as torchvision does.
    """
    scale = (mask_size + 2 * padding) / mask_size
    half_w = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale
    half_h = (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    cx, cy = (boxes[:, 0] + boxes[:, 2]) * 0.5, (boxes[:, 1] + boxes[:, 3]) * 0.5
    return torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=1).to(torch.int64)


# ----------------------------------------------------------------------------------------------
# checkers
# ----------------------------------------------------------------------------------------------


def _as_tensor(out: object) -> Tensor:
    if not isinstance(out, Tensor):
        raise StudentError(f"return a torch.Tensor; got {type(out).__name__}.")
    return out


def _mask_cases() -> list[tuple[Tensor, Tensor]]:
    g = torch.Generator().manual_seed(5)
    return [
        (torch.randn(5, 4, 6, 6, generator=g) * 3, torch.tensor([1, 3, 2, 1, 3])),
        (torch.randn(3, 81, 4, 4, generator=g) * 3, torch.tensor([80, 17, 1])),
        (torch.randn(1, 4, 28, 28, generator=g) * 3, torch.tensor([2])),
    ]


def check_predicted_mask_probs(fn: Callable[[Tensor, Tensor], Tensor]) -> bool:
    """Check a student's ``predicted_mask_probs(logits, labels)``; print a verdict, return True if right."""
    name = "predicted_mask_probs"
    cases = _mask_cases()
    try:
        for logits, labels in cases:
            n, k, m, _ = logits.shape
            want = mask_probabilities(logits, labels, "sigmoid")  # [N, 1, M, M]
            got = _as_tensor(call(fn, logits.clone(), labels.clone()))
            if got.shape == (n, n, m, m) and n > 1:
                raise StudentError(
                    f"shape {tuple(got.shape)}: `logits[:, labels]` picks every label for every RoI. Pair "
                    "RoI i with labels[i] by indexing with (torch.arange(N), labels)."
                )
            if got.shape == (n, m, m):
                raise StudentError(
                    f"shape {tuple(got.shape)}: keep a channel dimension, expected {tuple(want.shape)} "
                    "(the paste step takes [N, 1, M, M]); add `[:, None]`."
                )
            if got.shape != want.shape:
                raise StudentError(
                    f"shape {tuple(got.shape)}, expected {tuple(want.shape)}: one M x M mask per RoI, "
                    "with a channel dimension of 1."
                )
            if not got.is_floating_point():
                raise StudentError(
                    f"dtype {got.dtype}: return probabilities (floats), not a thresholded mask."
                )
            if close(got, want):
                continue
            got3, idx = got[:, 0].double(), torch.arange(n)
            lg = logits.double()
            alternatives = [
                (lg[idx, labels], "missing sigmoid: these are the raw logits; apply torch.sigmoid."),
                (
                    torch.softmax(lg, dim=1)[idx, labels],
                    "softmax over the channels couples the classes; the sigmoid head treats every "
                    "channel as its own binary mask: torch.sigmoid of the chosen channel.",
                ),
                (
                    torch.sigmoid(lg[idx, labels - 1]),
                    "off by one: channel 0 belongs to the background (unused); class k lives in channel k.",
                ),
                (torch.sigmoid(lg[:, 0]), "you took channel 0 for every RoI; take channel labels[i]."),
                (
                    torch.sigmoid(lg.max(dim=1).values),
                    "you took the highest-scoring channel per pixel; use the class the box branch "
                    "predicted (labels), one channel for the whole RoI.",
                ),
                (
                    torch.sigmoid(lg[idx, lg.mean(dim=(2, 3)).argmax(dim=1)]),
                    "you picked the channel yourself; use the class given in labels.",
                ),
                (torch.sigmoid(torch.sigmoid(lg[idx, labels])), "sigmoid applied twice."),
                (
                    (lg[idx, labels] >= 0).double(),
                    "you thresholded the mask; return probabilities (paste resizes them, then thresholds).",
                ),
            ]
            for alt, msg in alternatives:
                if close(got3, alt):
                    raise StudentError(msg)
            err = (got.double() - want.double()).abs().max().item()
            raise StudentError(f"values differ from the expected probabilities by up to {err:.3g}.")
    except StudentError as err:
        return report(name, [str(err)], len(cases), "")
    return report(
        name, [], len(cases), "One channel per RoI, chosen by the box branch's class, through a sigmoid."
    )


_BOX_CASES: list[tuple[list[list[float]], int, int]] = [
    ([[10.0, 20.0, 38.0, 48.0], [3.3, 7.9, 60.2, 30.4]], 28, 1),
    ([[-12.6, -3.2, 20.5, 14.9], [100.7, 90.1, 140.3, 131.8]], 28, 1),  # partly outside: negative corners
    ([[-30.4, 5.5, -2.2, 12.5], [0.0, 0.0, 7.0, 7.0]], 28, 1),
    ([[-9.7, -8.8, 30.1, 41.3], [50.0, 60.0, 61.0, 62.0]], 6, 2),
]


def check_expand_box(fn: Callable[[Tensor, int, int], Tensor]) -> bool:
    """Check a student's ``expand_box(boxes, mask_size, padding)``; print a verdict, return True if right."""
    name = "expand_box"
    n_cases = len(_BOX_CASES)

    def enlarged(b: Tensor, m: int, p: int) -> Tensor:  # float, before the conversion to integers
        s = (m + 2 * p) / m
        c, half = (b[:, :2] + b[:, 2:]) / 2, (b[:, 2:] - b[:, :2]) / 2 * s
        return torch.cat([c - half, c + half], dim=1)

    try:
        for raw, m, p in _BOX_CASES:
            boxes = torch.tensor(raw, dtype=torch.float32)
            want = expand_box(boxes, m, p)
            got = _as_tensor(call(fn, boxes.clone(), m, p))
            if got.shape != want.shape:
                raise StudentError(f"shape {tuple(got.shape)}, expected {tuple(want.shape)}: [N, 4] boxes.")
            gotd = got.double()
            if torch.equal(gotd, want.double()):
                if got.is_floating_point():
                    raise StudentError(
                        "right numbers, but return integers (dtype torch.int64): pixels are whole."
                    )
                continue
            e = enlarged(boxes.double(), m, p)
            corner = boxes.double().clone()
            corner[:, 2:] = boxes[:, :2] + (boxes[:, 2:] - boxes[:, :2]) * (m + 2 * p) / m
            shrunk = enlarged(boxes.double(), m + 4 * p, -p)  # scale m / (m + 2p)
            grown_px = torch.cat([boxes[:, :2] - p, boxes[:, 2:] + p], dim=1).double()
            alternatives = [
                (e, "the corners must become whole pixels: convert with .to(torch.int64)."),
                (
                    e.floor(),
                    "floor differs from truncation for negative corners (-3.7 -> -4 instead of -3); "
                    "torchvision truncates toward zero with .to(torch.int64).",
                ),
                (e.round(), "you rounded; torchvision truncates toward zero (.to(torch.int64))."),
                (
                    torch.cat([e[:, :2].trunc(), e[:, 2:].ceil()], dim=1),
                    "you rounded the far corner up; both corners are truncated toward zero.",
                ),
                (
                    boxes.double().trunc(),
                    "the box was not enlarged: the padded mask covers "
                    "(M + 2 * padding) / M times the box, about its centre.",
                ),
                (
                    grown_px.trunc(),
                    "you grew the box by `padding` image pixels; it grows by `padding` mask "
                    "cells, i.e. by the factor (M + 2 * padding) / M about its centre.",
                ),
                (corner.trunc(), "you grew the box from its top-left corner; grow it about its centre."),
                (shrunk.trunc(), "the box shrank: the scale is (M + 2 * padding) / M, not its inverse."),
            ]
            for alt, msg in alternatives:
                if close(gotd, alt):
                    raise StudentError(msg)
            raise StudentError(
                f"for boxes {raw} (M={m}, padding={p}) you return "
                f"{[[round(v, 2) for v in row] for row in gotd.tolist()]}, expected {want.tolist()}."
            )
    except StudentError as err:
        return report(name, [str(err)], n_cases, "")
    return report(
        name, [], n_cases, "The padded mask's box, grown about its centre and truncated like torchvision."
    )


# ----------------------------------------------------------------------------------------------
# numeric answers to the chapter's questions
# ----------------------------------------------------------------------------------------------


def answers() -> dict[str, Any]:
    n_in, n_out = 256 * 14 * 14, 80 * 28 * 28
    return {"fc_params": n_in * n_out + n_out}  # weights + biases


def check_answer_fc_params(answer: Any) -> bool:
    """Question 1: parameters of a fully connected layer from 256 x 14 x 14 features to 80 x 28 x 28."""
    want = answers()["fc_params"]
    return check_answer(
        "question 1 (fully connected mask layer)",
        answer,
        want,
        atol=80 * 28 * 28,  # with or without the biases
        form="a number of parameters",
        mistakes=(
            (
                256 * 14 * 14 + 80 * 28 * 28,
                "that adds the sizes; a fully connected layer has a weight "
                "for every (input, output) pair: multiply them.",
            ),
        ),
        why=f"{want:,d} (3.1 billion), about 1200 times the whole FCN head (2.6 million).",
    )

"""Chapter 00 (the tour): checkers for the numeric answers to the chapter's questions.

Every ``check_answer_<name>(answer)`` takes the student's value, prints a verdict and returns True only for
the right one; ``answers()`` gives the right values, each computed by the package itself.
"""

from __future__ import annotations

from typing import Any

import torch

from minimrcnn.model.transform import ImageTransform
from minimrcnn.solutions.checking import check_answer

__all__ = ["answers", "check_answer_mask_cell", "check_answer_resize_coco", "check_answer_resize_panorama"]


def _resized_and_padded(h: int, w: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """What the paper's transform (short side 800, long side <= 1333, pad to 32) makes of an h x w image."""
    transform = ImageTransform((800,), 1333, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)).eval()
    batch, _ = transform([torch.zeros(3, h, w)])
    return batch.image_sizes[0], (int(batch.tensors.shape[-2]), int(batch.tensors.shape[-1]))


def answers() -> dict[str, Any]:
    return {
        "resize_coco": _resized_and_padded(480, 640),
        "resize_panorama": _resized_and_padded(300, 1200),
        "mask_cell": 400 / 28,
    }


def check_answer_resize_coco(answer: Any) -> bool:
    """Question 2, first part: ((h, w) after resizing, (h, w) after padding) of a 480 x 640 image."""
    (h, w), (ph, pw) = want = answers()["resize_coco"]
    return check_answer(
        "question 2 (480 x 640)",
        answer,
        want,
        form="((height, width), (padded height, padded width))",
        mistakes=(
            (((h, w + 1), (ph, pw)), "640 x 800/480 = 1066.7, and the resized size is rounded down."),
            (((h, w), (h, w)), "that is the resized size twice: the batch is padded to multiples of 32."),
            (((w, h), (pw, ph)), "height first, then width (480 x 640 is 480 rows high)."),
        ),
        why=f"Scale 800/480: {h} x {w} (the long side stays below 1333), padded to {ph} x {pw}.",
    )


def check_answer_resize_panorama(answer: Any) -> bool:
    """Question 2, second part: the same for a 300 x 1200 panorama."""
    (h, w), (ph, pw) = want = answers()["resize_panorama"]
    return check_answer(
        "question 2 (300 x 1200)",
        answer,
        want,
        form="((height, width), (padded height, padded width))",
        mistakes=(
            (((800, 3200), (800, 3200)), "the long side would be 3200 > max_size 1333: max_size decides."),
            (((h, w), (h, w)), "that is the resized size twice: the batch is padded to multiples of 32."),
        ),
        why=f"800/300 would make the long side 3200 > 1333, so the scale is 1333/1200: {h} x {w}, "
        f"padded to {ph} x {pw}.",
    )


def check_answer_mask_cell(answer: Any) -> bool:
    """Question 5: how many image pixels one of the 28 mask cells spans across a 400-pixel-wide object."""
    return check_answer(
        "question 5 (pixels per mask cell)",
        answer,
        answers()["mask_cell"],
        atol=0.05,
        form="a number of pixels, to one decimal",
        mistakes=((28 / 400, "that is cells per pixel; the question asks for pixels per cell."),),
        why="400 / 28 = 14.3 pixels per cell: the pasted mask is smooth inside and least accurate along "
        "the boundary, where one cell decides a band about 14 pixels wide.",
    )

"""Chapter 06 (the losses): exercise solutions and checkers.

Exercise 1, ``box_regression_loss``: smooth L1 on the 4 deltas of each positive RoI's GT class, summed
and divided by the number of sampled RoIs (positives and negatives). ``beta`` is an argument: the package
uses torchvision's 1/9 (Fast R-CNN used 1, Detectron2 uses 0), and the checker tries several.
Exercise 2, ``sigmoid_mask_loss``: binary cross-entropy on the GT class's mask channel only, averaged over
RoIs and pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from minimrcnn.model.box_head import box_losses
from minimrcnn.model.mask_head import mask_loss
from minimrcnn.solutions.checking import StudentError, call, close, report

__all__ = [
    "box_regression_loss",
    "check_box_regression_loss",
    "check_sigmoid_mask_loss",
    "sigmoid_mask_loss",
]


def box_regression_loss(
    box_deltas: Tensor, labels: Tensor, reg_targets: Tensor, beta: float = 1 / 9
) -> Tensor:
    """box_deltas [N, 4 (K + 1)] (4 per class, background included), labels [N] (0 = background),
    reg_targets [N, 4] -> scalar. ``beta``: where smooth L1 turns from quadratic to linear.

    Only positive RoIs (label >= 1) regress a box, and only with their GT class's 4 deltas. The smooth
    L1 terms are summed and divided by N, the number of sampled RoIs, not by the number of positives.
    """
    pos = torch.where(labels > 0)[0]
    deltas = box_deltas.reshape(box_deltas.shape[0], -1, 4)[pos, labels[pos]]  # [N_pos, 4]
    loss = F.smooth_l1_loss(deltas, reg_targets[pos], beta=beta, reduction="sum")
    return loss / max(1, labels.numel())


def sigmoid_mask_loss(logits: Tensor, labels: Tensor, targets: Tensor) -> Tensor:
    """logits [N, K + 1, m, m], labels [N] (GT class, >= 1), targets [N, m, m] in [0, 1] -> scalar.

    Binary cross-entropy between the GT class's channel and the (soft) target, averaged over the N x m x m
    pixels. The other K channels take no part, so they receive no gradient.
    """
    chosen = logits[torch.arange(logits.shape[0], device=logits.device), labels]  # [N, m, m]
    return F.binary_cross_entropy_with_logits(chosen, targets)


# ----------------------------------------------------------------------------------------------
# checkers
# ----------------------------------------------------------------------------------------------


def _scalar(out: object) -> Tensor:
    if not isinstance(out, Tensor):
        if isinstance(out, (int, float)):
            return torch.tensor(float(out), dtype=torch.float64)
        raise StudentError(f"return a scalar tensor (the loss); got {type(out).__name__}.")
    if out.numel() != 1:
        raise StudentError(
            f"return a single number (a scalar tensor); got shape {tuple(out.shape)}. "
            "Reduce the per-element losses to one value."
        )
    if not out.is_floating_point():
        raise StudentError(f"dtype {out.dtype}: a loss is a float.")
    return out.reshape(()).double()


def _box_cases() -> list[tuple[Tensor, Tensor, Tensor]]:
    g = torch.Generator().manual_seed(6)
    cases = []
    for r, c, n_pos in ((12, 4, 4), (40, 81, 9), (7, 4, 7)):
        labels = torch.zeros(r, dtype=torch.int64)
        labels[torch.randperm(r, generator=g)[:n_pos]] = torch.randint(1, c, (n_pos,), generator=g)
        deltas = torch.randn(r, 4 * c, generator=g) * 0.3
        targets = torch.randn(r, 4, generator=g) * 0.3
        # background RoIs have regression targets too (to whatever GT they overlap most), never used
        targets[labels == 0] = torch.randn(int((labels == 0).sum()), 4, generator=g)
        cases.append((deltas, labels, targets))
    return cases


# Every beta is a valid smooth L1: the package's (and torchvision's) 1/9, Fast R-CNN's 1, and one more.
_BETAS = (1 / 9, 1.0, 0.5)


def check_box_regression_loss(fn: Callable[..., Tensor]) -> bool:
    """Check a student's ``box_regression_loss(box_deltas, labels, reg_targets, beta)``; print a verdict.

    At beta = 1/9 it must equal the package's ``box_losses``; at the other betas, the same formula."""
    name = "box_regression_loss"
    cases = _box_cases()
    try:
        for (deltas, labels, targets), beta in ((case, b) for case in cases for b in _BETAS):
            if beta == 1 / 9:
                logits = deltas.new_zeros(len(labels), deltas.shape[1] // 4)  # unused, box_losses needs it
                want = box_losses(logits, deltas, labels, targets)["loss_box_reg"]
            else:
                want = box_regression_loss(deltas, labels, targets, beta)
            try:
                got = _scalar(call(fn, deltas.clone(), labels.clone(), targets.clone(), beta=beta))
            except StudentError as err:
                if "beta" in str(err) and "argument" in str(err):
                    raise StudentError(
                        "give your function a `beta` argument (box_regression_loss(box_deltas, labels, "
                        "reg_targets, beta=1 / 9)) and pass it to smooth L1."
                    ) from None
                raise
            if close(got, want):
                continue
            for other in _BETAS:
                if other != beta and close(got, box_regression_loss(deltas, labels, targets, other)):
                    raise StudentError(
                        f"asked for beta = {beta:.4g}, your loss is the one for beta = {other:.4g}: "
                        "pass the `beta` argument to smooth L1 instead of a fixed value."
                    )
            r = labels.numel()
            pos = torch.where(labels > 0)[0]
            n_pos = max(1, pos.numel())
            d = deltas.double().reshape(r, -1, 4)
            t = targets.double()

            def sl1(x: Tensor, y: Tensor, b: float = beta) -> Tensor:
                return F.smooth_l1_loss(x, y, beta=b, reduction="sum")

            mine = d[pos, labels[pos]]
            alternatives = [
                (
                    sl1(mine, t[pos]) / n_pos,
                    "you divided by the number of positive RoIs; divide by the "
                    "number of sampled RoIs (positives and negatives), as Fast R-CNN's recipe does.",
                ),
                (
                    sl1(mine, t[pos]) / (4 * n_pos),
                    "reduction='mean' averages over positives x 4 coordinates; "
                    "sum the terms, then divide by the number of sampled RoIs.",
                ),
                (
                    sl1(mine, t[pos]) / (4 * r),
                    "you also divided by the 4 coordinates: sum over the 4 deltas, "
                    "divide by the number of sampled RoIs only.",
                ),
                (sl1(mine, t[pos]), "that is the plain sum: divide it by the number of sampled RoIs."),
                ((mine - t[pos]).abs().sum() / r, "that is plain L1; use smooth L1 with the given beta."),
                (((mine - t[pos]) ** 2).sum() / r, "that is squared error; use smooth L1 with that beta."),
                (
                    ((mine - t[pos]) ** 2).sum() / 2 / r,
                    "that is squared error / 2; use smooth L1 with the given beta.",
                ),
                (
                    sl1(d[pos, 0], t[pos]) / r,
                    "you used columns 0..3 (the background's deltas) for every RoI; "
                    "take the 4 deltas of each RoI's GT class: columns 4k..4k+3.",
                ),
                (
                    sl1(d[pos, labels[pos] - 1], t[pos]) / r,
                    "off by one: the deltas are laid out with the "
                    "background as class 0, so class k's deltas are columns 4k..4k+3.",
                ),
                (
                    sl1(deltas.double().reshape(r, 4, -1)[pos, :, labels[pos]], t[pos]) / r,
                    "wrong layout: the deltas are [R, C, 4] (4 consecutive numbers per class), "
                    "not [R, 4, C].",
                ),
                (
                    sl1(d[torch.arange(r), labels], t) / r,
                    "background RoIs have no object to regress: keep the positive RoIs (label > 0) only.",
                ),
            ]
            for alt, msg in alternatives:
                if close(got, alt):
                    raise StudentError(msg)
            raise StudentError(
                f"beta = {beta:.4g}: your loss is {got.item():.6f}, expected {want.item():.6f}."
            )
    except StudentError as err:
        return report(name, [str(err)], len(cases) * len(_BETAS), "")
    return report(
        name,
        [],
        len(cases) * len(_BETAS),
        "GT-class deltas of the positives, smooth L1 at any beta, over all sampled RoIs.",
    )


def _mask_cases() -> list[tuple[Tensor, Tensor, Tensor]]:
    g = torch.Generator().manual_seed(7)
    cases = []
    for n, k, m in ((5, 4, 6), (3, 81, 4), (2, 4, 28)):
        logits = torch.randn(n, k, m, m, generator=g) * 2
        labels = torch.randint(1, k, (n,), generator=g)
        targets = torch.rand(n, m, m, generator=g)  # soft targets, as RoIAlign of a 0/1 mask gives
        targets[targets > 0.7] = 1.0
        targets[targets < 0.3] = 0.0
        cases.append((logits, labels, targets))
    return cases


def check_sigmoid_mask_loss(fn: Callable[[Tensor, Tensor, Tensor], Tensor]) -> bool:
    """Check a student's ``sigmoid_mask_loss(logits, labels, targets)``; print a verdict."""
    name = "sigmoid_mask_loss"
    cases = _mask_cases()
    try:
        for logits, labels, targets in cases:
            want = mask_loss(logits, labels, targets, "sigmoid")
            got = _scalar(call(fn, logits.clone(), labels.clone(), targets.clone()))
            if close(got, want):
                continue
            lg, t = logits.double(), targets.double()
            n, k = lg.shape[:2]
            idx = torch.arange(n)
            bce = F.binary_cross_entropy_with_logits
            chosen = lg[idx, labels]
            pixel_labels = torch.where(
                t >= 0.5, labels[:, None, None], torch.zeros_like(labels)[:, None, None]
            )
            alternatives = [
                (
                    bce(lg, t[:, None].expand_as(lg)),
                    "you put the loss on all K channels; only the GT class's "
                    "channel is trained, the others get no loss (and no gradient).",
                ),
                (
                    bce(lg[idx, labels - 1], t),
                    "off by one: channel 0 is the background's; class k is channel k.",
                ),
                (
                    bce(lg[:, 0], t),
                    "you used channel 0 for every RoI (that is the class-agnostic variant); "
                    "use channel labels[i] for RoI i.",
                ),
                (
                    F.cross_entropy(lg, pixel_labels),
                    "that is the softmax loss (classes compete per pixel); "
                    "the sigmoid loss is a binary cross-entropy on one channel.",
                ),
                (
                    bce(chosen, t, reduction="sum"),
                    "reduction: average over the RoIs and the M x M pixels (mean), do not sum.",
                ),
                (
                    bce(chosen, t, reduction="sum") / n,
                    "you averaged over RoIs but summed over pixels; take the mean over all N x M x M terms.",
                ),
                (
                    bce(torch.sigmoid(chosen), t),
                    "sigmoid applied twice: binary_cross_entropy_with_logits "
                    "already contains the sigmoid, pass it the logits.",
                ),
                (
                    bce(chosen, (t >= 0.5).double()),
                    "the targets are soft (RoIAlign averages the 0/1 mask, so "
                    "edge cells lie between 0 and 1): use them as they are, do not threshold them.",
                ),
                (bce(chosen, 1 - t), "target flipped: 1 means object, 0 background."),
            ]
            for alt, msg in alternatives:
                if close(got, alt):
                    raise StudentError(msg)
            raise StudentError(f"your loss is {got.item():.6f}, expected {want.item():.6f}.")
    except StudentError as err:
        msg = str(err)
        if "binary_cross_entropy" in msg or "all elements of input should be between 0 and 1" in msg:
            msg += (
                " (F.binary_cross_entropy expects probabilities; on logits use "
                "F.binary_cross_entropy_with_logits, which applies the sigmoid itself, stably.)"
            )
        return report(name, [msg], len(cases), "")
    return report(name, [], len(cases), "BCE on the GT class's channel only, averaged over RoIs and pixels.")

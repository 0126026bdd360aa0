"""Chapter 06 capstone: the RoI heads' three training losses for one batch, end to end.

``roi_heads_losses`` assembles chapters 04-06: add the ground-truth boxes to the proposals, match every
RoI to the ground truth at IoU 0.5, sample a minibatch per image, encode the box targets, run the box
branch and compute the classification and box losses, run the mask branch on the positives and compute
the mask loss on their cropped ground-truth masks. ``check_roi_heads_losses`` compares a student's
version with the package's ``RoIHeads`` in training mode, on the same inputs and the same random draws.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from minimrcnn.model.mask_head import mask_targets
from minimrcnn.model.mask_rcnn import build_roi_heads
from minimrcnn.ops.boxes import BoxCoder, box_iou
from minimrcnn.ops.sampling import BalancedSampler
from minimrcnn.presets import shapes_cpu
from minimrcnn.solutions.checking import StudentError, call, close, report

__all__ = ["check_roi_heads_losses", "roi_heads_losses"]

LOSSES = ("loss_classifier", "loss_box_reg", "loss_mask")


def roi_heads_losses(
    proposals: list[Tensor],
    targets: list[dict[str, Tensor]],
    box_branch: Callable[[list[Tensor]], tuple[Tensor, Tensor]],
    mask_branch: Callable[[list[Tensor]], Tensor],
    batch_size_per_image: int = 64,
    positive_fraction: float = 0.5,
    iou_thresh: float = 0.5,
    reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0),
    aligned: bool = True,
) -> dict[str, Tensor]:
    """The RoI heads' losses for a batch: {"loss_classifier", "loss_box_reg", "loss_mask"}.

    proposals: per image [n_i, 4]. targets: per image "boxes" [G_i, 4], "labels" [G_i] (1..K), "masks"
    [G_i, H, W] uint8. box_branch(boxes per image) -> class logits [N, K + 1] and box deltas
    [N, 4 (K + 1)] for the N RoIs, image after image; mask_branch(boxes per image) -> mask logits
    [P, K + 1, m, m].
    """
    rois, labels, matched = [], [], []
    for p, t in zip(proposals, targets):  # a loop over images
        p = torch.cat([p, t["boxes"].to(p.dtype)])  # 1. the GT boxes join the proposals
        best_iou, best_gt = box_iou(t["boxes"], p).max(dim=0)  # 2. match: [G, n] -> each RoI's best GT
        lab = t["labels"][best_gt].clone()
        lab[best_iou < iou_thresh] = 0  # background
        pos, neg = torch.where(lab > 0)[0], torch.where(lab == 0)[0]  # 3. sample, positives first
        num_pos = min(len(pos), int(batch_size_per_image * positive_fraction))
        num_neg = min(len(neg), batch_size_per_image - num_pos)
        pos = pos[torch.randperm(len(pos))[:num_pos]]
        neg = neg[torch.randperm(len(neg))[:num_neg]]
        keep = torch.cat([pos, neg])
        rois.append(p[keep])
        labels.append(lab[keep])
        matched.append(best_gt[keep])

    # 4. box targets: each RoI's matched GT box, encoded relative to the RoI with the head's weights
    coder = BoxCoder(reg_weights)
    reg_targets = torch.cat(
        [coder.encode(t["boxes"][m].to(r.dtype), r) for r, m, t in zip(rois, matched, targets)]
    )  # [N, 4]
    all_labels = torch.cat(labels)  # [N]

    # 5. the box branch: cross-entropy on every sampled RoI, smooth L1 on the positives' GT-class deltas
    class_logits, box_deltas = box_branch(rois)  # [N, K + 1], [N, 4 (K + 1)]
    loss_classifier = F.cross_entropy(class_logits, all_labels)
    pos = torch.where(all_labels > 0)[0]
    deltas = box_deltas.reshape(len(all_labels), -1, 4)[pos, all_labels[pos]]  # [P, 4]
    loss_box_reg = F.smooth_l1_loss(deltas, reg_targets[pos], beta=1 / 9, reduction="sum") / len(all_labels)

    # 6. the mask branch on the positives only: binary cross-entropy on the GT class's channel
    fg = [lab > 0 for lab in labels]
    mask_logits = mask_branch([r[f] for r, f in zip(rois, fg)])  # [P, K + 1, m, m]
    m = mask_logits.shape[-1]
    mask_tgts = torch.cat(
        [mask_targets(t["masks"], r[f], g[f], m, aligned) for t, r, g, f in zip(targets, rois, matched, fg)]
    )  # [P, m, m]
    fg_labels = torch.cat([lab[f] for lab, f in zip(labels, fg)])  # [P], in the mask branch's order
    chosen = mask_logits[torch.arange(len(fg_labels)), fg_labels]  # [P, m, m]
    loss_mask = F.binary_cross_entropy_with_logits(chosen, mask_tgts)
    return {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg, "loss_mask": loss_mask}


# ----------------------------------------------------------------------------------------------
# checker
# ----------------------------------------------------------------------------------------------


def _targets(g: torch.Generator, size: tuple[int, int], n: int) -> dict[str, Tensor]:
    """n objects: boxes, labels 1..3 and elliptic masks that fill their boxes (as the shapes dataset)."""
    h, w = size
    xy = torch.rand(n, 2, generator=g) * torch.tensor([w - 40.0, h - 40.0])
    wh = 10 + torch.rand(n, 2, generator=g) * 30
    boxes = torch.cat([xy, xy + wh], dim=1).round()  # [n, 4]
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    c, r = (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2:] - boxes[:, :2]) / 2
    dx = (xs - c[:, 0, None, None]) / r[:, 0, None, None]  # [n, h, w]
    dy = (ys - c[:, 1, None, None]) / r[:, 1, None, None]
    masks = (dx**2 + dy**2 <= 1).to(torch.uint8)
    return {"boxes": boxes, "labels": torch.randint(1, 4, (n,), generator=g), "masks": masks}


def _proposals(g: torch.Generator, t: dict[str, Tensor], size: tuple[int, int], n_random: int) -> Tensor:
    """Jittered GT boxes (mostly positives) and random boxes (mostly background), inside the image."""
    b = t["boxes"].repeat(2, 1)
    wh = (b[:, 2:] - b[:, :2]).repeat(1, 2)
    jittered = b + (torch.rand(b.shape, generator=g) - 0.5) * 0.5 * wh
    xy = torch.rand(n_random, 2, generator=g) * (torch.tensor(size[::-1]) - 20)
    rand = torch.cat([xy, xy + 8 + torch.rand(n_random, 2, generator=g) * 40], dim=1)
    h, w = size
    out = torch.cat([jittered, rand])
    x, y = out[:, 0::2].clamp(0, w), out[:, 1::2].clamp(0, h)
    return torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], dim=1)


class _Setting:
    """The package's RoI heads (shapes_cpu, seeded weights) on random FPN maps: the branches a student
    calls, and the package's own losses for the same batch."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.cfg = shapes_cpu().model
        self.heads = build_roi_heads(self.cfg, self.cfg.fpn_channels).train()
        g = torch.Generator().manual_seed(6)
        self.image_sizes = [(128, 128), (112, 128)]
        channels = self.cfg.fpn_channels
        self.feats = [torch.randn(2, channels, 128 // s, 128 // s, generator=g) for s in (4, 8, 16, 32)]
        self.targets = [_targets(g, size, n) for size, n in zip(self.image_sizes, (4, 3))]
        self.proposals = [_proposals(g, t, size, 16) for t, size in zip(self.targets, self.image_sizes)]

    def box_branch(self, boxes: list[Tensor]) -> tuple[Tensor, Tensor]:
        return self.heads.box_predictor(self.heads.box_features(self.feats, boxes, self.image_sizes))

    def mask_branch(self, boxes: list[Tensor]) -> Tensor:
        return self.heads.mask_logits(self.feats, boxes, self.image_sizes)

    def package(self, seed: int, batch: int, fraction: float, **change: Any) -> dict[str, Tensor]:
        h = self.heads
        h.sampler = BalancedSampler(batch, fraction)
        h.box_coder = BoxCoder(change.get("reg_weights", self.cfg.bbox_reg_weights))
        h.aligned = change.get("aligned", self.cfg.aligned)
        torch.manual_seed(seed)
        with torch.no_grad():
            _, losses = h(self.feats, [p.clone() for p in self.proposals], self.image_sizes, self.targets)
        return losses

    def student(self, fn: Callable[..., Any], seed: int, batch: int, fraction: float) -> dict[str, Tensor]:
        torch.manual_seed(seed)
        proposals = [p.clone() for p in self.proposals]
        targets = [{k: v.clone() for k, v in t.items()} for t in self.targets]
        with torch.no_grad():
            out = call(
                fn,
                proposals,
                targets,
                self.box_branch,
                self.mask_branch,
                batch_size_per_image=batch,
                positive_fraction=fraction,
                iou_thresh=0.5,
                reg_weights=self.cfg.bbox_reg_weights,
                aligned=self.cfg.aligned,
            )
        if not isinstance(out, dict) or set(LOSSES) - set(out):
            raise StudentError(f"return a dict with the keys {', '.join(LOSSES)}.")
        for k in LOSSES:
            if not (isinstance(out[k], Tensor) and out[k].numel() == 1 and out[k].is_floating_point()):
                raise StudentError(f"{k} must be a scalar float tensor; got {out[k]!r:.60}.")
        return out


# (seed, RoIs per image, positive fraction): the first takes every RoI, so its sample is not random
_CASES = ((0, 512, 0.5), (1, 16, 0.5), (2, 12, 0.25))


def _hint(setting: _Setting, got: dict[str, Tensor], want: dict[str, Tensor], case: tuple) -> str:
    wrong = [k for k in LOSSES if not close(got[k], want[k])]
    numbers = "; ".join(f"{k}: yours {float(got[k]):.5f}, the package's {float(want[k]):.5f}" for k in wrong)
    if wrong == ["loss_box_reg"]:
        unweighted = setting.package(*case, reg_weights=(1.0, 1.0, 1.0, 1.0))
        if close(got["loss_box_reg"], unweighted["loss_box_reg"]):
            return f"{numbers}. Encode the box targets with the weights reg_weights = (10, 10, 5, 5)."
        return (
            f"{numbers}. Smooth L1 (beta 1/9) on each positive's GT-class deltas (columns 4u..4u+3), "
            "summed and divided by the number of sampled RoIs."
        )
    if wrong == ["loss_mask"]:
        if close(got["loss_mask"], setting.package(*case, aligned=not setting.cfg.aligned)["loss_mask"]):
            return f"{numbers}. Pass `aligned` to mask_targets."
        return (
            f"{numbers}. The mask loss reads the GT class's channel of the positives only; its targets "
            "are the matched GT masks cropped by each positive RoI (mask_targets), in the same order."
        )
    return (
        f"{numbers}. Check the matching (the GT boxes join the proposals; IoU >= iou_thresh takes the GT "
        "box's class, the rest is background) and the sample (at most batch_size_per_image x "
        "positive_fraction positives, negatives fill the rest)."
    )


def check_roi_heads_losses(fn: Callable[..., dict[str, Tensor]]) -> bool:
    """Check a student's ``roi_heads_losses``; print a verdict, return True if right."""
    name = "roi_heads_losses"
    try:
        setting = _Setting()
        for n, case in enumerate(_CASES):
            want = setting.package(*case)
            got = setting.student(fn, *case)
            if all(close(got[k], want[k]) for k in LOSSES):
                continue
            where = f"case {n + 1} ({case[1]} RoIs per image, positive fraction {case[2]})"
            if n > 0:  # the first case (no random sample) passed: the draws differ
                raise StudentError(
                    f"{where}: right when every RoI is kept, different when the sample is random. Draw "
                    "it as BalancedSampler does, image after image: the positives with "
                    "pos[torch.randperm(len(pos))[:num_pos]], then the negatives the same way, and nothing "
                    "else random in between."
                )
            raise StudentError(f"{where}: {_hint(setting, got, want, case)}")
    except StudentError as err:
        return report(name, [str(err)], len(_CASES), "")
    return report(name, [], len(_CASES), "The package's RoIHeads computes exactly your three losses.")

"""Who answers for which object: matching anchors/proposals to ground truth, and balanced sampling."""

from __future__ import annotations

import torch
from torch import Tensor

BACKGROUND = -1  # matched index for "IoU below the low threshold"
IGNORE = -2  # matched index for "between the thresholds": contributes no loss


class Matcher:
    """Assigns each prediction (column of an IoU matrix) the ground-truth box (row) it overlaps most.

    IoU >= high -> that GT's index; IoU < low -> BACKGROUND; in between -> IGNORE. With
    `allow_low_quality_matches`, every GT also keeps the predictions that overlap it best, even below
    `high` (the RPN needs this so that every object gets at least one anchor).
    """

    def __init__(self, high: float, low: float, allow_low_quality_matches: bool = False) -> None:
        if not low <= high:
            raise ValueError(f"Matcher(high={high}, low={low}): the low IoU threshold exceeds the high one")
        self.high, self.low = high, low
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, iou: Tensor) -> Tensor:
        """[G, P] IoU -> [P] int64: GT index, BACKGROUND or IGNORE."""
        if iou.numel() == 0:
            if iou.shape[0] == 0:  # no ground truth: everything is background
                return torch.full((iou.shape[1],), BACKGROUND, dtype=torch.int64, device=iou.device)
            raise ValueError("Matcher: no predictions to match")
        best_iou, matches = iou.max(dim=0)  # [P], [P]
        original = matches.clone() if self.allow_low_quality_matches else None
        matches[best_iou < self.low] = BACKGROUND
        matches[(best_iou >= self.low) & (best_iou < self.high)] = IGNORE
        if original is not None:
            # for each GT, every prediction tied for its highest IoU keeps its match
            best_per_gt = iou.max(dim=1, keepdim=True).values  # [G, 1]
            keep = torch.where(iou == best_per_gt)[1]
            matches[keep] = original[keep]
        return matches


class BalancedSampler:
    """Picks at most `batch_size` predictions per image, at most `positive_fraction` of them foreground."""

    def __init__(self, batch_size: int, positive_fraction: float) -> None:
        self.batch_size = batch_size
        self.positive_fraction = positive_fraction

    def __call__(self, labels: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """labels: per image [P] with 1+ foreground, 0 background, -1 ignore. Returns boolean masks."""
        pos_masks, neg_masks = [], []
        for lab in labels:  # a loop over images, not RoIs
            pos = torch.where(lab >= 1)[0]
            neg = torch.where(lab == 0)[0]
            num_pos = min(pos.numel(), int(self.batch_size * self.positive_fraction))
            num_neg = min(neg.numel(), self.batch_size - num_pos)
            pos = pos[torch.randperm(pos.numel(), device=pos.device)[:num_pos]]
            neg = neg[torch.randperm(neg.numel(), device=neg.device)[:num_neg]]
            pos_mask = torch.zeros_like(lab, dtype=torch.bool)
            neg_mask = torch.zeros_like(lab, dtype=torch.bool)
            pos_mask[pos] = True
            neg_mask[neg] = True
            pos_masks.append(pos_mask)
            neg_masks.append(neg_mask)
        return pos_masks, neg_masks

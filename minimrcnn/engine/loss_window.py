"""Loss bookkeeping that stays on the device: the training loop never waits for the GPU to log.

Reading a loss (`.item()`, `if not torch.isfinite(loss)`) makes the host wait until the GPU has finished
the iteration, so the next one cannot be queued behind it. `LossWindow` sums the losses on the device and
remembers, also on the device, the first iteration whose total loss was not finite and its loss terms.
The host looks only at logging steps and before each checkpoint (`means`, `check`): a run that diverges
still stops naming the iteration and the term, and the checkpoint on disk is the last good one.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.distributed as torch_dist
from torch import Tensor

from minimrcnn.engine import distributed as dist
from minimrcnn.errors import TrainingDiverged


class LossWindow:
    def __init__(self) -> None:
        self.keys: list[str] = []
        self.sums: Tensor | None = None  # [K + 1] the loss terms, then the total
        self.count = 0
        self.bad_iter: Tensor | None = None  # [] first iteration with a non-finite total, 0 if none
        self.bad_values: Tensor | None = None  # [K + 1] its loss terms

    def add(self, losses: dict[str, Tensor], iteration: int) -> None:
        """Record the losses of `iteration` (counted from 1). Device ops only."""
        values = torch.stack([v.detach().float() for v in losses.values()])  # [K]
        values = torch.cat([values, values.sum()[None]])  # [K + 1]
        if self.sums is None:
            self.keys = [*losses, "loss"]
            self.sums = torch.zeros_like(values)
            self.bad_iter = torch.zeros((), dtype=torch.int64, device=values.device)
            self.bad_values = torch.zeros_like(values)
        first = ~torch.isfinite(values[-1]) & (self.bad_iter == 0)
        self.bad_iter = torch.where(first, iteration, self.bad_iter)
        self.bad_values = torch.where(first, values, self.bad_values)
        self.sums += values
        self.count += 1

    def check(self, checkpoint: Path) -> None:
        """Raise TrainingDiverged (on every process) if any process saw a non-finite loss. Syncs."""
        if self.bad_iter is None:
            return
        flag = (self.bad_iter > 0).to(torch.int64)
        if torch_dist.is_initialized():
            torch_dist.all_reduce(flag, op=torch_dist.ReduceOp.MAX)
        if not flag.item():
            return
        mine = None
        if self.bad_iter.item() > 0:
            terms = dict(zip(self.keys[:-1], self.bad_values[:-1].tolist()))
            mine = (int(self.bad_iter.item()), terms)
        it, terms = min(x for x in dist.gather(mine) if x is not None)
        bad = ", ".join(f"{k}={v:.4g}" for k, v in terms.items() if not math.isfinite(v))
        last = f"last good checkpoint: {checkpoint}" if checkpoint.exists() else "no checkpoint yet"
        bad = bad or "the sum of the terms"
        raise TrainingDiverged(f"iteration {it}: non-finite loss ({bad}); stopped, {last}")

    def means(self) -> dict[str, float]:
        """Mean of each loss (and "loss", the total) since the last call, over all processes. Syncs."""
        assert self.sums is not None and self.count > 0
        means = dist.mean_over_processes(self.sums / self.count).tolist()
        self.sums.zero_()
        self.count = 0
        return dict(zip(self.keys, means))

"""A recipe scaled to the total batch: one GPU or 64 run the same epochs (Detectron2's auto_scale_workers).

A recipe (a preset's TrainConfig) is written for `base_batch_size` images per iteration: COCO's 1x is
16 images x 90k iterations, about 12 epochs of train2017. `scaled_schedule` gives the lr, length, lr
steps and warmup that a run with another total batch follows: the one schedule object of a run. The trainer
prints it, computes every step's learning rate from it (`trainer.lr_factor`), replaces its length when a time
budget is planned, and writes it to config.json under `effective`.
"""

from __future__ import annotations

from dataclasses import dataclass

from minimrcnn.config import TrainConfig


@dataclass
class ScaledSchedule:
    """The schedule a run follows: the recipe scaled to the total batch (see `scaled_schedule`). Its fields
    carry TrainConfig's names, so `trainer.lr_factor` reads either."""

    total_batch: int  # images per iteration, all processes together
    lr: float  # the peak learning rate
    iters: int  # the run's length: the schedule reaches its final value here
    lr_steps: tuple[int, ...]
    warmup_iters: int
    schedule: str  # step | cosine
    lr_gamma: float  # step decay: the factor at each of lr_steps
    warmup_factor: float  # the warmup starts at lr x warmup_factor
    scale: float  # base_batch_size / total_batch when the schedule is scaled, else 1
    explicit_iters: bool = False  # the length was given (train.fixed_iters, --iters), not scaled
    scaled: bool = False  # TrainConfig.scale_schedule

    def describe(self) -> str:
        steps = ", ".join(map(str, self.lr_steps)) or "none"
        if self.explicit_iters:
            how = "length from --iters"
            how += ", steps and warmup at the recipe's fractions" if self.scaled else ""
        else:
            how = f"the recipe's iterations x{self.scale:.4g}" if self.scaled else "the recipe as written"
        return (
            f"schedule: total batch {self.total_batch}, lr {self.lr:.4g}, {self.iters} iterations, "
            f"lr steps at {steps}, warmup {self.warmup_iters} ({how})"
        )


def scaled_schedule(tc: TrainConfig, world: int) -> ScaledSchedule:
    """Scale the recipe to the total batch the way Detectron2's `auto_scale_workers` does.

    A recipe is written for `base_batch_size` images per iteration. With a total batch B:
    - scale_lr: lr x B / base (the linear scaling rule);
    - scale_schedule: iters, lr_steps and warmup_iters x base / B, so the run sees as many epochs as the
      recipe (batch 2 on one GPU: 8x the iterations at 1/8 of the lr).
    An explicit length (`fixed_iters`, the command line's --iters) wins: the run has that length, and with
    scale_schedule the lr steps and the warmup keep their place as fractions of the recipe (a short run of
    the same shape).
    """
    total = tc.batch_size * world
    lr = tc.lr * total / tc.base_batch_size if tc.scale_lr else tc.lr
    scale = tc.base_batch_size / total if tc.scale_schedule else 1.0
    n = tc.fixed_iters or round(tc.iters * scale)
    stretch = n / tc.iters if tc.scale_schedule else 1.0
    return ScaledSchedule(
        total_batch=total,
        lr=lr,
        iters=n,
        lr_steps=tuple(max(1, round(s * stretch)) for s in tc.lr_steps),
        warmup_iters=round(tc.warmup_iters * stretch),
        schedule=tc.schedule,
        lr_gamma=tc.lr_gamma,
        warmup_factor=tc.warmup_factor,
        scale=scale,
        explicit_iters=tc.fixed_iters > 0,
        scaled=tc.scale_schedule,
    )

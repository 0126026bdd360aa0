"""A time budget becomes an iteration count, so that the schedule ends when the budget does.

A run with `train.time_budget_s > 0` (the CPU preset) has to be a *finished* run on any machine: its
learning rate annealed to the schedule's final value and its evaluation written, all within the budget.
Stopping a fixed schedule when the clock runs out does not do that: on a machine twice as slow the run is
cut halfway down its cosine, with the learning rate still high, and the model is half trained.

So the trainer times the first iterations after warm-up, and `plan` fixes the total iteration count from the
measured rate: what remains of the budget, less the time the evaluation will take, divided by the seconds
per iteration (with a margin: later steps cost more once the heads see more positive RoIs). The schedule
then runs to that count. The plan is written to `config.json` and the checkpoint, and `--resume` reuses it,
so a resumed run is the same run as an uninterrupted one.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

now = time.perf_counter  # the trainer's clock (a test replaces it with a simulated machine)

TIMED_ITERS = 20  # iterations timed before planning ...
SKIPPED_ITERS = 5  # ... after this many (the first steps pay for allocations and thread-pool start-up)
# Plan for steps 20% slower than the first ones: later steps cost more, because the heads see more positive
# RoIs as the RPN learns. Measured on the shapes preset (2 threads, bf16): 0.245-0.268 s per step over
# iterations 5-50, 0.30-0.32 s from iteration 300 on, 1.15-1.2x the first steps over a whole run (a 30%
# margin left 21 s of a 285 s budget unused).
MARGIN = 0.20


@dataclass
class BudgetPlan:
    iters: int  # the run's total iterations: the schedule reaches its final value here
    seconds_per_iter: float  # measured
    measured_from: int  # the iterations timed: [measured_from, planned_at)
    planned_at: int
    budget_s: float
    elapsed_s: float  # of the budget, spent when the plan was made (data, model, the first iterations)
    eval_s: float  # kept for the evaluation
    capped: bool  # True when the budget allowed more than train.iters

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if self.capped:
            why = f"train.iters={self.iters} is the cap"
        else:
            why = (f"{self.budget_s:.0f} s budget - {self.elapsed_s:.0f} s spent - {self.eval_s:.0f} s for "
                   f"evaluation, at {self.seconds_per_iter:.3f} s/iteration + {MARGIN:.0%}")  # fmt: skip
        return (f"time budget: {self.seconds_per_iter:.3f} s/iteration measured over iterations "
                f"{self.measured_from}-{self.planned_at}; the schedule ends at iteration {self.iters} "
                f"({why})")  # fmt: skip


def plan(
    *,
    budget_s: float,
    elapsed_s: float,
    iteration: int,
    seconds_per_iter: float,
    eval_s: float,
    max_iters: int,
    measured_from: int,
) -> BudgetPlan:
    """The total iteration count that fits the rest of the budget (at least one more iteration)."""
    remaining = budget_s - elapsed_s - eval_s
    fits = iteration + int(max(remaining, 0.0) / (seconds_per_iter * (1 + MARGIN)))
    total = max(iteration + 1, min(fits, max_iters))
    return BudgetPlan(
        iters=total,
        seconds_per_iter=round(seconds_per_iter, 5),
        measured_from=measured_from,
        planned_at=iteration,
        budget_s=budget_s,
        elapsed_s=round(elapsed_s, 2),
        eval_s=round(eval_s, 2),
        capped=fits > max_iters,
    )


class BudgetTimer:
    """Times iterations from the `start`-th on; says when enough have been timed to plan."""

    def __init__(self, start: int, warmup_iters: int):
        self.first = start + SKIPPED_ITERS
        self.plan_at = max(self.first + TIMED_ITERS, warmup_iters)  # plan once warm-up is over
        self.t_first: float | None = None

    def tick(self, iteration: int) -> float | None:
        """Call after each iteration; returns the measured seconds per iteration when it is time to plan."""
        if iteration == self.first:
            self.t_first = now()
        if iteration == self.plan_at and self.t_first is not None:
            return (now() - self.t_first) / (self.plan_at - self.first)
        return None

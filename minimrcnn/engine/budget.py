"""A time budget becomes an iteration count, so that the schedule ends when the budget does.

A run with `train.time_budget_s > 0` (the CPU preset) has to be a *finished* run on any machine: its
learning rate annealed to the schedule's final value and its evaluation written, all within the budget
(which, from the command line, also pays for the process's start-up: `train(spent_s=...)`).
Stopping a fixed schedule when the clock runs out does not do that: on a machine twice as slow the run is
cut halfway down its cosine, with the learning rate still high, and the model is half trained.

So the trainer times iterations once warm-up is over, and `plan` returns the total iteration count from the
measured rate: what remains of the budget, less the time the evaluation will take, divided by the seconds
per iteration (with a margin, because later steps cost more, and for noise). The trainer's schedule then
runs to that count. Until the plan is made the cosine runs towards the cap (`train.iters`); the switch to the
planned length moves the learning rate by a few percent of its peak, early in the run. The plan is written
to `config.json` and the checkpoint, and `--resume` reuses it (and goes on revising it: below).

Why time after warm-up: the first steps are the cheapest of the run. The RPN still proposes random boxes,
few RoIs are positive, and the mask head has little to do, so a plan made from them overruns.

Why revise: a margin large enough for the worst case wastes the budget in the common one, and no margin is
large enough for a machine that slows down as it runs. So the plan is revised at every checkpoint
(`checkpoint_every`) until the run ends, from the rate since the previous plan and with a smaller margin,
since less of the run is left to go wrong; a late revision moves an lr that is already small by little.
Each revision happens just before a checkpoint is written, so every checkpoint carries the plan in force and
the budget's clock (`budget_elapsed_s`); `--resume` restarts that clock where the checkpoint left it and goes
on revising from its own measured rate. The measurements behind these choices (step costs over a run, the
margins, runs on slower machines) are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

now = time.perf_counter  # the trainer's clock (a test replaces it with a simulated machine)

TIMED_ITERS = 100  # iterations timed before planning, from the end of warm-up ...
SKIPPED_ITERS = 5  # ... but never the first of a run or of a resumed one (allocations, thread-pool start-up)
# Plan for steps 30% slower than the timed ones: later steps still cost more (the mask head sees more
# positive RoIs as the RPN learns), and a laptop is rarely a quiet machine (see benchmarks/RESULTS.md).
MARGIN = 0.30
REVISION_MARGIN = 0.10  # a revision knows the run's later, dearer steps; less is left to go wrong


@dataclass
class BudgetPlan:
    iters: int  # the run's total iterations: the schedule reaches its final value here
    seconds_per_iter: float  # measured
    measured_from: int  # the iterations timed: [measured_from, planned_at)
    planned_at: int
    budget_s: float
    elapsed_s: float  # of the budget, spent when the plan was made (data, model, warm-up, timed iterations)
    eval_s: float  # kept for the evaluation
    capped: bool  # True when the budget allowed more than train.iters
    margin: float = MARGIN
    revision: int = 0  # 0: the first plan; n: its n-th revision

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if self.capped:
            why = f"train.iters={self.iters} is the cap"
        else:
            why = (
                f"{self.budget_s:.0f} s budget - {self.elapsed_s:.0f} s spent - {self.eval_s:.0f} s for "
                f"evaluation, at {self.seconds_per_iter:.3f} s/iteration + {self.margin:.0%}"
            )
        what = "time budget" if self.revision == 0 else f"time budget, revision {self.revision}"
        return (
            f"{what}: {self.seconds_per_iter:.3f} s/iteration measured over iterations "
            f"{self.measured_from}-{self.planned_at}; the schedule ends at iteration {self.iters} "
            f"({why})"
        )


def plan(
    *,
    budget_s: float,
    elapsed_s: float,
    iteration: int,
    seconds_per_iter: float,
    eval_s: float,
    max_iters: int,
    measured_from: int,
    revision: int = 0,
) -> BudgetPlan:
    """The total iteration count that fits the rest of the budget (at least one more iteration)."""
    margin = MARGIN if revision == 0 else REVISION_MARGIN
    remaining = budget_s - elapsed_s - eval_s
    fits = iteration + int(max(remaining, 0.0) / (seconds_per_iter * (1 + margin)))
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
        margin=margin,
        revision=revision,
    )


def may_revise(plan: BudgetPlan, iteration: int) -> bool:
    """Whether the plan in force may still be revised at this iteration (see the module's docstring)."""
    return plan.planned_at < iteration < plan.iters


class BudgetTimer:
    """Times iterations after warm-up: TIMED_ITERS of them before the first plan, then each window between
    one plan and the next (call `restart` after each)."""

    def __init__(self, start: int, warmup_iters: int) -> None:
        self.first = max(start + SKIPPED_ITERS, warmup_iters)
        self.plan_at = self.first + TIMED_ITERS
        self.t_first: float | None = None

    def tick(self, iteration: int) -> float | None:
        """Call after each iteration; returns the measured seconds per iteration when it is time to plan."""
        if iteration == self.first:
            self.t_first = now()
        if iteration == self.plan_at and self.t_first is not None:
            return self.rate(iteration)
        return None

    def rate(self, iteration: int) -> float | None:
        """Seconds per iteration since the window began, once TIMED_ITERS iterations of it have been timed."""
        if self.t_first is None or iteration - self.first < TIMED_ITERS:
            return None
        return (now() - self.t_first) / (iteration - self.first)

    def restart(self, iteration: int) -> None:
        """A plan was made after `iteration`: the next window starts here."""
        self.first, self.t_first = iteration, now()

"""A time budget becomes an iteration count: the schedule ends (lr at its final value, then evaluation) when
the budget does, on a fast machine and on a slow one, and a killed budgeted run resumes exactly."""

import dataclasses
import json

import pytest
import torch

from minimrcnn.config import apply_overrides
from minimrcnn.engine import budget
from minimrcnn.engine.checkpoint import load_checkpoint
from minimrcnn.engine.trainer import lr_factor, train
from minimrcnn.presets import shapes_cpu

TINY = [
    "model.fpn_channels=32", "model.box_head_dim=64", "model.box_conv_dim=32", "model.mask_head_dim=32",
    "model.min_size=64", "model.max_size=64", "model.box_batch_size_per_image=32",
    "train.num_train_images=12", "train.num_val_images=4", "train.batch_size=2", "train.log_every=1",
    "train.warmup_iters=4", "train.checkpoint_every=4", "train.iters=500", "train.eval_at_end=false",
]  # fmt: skip


class SimulatedMachine:
    """A clock that advances `seconds_per_iter` per training iteration (fed by the trainer's on_log); after
    iteration `slower_after`, `slower` seconds per iteration instead."""

    def __init__(self, seconds_per_iter: float, stop_at: int | None = None, slower_after=None, slower=None):
        self.t, self.dt, self.stop_at = 0.0, seconds_per_iter, stop_at
        self.slower_after, self.slower = slower_after, slower

    def now(self) -> float:
        return self.t

    def on_log(self, record: dict) -> None:
        late = self.slower_after is not None and record["iteration"] > self.slower_after
        self.t += self.slower if late else self.dt
        if record["iteration"] == self.stop_at:
            raise KeyboardInterrupt  # the run is killed here (before this iteration's checkpoint)


def budget_cfg(data_root, budget_s: float):
    cfg = apply_overrides(shapes_cpu(), TINY)
    cfg.train.data_root = str(data_root)
    cfg.train.time_budget_s = budget_s
    return cfg


def run(monkeypatch, tmp_path, data_root, name, seconds_per_iter, budget_s=10.0, stop_at=None, resume=False,
        spent_s=0.0, **slower):  # fmt: skip
    machine = SimulatedMachine(seconds_per_iter, stop_at, **slower)
    monkeypatch.setattr(budget, "now", machine.now)
    monkeypatch.setattr(budget, "SKIPPED_ITERS", 1)
    monkeypatch.setattr(budget, "TIMED_ITERS", 1)  # plan at iteration 5 (warm-up 4, one timed), not 150
    cfg = budget_cfg(data_root, budget_s)
    result = train(cfg, tmp_path / name, resume=resume, progress=False, on_log=machine.on_log,
                   spent_s=spent_s)
    return result | {"clock": machine.t}, cfg


def test_plan_fits_the_rest_of_the_budget():
    p = budget.plan(budget_s=100, elapsed_s=10, iteration=25, seconds_per_iter=0.5, eval_s=8,
                    max_iters=10_000, measured_from=5)  # fmt: skip
    assert p.iters == 25 + int(82 / (0.5 * (1 + budget.MARGIN))) and not p.capped
    assert "iteration 5-25" in p.describe().replace("iterations ", "iteration ")
    capped = budget.plan(budget_s=100, elapsed_s=10, iteration=25, seconds_per_iter=0.01, eval_s=0,
                         max_iters=300, measured_from=5)  # fmt: skip
    assert capped.iters == 300 and capped.capped and "cap" in capped.describe()
    late = budget.plan(budget_s=10, elapsed_s=30, iteration=25, seconds_per_iter=1, eval_s=0, max_iters=300,
                       measured_from=5)  # fmt: skip
    assert late.iters == 26  # over budget already: finish the schedule at once


@pytest.mark.parametrize("seconds_per_iter", [0.5, 0.9])  # a machine, and one 1.8x slower
def test_schedule_ends_when_the_budget_ends(monkeypatch, tmp_path, seconds_per_iter):
    result, cfg = run(monkeypatch, tmp_path, tmp_path / "data", "run", seconds_per_iter)
    plan = json.loads((tmp_path / "run" / "config.json").read_text())["budget_plan"]
    expected = budget.plan(budget_s=10.0, elapsed_s=(plan["planned_at"] - 1) * seconds_per_iter,
                           iteration=plan["planned_at"], seconds_per_iter=seconds_per_iter, eval_s=0.0,
                           max_iters=500, measured_from=plan["measured_from"],
                           revision=plan["revision"])  # fmt: skip
    assert plan["iters"] == expected.iters == result["iteration"]
    assert plan["seconds_per_iter"] == pytest.approx(seconds_per_iter)
    log = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["iteration"] == plan["iters"]
    planned = dataclasses.replace(cfg.train, iters=plan["iters"])  # train() works on a copy of cfg
    assert log[-1]["lr"] == pytest.approx(cfg.train.lr * lr_factor(plan["iters"], planned), abs=1e-12)
    assert log[-1]["lr"] < 1e-9  # the cosine has reached its final value at the last iteration
    assert (plan["iters"] - 1) * seconds_per_iter <= 10.0  # and it ended inside the budget
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["effective"]["iters"] == plan["iters"] and saved["train"]["iters"] == 500  # planned; the cap
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["budget_plan"] == plan


def test_slower_machine_plans_fewer_iterations(monkeypatch, tmp_path):
    fast, _ = run(monkeypatch, tmp_path, tmp_path / "data", "fast", 0.5)
    slow, _ = run(monkeypatch, tmp_path, tmp_path / "data", "slow", 0.9)
    assert slow["iteration"] < fast["iteration"]


def test_killed_budgeted_run_resumes_exactly(monkeypatch, tmp_path):
    data = tmp_path / "data"
    straight, _ = run(monkeypatch, tmp_path, data, "straight", 0.5, budget_s=20.0)
    final = json.loads((tmp_path / "straight" / "config.json").read_text())["budget_plan"]
    assert final["revision"] >= 2 and final["planned_at"] > 12  # revised at checkpoints 8, 12, ...
    with pytest.raises(KeyboardInterrupt):
        # killed in iteration 10: after the plan (iteration 5), its revision and checkpoint at 8
        run(monkeypatch, tmp_path, data, "killed", 0.5, budget_s=20.0, stop_at=10)
    killed = load_checkpoint(tmp_path / "killed" / "checkpoint.pt")
    assert killed["iteration"] == 8 and killed["budget_plan"]["revision"] == 1
    assert killed["budget_elapsed_s"] == pytest.approx(8 * 0.5)
    # resumed: the budget's clock goes on from the checkpoint's, so the later revisions are the same
    resumed, _ = run(monkeypatch, tmp_path, data, "killed", 0.5, budget_s=20.0, resume=True)
    assert resumed["iteration"] == straight["iteration"]
    assert json.loads((tmp_path / "killed" / "config.json").read_text())["budget_plan"] == final
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "killed" / "checkpoint.pt")["model"]
    for k, v in a.items():
        torch.testing.assert_close(b[k], v, rtol=1e-5, atol=1e-6, msg=f"{k} differs after resume")


def test_revisions_use_the_margin_the_first_plan_left(monkeypatch, tmp_path):
    """The first plan keeps 30% in hand; revised at checkpoints, the run ends close to the budget, not 23%
    short of it, and a machine that slows down after the plan still ends inside it."""
    steady, _ = run(monkeypatch, tmp_path, tmp_path / "data", "steady", 0.5, budget_s=20.0)
    first = budget.plan(budget_s=20.0, elapsed_s=4 * 0.5, iteration=5, seconds_per_iter=0.5, eval_s=0.0,
                        max_iters=500, measured_from=4)  # fmt: skip
    assert first.iters * 0.5 <= 0.8 * 20.0  # the first plan alone would leave a fifth of the budget unused
    assert 0.9 * 20.0 <= steady["clock"] <= 20.0 and steady["iteration"] > first.iters
    slowing, _ = run(monkeypatch, tmp_path, tmp_path / "data", "slowing", 0.5, budget_s=20.0,
                     slower_after=6, slower=0.8)  # fmt: skip
    assert slowing["clock"] <= 20.0 and slowing["iteration"] < first.iters
    log = [json.loads(x) for x in (tmp_path / "slowing" / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["iteration"] == slowing["iteration"] and log[-1]["lr"] < 1e-9  # the schedule still ended


def test_start_up_is_charged_to_the_budget(monkeypatch, tmp_path):
    """The command line's start-up (importing torch, ~5 s) counts: the run plans for what is left after it,
    so that the whole process, not only train(), fits in the budget."""
    plain, _ = run(monkeypatch, tmp_path, tmp_path / "data", "plain", 0.5, budget_s=20.0)
    late, _ = run(monkeypatch, tmp_path, tmp_path / "data", "late", 0.5, budget_s=20.0, spent_s=5.0)
    assert late["iteration"] < plain["iteration"]
    assert 5.0 + late["clock"] <= 20.0 < 5.0 + plain["clock"]  # without the charge, the process would overrun
    plan = json.loads((tmp_path / "late" / "config.json").read_text())["budget_plan"]
    assert plan["elapsed_s"] == pytest.approx(5.0 + (plan["planned_at"] - 1) * 0.5)


def test_revisions_until_the_end_of_the_run():
    plan = budget.plan(budget_s=100.0, elapsed_s=10.0, iteration=150, seconds_per_iter=0.01, eval_s=0.0,
                       max_iters=1000, measured_from=50)
    assert plan.iters == 1000 and plan.planned_at == 150
    assert budget.may_revise(plan, 400) and budget.may_revise(plan, 999)
    assert not budget.may_revise(plan, 1000) and not budget.may_revise(plan, 150)


def test_timer_measures_after_warmup():
    """The first iterations are the run's cheapest (few positive RoIs): the rate is timed after warm-up; after
    each plan, the next window starts afresh and gives a rate once TIMED_ITERS iterations of it are timed."""
    t = budget.BudgetTimer(start=0, warmup_iters=50)
    assert (t.first, t.plan_at) == (50, 50 + budget.TIMED_ITERS)
    resumed = budget.BudgetTimer(start=120, warmup_iters=50)  # resumed from a checkpoint made before the plan
    assert (resumed.first, resumed.plan_at) == (125, 125 + budget.TIMED_ITERS)
    clock = iter([10.0, 30.0, 30.0, 50.0])
    budget_now, budget.now = budget.now, lambda: next(clock)
    try:
        ticks = [t.tick(i) for i in range(1, t.plan_at + 1)]
        t.restart(t.plan_at)  # a plan was made: the next window starts at 30 s
        too_soon = t.rate(t.plan_at + budget.TIMED_ITERS // 2)
        revised = t.rate(t.plan_at + budget.TIMED_ITERS)
    finally:
        budget.now = budget_now
    assert ticks[:-1] == [None] * (t.plan_at - 1) and ticks[-1] == pytest.approx(20.0 / budget.TIMED_ITERS)
    assert too_soon is None and revised == pytest.approx(20.0 / budget.TIMED_ITERS)

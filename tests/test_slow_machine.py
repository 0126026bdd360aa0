"""benchmarks/slow_machine.py: every optimizer step and the evaluation are stretched by the factor, on a clock
the test controls, so the stand-in for a slower machine is exact and the classes are restored afterwards."""

import importlib.util
from pathlib import Path

import pytest
import torch

from minimrcnn.engine import trainer

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("slow_machine", ROOT / "benchmarks" / "slow_machine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeClock:
    """perf_counter and sleep on simulated time: work advances it by hand, sleep by what it is asked."""

    def __init__(self, start: float):
        self.t = start
        self.slept: list[float] = []

    def perf_counter(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_steps_startup_and_evaluation_take_factor_times_longer(monkeypatch):
    slow = load_script()
    clock = FakeClock(start=slow.minimrcnn.STARTED)
    monkeypatch.setattr(slow.time, "perf_counter", clock.perf_counter)
    monkeypatch.setattr(slow.time, "sleep", clock.sleep)
    for cls in (torch.optim.AdamW, torch.optim.SGD):
        monkeypatch.setattr(cls, "step", cls.step)  # restored after the test
    def evaluate(seconds: float) -> None:  # an evaluation that takes `seconds` of work
        clock.t += seconds

    monkeypatch.setattr(trainer, "evaluate", evaluate)

    slow.slow_down(2.5)
    param = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.AdamW([param], lr=0.1)
    param.grad = torch.ones(3)

    clock.t += 10.0  # start-up and the first iteration's work
    opt.step()
    clock.t += 0.2  # the second iteration's work
    opt.step()
    trainer.evaluate(4.0)
    assert clock.slept == pytest.approx([15.0, 0.3, 6.0])  # (2.5 - 1) x each stretch of work
    assert clock.t - slow.minimrcnn.STARTED == pytest.approx(2.5 * (10.0 + 0.2 + 4.0))
    assert param.detach().lt(1).all()  # the real update still ran

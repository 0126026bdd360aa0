"""Chapter 07 exercises: the checkers name typical mistakes, and the solutions agree with the trainer
(``lr_factor`` and the learning rate ``build_optimizer`` sets). The contract every checker keeps (accepts
the solution, names a stub, never raises) is tested for all chapters in ``test_chapter_checkers.py``."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from minimrcnn.engine import trainer
from minimrcnn.presets import coco_r50_fpn_1x, coco_r50_fpn_paper, shapes_cpu
from minimrcnn.solutions import ch07


def _factor_variant(**kw):
    return lambda it, cfg: ch07._factor(it, cfg, **kw)


@pytest.mark.parametrize(
    ("student", "hint"),
    [
        (_factor_variant(warm="none"), "no warmup"),
        (_factor_variant(warm="zero"), "starts at 0"),
        (_factor_variant(strict=True), "one iteration late"),
        (_factor_variant(once=True), "gamma twice"),
        (_factor_variant(clamp=False), "climbs back up"),
        (lambda it, cfg: ch07.lr_factor(it, cfg) * cfg.lr, "not the learning rate itself"),
    ],
)
def test_lr_factor_hints(student, hint, capsys):
    assert ch07.check_lr_factor(student) is False
    assert hint in capsys.readouterr().out


@pytest.mark.parametrize(
    ("student", "hint"),
    [
        (lambda cfg, world: cfg.lr * cfg.batch_size / cfg.base_batch_size if cfg.scale_lr else cfg.lr,
         "counts every process"),
        (lambda cfg, w: cfg.lr * cfg.base_batch_size / (cfg.batch_size * w) if cfg.scale_lr else cfg.lr,
         "upside down"),
        (lambda cfg, world: cfg.lr * cfg.batch_size * world / cfg.base_batch_size, "used as it is"),
        (lambda cfg, world: cfg.lr, "scale the rate"),
    ],
)  # fmt: skip
def test_scaled_lr_hints(student, hint, capsys):
    assert ch07.check_scaled_lr(student) is False
    assert hint in capsys.readouterr().out


@pytest.mark.parametrize("preset", [shapes_cpu, coco_r50_fpn_1x, coco_r50_fpn_paper])
def test_lr_factor_is_the_trainers(preset):
    tc = preset().train
    steps = [59_999, 60_000, 80_000, 90_000, 119_999, 120_000, tc.iters, tc.iters + 3]
    for it in list(range(0, 1200, 7)) + steps:
        assert math.isclose(ch07.lr_factor(it, tc), trainer.lr_factor(it, tc), rel_tol=1e-12, abs_tol=1e-15)


@pytest.mark.parametrize("world", [1, 2, 8])
@pytest.mark.parametrize(
    "tc", [coco_r50_fpn_1x().train, shapes_cpu().train, replace(coco_r50_fpn_1x().train, batch_size=4)]
)
def test_scaled_lr_is_what_build_optimizer_sets(tc, world):
    model = torch.nn.Linear(2, 2)
    opt = trainer.build_optimizer(model, tc, world)
    assert all(math.isclose(g["lr"], ch07.scaled_lr(tc, world)) for g in opt.param_groups)


def test_question_4_is_the_papers_schedule_at_the_papers_batch(capsys):
    """4 GPUs x 4 images is the paper's batch of 16: its lr and its length, unscaled."""
    tc = coco_r50_fpn_paper().train
    total, lr, iters = ch07.answers()["coco_4gpu"]
    assert (total, lr, iters) == (tc.base_batch_size, tc.lr, tc.iters)
    assert ch07.check_answer_coco_4gpu((total, lr, iters)) is True
    assert f"{total * iters / 1e6:.2f} M images" in capsys.readouterr().out
    assert ch07.check_answer_coco_4gpu((total, lr, coco_r50_fpn_1x().train.iters)) is False
    assert "Detectron's 1x" in capsys.readouterr().out

"""Chapter 07 (training): exercise solutions and checkers.

Exercise 1, ``lr_factor``: the learning-rate multiplier at iteration ``it``: a linear warmup from
``warmup_factor`` to 1 over ``warmup_iters`` iterations, times a step decay (x ``lr_gamma`` at each of
``lr_steps``) or a cosine decay from 1 to 0 over ``iters`` iterations.
Exercise 2, ``scaled_lr``: the learning rate a run really uses, after the linear scaling rule.

The solution of exercise 1 is the trainer's own ``minimrcnn.engine.trainer.lr_factor``; ``scaled_lr`` is
checked against the rate that ``build_optimizer`` gives the optimizer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from minimrcnn.config import TrainConfig
from minimrcnn.engine.trainer import build_optimizer, lr_factor
from minimrcnn.presets import coco_r50_fpn_1x, coco_r50_fpn_paper, shapes_cpu
from minimrcnn.solutions.checking import StudentError, call, check_answer, close, report

__all__ = [
    "answers",
    "check_answer_coco_4gpu",
    "check_answer_resume_lr",
    "check_lr_factor",
    "check_scaled_lr",
    "lr_factor",
    "scaled_lr",
]


def scaled_lr(cfg: TrainConfig, world_size: int) -> float:
    """The linear scaling rule: the learning rate is proportional to the total batch.

    ``cfg.lr`` is the rate for a total batch of ``cfg.base_batch_size`` images; a run with ``world_size``
    processes of ``cfg.batch_size`` images each uses ``lr * total / base``. With ``scale_lr=False`` the
    rate is used as it is.
    """
    if not cfg.scale_lr:
        return cfg.lr
    return cfg.lr * cfg.batch_size * world_size / cfg.base_batch_size


# ----------------------------------------------------------------------------------------------
# checkers
# ----------------------------------------------------------------------------------------------


def _lr_cases() -> list[tuple[str, TrainConfig, list[int]]]:
    shapes, coco = shapes_cpu().train, coco_r50_fpn_1x().train
    short_step = replace(coco, iters=30, lr_steps=(10, 20), lr_gamma=0.5, warmup_iters=0)
    short_cos = replace(shapes, iters=100, warmup_iters=10, warmup_factor=0.1)
    return [
        (
            "shapes_cpu (cosine, warmup 50, 800 iterations)",
            shapes,
            [0, 1, 25, 49, 50, 51, 200, 400, 799, 800, 850],
        ),
        (
            "coco_r50_fpn_1x (step at 60k and 80k, warmup 1000)",
            coco,
            [0, 1, 500, 999, 1000, 30_000, 59_999, 60_000, 60_001, 79_999, 80_000, 89_999, 90_000],
        ),
        ("step at 10 and 20, gamma 0.5, no warmup", short_step, [0, 5, 9, 10, 11, 19, 20, 29]),
        ("cosine over 100 iterations, warmup 10 from 0.1", short_cos, [0, 3, 9, 10, 50, 99, 100, 120]),
    ]


def _factor(
    it: int,
    cfg: TrainConfig,
    warm: str = "linear",
    strict: bool = False,
    once: bool = False,
    clamp: bool = True,
) -> float:
    """lr_factor with one typical mistake switched on (for the checker's hints)."""
    w = 1.0
    if warm != "none" and it < cfg.warmup_iters:
        a = it / cfg.warmup_iters
        w = a if warm == "zero" else cfg.warmup_factor * (1 - a) + a
    if cfg.schedule == "cosine":
        t = min(it, cfg.iters) if clamp else it
        return w * 0.5 * (1 + math.cos(math.pi * t / cfg.iters))
    reached = sum(1 for s in cfg.lr_steps if (it > s if strict else it >= s))
    return w * cfg.lr_gamma ** (min(reached, 1) if once else reached)


def _lr_variants() -> list[tuple[Callable[[int, TrainConfig], float], str]]:
    return [
        (
            lambda it, cfg: _factor(it, cfg, warm="none"),
            "no warmup: for it < warmup_iters multiply by a factor that grows linearly from warmup_factor "
            "(at it = 0) to 1 (at it = warmup_iters).",
        ),
        (
            lambda it, cfg: _factor(it, cfg, warm="zero"),
            "the warmup starts at 0, so the first step would do nothing: start it at warmup_factor, "
            "warmup_factor * (1 - alpha) + alpha with alpha = it / warmup_iters.",
        ),
        (
            lambda it, cfg: _factor(it, cfg, strict=True),
            "a step takes effect one iteration late: at it == step the rate is already multiplied by gamma "
            "(use it >= step).",
        ),
        (
            lambda it, cfg: _factor(it, cfg, once=True),
            "after the second step the rate is multiplied by gamma twice (gamma ** number of steps "
            "reached), not once.",
        ),
        (
            lambda it, cfg: _factor(it, cfg, clamp=False),
            "past the last iteration the cosine climbs back up: clamp the iteration at iters "
            "(the factor stays 0).",
        ),
        (
            lambda it, cfg: lr_factor(it, cfg) * cfg.lr,
            "return the factor that multiplies the base rate, not the learning rate itself.",
        ),
    ]


def check_lr_factor(fn: Callable[[int, TrainConfig], float]) -> bool:
    """Check a student's ``lr_factor(it, cfg)``; print a verdict, return True if right."""
    name = "lr_factor"
    cases = [(label, cfg, it) for label, cfg, its in _lr_cases() for it in its]
    got: list[float] = []
    for _, cfg, it in cases:
        try:
            out = call(fn, it, replace(cfg))
            got.append(float(out))
        except StudentError as err:
            return report(name, [str(err)], len(cases), "")
        except Exception:  # float() of a list, a string, a tensor of several values, ...
            return report(name, [f"return a number (a float); got {type(out).__name__}."], len(cases), "")
    wrong = [(c, g) for c, g in zip(cases, got) if not close(g, lr_factor(c[2], c[1]))]
    if not wrong:
        return report(
            name,
            [],
            len(cases),
            "Warmup, steps and cosine all match; minimrcnn's trainer uses exactly this factor.",
        )
    (label, cfg, it), out = wrong[0]
    problems = [
        f"{len(wrong)} of {len(cases)} cases differ, e.g. {label}, it = {it}: you say {out:.6g}, "
        f"the factor is {lr_factor(it, cfg):.6g}."
    ]
    for variant, message in _lr_variants():
        if all(close(g, variant(c[2], c[1])) for c, g in zip(cases, got)):
            problems.append(message)
            break
    return report(name, problems, len(cases), "")


def _scale_cases() -> list[tuple[str, TrainConfig, int]]:
    coco, shapes = coco_r50_fpn_1x().train, shapes_cpu().train
    return [
        ("coco_r50_fpn_1x on 8 GPUs (2 images each)", coco, 8),
        ("coco_r50_fpn_1x on 1 GPU", coco, 1),
        ("coco_r50_fpn_1x on 4 GPUs", coco, 4),
        ("coco_r50_fpn_1x, 4 images per GPU, 8 GPUs", replace(coco, batch_size=4), 8),
        ("shapes_cpu (scale_lr=False)", shapes, 1),
        ("shapes_cpu (scale_lr=False) on 2 processes", shapes, 2),
    ]


def _optimizer_lr(cfg: TrainConfig, world_size: int) -> float:
    """The learning rate the trainer's optimizer really gets for this config and number of processes."""
    return build_optimizer(torch.nn.Linear(1, 1), cfg, world_size).param_groups[0]["lr"]


def check_scaled_lr(fn: Callable[[TrainConfig, int], float]) -> bool:
    """Check a student's ``scaled_lr(cfg, world_size)``; print a verdict, return True if right."""
    name = "scaled_lr"
    cases = _scale_cases()
    wrong = []
    for label, cfg, world in cases:
        try:
            out = float(call(fn, replace(cfg), world))
        except StudentError as err:
            return report(name, [str(err)], len(cases), "")
        except Exception:  # float() of a list, a string, a tensor of several values, ...
            return report(name, ["return the learning rate as a number (a float)."], len(cases), "")
        want = _optimizer_lr(cfg, world)
        if not close(out, want):
            wrong.append((label, cfg, world, out, want))
    if not wrong:
        return report(name, [], len(cases), "Eight GPUs with 2 images each get the paper's 0.02.")
    label, cfg, world, out, want = wrong[0]
    problems = [
        f"{len(wrong)} of {len(cases)} cases differ, e.g. {label}: you say {out:.6g}, expected {want:.6g}."
    ]
    total = cfg.batch_size * world
    if not cfg.scale_lr:
        hints = [(cfg.lr * total / cfg.base_batch_size, "with scale_lr=False the rate is used as it is.")]
    else:
        hints = [
            (
                cfg.lr * cfg.batch_size / cfg.base_batch_size,
                "the total batch counts every process: batch_size * world_size images per iteration.",
            ),
            (cfg.lr * cfg.base_batch_size / total, "upside down: a larger batch gets a larger rate."),
            (cfg.lr, "scale the rate by total batch / base_batch_size (when scale_lr is set)."),
        ]
    for value, message in hints:
        if close(out, value):
            problems.append(message)
            break
    return report(name, problems, len(cases), "")


# ----------------------------------------------------------------------------------------------
# numeric answers to the chapter's questions
# ----------------------------------------------------------------------------------------------


def answers() -> dict[str, Any]:
    """The right values, from the trainer's own ``lr_factor`` and ``scaled_schedule``."""
    from minimrcnn.engine.scaling import scaled_schedule

    tc = replace(shapes_cpu().train, iters=600)
    paper = replace(coco_r50_fpn_paper().train, batch_size=4)
    sched = scaled_schedule(paper, world=4)
    return {
        "resume_lr": tc.lr * lr_factor(300, tc),
        "coco_4gpu": (sched.total_batch, sched.lr, sched.iters),
    }


def check_answer_resume_lr(answer: Any) -> bool:
    """Question 3: the lr of iteration 301 when a 300-iteration cosine run is resumed with iters=600."""
    want = answers()["resume_lr"]
    return check_answer(
        "question 3 (learning rate after resuming)",
        answer,
        want,
        atol=1e-6 * want,
        form="a learning rate",
        mistakes=(
            (
                0.0,
                "that is where the 300-iteration plan ended; with iters = 600 the cosine is "
                "recomputed for the new length, at step 300 of 600.",
            ),
            (shapes_cpu().train.lr, "the cosine does not restart: it is read at step 300 of 600."),
        ),
        why="lr x (1 + cos(pi x 300/600)) / 2: half the base rate, a jump up from the ~0 the run ended at.",
    )


def check_answer_coco_4gpu(answer: Any) -> bool:
    """Question 4: (total batch, learning rate, iterations) of coco_r50_fpn_paper on 4 GPUs x 4 images."""
    total, lr, iters = answers()["coco_4gpu"]
    detectron_1x = coco_r50_fpn_1x().train.iters
    return check_answer(
        "question 4 (4 GPUs x 4 images)",
        answer,
        (total, lr, iters),
        atol=1e-6,
        form="(total batch, learning rate, iterations)",
        mistakes=(
            ((4, 0.005, 4 * iters), "batch_size is per process: 4 GPUs x 4 images = 16."),
            ((16, 0.08, iters), "the rule is linear in the *total* batch: 16 / 16 x 0.02."),
            (
                (total, lr, detectron_1x),
                "that is Detectron's 1x (coco_r50_fpn_1x); the paper's "
                "schedule (coco_r50_fpn_paper) is longer.",
            ),
        ),
        why=f"{total} images per iteration, the paper's batch: lr {lr:g}, {iters:,d} iterations, "
        f"{total * iters / 1e6:.2f} M images.",
    )

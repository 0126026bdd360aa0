"""The contract every exercise checker keeps, for every chapter: accept the reference solution, say
"not implemented yet" for a stub, and never raise, whatever the student's function does.

Checkers are discovered: each ``check_<name>`` in ``minimrcnn.solutions.chXX`` is paired with the
solution ``<name>`` beside it. Chapter-specific tests (which mistakes a checker names) live in
``test_chapter_exercises_*.py``.
"""

import importlib
import pkgutil

import numpy as np
import pytest
import torch

import minimrcnn.solutions
from minimrcnn.solutions import ch00, ch01, ch02, ch03, ch04, ch05, ch07, ch09
from minimrcnn.solutions.checking import close


def _discover():
    pairs = []
    for info in sorted(pkgutil.iter_modules(minimrcnn.solutions.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"minimrcnn.solutions.{info.name}")
        for attr in sorted(dir(module)):
            if (
                attr.startswith("check_")
                and callable(getattr(module, attr, None))
                and hasattr(module, attr[6:])
            ):
                pairs.append(
                    pytest.param(getattr(module, attr), getattr(module, attr[6:]), id=f"{info.name}.{attr}")
                )
    return pairs


CHECKS = _discover()


def _discover_answers():
    """Each ``check_answer_<name>(value)`` of a chapter module, with the right value ``answers()[name]``."""
    pairs = []
    for info in sorted(pkgutil.iter_modules(minimrcnn.solutions.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"minimrcnn.solutions.{info.name}")
        for attr in sorted(dir(module)):
            if attr.startswith("check_answer_"):
                pairs.append(pytest.param(module, attr[len("check_answer_") :], id=f"{info.name}.{attr}"))
    return pairs


ANSWER_CHECKS = _discover_answers()


def _stub(*args, **kwargs):
    raise NotImplementedError


def _returns_none(*args, **kwargs):
    return None


def _crashes(*args, **kwargs):
    raise ValueError("oops")


def test_every_chapter_with_exercises_is_covered():
    chapters = {p.id.split(".")[0] for p in CHECKS}
    assert {"ch01", "ch02", "ch03", "ch04", "ch05", "ch06"} <= chapters


@pytest.mark.parametrize(("check", "solution"), CHECKS)
def test_checker_accepts_solution(check, solution, capsys):
    assert check(solution) is True
    assert capsys.readouterr().out.startswith("\u2713")


@pytest.mark.parametrize(("check", "solution"), CHECKS)
@pytest.mark.parametrize("student", [_stub, _returns_none], ids=["stub", "none"])
def test_checker_says_not_implemented(check, solution, student, capsys):
    assert check(student) is False
    assert "not implemented yet" in capsys.readouterr().out


@pytest.mark.parametrize(("check", "solution"), CHECKS)
@pytest.mark.parametrize(
    "student",
    [
        _crashes,
        lambda *a, **k: "a string",
        lambda *a, **k: 42,
        lambda *a, **k: [1.5, 2.5],
        lambda *a, **k: torch.zeros(2, 3),
        lambda *a, **k: torch.tensor(float("nan")),
    ],
    ids=["crashes", "string", "int", "list", "wrong-shape", "nan"],
)
def test_checker_never_raises(check, solution, student, capsys):
    assert check(student) is False
    assert capsys.readouterr().out.startswith("\u2717")


def test_one_comparison_for_every_checker():
    """`close`: float32-level agreement passes, a real difference or another shape does not, junk is False."""
    x = torch.rand(3, 4, dtype=torch.float64)
    assert close(x.float(), x) and close(x.tolist(), x) and close(np.asarray(x), x.float())
    assert not close(x + 1e-3, x) and not close(x, x.T) and not close(x[:2], x)
    assert close([1.0, 2.0], (1.0, 2.0 + 1e-7)) and not close([1.0, 2.0], [1.0]) and not close([1.0], 1.0)
    assert close(0.02, 0.02 * (1 + 1e-6)) and not close(0.02, 0.021)
    assert not close("a string", 1.0) and not close(torch.tensor(float("nan")), torch.tensor(float("nan")))


def test_every_chapter_with_questions_checks_its_numeric_answers():
    chapters = {p.id.split(".")[0] for p in ANSWER_CHECKS}
    assert {"ch00", "ch01", "ch02", "ch03", "ch04", "ch05", "ch07", "ch09"} <= chapters


@pytest.mark.parametrize(("module", "name"), ANSWER_CHECKS)
def test_answer_checker_contract(module, name, capsys):
    """The right value passes; unanswered, junk and a wrong value fail with a message; nothing raises."""
    check = getattr(module, f"check_answer_{name}")
    right = module.answers()[name]
    assert check(right) is True
    assert capsys.readouterr().out.startswith("\u2713")
    assert check(None) is False
    assert "not answered yet" in capsys.readouterr().out
    for junk in ("a string", float("nan"), True, [], {"a": 1}, object()):
        assert check(junk) is False
        out = capsys.readouterr().out
        assert out.startswith("\u2717") and "answer with" in out
    wrong = (np.asarray(right, dtype=np.float64) * 2 + 7).tolist()  # same form, every entry off
    assert check(wrong) is False
    assert "is not right" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("check", "answer", "message"),
    [
        (ch00.check_answer_resize_coco, ((800, 1067), (800, 1088)), "rounded down"),
        (ch00.check_answer_resize_coco, ((800, 1066), (800, 1066)), "multiples of 32"),
        (ch00.check_answer_resize_panorama, ((800, 3200), (800, 3200)), "max_size"),
        (ch00.check_answer_mask_cell, 28 / 400, "cells per pixel"),
        (ch01.check_answer_round_72, (4, 5), "swapped"),
        (ch01.check_answer_round_72, (5, 5), "even"),
        (ch01.check_answer_distinct_cells, 7, "only 3 cells"),
        (ch02.check_answer_samples_per_bin, 2, "ceil(3 / 7)"),
        (ch02.check_answer_aligned_shift, 0.5, "half the stride"),
        (ch03.check_answer_resnet_sizes, [(150, 225), (75, 112), (37, 56), (18, 28)], "rounds *up*"),
        (ch03.check_answer_padded_size, (600, 900), "multiples of 32"),
        (ch03.check_answer_levels, (2, 5), "sqrt(60 * 240)"),
        (ch03.check_answer_p2_cells, 25, "per side"),
        (ch04.check_answer_anchor_64_tall, (90, 46), "swapped"),
        (ch04.check_answer_anchor_64_tall, (45.25, 90.51), "before rounding"),
        (ch04.check_answer_p4_positions, [8, 24, 40, 56, 72, 88, 104, 120], "top-left"),
        (ch04.check_answer_deltas, (0.25, 0.0, 1.0, 0.0), "log 2"),
        (ch04.check_answer_rpn_sample, (3, 125), "fill the sample"),
        (ch05.check_answer_fc_params, 256 * 14 * 14 + 80 * 28 * 28, "multiply"),
        (ch07.check_answer_resume_lr, 0.0, "recomputed"),
        (ch07.check_answer_coco_4gpu, (4, 0.005, 640_000), "per process"),
        (ch09.check_answer_upscaled_512, 13.2, "at 128 px"),
        (ch09.check_answer_upscaled_512, 2.4, "coarser grid"),
    ],
)
def test_answer_checker_names_the_mistake(check, answer, message, capsys):
    assert check(answer) is False
    out = capsys.readouterr().out
    assert out.startswith("\u2717") and message in out


def test_answers_come_from_the_package():
    """Spot checks of the values the answer checkers accept, worked out by hand."""
    assert ch00.answers()["resize_coco"] == ((800, 1066), (800, 1088))
    assert ch00.answers()["resize_panorama"] == ((333, 1333), (352, 1344))
    assert ch03.answers()["resnet_sizes"] == [(150, 225), (75, 113), (38, 57), (19, 29)]
    assert ch04.answers()["anchor_64_tall"] == (46.0, 90.0)
    assert ch05.answers()["fc_params"] == 50176 * 62720 + 62720
    assert ch07.answers()["coco_4gpu"] == (16, 0.02, 160_000)

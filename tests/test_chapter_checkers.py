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

"""What every exercise checker shares: calling the student's function safely, comparing numbers with one
tolerance, and printing the verdict.

The contract (tests/test_chapter_checkers.py): a checker accepts the reference solution, says "not
implemented yet" for a stub, and never raises, whatever the student's function does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

# One tolerance for every checker: what correct float32 code reaches whatever the order of its operations,
# and far tighter than any of the mistakes the checkers name (half-pixel shifts, +1 areas, swapped axes).
RTOL, ATOL = 1e-4, 1e-6


class StudentError(Exception):
    """The student's function could not be called or returned nothing; ``str(self)`` says why."""


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the student's function; turn a stub or a crash into a friendly ``StudentError``."""
    try:
        out = fn(*args, **kwargs)
    except NotImplementedError:
        raise StudentError(
            "not implemented yet: replace `raise NotImplementedError` with your code."
        ) from None
    except Exception as err:  # the checker must never crash the notebook
        raise StudentError(f"your function raised {type(err).__name__}: {err}") from None
    if out is None:
        raise StudentError("not implemented yet: your function returned None (did you forget `return`?).")
    return out


def report(name: str, problems: list[str], n_cases: int, praise: str) -> bool:
    """Print the verdict for exercise ``name``; return True when there is nothing to complain about."""
    if not problems:
        print(f"\u2713 {name}: correct on all {n_cases} test cases. {praise}")
        return True
    print(f"\u2717 {name}: not quite yet.")
    for p in problems:
        print(f"  - {p}")
    return False


def close(a: Any, b: Any, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """True when a and b (tensors, arrays, numbers, nested lists of them, or lists of tensors of different
    shapes) have the same shapes and agree within the checkers' tolerance, compared in float64; False for
    anything that is not numbers."""
    try:
        x, y = (torch.as_tensor(np.asarray(v) if isinstance(v, np.ndarray) else v).double() for v in (a, b))
    except (TypeError, ValueError, RuntimeError):  # not numbers, or a list of maps of different shapes
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
            return all(close(p, q, rtol, atol) for p, q in zip(a, b))
        return False
    return x.shape == y.shape and bool(torch.allclose(x, y, rtol=rtol, atol=atol))


def close_each(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Elementwise `close` of two tensors of the same shape (to point at the entries that differ)."""
    return torch.isclose(a.double(), b.double(), rtol=RTOL, atol=ATOL)


def check_answer(
    name: str,
    answer: Any,
    expected: Any,
    *,
    atol: float = ATOL,
    mistakes: tuple[tuple[Any, str], ...] = (),
    form: str = "a number",
    why: str = "",
    mistake_atol: float | None = None,
) -> bool:
    """Check a numeric answer to a chapter question, with the exercise checkers' contract.

    ``answer`` is the student's value (a number or a tuple of numbers; ``None`` while unanswered),
    ``expected`` the right one, compared with ``close`` at tolerance ``atol`` (a question may ask for a
    rounded value). ``mistakes`` pairs typical wrong answers (recognized within ``mistake_atol``, by default
    ``atol``) with what to say about them; ``why`` is printed with a right answer. Prints the verdict,
    returns True only for the right answer, never raises.
    """
    try:
        if answer is None:
            raise StudentError("not answered yet: put your answer in place of None.")
        if not _numeric(answer):
            raise StudentError(f"answer with {form}; got {type(answer).__name__} {answer!r}.")
        if not close(answer, expected, rtol=0.0, atol=atol):
            for wrong, message in mistakes:
                if close(answer, wrong, rtol=0.0, atol=atol if mistake_atol is None else mistake_atol):
                    raise StudentError(f"{answer!r}: {message}")
            raise StudentError(f"{answer!r} is not right ({form} expected); look at the question again.")
    except StudentError as err:
        print(f"\u2717 {name}: not quite yet.\n  - {err}")
        return False
    print(f"\u2713 {name}: right. {why}".rstrip())
    return True


def _numeric(value: Any) -> bool:
    """True for a finite real number (not a bool), or a non-empty list/tuple/array/tensor of them."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        value = value.tolist()
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float, np.integer, np.floating)):
        return bool(np.isfinite(value))
    if isinstance(value, (list, tuple)):
        return len(value) > 0 and all(_numeric(v) for v in value)
    return False

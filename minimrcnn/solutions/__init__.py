"""Solutions to the chapter exercises, and the friendly checkers the chapters call.

Each ``chXX`` module holds, for chapter XX, the reference solution of every exercise and a
``check_<name>(student_fn)`` function. A checker never raises: it prints what is right or what
differs (a stub that is not implemented yet, a wrong shape, a half-pixel shift, swapped x and y, ...)
and returns ``True`` only when the student's function agrees with the solution on every test case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class _StudentError(Exception):
    """The student's function could not be called or returned nothing; ``str(self)`` says why."""


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the student's function; turn a stub or a crash into a friendly ``_StudentError``."""
    try:
        out = fn(*args, **kwargs)
    except NotImplementedError:
        raise _StudentError(
            "not implemented yet: replace `raise NotImplementedError` with your code."
        ) from None
    except Exception as err:  # the checker must never crash the notebook
        raise _StudentError(f"your function raised {type(err).__name__}: {err}") from None
    if out is None:
        raise _StudentError("not implemented yet: your function returned None (did you forget `return`?).")
    return out


def _report(name: str, problems: list[str], n_cases: int, praise: str) -> bool:
    """Print the verdict for exercise ``name``; return True when there is nothing to complain about."""
    if not problems:
        print(f"\u2713 {name}: correct on all {n_cases} test cases. {praise}")
        return True
    print(f"\u2717 {name}: not quite yet.")
    for p in problems:
        print(f"  - {p}")
    return False

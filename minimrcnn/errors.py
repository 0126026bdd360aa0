"""Errors a user can fix (a bad path, key or file): the command-line tools print them as one line."""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """Base class: the message names the file, field or key at fault."""


class ConfigError(UserError, ValueError):
    pass


class DataError(UserError, ValueError):
    """A problem with the data on disk (missing file, malformed JSON, ...)."""


class CheckpointError(UserError):
    pass


class WeightsError(UserError):
    pass


class TrainingDiverged(UserError):
    pass


def run_command(main: Callable[[], int | None]) -> None:
    """Call a command-line main(); a UserError (a bad file, key or value) exits 1, one line on stderr."""
    try:
        code = main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)

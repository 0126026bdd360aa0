"""Errors a user can fix (a bad path, key or file): the command-line tools print them as one line."""


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

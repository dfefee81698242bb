"""Errors caused by user input: the CLI prints their message as one line and exits with status 2."""


class UserError(Exception):
    """A mistake in the user's options, files or data, explained by its message."""

    def __init__(self, message: str = ""):
        # A DataLoader worker's error is raised again in the main process as the same type, its message replaced by
        # the worker's traceback; keep the original line, so the CLI still reports one line.
        if message.startswith("Caught ") and "\nOriginal Traceback" in message:
            message = message.rstrip().splitlines()[-1].partition(": ")[2]
        super().__init__(message)


class ConfigError(UserError, ValueError):
    """An invalid option value or config key."""


class DataError(UserError, ValueError):
    """A dataset whose files are missing, empty or laid out wrongly."""


class MissingPathError(UserError, FileNotFoundError):
    """A file or folder that the user named does not exist."""


class MissingExtraError(UserError, ImportError):
    """An optional dependency (a pyproject extra) that a feature needs is not installed."""


def require_positive(**values: int) -> None:
    """Raise a ConfigError naming the first option (as its flag) that is not positive."""
    for name, value in values.items():
        if not value > 0:  # nan too
            raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {value}")


class RunError(Exception):
    """A training run that stopped on its own account (its losses diverged, a write failed mid-run), with its last
    good checkpoint intact: the CLI prints the message as one line and exits with `status`."""

    status = 1


class NonFiniteError(RunError):
    """The losses or weights of a run became NaN or infinite."""


class Interrupted(RunError):
    """A run stopped by a signal (SIGINT, SIGTERM) after writing a checkpoint; exit status 128 + its number."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.status = 128 + signum

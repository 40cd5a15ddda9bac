"""One exception tree for the whole project.

Every error raised on purpose by NovaCron derives from :class:`NovacronError`. The two
branches carry retry policy: a :class:`PermanentError` will fail again if retried with the
same input, a :class:`TemporaryError` may succeed later and says after how long.
Third-party errors are wrapped (``raise X(...) from exc``) so callers only catch ours.
"""

from __future__ import annotations

__all__ = [
    "ActuatorError",
    "ConfigError",
    "ConflictError",
    "InputError",
    "MissingExtraError",
    "NotEnoughDataError",
    "NotFoundError",
    "NovacronError",
    "PermanentError",
    "SafetyBlockedError",
    "StoreConstraintError",
    "StoreError",
    "StoreUnreachableError",
    "TemporaryError",
]


class NovacronError(Exception):
    """Root of every error NovaCron raises on purpose."""


class PermanentError(NovacronError):
    """Retrying with the same input will fail the same way."""


class TemporaryError(NovacronError):
    """A transient failure; ``delay`` is the suggested wait in seconds before a retry."""

    def __init__(self, message: str, *, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay


class InputError(PermanentError):
    """Bad input from a user: names the offending field or location in ``where``."""

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.reason = message


class ConfigError(InputError):
    """An invalid fleet spec, runbook or settings file."""


class NotEnoughDataError(InputError):
    """A computation needs more history than it was given."""


class NotFoundError(PermanentError):
    """A named record (target, incident, action, token) does not exist."""


class ConflictError(PermanentError):
    """The record exists but its state refuses the request (an approval already decided)."""


class MissingExtraError(PermanentError):
    """A feature needs an optional dependency that is not installed; ``extra`` names the extra to add."""

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class SafetyBlockedError(PermanentError):
    """The safety gate refused an action; ``reason`` says which rail."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ActuatorError(TemporaryError):
    """An actuator could not carry out an action right now."""


class StoreError(TemporaryError):
    """The store could not complete an operation."""


class StoreUnreachableError(StoreError):
    """The store refused or never answered a connection (the CLI's exit code 3)."""


class StoreConstraintError(PermanentError):
    """The store refused a write that breaks one of its rules (a row whose parent is gone, a duplicate key).

    Not a :class:`StoreError`: writing the same row again fails the same way, so it is
    never retried. The message names the table, the row's key and what it refers to.
    """

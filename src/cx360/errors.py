"""One root exception; each domain error says what went wrong and how to fix it.

``http_status`` lets the API map an error to a response without a lookup table;
``retryable`` tells stream consumers whether trying again can help.
"""

from __future__ import annotations


class Cx360Error(Exception):
    """Root of every error cx360 raises on purpose."""

    http_status = 500
    retryable = False


class ConfigError(Cx360Error):
    """The workspace file is missing, malformed or inconsistent."""

    http_status = 400


class SourceError(Cx360Error):
    """A source cannot be read at all (missing file, unreachable database)."""

    http_status = 422


class TransientSourceError(SourceError):
    """A source failed in a way that may pass on a retry (file vanished, connection dropped)."""

    retryable = True


class EngineError(Cx360Error):
    """The engine failed to run a step; carries the step name and what it ran."""

    def __init__(self, step: str, detail: str, cause: BaseException | None = None):
        self.step = step
        self.detail = detail
        message = f"step '{step}' failed: {cause}" if cause else f"step '{step}' failed"
        if detail:
            message += f"\n  while running: {detail}"
        super().__init__(message)


class MissingDependencyError(Cx360Error):
    """An optional component is used without its extra installed."""

    def __init__(self, what: str, extra: str):
        super().__init__(f"{what} needs an optional dependency: pip install 'cx360[{extra}]'")


class NotFoundError(Cx360Error):
    http_status = 404


class DataError(Cx360Error):
    """A table does not fit what was asked of it (a missing column, a label that is not binary)."""

    http_status = 422


class ModelError(Cx360Error):
    """A saved model is missing, incomplete or unreadable."""

    http_status = 422


class AuthError(Cx360Error):
    """No API key, or a key that is unknown or revoked."""

    http_status = 401


class ForbiddenError(Cx360Error):
    """The key's role may not do this."""

    http_status = 403


class RateLimitError(Cx360Error):
    """Too many requests of one kind from one key; `retry_after` says, in seconds, when to try again."""

    http_status = 429
    retryable = True

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class UnavailableError(Cx360Error):
    """A service cx360 needs (the audit log) cannot be reached now; trying again later may work."""

    http_status = 503
    retryable = True

"""One root exception; each domain error says what went wrong and how to fix it.

``http_status`` lets the API map an error to a response without a lookup table;
``retryable`` tells stream consumers whether trying again can help; ``exit_code`` is what the CLI
exits with (sysexits: 75 is "temporary failure, try again later").
"""

from __future__ import annotations

import re


class Cx360Error(Exception):
    """Root of every error cx360 raises on purpose."""

    http_status = 500
    retryable = False
    exit_code = 1


class ConfigError(Cx360Error):
    """The workspace file is missing, malformed or inconsistent."""

    http_status = 400


class SourceError(Cx360Error):
    """A source cannot be read at all (missing file, unreachable database)."""

    http_status = 422


class TransientSourceError(SourceError):
    """A source failed in a way that may pass on a retry (file vanished, connection dropped)."""

    retryable = True


_SECRET = re.compile(r"'[0-9a-f]{64}'")


class EngineError(Cx360Error):
    """The engine failed to run a step; carries the step name and what it ran."""

    def __init__(self, step: str, detail: str, cause: BaseException | None = None):
        # A quoted 64-hex-digit literal is a key (the vault's token key is one): never show it.
        self.step = step
        self.detail = _SECRET.sub("'…'", detail)
        message = f"step '{step}' failed: {cause}" if cause else f"step '{step}' failed"
        if detail:
            message += f"\n  while running: {self.detail}"
        super().__init__(_SECRET.sub("'…'", message))


class WarehouseLockedError(EngineError):
    """Another process holds the warehouse (DuckDB allows one writer): wait for it and try again."""

    http_status = 503
    retryable = True
    exit_code = 75

    def __init__(self, path: str, holder: str = ""):
        Cx360Error.__init__(
            self,
            f"the warehouse {path} is in use by another process{holder}; wait for it to "
            "finish (or stop it, e.g. `cx360 serve`) and try again",
        )
        self.step, self.detail = "connect", ""


class StageNotRunError(Cx360Error):
    """A stage needs the output of an earlier stage that has not run, or ran on older inputs: run it first.

    ``stage`` is the earlier stage (see cx360.pipeline), ``command`` the command that runs it.
    """

    http_status = 409

    def __init__(self, what: str, *, stage: str, workspace: object = None, command: str | None = None):
        import shlex

        self.stage = stage
        where = f" -w {shlex.quote(str(workspace))}" if workspace is not None else ""
        self.command = command or f"cx360 run --select {stage}{where}"
        super().__init__(f"{what}: run `{self.command}` first")


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


class NotFittedError(ModelError):
    """A model was asked to predict before ``fit``."""


class FitError(ModelError):
    """The data cannot support a fit (too few customers, bad values) or the optimiser failed."""


class TrainingDataError(DataError):
    """The data has too few examples (candidate pairs, labelled rows) to train a model."""


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


class TransportUnavailableError(UnavailableError):
    """The event transport (Redis, a broker) cannot be reached or cannot take writes now: the collector
    answers 503 and clients retry; nothing was acknowledged."""

    exit_code = 75


class ErasurePendingError(Cx360Error):
    """An erasure was interrupted: the workspace is not read until it is completed."""

    http_status = 503

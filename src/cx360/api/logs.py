"""Logging for `cx360 serve`: `--log-format text` (one readable line per record) or `json` (one JSON
object per line, with the access log's fields as keys), on stderr, in every worker process."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

FORMATS = ("text", "json")
# Attributes every LogRecord has; anything else was passed with `extra=` and becomes a JSON key.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def config(fmt: str) -> dict[str, Any]:
    """The logging configuration (logging.config.dictConfig) that uvicorn applies in each worker."""
    formatter = (
        {"()": "cx360.api.logs.JsonFormatter"}
        if fmt == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"cx360": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "cx360", "stream": "ext://sys.stderr"}},
        "loggers": {
            "cx360": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        },
    }

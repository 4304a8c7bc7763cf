"""Console output shared by the commands: one console each for results and for errors, the one
`--format table|json` switch every command that prints a table takes, and the `--workspace` option.

In json mode stdout carries exactly one JSON document; everything else a command prints (progress,
notes, warnings) goes to stderr, so `cx360 status --format json | jq` always parses.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder (holds cx360.toml).")]

# Piped output (CI logs, files) gets 120 columns instead of rich's 80, unless COLUMNS says otherwise.
_WIDTH = int(os.environ.get("COLUMNS", "0")) or (None if sys.stdout.isatty() else 120)
out = Console(width=_WIDTH)
err = Console(stderr=True, width=_WIDTH)


class Format(enum.StrEnum):
    table = "table"
    json = "json"


def use_format(fmt: Format) -> Format:
    """Send the result console to stderr in json mode, so stdout holds only the JSON document."""
    out.stderr = fmt is Format.json
    return fmt


FormatOpt = Annotated[
    Format,
    typer.Option(
        "--format",
        help="table for people, json for scripts (one JSON document on stdout).",
        callback=use_format,
        case_sensitive=False,
    ),
]


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    t = Table(title=title, title_justify="left", title_style="bold")
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right" if _numeric(c) else "left")
    for row in rows:
        t.add_row(*(_cell(v) for v in row))
    return t


def records(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> list[dict[str, object]]:
    """The rows of a table as JSON objects, keyed by the column names in snake_case."""
    keys = [key(c) for c in columns]
    return [dict(zip(keys, (_plain(v) for v in row), strict=True)) for row in rows]


def key(column: str) -> str:
    return "_".join(column.lower().replace("-", " ").split())


def emit(fmt: Format, title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Print one table: the rich table, or in json mode a JSON array of its rows."""
    rows = list(rows)
    if fmt is Format.json:
        emit_json(records(columns, rows))
    else:
        out.print(table(title, columns, rows))


def emit_json(document: object) -> None:
    """Write one JSON document to the real stdout (never through rich: no wrapping, no markup)."""
    sys.stdout.write(json.dumps(_plain(document), ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def _plain(value: object) -> object:
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        value = value.tolist()  # numpy scalars and arrays as Python values
    if isinstance(value, Text):
        return value.plain
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime):
        return None if value != value else value.isoformat(sep=" ", timespec="seconds")  # NaT is not equal to itself
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or Infinity
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _cell(value: object) -> str | Text:
    if value is None:
        return ""
    if isinstance(value, Text):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return escape(str(value))


def ok(flag: bool) -> Text:
    return Text("ok", style="green") if flag else Text("failed", style="red")


def fail(message: str) -> None:
    err.print(Text("error: ", style="bold red") + Text(message))


def _numeric(column: str) -> bool:
    return column in {
        "inputs",
        "unchanged",
        "read",
        "loaded",
        "quarantined",
        "duplicates",
        "suppressed",
        "rows",
        "batches",
        "row",
        "count",
        "size",
        "entered",
        "left",
    }

"""Console output shared by the commands: one console each for results and for errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

# Piped output (CI logs, files) gets 120 columns instead of rich's 80, unless COLUMNS says otherwise.
_WIDTH = int(os.environ.get("COLUMNS", "0")) or (None if sys.stdout.isatty() else 120)
out = Console(width=_WIDTH)
err = Console(stderr=True, width=_WIDTH)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    t = Table(title=title, title_justify="left", title_style="bold")
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right" if _numeric(c) else "left")
    for row in rows:
        t.add_row(*(_cell(v) for v in row))
    return t


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
    return column in {"inputs", "unchanged", "read", "loaded", "quarantined", "duplicates", "rows", "batches", "row", "count", "size", "entered", "left"}

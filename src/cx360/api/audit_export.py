"""The audit log as JSON lines, for a SIEM: one object per entry, oldest first, each with its id, so
that a collector that reads an export twice (or two overlapping `--since` windows) can drop repeats.

The journals of processes that died are drained into the log first, so an export holds every entry
that was acknowledged, including those of a server killed before its writer ran."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import sys
from pathlib import Path

from cx360.api.access import ACCESS_FILE
from cx360.api.audit import _COLUMNS, AuditLog, _prepare
from cx360.errors import UnavailableError

FIELDS = ("id", *_COLUMNS)


def export(root: Path, target: Path | None, *, since: dt.datetime | None = None, workspace: str = "") -> int:
    """Write the entries at or after `since` to `target` (stdout when None); returns how many. A file is
    written beside its final name and moved into place, so a reader never sees half an export."""
    drainer = AuditLog(root, interval=60)
    try:
        drainer.flush(timeout=10)
    finally:
        drainer.close()
    sql, params = f"SELECT {', '.join(FIELDS)} FROM audit", []
    if since is not None:
        sql += " WHERE at >= ?"
        params.append((since if since.tzinfo else since.replace(tzinfo=dt.UTC)).isoformat(timespec="milliseconds"))
    sql += " ORDER BY at, rowid"  # rowid: the order entries were journaled, within one millisecond
    partial = None if target is None else target.with_name(f".{target.name}.partial")
    out = sys.stdout if partial is None else open(partial, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    n = 0
    try:
        with sqlite3.connect(root / ACCESS_FILE, timeout=5) as con:
            _prepare(con)
            for row in con.execute(sql, params):
                entry = dict(zip(FIELDS, row, strict=True))
                entry["fields"] = entry["fields"].split(",") if entry["fields"] else []
                out.write(json.dumps({"source": "cx360", "workspace": workspace, **entry}, ensure_ascii=False) + "\n")
                n += 1
        if partial is not None:
            out.flush()
            os.fsync(out.fileno())
    except BaseException as exc:
        if partial is not None:
            out.close()
            partial.unlink(missing_ok=True)
        if isinstance(exc, sqlite3.OperationalError):
            raise UnavailableError(f"the audit log {root / ACCESS_FILE} cannot be read now ({exc}); try again") from exc
        raise
    if partial is not None:
        out.close()
        partial.replace(target)
    return n

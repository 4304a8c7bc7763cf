"""The stores outside the warehouse: the serving index, the audit log, and the tabular files that
exports, quarantine dumps and the demo's ground truth write (CSV, JSON Lines, Parquet)."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cx360.api.access import ACCESS_FILE
from cx360.api.audit import JOURNALS, record_cli

if TYPE_CHECKING:
    from cx360.privacy.vault import Vault

TABULAR = (".csv", ".jsonl", ".parquet")


def rebuild_index(root: Path, warehouse: Path, vault: Vault | None = None) -> bool:
    """Rebuild the serving index from the rewritten warehouse, if the workspace has one; running
    servers switch to it on their next request (cx360.api.store)."""
    from cx360.api import index

    target = index.serve_path(warehouse)
    target.with_name(target.name + ".tmp").unlink(missing_ok=True)
    if not target.exists():
        return False
    index.ensure(warehouse, force=True, vault=vault)
    return True


def erase_audit(root: Path, profile_ids: list[str], erasure_id: str) -> int:
    """Delete the audit entries about the person, keep one tombstone that names the erasure (and no
    one), and vacuum the file so the deleted entries' bytes are gone. Returns the entries removed."""
    record_cli(root, "erasure", None, [f"erasure:{erasure_id}"])  # also drains the journals of dead processes
    removed = _drop_from_journals(root, profile_ids)
    path = root / ACCESS_FILE
    if not path.exists():
        return removed
    for attempt in range(6):  # a running server drains its own journal into the file within a second
        removed += erase_sqlite_rows(path, "audit", profile_ids)
        if attempt == 5 or not _live_entries(root, profile_ids):
            break
        time.sleep(0.5)
    return removed


def erase_sqlite_rows(path: Path, table: str, profile_ids: list[str]) -> int:
    """Delete the rows of `table` about the given profiles from a SQLite file and vacuum it, so that
    the pages that held them are rewritten; returns the rows removed."""
    if not path.exists():
        return 0
    con = sqlite3.connect(path, timeout=30)
    try:
        con.execute("PRAGMA secure_delete = ON")  # freed pages are zeroed, not left as they were
        if not con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [table]).fetchone():
            return 0
        with con:
            marks = ", ".join("?" * len(profile_ids))
            n = con.execute(f'DELETE FROM "{table}" WHERE profile_id IN ({marks})', profile_ids).rowcount
        con.execute("VACUUM")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return n
    finally:
        con.close()


def _mentions(line: bytes, profile_ids: list[str]) -> bool:
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    return isinstance(entry, list) and len(entry) > 6 and entry[6] in profile_ids


def _drop_from_journals(root: Path, profile_ids: list[str]) -> int:
    """Rewrite the journals of dead processes without the person's entries (live ones drain themselves)."""
    removed = 0
    for path in sorted((root / JOURNALS).glob("*.jsonl")):
        with contextlib.suppress(FileNotFoundError), open(path, "r+b") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            lines = f.read().splitlines(keepends=True)
            kept = [line for line in lines if not _mentions(line, profile_ids)]
            if len(kept) != len(lines):
                f.seek(0)
                f.write(b"".join(kept))
                f.truncate()
                f.flush()
                os.fsync(f.fileno())
                removed += len(lines) - len(kept)
    return removed


def _live_entries(root: Path, profile_ids: list[str]) -> bool:
    for path in (root / JOURNALS).glob("*.jsonl"):
        with contextlib.suppress(FileNotFoundError):
            if any(_mentions(line, profile_ids) for line in path.read_bytes().splitlines()):
                return True
    return False


def erase_tabular(path: Path, keys: set[str]) -> int:
    """Remove from a CSV, JSON Lines or Parquet file every row with a cell equal to one of `keys`
    (lower-cased: the person's identifiers, record and event ids, profile ids); the file is rewritten
    only when it has such rows. Returns the rows removed."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        table = pq.read_table(path)
        mask = pa.array([False] * table.num_rows)
        values = pa.array(sorted(keys), pa.string())
        for name in table.column_names:
            column = table[name]
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                lowered = pc.utf8_lower(pc.utf8_trim_whitespace(column.cast(pa.string())))
                hit = pc.fill_null(pc.is_in(lowered, value_set=values), False)
                mask = pc.or_(mask, hit)
        n = pc.sum(mask).as_py() or 0
        if n:
            _replace(path, lambda tmp: pq.write_table(table.filter(pc.invert(mask)), tmp))
        return n
    text = path.read_text(encoding="utf-8")
    if suffix == ".jsonl":
        lines = text.splitlines(keepends=True)
        kept = [line for line in lines if not _json_holds(line, keys)]
        removed = len(lines) - len(kept)
        if removed:
            _replace(path, lambda tmp: Path(tmp).write_text("".join(kept), encoding="utf-8"))
        return removed
    rows = list(csv.reader(io.StringIO(text, newline="")))
    kept = rows[:1] + [r for r in rows[1:] if not any(_norm(c) in keys for c in r)]
    removed = len(rows) - len(kept)
    if removed:
        out = io.StringIO(newline="")
        csv.writer(out, lineterminator="\n").writerows(kept)
        _replace(path, lambda tmp: Path(tmp).write_text(out.getvalue(), encoding="utf-8"))
    return removed


def holds_any(path: Path, terms: list[str]) -> bool:
    data = path.read_bytes().lower()
    return any(t.lower().encode() in data for t in terms)


def _norm(value: object) -> str:
    return str(value).strip().lower().lstrip("@")


def _json_holds(line: str, keys: set[str]) -> bool:
    try:
        row = json.loads(line)
    except ValueError:
        return any(k in line.lower() for k in keys)
    values = row.values() if isinstance(row, dict) else row if isinstance(row, list) else [row]
    return any(isinstance(v, str | int) and _norm(v) in keys for v in values)


def _replace(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".erasing")
    write(str(tmp))
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)

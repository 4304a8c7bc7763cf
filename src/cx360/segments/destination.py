"""A segment synced into a PostgreSQL table: the members who joined are added, those who left are
removed, those whose identifiers changed are rewritten, in one transaction.

What cx360 last wrote is remembered in the workspace (`exports/sync/SEGMENT--TABLE.parquet`: each
row's profile id and a SHA-256 of its values, no identifier in clear), so that a table changed by
hand (rows added, removed or edited outside cx360) is detected before anything is written: the sync
is refused and says what differs, and `force` rewrites the table whole. The new memory is written
aside before the transaction commits and takes its place after, so that a crash between the two is
recognised on the next sync (the table then matches the memory written aside) rather than taken for
a hand edit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from cx360.errors import ConfigError, DataError, MissingDependencyError, TransientSourceError
from cx360.filemodes import private
from cx360.segments.export import Audience

if TYPE_CHECKING:
    from cx360.workspace import Workspace

_TABLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SEP = "\x1f"


@dataclass
class SyncReport:
    segment: str
    table: str
    added: int
    removed: int
    updated: int
    rows: int  # in the table after the sync
    withheld: int  # members the consent check kept out
    forced: bool


def _digest(values: list) -> str:
    text = SEP.join("" if v is None else (v.isoformat() if isinstance(v, dt.datetime) else str(v)) for v in values)
    return hashlib.sha256(text.encode()).hexdigest()


def digests(rows: list[dict], columns: list[str]) -> dict[str, str]:
    return {r["profile_id"]: _digest([r[c] for c in columns]) for r in rows}


def _memory(ws: Workspace, segment: str, table: str) -> Path:
    return ws.root / "exports" / "sync" / f"{segment}--{table}.parquet"


def _read_memory(path: Path) -> dict[str, str] | None:
    if not path.exists():
        return None
    t = pq.read_table(path)
    return dict(zip(t.column("profile_id").to_pylist(), t.column("digest").to_pylist(), strict=True))


def _write_memory(path: Path, memory: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = sorted(memory)
    pq.write_table(pa.table({"profile_id": ids, "digest": [memory[i] for i in ids]}), path)
    private(path)


def differences(found: dict[str, str], expected: dict[str, str]) -> dict[str, int]:
    """How the table differs from what cx360 last wrote."""
    return {
        "added": len(found.keys() - expected.keys()),
        "removed": len(expected.keys() - found.keys()),
        "edited": sum(1 for k in found.keys() & expected.keys() if found[k] != expected[k]),
    }


def sync(ws: Workspace, aud: Audience, url: str, table: str, *, force: bool = False) -> SyncReport:
    """Bring `table` at `url` to the audience's members, or refuse when it was changed by hand."""
    import sqlalchemy as sa

    if not _TABLE.match(table):
        raise ConfigError(
            f"table {table!r}: use lower-case letters, digits and '_' (at most 63), starting with a letter"
        )
    columns = list(aud.members.column_names)
    rows = aud.members.to_pylist()
    wanted = digests(rows, columns)
    memory_path = _memory(ws, aud.segment, table)
    pending = memory_path.with_suffix(".pending.parquet")
    try:
        engine = sa.create_engine(url)
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise MissingDependencyError("a PostgreSQL destination", "postgres") from exc
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"cannot use this database URL: {exc}") from exc
    try:
        with engine.connect() as conn:
            exists = sa.inspect(conn).has_table(table)
    except sa.exc.SQLAlchemyError as exc:
        raise TransientSourceError(f"cannot reach the destination database: {getattr(exc, 'orig', exc)}") from exc
    meta = sa.MetaData()
    target = sa.Table(
        table,
        meta,
        sa.Column("profile_id", sa.Text, primary_key=True),
        *(sa.Column(c, sa.Text) for c in columns if c not in ("profile_id", "entered_at")),
        sa.Column("entered_at", sa.DateTime),
    )
    memory = _read_memory(memory_path)
    found: dict[str, str] = {}
    if exists:
        have = [c["name"] for c in sa.inspect(engine).get_columns(table)]
        if have != columns:
            if not force:
                raise DataError(
                    f"table {table} has columns {have}, not {columns}: it was changed by hand or holds another "
                    "export; sync to another table, or force to rewrite it"
                )
        else:
            with engine.connect() as conn:
                found = digests([dict(r._mapping) for r in conn.execute(sa.select(target))], columns)
        later = _read_memory(pending)
        if later is not None and found == later:
            memory = later  # the last sync committed but did not record it
        if memory is None and not force:
            raise DataError(
                f"table {table} exists but was not written by a sync of '{aud.segment}'; force to take it over"
            )
        if memory is not None and found != memory and not force:
            d = differences(found, memory)
            raise DataError(
                f"table {table} was changed by hand since the last sync ({d['added']} rows added, {d['removed']} "
                f"removed, {d['edited']} edited); nothing was written. Force to rewrite it whole"
            )
    rewrite = force or not exists or memory is None
    base = {} if rewrite else found
    gone = [k for k in base if k not in wanted]
    changed = [k for k in base if k in wanted and base[k] != wanted[k]]
    new = [r for r in rows if r["profile_id"] not in base or r["profile_id"] in changed]
    _write_memory(pending, wanted)
    try:
        with engine.begin() as conn:
            if rewrite:
                meta.drop_all(conn, checkfirst=True)
                meta.create_all(conn)
            stale = gone + changed
            for i in range(0, len(stale), 10_000):
                conn.execute(sa.delete(target).where(target.c.profile_id.in_(stale[i : i + 10_000])))
            if new:
                conn.execute(sa.insert(target), new)
    except sa.exc.SQLAlchemyError as exc:  # rolled back: the table and the memory are as they were
        raise TransientSourceError(f"sync of {table} failed: {getattr(exc, 'orig', exc)}") from exc
    pending.replace(memory_path)
    engine.dispose()
    added = len(new) - len(changed)
    return SyncReport(aud.segment, table, added, len(gone), len(changed), len(wanted), aud.withheld, rewrite and exists)

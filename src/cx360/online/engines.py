"""The online store's two engines, and what differs between them, as data.

The stage code writes one SQL for both: `?` placeholders and the standard upsert (`INSERT ... ON
CONFLICT`), which SQLite and PostgreSQL both speak. What differs is here: how a connection is made
(PostgreSQL's driver takes `%s`), how a write transaction shuts out every other writer, how the
outbox's JSON payload is read, and how the space of erased rows is reclaimed.

One writer at a time is what the processor relies on (cx360.online.processor): it reads a person's
state and writes the new one in one transaction, so no writer may interleave. SQLite's `BEGIN
IMMEDIATE` takes the file's write lock; on PostgreSQL every write transaction first takes one
transaction-scoped advisory lock (per schema), which the servers of every machine share and which the
server releases when the transaction ends or its connection drops.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cx360.errors import ConfigError

_PG_LOCK = "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.cx360-online'))"


@dataclass(frozen=True)
class Engine:
    name: str
    where: str  # the store, as the erasure receipt and the docs name it (no password)
    connect: Callable[[], Any]  # a connection with sqlite3's execute/executemany, rows by column name
    begin: tuple[str, ...]  # opens a write transaction holding the writer lock
    payload_profile: str  # the profile_id in an outbox row's payload, as SQL
    before_erase: tuple[str, ...]  # run on the connection before an erasure's deletes
    after_erase: tuple[str, ...]  # run after them, outside a transaction


def sqlite(path: Path) -> Engine:
    def connect() -> sqlite3.Connection:
        con = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")  # WAL: a commit survives a process crash
        con.row_factory = sqlite3.Row
        return con

    return Engine(
        name="sqlite",
        where=path.name,
        connect=connect,
        begin=("BEGIN IMMEDIATE",),
        payload_profile="json_extract(payload, '$.profile_id')",
        before_erase=("PRAGMA secure_delete = ON",),  # freed pages are zeroed, not left as they were
        after_erase=("VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"),
    )


def postgresql(url: str) -> Engine:
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise ConfigError("[online] url names PostgreSQL: pip install 'cx360[postgres]'") from None
    url = url.replace("postgresql+psycopg://", "postgresql://", 1)  # a SQLAlchemy URL, as .ci/start-postgres prints
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"[online] url is no PostgreSQL URL: {exc}") from None
    where = f"PostgreSQL {info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"

    def connect() -> _Pg:
        try:
            return _Pg(psycopg.connect(url, autocommit=True))
        except psycopg.OperationalError as exc:
            raise ConfigError(f"the online store's {where} does not answer: {exc}") from None

    return Engine(
        name="postgresql",
        where=where,
        connect=connect,
        begin=("BEGIN", _PG_LOCK),
        payload_profile="(payload::json ->> 'profile_id')",
        before_erase=(),
        after_erase=("VACUUM nodes, merged, events, records, docs, members, timers, outbox",),
    )


class _Pg:
    """A psycopg connection that takes the stage code's `?` placeholders (its SQL holds no other `?` or
    `%`) and answers rows as dicts, as sqlite3 answers them by column name."""

    def __init__(self, con):
        from psycopg.rows import dict_row

        con.row_factory = dict_row
        self._con = con

    def execute(self, sql: str, params: Iterable[Any] = ()):
        params = tuple(params)
        return self._con.execute(sql.replace("?", "%s") if params else sql, params or None)

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]):
        cur = self._con.cursor()
        cur.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])
        return cur

    def close(self) -> None:
        self._con.close()

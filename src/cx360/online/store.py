"""The online profile store: what the stream processor changed since the serving index was built.

By default one SQLite file in WAL mode beside the warehouse (`online.sqlite`): point reads and writes
cost tens of microseconds, readers never wait for the writer, and every process of `cx360 serve` and
`cx360 stream` on the machine shares it. With `[online] url` (or `url_env`) it is a PostgreSQL that the
servers of several machines share (cx360.online.engines holds what differs; docs/realtime.md why).
It is an overlay on the serving index (cx360.api.index), which holds the batch's profiles: a profile the
stream touched has its current document here, the identifiers the stream attached to it, the events
applied since, and the segment memberships that changed. `cx360 run` rebuilds the index; `reconcile`
then drops what the batch now covers.

    nodes     identifier or record node -> profile, attached by the stream (with the event that did it)
    merged    profile -> the profile it was merged into online (the oldest id survives, as in batch)
    events    the canonical events applied online, by profile
    records   the identify calls applied online (canonical record rows, as JSON)
    docs      the current profile document (the serving index's layout) and its freshness
    members   segment entries and exits decided online
    timers    when a profile must be evaluated again (a time window of a segment ends)
    outbox    trigger deliveries: pending, delivered, or dead (kept, and replayable)
    offsets   how far the processor applied each stream of the event log
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cx360.errors import ConfigError
from cx360.online import engines

if TYPE_CHECKING:
    from cx360.config import Config

ONLINE_FILE = "online.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (node TEXT PRIMARY KEY, profile_id TEXT NOT NULL, event_id TEXT, at TEXT);
CREATE INDEX IF NOT EXISTS nodes_by_profile ON nodes (profile_id);
CREATE TABLE IF NOT EXISTS merged (profile_id TEXT PRIMARY KEY, merged_into TEXT NOT NULL, event_id TEXT,
    at TEXT, evidence TEXT);
CREATE INDEX IF NOT EXISTS merged_into ON merged (merged_into);
CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, profile_id TEXT NOT NULL, ts TEXT NOT NULL,
    row TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_profile ON events (profile_id, ts);
CREATE TABLE IF NOT EXISTS records (node TEXT PRIMARY KEY, profile_id TEXT NOT NULL, row TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_by_profile ON records (profile_id);
CREATE TABLE IF NOT EXISTS docs (profile_id TEXT PRIMARY KEY, doc TEXT NOT NULL, as_of TEXT,
    updated_at TEXT NOT NULL, last_event_id TEXT);
CREATE TABLE IF NOT EXISTS members (profile_id TEXT NOT NULL, segment TEXT NOT NULL, entered_at TEXT NOT NULL,
    exited_at TEXT, event_id TEXT, updated_at TEXT NOT NULL, PRIMARY KEY (profile_id, segment, entered_at));
CREATE TABLE IF NOT EXISTS timers (profile_id TEXT PRIMARY KEY, due_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS timers_due ON timers (due_at);
CREATE TABLE IF NOT EXISTS outbox (key TEXT PRIMARY KEY, trigger TEXT NOT NULL, target TEXT NOT NULL,
    payload TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at TEXT NOT NULL,
    error TEXT, created_at TEXT NOT NULL, delivered_at TEXT);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_at);
CREATE TABLE IF NOT EXISTS offsets (stream TEXT PRIMARY KEY, seq BIGINT NOT NULL)
"""
_KEYS = {  # the primary keys of the tables written whole by `put`
    "records": ("node",),
    "docs": ("profile_id",),
    "merged": ("profile_id",),
    "members": ("profile_id", "segment", "entered_at"),
    "timers": ("profile_id",),
    "offsets": ("stream",),
}


def online_path(warehouse: Path) -> Path:
    return warehouse.with_name(ONLINE_FILE)


def open_online(root: Path, config: Config, *, create: bool = True) -> OnlineStore | None:
    """The workspace's online store: [online] url's PostgreSQL, else online.sqlite beside a DuckDB
    warehouse. None when there is none (create=False and no file; or no DuckDB warehouse to sit beside)."""
    from cx360.config import DuckDBEngine

    url = config.online.url
    if config.online.url_env is not None:
        url = os.environ.get(config.online.url_env)
        if not url:
            raise ConfigError(f"[online] url_env names ${config.online.url_env}, which is not set")
    if url is not None:
        # a server's partitions are p0, p1, ... on every machine: offsets are kept per machine and workspace
        return OnlineStore(engines.postgresql(url), origin=f"{socket.gethostname()}:{root.resolve()}|")
    if not isinstance(config.engine, DuckDBEngine):
        return None
    path = online_path(root / config.engine.path)
    return OnlineStore(path) if create or path.exists() else None


def put(con, table: str, row: dict[str, Any]) -> None:
    """Write a whole row, replacing the one with its key (the upsert both engines speak)."""
    keys = _KEYS[table]
    cols = ", ".join(row)
    sets = ", ".join(f"{c} = excluded.{c}" for c in row if c not in keys)
    con.execute(
        f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(row))}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}",
        tuple(row.values()),
    )


class OnlineStore:
    """A connection per thread; writes in short transactions that hold the writer lock (one writer at a
    time, across processes and, on PostgreSQL, machines), so that reading a profile's state and writing
    its new one is never interleaved with another writer's: no update is lost when two processors apply
    events of one person together.

    `target`: the SQLite file, or an engine (cx360.online.engines). `origin` prefixes the offsets' keys."""

    def __init__(self, target: Path | engines.Engine, *, origin: str = ""):
        self.engine = target if isinstance(target, engines.Engine) else engines.sqlite(Path(target))
        self.path = target if isinstance(target, Path) else None
        self.origin = origin
        self._local = threading.local()
        with self.write() as con:  # idempotent; under the writer lock, as two servers may start together
            for statement in _SCHEMA.split(";"):
                con.execute(statement)

    @property
    def where(self) -> str:
        return self.engine.where

    def _con(self):
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self.engine.connect()
        return con

    @contextmanager
    def write(self) -> Iterator[Any]:
        con = self._con()
        for statement in self.engine.begin:
            con.execute(statement)
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list:
        return self._con().execute(sql, tuple(params)).fetchall()

    def put_offset(self, con, stream: str, seq: int) -> None:
        put(con, "offsets", {"stream": self.origin + stream, "seq": seq})

    # -- reads ---------------------------------------------------------------------------------------------
    def node_profiles(self, nodes: Iterable[str]) -> dict[str, str]:
        nodes = list(nodes)
        if not nodes:
            return {}
        marks = ",".join("?" * len(nodes))
        return {r["node"]: r["profile_id"] for r in self._rows(f"SELECT * FROM nodes WHERE node IN ({marks})", nodes)}

    def survivor(self, pid: str) -> str:
        """The profile `pid` lives on in (itself unless it was merged online)."""
        for _ in range(64):  # merges form a forest; the depth is bounded by the merges of one person
            row = self._rows("SELECT merged_into FROM merged WHERE profile_id = ?", [pid])
            if not row:
                return pid
            pid = row[0]["merged_into"]
        return pid

    def absorbed(self, pid: str) -> list[str]:
        """Every profile merged online into `pid`, directly or not."""
        out, todo = [], [pid]
        while todo:
            rows = self._rows("SELECT profile_id FROM merged WHERE merged_into = ?", [todo.pop()])
            found = [r["profile_id"] for r in rows]
            out += found
            todo += found
        return out

    def nodes_of(self, pids: Iterable[str]) -> list[tuple[str, str]]:
        pids = list(pids)
        marks = ",".join("?" * len(pids))
        return [
            (r["node"], r["profile_id"]) for r in self._rows(f"SELECT * FROM nodes WHERE profile_id IN ({marks})", pids)
        ]

    def events_of(self, pids: Iterable[str]) -> list[dict[str, Any]]:
        pids = list(pids)
        marks = ",".join("?" * len(pids))
        rows = self._rows(f"SELECT * FROM events WHERE profile_id IN ({marks}) ORDER BY ts, event_id", pids)
        return [{**json.loads(r["row"]), "profile_id": r["profile_id"]} for r in rows]

    def records_of(self, pids: Iterable[str]) -> list[dict[str, Any]]:
        pids = list(pids)
        marks = ",".join("?" * len(pids))
        rows = self._rows(f"SELECT * FROM records WHERE profile_id IN ({marks})", pids)
        return [{**json.loads(r["row"]), "profile_id": r["profile_id"]} for r in rows]

    def doc(self, pid: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM docs WHERE profile_id = ?", [pid])
        return dict(rows[0]) if rows else None

    def members_of(self, pid: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self._rows("SELECT * FROM members WHERE profile_id = ? ORDER BY entered_at", [pid])]

    def offset(self, stream: str) -> int:
        rows = self._rows("SELECT seq FROM offsets WHERE stream = ?", [self.origin + stream])
        return rows[0]["seq"] if rows else 0

    def due(self, now: str, limit: int = 500) -> list[str]:
        return [
            r["profile_id"] for r in self._rows("SELECT profile_id FROM timers WHERE due_at <= ? LIMIT ?", [now, limit])
        ]

    def outbox(self, *, status: str | None = None, due_before: str | None = None, limit: int = 100) -> list[dict]:
        sql, params = "SELECT * FROM outbox WHERE 1=1", []
        if status:
            sql += " AND status = ?"
            params.append(status)
        if due_before:
            sql += " AND next_at <= ?"
            params.append(due_before)
        sql += " ORDER BY next_at LIMIT ?"
        return [dict(r) for r in self._rows(sql, [*params, limit])]

    def counts(self) -> dict[str, int]:
        tables = ("nodes", "merged", "events", "records", "docs", "members", "timers", "outbox")
        return {t: self._rows(f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in tables}

"""The audit log of personal-data reads: who, which profile, which fields, when, from where.

Requests only put an entry on a queue; one thread writes them to `access.sqlite` in batches
(one transaction per batch), so an audited read costs microseconds, and the warehouse, which
DuckDB lets only one process write, is never touched.
"""

from __future__ import annotations

import datetime as dt
import queue
import sqlite3
import threading
from pathlib import Path
from typing import Any

from cx360.api.access import ACCESS_FILE, Principal

_COLUMNS = ("at", "key_id", "key_name", "role", "action", "profile_id", "fields", "client")
_CREATE = f"CREATE TABLE IF NOT EXISTS audit ({', '.join(c + ' TEXT' for c in _COLUMNS)})"


class AuditLog:
    def __init__(self, root: Path, *, batch: int = 500, interval: float = 0.5):
        self.path = root / ACCESS_FILE
        self._queue: queue.Queue[tuple | None] = queue.Queue()
        self.batch, self.interval = batch, interval
        with sqlite3.connect(self.path) as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(_CREATE)
        self._thread = threading.Thread(target=self._run, name="cx360-audit", daemon=True)
        self._thread.start()

    def record(self, principal: Principal, action: str, profile_id: str | None, fields: list[str],
               client: str | None) -> None:
        if not fields:
            return
        self._queue.put((dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), principal.key_id,
                         principal.name, principal.role, action, profile_id, ",".join(fields), client))

    def flush(self) -> None:
        """Wait until everything recorded so far is on disk."""
        done = threading.Event()
        self._queue.put(("flush", done))  # type: ignore[arg-type]
        done.wait(10)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)

    def _run(self) -> None:
        con = sqlite3.connect(self.path, timeout=30)
        stop = False
        while not stop:
            rows, waiters = [], []
            try:
                item = self._queue.get(timeout=self.interval)
            except queue.Empty:
                continue
            while True:
                if item is None:
                    stop = True
                elif item[0] == "flush":
                    waiters.append(item[1])
                else:
                    rows.append(item)
                if len(rows) >= self.batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if rows:
                with con:
                    con.executemany(f"INSERT INTO audit VALUES ({', '.join('?' * len(_COLUMNS))})", rows)
            for w in waiters:
                w.set()
        con.close()


def read_audit(root: Path, *, since: dt.datetime | None = None, key_id: str | None = None,
               limit: int = 1000) -> list[dict[str, Any]]:
    """Audit entries, newest first."""
    path = root / ACCESS_FILE
    if not path.exists():
        return []
    sql, params = "SELECT * FROM audit WHERE 1 = 1", []
    if since is not None:
        sql += " AND at >= ?"
        params.append((since if since.tzinfo else since.replace(tzinfo=dt.UTC)).isoformat(timespec="milliseconds"))
    if key_id:
        sql += " AND key_id = ?"
        params.append(key_id)
    sql += " ORDER BY at DESC LIMIT ?"
    params.append(limit)
    with sqlite3.connect(path) as con:
        con.execute(_CREATE)
        cur = con.execute(sql, params)
        return [dict(zip(_COLUMNS, r)) for r in cur.fetchall()]

"""The audit log of personal-data reads: who, which profile, which fields, when, from where.

A read of personal data is answered only once its entry is durable: the request appends the entry
to this process's journal (`audit-journal/<pid>-<random>.jsonl`, append-only, fdatasync'd) before it
responds, and fails with 503 when it cannot. Requests that arrive together share one fdatasync (group
commit): a thread's call waits for the sync under way, and a coroutine that records `async with
audit.deferred()` awaits the next sync of the journal's syncer thread, which covers every entry
appended before it starts, without blocking the event loop; that sync begins as the entry is
recorded, so it runs while the request does the rest of its work. One thread drains the journal
into `access.sqlite` in batches, every `interval` seconds or when a reader asks (`flush`): the
journal is what makes an entry durable, so a SQLite commit per request would buy nothing. When
SQLite is locked or failing it keeps the journal and tries again, so the log never stops. Each
process holds an exclusive lock (flock) on its own journal; a journal whose lock is free belongs to
a process that died (kill -9, power loss), and the next process to start drains and removes it.
Entries carry an id, so a replay adds nothing twice.
The warehouse, which DuckDB lets only one process write, is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import fcntl
import getpass
import json
import logging
import os
import secrets
import socket
import sqlite3
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from cx360.api.access import ACCESS_FILE, Principal
from cx360.api.ids import unique_hex
from cx360.errors import UnavailableError
from cx360.filemodes import private

JOURNALS = "audit-journal"
_COLUMNS = ("at", "key_id", "key_name", "role", "action", "profile_id", "fields", "client")
_CREATE = f"CREATE TABLE IF NOT EXISTS audit ({', '.join(c + ' TEXT' for c in _COLUMNS)})"
_INSERT = f"INSERT OR IGNORE INTO audit (id, {', '.join(_COLUMNS)}) VALUES ({', '.join('?' * (len(_COLUMNS) + 1))})"
log = logging.getLogger("cx360.audit")
# The journal offsets that the entries recorded inside `AuditLog.deferred()` must reach on disk.
_DEFERRED: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("cx360_audit_deferred", default=None)


def _prepare(con: sqlite3.Connection) -> None:
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(_CREATE)
    if "id" not in {r[1] for r in con.execute("PRAGMA table_info(audit)")}:  # written by an older cx360
        con.execute("ALTER TABLE audit ADD COLUMN id TEXT")
    con.execute("CREATE UNIQUE INDEX IF NOT EXISTS audit_id ON audit (id)")


class AuditLog:
    def __init__(self, root: Path, *, interval: float = 0.5, busy_timeout: float = 2.0, fsync: bool = True):
        self.path = root / ACCESS_FILE
        self.folder = root / JOURNALS
        self.interval, self.busy_timeout, self.fsync = interval, busy_timeout, fsync
        private(self.path)
        self.folder.mkdir(mode=0o700, exist_ok=True)
        private(self.folder)
        self.journal = self.folder / f"{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        self._fd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._lock, self._sync_lock = threading.Lock(), threading.Lock()
        self._written = self._synced = 0  # bytes appended to the journal (ever), bytes known on disk
        self._drained = 0  # bytes of the journal (ever) now in SQLite
        self._offset = 0  # where the unread part of the journal starts now
        self.error: str | None = None  # why the last drain failed, while it keeps failing
        self._passes = 0  # writer passes that completed without error
        self._changed = threading.Condition()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._con: sqlite3.Connection | None = None
        self._waiting: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future]] = []  # (offset, loop, future)
        self._sync_wanted = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cx360-audit", daemon=True)
        self._thread.start()
        self._syncer = threading.Thread(target=self._sync_waiting, name="cx360-audit-sync", daemon=True)
        self._syncer.start()

    # -- requests -----------------------------------------------------------------------
    def record(
        self, principal: Principal, action: str, profile_id: str | None, fields: list[str], client: str | None
    ) -> None:
        """Make the entry durable, or raise UnavailableError: the caller must not answer then. Inside
        `deferred()`, the entry is appended now and made durable when that block ends."""
        if not fields:
            return
        entry = [
            unique_hex(),
            dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            principal.key_id,
            principal.name,
            principal.role,
            action,
            profile_id,
            ",".join(fields),
            client,
        ]
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
        try:
            with self._lock:
                if os.write(self._fd, line) != len(line):
                    raise OSError("short write")
                self._written += len(line)
                mine = self._written
            deferred = _DEFERRED.get()
            if deferred is not None:
                deferred.append(mine)
                self._sync_wanted.set()  # the sync starts now, while the request goes on with its work
            else:
                self._sync(mine)
        except OSError as exc:
            raise UnavailableError(
                f"the audit journal {self.journal} cannot be written ({exc}); "
                "personal data is not served without its audit entry"
            ) from exc

    def _sync(self, upto: int) -> None:
        """fsync the journal up to byte `upto`; concurrent callers share one fsync (group commit)."""
        if not self.fsync:
            return
        with self._sync_lock:
            if self._synced >= upto:
                return
            target = self._written
            os.fdatasync(self._fd)
            self._synced = target

    @asynccontextmanager
    async def deferred(self):
        """For a coroutine: the entries recorded in this block are durable when it ends, whether it
        ends with an answer or an error, or it raises UnavailableError (the caller must not answer)."""
        deferred: list[int] = []
        token = _DEFERRED.set(deferred)
        try:
            yield
        finally:
            _DEFERRED.reset(token)
            if deferred:
                await self._durable(max(deferred))

    async def _durable(self, upto: int) -> None:
        if not self.fsync or self._synced >= upto:
            return
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            self._waiting.append((upto, loop, future))
        self._sync_wanted.set()
        try:
            await future
        except OSError as exc:
            raise UnavailableError(
                f"the audit journal {self.journal} cannot be synced ({exc}); "
                "personal data is not served without its audit entry"
            ) from exc

    def _sync_waiting(self) -> None:
        """The syncer thread: one fdatasync for every coroutine waiting, then wake them (one call per loop)."""
        while True:
            self._sync_wanted.wait()
            self._sync_wanted.clear()
            with self._lock:
                waiting, self._waiting = self._waiting, []
            error: OSError | None = None
            try:  # with no one waiting yet: a deferred entry's sync, begun before its request awaits it
                self._sync(max((upto for upto, _, _ in waiting), default=self._written))
            except OSError as exc:
                error = exc
            if waiting:
                by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future]] = {}
                for _, loop, future in waiting:
                    by_loop.setdefault(loop, []).append(future)
                for loop, futures in by_loop.items():
                    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                        loop.call_soon_threadsafe(_settle, futures, error)
            if self._stop.is_set() and not self._waiting:
                return

    def backlog(self) -> int:
        """Bytes of this process's journal not yet in SQLite (the /metrics queue depth)."""
        return self._written - self._drained

    def flush(self, timeout: float = 2.0) -> None:
        """Wait until everything recorded so far, and the journals of dead processes, are in SQLite;
        UnavailableError if that cannot be soon."""
        target, passes = self._written, self._passes
        self._wake.set()
        with self._changed:
            done = lambda: (self._drained >= target and self._passes > passes) or self._stop.is_set()  # noqa: E731
            if not self._changed.wait_for(done, timeout):
                raise UnavailableError(
                    f"the audit log {self.path} cannot be written now ({self.error or 'busy'}); "
                    f"entries are kept in {self.folder} and written when it frees"
                )

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        self._sync_wanted.set()
        self._thread.join(10)
        self._syncer.join(10)
        try:
            self._drain()  # what came after the thread's last pass
        except (sqlite3.Error, OSError) as exc:
            log.warning("audit entries stay journaled in %s: %s", self.journal, exc)
        if self._con is not None:
            self._con.close()
        os.close(self._fd)  # releases the lock: an empty journal is removed, a full one replayed later
        if self._offset == 0 and self.journal.exists() and self.journal.stat().st_size == 0:
            self.journal.unlink(missing_ok=True)

    # -- the writer -----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                self._drain()
                self._adopt_orphans()
                self.error = None
                with self._changed:
                    self._passes += 1
                    self._changed.notify_all()
            except (sqlite3.Error, OSError) as exc:  # locked or failing: the journal keeps everything
                if self.error is None:
                    log.warning("audit log %s not writable now, entries stay journaled: %s", self.path, exc)
                self.error = str(exc)
            if self._stop.is_set():
                return
            self._wake.wait(self.interval)
            self._wake.clear()

    def _connection(self) -> sqlite3.Connection:
        if self._con is None:
            con = sqlite3.connect(self.path, timeout=self.busy_timeout, check_same_thread=False)
            try:
                _prepare(con)
            except sqlite3.Error:
                con.close()
                raise
            self._con = con
        return self._con

    def _drain(self) -> None:
        with self._lock:
            end = self._written - self._drained + self._offset  # the journal's size now
        if end == self._offset:
            return
        with open(self.journal, "rb") as f:
            f.seek(self._offset)
            chunk = f.read(end - self._offset)
        chunk = chunk[: chunk.rfind(b"\n") + 1]
        rows = _parse(chunk)
        con = self._connection()
        with con:
            con.executemany(_INSERT, rows)
        with self._lock:
            self._offset += len(chunk)
            self._drained += len(chunk)
            if self._written - self._drained == 0:  # all of it is in SQLite: start the journal afresh
                os.ftruncate(self._fd, 0)
                self._offset = 0
        with self._changed:
            self._changed.notify_all()

    def _adopt_orphans(self) -> None:
        """Drain and remove the journals of processes that died."""
        for path in sorted(self.folder.glob("*.jsonl")):
            if path == self.journal:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its process is alive and drains it itself
                with os.fdopen(os.dup(fd), "rb") as f:
                    data = f.read()
                rows = _parse(data[: data.rfind(b"\n") + 1])
                con = self._connection()
                with con:
                    con.executemany(_INSERT, rows)
                if rows:
                    log.info("replayed %d audit entries from %s", len(rows), path.name)
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)


def _settle(futures: list[asyncio.Future], error: OSError | None) -> None:
    for future in futures:
        if not future.done():
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)


def _parse(chunk: bytes) -> list[list[Any]]:
    rows = []
    for line in chunk.splitlines():
        try:
            row = json.loads(line)
        except ValueError:  # a line torn by a crash mid-write: it was never acknowledged
            continue
        if isinstance(row, list) and len(row) == len(_COLUMNS) + 1:
            rows.append(row)
    return rows


def cli_actor() -> Principal:
    """The OS user running a cx360 command, as the audit log names them."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = f"uid {os.getuid()}"
    return Principal(key_id="cli", name=user, role="cli")


def record_cli(root: Path, action: str, profile_id: str | None, fields: list[str]) -> None:
    """Audit a command-line read of personal data (`cx360 profile show` and the like)."""
    if not fields:
        return
    audit = AuditLog(root, interval=60)
    try:
        audit.record(cli_actor(), action, profile_id, fields, f"cli@{socket.gethostname()}")
    finally:
        audit.close()


def audit_cli_read(root: Path, action: str, profile_id: str, key: str, fields: list[str]) -> None:
    """Audit a command that prints one person's data, found by `key` (an identifier is personal data too)."""
    query = [] if key.strip() == profile_id else ["query.identifier"]
    record_cli(root, action, profile_id, [*query, *fields])


def audit_cli_miss(root: Path, action: str, key: str) -> None:
    """Audit a command-line lookup that found nobody: what was looked up says something about a person."""
    kind = "profile_id" if key.strip()[:1] in "Pp" and key.strip()[1:].isalnum() else "identifier"
    record_cli(root, action, None, [f"query.{kind}"])


def read_audit(
    root: Path, *, since: dt.datetime | None = None, key_id: str | None = None, limit: int = 1000, timeout: float = 2.0
) -> list[dict[str, Any]]:
    """Audit entries, newest first."""
    path = root / ACCESS_FILE
    if not path.exists():
        return []
    sql, params = f"SELECT {', '.join(_COLUMNS)} FROM audit WHERE 1 = 1", []
    if since is not None:
        sql += " AND at >= ?"
        params.append((since if since.tzinfo else since.replace(tzinfo=dt.UTC)).isoformat(timespec="milliseconds"))
    if key_id:
        sql += " AND key_id = ?"
        params.append(key_id)
    sql += " ORDER BY at DESC LIMIT ?"
    params.append(limit)
    try:
        with sqlite3.connect(path, timeout=timeout) as con:
            _prepare(con)
            cur = con.execute(sql, params)
            return [dict(zip(_COLUMNS, r, strict=True)) for r in cur.fetchall()]
    except sqlite3.OperationalError as exc:
        raise UnavailableError(f"the audit log {path} cannot be read now ({exc}); try again shortly") from exc

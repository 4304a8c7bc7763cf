"""The workspace's own event log: the embedded, durable transport of the collector.

    WS/eventlog/p0/LOCK                 held (flock) by the one process appending to partition p0
    WS/eventlog/p0/SOURCE/events/       accepted messages of source SOURCE, in segment files
                                        (cx360.stream.segments): a sealed one is a Segment export
    WS/eventlog/p0/SOURCE/rejected/     rejected messages with their reasons, drained into `quarantine`
    WS/eventlog/p0/SOURCE/groups/       committed offsets of the consumer groups that read through `read`

Each server process appends to a partition of its own (the first whose lock is free), so
`cx360 serve --workers N` writes N partitions and no two processes share a file.

`append` returns only once its lines are fsynced. Concurrent appends share the fsync (group
commit): the first caller to find no flush in progress writes everything queued so far, syncs
once, and wakes every caller whose lines that covered.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cx360.errors import DataError, UnavailableError
from cx360.stream.segments import OPEN, Segments, sealed_in, span, sync_dir
from cx360.stream.transport import Entry

LOG_DIR = "eventlog"
STREAMS = ("events", "rejected")


@dataclass
class _Pending:
    stream: Segments
    lines: Sequence[bytes]
    first: int = 0
    error: BaseException | None = None
    done: bool = False


@dataclass
class _Group:
    committed: int = 0
    acked: set[int] = field(default_factory=set)
    leases: dict[int, tuple[str, float]] = field(default_factory=dict)  # seq -> (consumer, handed out at)


def partitions(root: Path) -> list[Path]:
    """Every partition of the workspace's log (any process may call this)."""
    folder = root / LOG_DIR
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("p")) if folder.is_dir() else []


def sources(root: Path) -> list[str]:
    """The sources that have messages in the log."""
    return sorted({s.name for part in partitions(root) for s in part.iterdir() if s.is_dir()})


def try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def live_writers(root: Path) -> list[Path]:
    """The partitions a live process (a running `cx360 serve`) holds now."""
    busy = []
    for part in partitions(root):
        fd = try_lock(part / "LOCK")
        if fd is None:
            busy.append(part)
        else:
            os.close(fd)
    return busy


def seal_abandoned(root: Path) -> list[Path]:
    """Seal what writers that are gone left open (a killed server); partitions in use are left alone.
    Returns the partitions still held by a live writer."""
    busy = []
    for part in partitions(root):
        fd = try_lock(part / "LOCK")
        if fd is None:
            busy.append(part)
            continue
        try:
            for folder in part.glob("*/*"):
                if folder.name in STREAMS and folder.is_dir():
                    Segments(folder, segment_bytes=1).close()
        finally:
            os.close(fd)
    return busy


def open_segments(root: Path, source: str, stream: str = "events") -> list[Path]:
    """The open segment files of a source's stream, in every partition."""
    return [p for part in partitions(root) for p in (part / source / stream).glob("*.open") if OPEN.fullmatch(p.name)]


def sealed(root: Path, source: str, stream: str = "events") -> list[Path]:
    """Sealed segments of a source's stream waiting for the drain, in every partition, oldest first per partition."""
    return [p for part in partitions(root) for p in sealed_in(part / source / stream)]


def backlog(root: Path, *, skip: Path | None = None) -> int:
    """Messages in the log that the warehouse has not loaded yet (sealed and open segments); the open
    segments of partition `skip` are left out (its writer knows how many lines they hold)."""
    total = 0
    for source in sources(root):
        for p in sealed(root, source):
            first, last = span(p)  # type: ignore[misc]
            total += last - first + 1
        for p in open_segments(root, source):
            if skip is not None and p.parent.parent.parent == skip:
                continue
            try:
                with open(p, "rb") as f:
                    total += sum(block.count(b"\n") for block in iter(lambda f=f: f.read(1 << 20), b""))
            except FileNotFoundError:
                pass  # sealed meanwhile; counted at the next look
    return total


def size_bytes(root: Path) -> int:
    total = 0
    for part in partitions(root):
        for p in part.rglob("*"):
            with contextlib.suppress(FileNotFoundError):
                total += p.stat().st_size if p.is_file() else 0
    return total


class Partition:
    """This process's partition of the log: its lock, and one EventLog per source."""

    def __init__(self, root: Path, *, segment_bytes: int = 16 << 20):
        folder = root / LOG_DIR
        folder.mkdir(parents=True, exist_ok=True)
        n = 0
        while True:
            part = folder / f"p{n}"
            part.mkdir(exist_ok=True)
            fd = try_lock(part / "LOCK")
            if fd is not None:
                break
            n += 1
        self.root, self.folder, self._lock_fd = root, part, fd
        self.segment_bytes = segment_bytes
        self._logs: dict[str, EventLog] = {}
        self._mutex = threading.Lock()
        for source in sorted(p.name for p in part.iterdir() if p.is_dir()):
            self.log(source)  # recovers and seals what a killed predecessor left open

    def log(self, source: str) -> EventLog:
        with self._mutex:
            if source not in self._logs:
                self._logs[source] = EventLog(self.folder / source, root=self.root, segment_bytes=self.segment_bytes)
            return self._logs[source]

    def append(self, messages: Sequence[bytes]) -> list[str]:
        """Land lines as the collector writes them, of any sources (each names its own in
        `cx360.source`): the sink of a relay from a shared transport (cx360.stream.relay)."""
        by_source: dict[str, list[int]] = {}
        for i, m in enumerate(messages):
            try:
                source = json.loads(m)["cx360"]["source"]
            except (ValueError, KeyError, TypeError):
                raise DataError(f"message {i} names no source (cx360.source): {m[:80]!r}") from None
            by_source.setdefault(source, []).append(i)
        offsets = [""] * len(messages)
        for source, positions in by_source.items():
            for i, offset in zip(positions, self.log(source).append([messages[i] for i in positions]), strict=True):
                offsets[i] = f"{source}/{offset}"
        return offsets

    def logs(self) -> list[EventLog]:
        with self._mutex:
            return list(self._logs.values())

    def close(self) -> None:
        for log in self.logs():
            log.close()
        os.close(self._lock_fd)


class EventLog:
    """The writer of one source's messages in one partition, and a `Transport` (cx360.stream.transport)
    over them. Only a `Partition` (which holds the partition's lock) creates one."""

    def __init__(self, folder: Path, *, root: Path, segment_bytes: int):
        self.root, self.folder = root, folder
        self.events = Segments(folder / "events", segment_bytes=segment_bytes)
        self.rejected = Segments(folder / "rejected", segment_bytes=segment_bytes)
        self._cv = threading.Condition()
        self._queue: list[_Pending] = []
        self._flushing = False
        self._closed = False
        self._groups: dict[str, _Group] = {}

    # -- writing ------------------------------------------------------------------------------------
    def append(self, messages: Sequence[bytes]) -> list[str]:
        first = self._commit(self.events, messages)
        return [self._offset(first + i) for i in range(len(messages))]

    def reject(self, lines: Sequence[bytes]) -> None:
        """Store rejected messages (their raw payload and reason) as durably as accepted ones."""
        self._commit(self.rejected, lines)

    def _commit(self, stream: Segments, lines: Sequence[bytes]) -> int:
        if not lines:
            return stream.next_seq
        mine = _Pending(stream, lines)
        with self._cv:
            if self._closed:
                raise UnavailableError("the event log is closed (the server is shutting down): try again")
            self._queue.append(mine)
            while not mine.done:
                if self._flushing:
                    self._cv.wait()
                    continue
                batch, self._queue = self._queue, []
                self._flushing = True
                self._cv.release()
                try:
                    self._write(batch)
                finally:
                    self._cv.acquire()
                    self._flushing = False
                    for p in batch:
                        p.done = True
                    self._cv.notify_all()
        if mine.error is not None:
            raise UnavailableError(f"the event log could not store the messages ({mine.error}): try again")
        return mine.first

    def _write(self, batch: list[_Pending]) -> None:
        touched: list[Segments] = []
        try:
            for p in batch:
                p.first = p.stream.write(p.lines)
                if p.stream not in touched:
                    touched.append(p.stream)
            for s in touched:
                s.sync()
                if s.full:
                    s.seal()
        except OSError as exc:  # nothing in this batch is acknowledged; a retry may find it again (dedup)
            for p in batch:
                p.error = exc

    def seal_older_than(self, seconds: float) -> list[Path]:
        """Seal open segments whose first line is older than `seconds`, so that the drain sees them."""
        done = []
        with self._cv:
            while self._flushing:
                self._cv.wait()
            for s in (self.events, self.rejected):
                if s.age() >= seconds:
                    path = s.seal()
                    if path is not None:
                        done.append(path)
        return done

    # -- the Transport interface ------------------------------------------------------------------------
    def _offset(self, seq: int) -> str:
        return f"{self.folder.parent.name}:{seq:016d}"

    def _group(self, name: str) -> _Group:
        if name not in self._groups:
            path = self.folder / "groups" / name
            committed = int(path.read_text()) if path.is_file() else 0
            self._groups[name] = _Group(committed)
        return self._groups[name]

    def _entries(self, after: int) -> Iterator[tuple[int, bytes]]:
        for path in self.events.files():
            s = span(path)
            if s and s[1] <= after:
                continue
            first = s[0] if s else int(path.name.split(".")[0])
            with open(path, "rb") as f:
                for i, line in enumerate(f):
                    if first + i > after and line.endswith(b"\n"):
                        yield first + i, line[:-1]

    def read(
        self, group: str, consumer: str, *, count: int, block_ms: int = 0, reclaim_after_ms: int = 30_000
    ) -> list[Entry]:
        deadline = time.monotonic() + block_ms / 1000
        while True:
            with self._cv:
                g = self._group(group)
                now = time.monotonic()
                out: list[Entry] = []
                for seq, line in self._entries(g.committed):
                    if seq in g.acked:
                        continue
                    holder = g.leases.get(seq)
                    if holder and holder[0] != consumer and now - holder[1] < reclaim_after_ms / 1000:
                        continue
                    g.leases[seq] = (consumer, now)
                    out.append(Entry(self._offset(seq), line))
                    if len(out) >= count:
                        break
            if out or time.monotonic() >= deadline:
                return out
            time.sleep(0.05)

    def ack(self, group: str, offsets: Sequence[str]) -> None:
        with self._cv:
            g = self._group(group)
            for o in offsets:
                seq = int(o.rpartition(":")[2])
                g.acked.add(seq)
                g.leases.pop(seq, None)
            before = g.committed
            while g.committed + 1 in g.acked:
                g.committed += 1
                g.acked.discard(g.committed)
            if g.committed != before:
                folder = self.folder / "groups"
                folder.mkdir(exist_ok=True)
                tmp = folder / f".{group}.tmp"
                tmp.write_text(str(g.committed))
                os.replace(tmp, folder / group)
                sync_dir(folder)

    def lag(self, group: str) -> int:
        with self._cv:
            g = self._group(group)
            return self.events.next_seq - 1 - g.committed - len(g.acked)

    def size_bytes(self) -> int:
        return size_bytes(self.root)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            while self._flushing:
                self._cv.wait()
            self.events.close()
            self.rejected.close()

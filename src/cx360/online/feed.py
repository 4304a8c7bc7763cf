"""The event log as the stream processor reads it: any partition, from any process, open segments included.

A `Feed` follows one source's accepted messages in one partition (cx360.stream.eventlog), by sequence
number. It reads the complete lines of the segment holding the next number while the partition's writer
(a live `cx360 serve`, in this process or another) appends to it, and follows the segment as it is sealed
and drained: both are renames, which the open file survives. How far the processor applied a feed is
committed in the online store's `offsets` table, in the transaction that applied the lines, so a
processor killed mid-batch replays from exactly there: nothing twice, nothing lost.

A processor applies a partition only while it holds the partition's `ONLINE` lock (flock, released by
the kernel when the process dies), so two processes never apply the same partition and the events of
one partition are applied in their order. `Feeds` claims partitions: `cx360 serve` its own one, `cx360
stream` every partition no other processor holds, as they appear.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from cx360.stream import eventlog
from cx360.stream.segments import DRAINED, OPEN, SEALED

log = logging.getLogger("cx360.online")
OWNER_LOCK = "ONLINE"
_BLOCK = 1 << 20


def _segments(folder: Path) -> list[tuple[int, Path]]:
    """(first sequence number, path) of every segment of a stream, drained, sealed or open, by first."""
    found = []
    for place in (folder / DRAINED, folder):
        try:
            names = os.listdir(place)
        except FileNotFoundError:
            continue
        for name in names:
            m = SEALED.fullmatch(name) or OPEN.fullmatch(name)
            if m:
                found.append((int(m[1]), place / name))
    return sorted(found)


class Feed:
    """One source's stream in one partition, read from the sequence number after `applied`."""

    def __init__(self, partition: Path, source: str, applied: int):
        self.name = f"{partition.name}/{source}"  # the key of its row in `offsets`
        self.source = source
        self.folder = partition / source / "events"
        self.applied = applied
        self._fd: int | None = None
        self._path: Path | None = None
        self._next = applied + 1  # the sequence number of the line at self._pos
        self._pos = 0
        self._buffer = b""  # bytes read past the last complete line

    def read(self, count: int) -> list[tuple[int, bytes]]:
        """Up to `count` complete lines after those read, as (sequence number, line)."""
        out: list[tuple[int, bytes]] = []
        while len(out) < count:
            if self._fd is None and not self._open():
                break
            got = self._lines(count - len(out))
            if got:
                out += got
            elif not self._next_segment():
                break
        return out

    def commit(self, seq: int) -> None:
        """The lines up to `seq` are applied (their transaction committed)."""
        self.applied = seq

    def rewind(self) -> None:
        """Read again from the last committed line (what was read after it was not applied)."""
        self.close()
        self._next = self.applied + 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._path, self._buffer = None, None, b""

    # -- reading --------------------------------------------------------------------------------------------
    def _open(self) -> bool:
        """Open the segment holding self._next and skip to it; False when there is none yet."""
        for _ in range(8):  # a segment renamed between the listing and the open: list again
            for first, path in _segments(self.folder):
                sealed = SEALED.fullmatch(path.name)
                if first <= self._next and (sealed is None or self._next <= int(sealed[2])):
                    break  # the segment that holds it, or will (an open one)
                if first > self._next:  # retention or an erasure removed lines before it: never applied here
                    log.warning("online: %s lines %d-%d are gone from the log", self.name, self._next, first - 1)
                    self._next = first
                    break
            else:
                return False
            try:
                self._fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            self._path, self._pos, self._buffer = path, 0, b""
            skip, self._next = self._next - first, first
            while skip > 0:  # lines of this segment applied before
                lines = self._lines(skip, keep=False)
                if not lines:
                    break
                skip -= len(lines)
            return True
        return False

    def _lines(self, count: int, *, keep: bool = True) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        assert self._fd is not None
        while len(out) < count:
            end = self._buffer.find(b"\n")
            if end < 0:
                block = os.pread(self._fd, _BLOCK, self._pos)
                if not block:
                    break
                self._pos += len(block)
                self._buffer += block
                continue
            line, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
            out.append((self._next, line if keep else b""))
            self._next += 1
        return out

    def _next_segment(self) -> bool:
        """At the end of the segment read: move to the next one if it is sealed; False while it is open."""
        assert self._path is not None
        if OPEN.fullmatch(self._path.name) and self._path.exists():
            return False  # its writer may append more
        if os.pread(self._fd, 1, self._pos):  # appended before the seal: read it first
            return True
        first = int(self._path.name[:16])
        self.close()
        for start, path in _segments(self.folder):  # a sealed segment erasure made shorter ends at its name's last
            sealed = SEALED.fullmatch(path.name)
            if start == first and sealed:
                self._next = max(self._next, int(sealed[2]) + 1)
        return self._open()


class Feeds:
    """The feeds of the partitions this process's processor owns, claimed by their ONLINE lock.

    `only`: the one partition to claim (a server's own); None: every partition of the workspace."""

    def __init__(self, root: Path, offsets, *, only: Path | None = None):
        self.root, self.only = root, only
        self._offsets = offsets  # name -> the last sequence number applied (OnlineStore.offset)
        self._owned: dict[Path, int] = {}  # partition -> its lock's file descriptor
        self._feeds: dict[tuple[Path, str], Feed] = {}
        self._claimed_at = -1.0

    def claim(self) -> list[Path]:
        """Take the lock of every partition to own that no other processor holds (looked for once a second);
        the partitions owned."""
        if time.monotonic() - self._claimed_at < 1.0:
            return sorted(self._owned)
        self._claimed_at = time.monotonic()
        for part in [self.only] if self.only is not None else eventlog.partitions(self.root):
            if part not in self._owned:
                fd = eventlog.try_lock(part / OWNER_LOCK)
                if fd is not None:
                    self._owned[part] = fd
        return sorted(self._owned)

    @property
    def owned(self) -> list[Path]:
        return sorted(self._owned)

    def current(self) -> list[Feed]:
        """A feed per source of every owned partition (new sources and partitions included)."""
        for part in self.claim():
            try:
                names = os.listdir(part)
            except FileNotFoundError:
                continue
            for source in sorted(names):
                if (part, source) not in self._feeds and (part / source / "events").is_dir():
                    feed = Feed(part, source, 0)
                    feed.applied = self._offsets(feed.name) or _group_committed(part / source)
                    feed.rewind()
                    self._feeds[part, source] = feed
        return list(self._feeds.values())

    def close(self) -> None:
        for feed in self._feeds.values():
            feed.close()
        for fd in self._owned.values():
            os.close(fd)
        self._feeds.clear()
        self._owned.clear()


def _group_committed(folder: Path) -> int:
    """Where a processor that acknowledged through the log's consumer group `online` stopped (before
    offsets were kept in the online store): a workspace upgraded in place does not apply its log again."""
    path = folder / "groups" / "online"
    return int(path.read_text()) if path.is_file() else 0

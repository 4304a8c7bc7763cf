"""One append-only sequence of segment files of JSON lines in a folder.

    <first>.open              the segment being appended to (first = its first sequence number)
    <first>-<last>.jsonl      a sealed segment: complete, immutable, waiting for the drain
    drained/<first>-<last>.jsonl   a sealed segment the warehouse has loaded (kept for the dedup window)

Every line ends in a newline and is written whole by the one process holding the partition's lock;
a crash can leave only a torn last line in the open segment, which `recover` cuts off (it was
never synced, so never acknowledged) before sealing what precedes it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

SEALED = re.compile(r"(\d{16})-(\d{16})\.jsonl")
OPEN = re.compile(r"(\d{16})\.open")
DRAINED = "drained"
LAST = "last"  # the last sequence number sealed, so that a restart continues after it


def _write_last(folder: Path, seq: int) -> None:
    tmp = folder / f".{LAST}.tmp"
    tmp.write_text(str(seq))
    os.replace(tmp, folder / LAST)  # the caller syncs the folder


def sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def span(path: Path) -> tuple[int, int] | None:
    """(first, last) sequence numbers of a sealed segment, from its name."""
    m = SEALED.fullmatch(path.name)
    return (int(m[1]), int(m[2])) if m else None


def sealed_in(folder: Path) -> list[Path]:
    """The folder's sealed segments not yet drained, oldest first (any process may call this)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if SEALED.fullmatch(p.name))


def mark_drained(path: Path) -> None:
    """Move a sealed segment the warehouse has committed out of the drain's way."""
    target = path.parent / DRAINED
    target.mkdir(exist_ok=True)
    try:
        os.replace(path, target / path.name)
    except FileNotFoundError:
        return  # another drain moved it first
    sync_dir(path.parent)


class Segments:
    """The writer's side. Not thread-safe: the event log serialises its calls."""

    def __init__(self, folder: Path, *, segment_bytes: int):
        self.folder = folder
        self.segment_bytes = segment_bytes
        (folder / DRAINED).mkdir(parents=True, exist_ok=True)
        self._fd: int | None = None
        self._first = 0  # first sequence number of the open segment
        self._size = 0
        self._opened_at = 0.0
        self.next_seq = self.recover()

    def recover(self) -> int:
        """Seal what a previous writer left open (cut after its last complete line); the next sequence number."""
        marker = self.folder / LAST
        last = int(marker.read_text()) if marker.is_file() else 0  # survives retention deleting segments
        for p in [*self.folder.iterdir(), *(self.folder / DRAINED).iterdir()]:
            s = span(p)
            if s:
                last = max(last, s[1])
        for p in sorted(self.folder.iterdir()):
            m = OPEN.fullmatch(p.name)
            if not m:
                continue
            data = p.read_bytes()
            whole = data[: data.rfind(b"\n") + 1]
            if len(whole) != len(data):
                with open(p, "r+b") as f:
                    f.truncate(len(whole))
                    os.fsync(f.fileno())
            lines = whole.count(b"\n")
            if lines:
                first = int(m[1])
                os.replace(p, self.folder / f"{first:016d}-{first + lines - 1:016d}.jsonl")
                last = max(last, first + lines - 1)
                _write_last(self.folder, last)
            else:
                p.unlink()
        sync_dir(self.folder)
        return last + 1

    def write(self, lines: Sequence[bytes]) -> int:
        """Append the lines (one write, not yet synced); returns the sequence number of the first."""
        if self._fd is None:
            self._first, self._size, self._opened_at = self.next_seq, 0, time.monotonic()
            path = self.folder / f"{self._first:016d}.open"
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            sync_dir(self.folder)
        data = b"".join(line + b"\n" for line in lines)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        first = self.next_seq
        self.next_seq += len(lines)
        self._size += len(data)
        return first

    def sync(self) -> None:
        if self._fd is not None:
            os.fdatasync(self._fd)

    @property
    def full(self) -> bool:
        return self._fd is not None and self._size >= self.segment_bytes

    def age(self) -> float:
        """Seconds since the open segment got its first line (0 when none is open)."""
        return time.monotonic() - self._opened_at if self._fd is not None else 0.0

    def open_lines(self) -> int:
        return self.next_seq - self._first if self._fd is not None else 0

    def seal(self) -> Path | None:
        """Close the open segment under its sealed name (after `sync`); None when none is open."""
        if self._fd is None:
            return None
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        sealed = self.folder / f"{self._first:016d}-{self.next_seq - 1:016d}.jsonl"
        os.replace(self.folder / f"{self._first:016d}.open", sealed)
        _write_last(self.folder, self.next_seq - 1)
        sync_dir(self.folder)
        return sealed

    def files(self) -> Iterator[Path]:
        """Every segment, drained, sealed and open, oldest first."""
        drained = sorted(p for p in (self.folder / DRAINED).iterdir() if SEALED.fullmatch(p.name))
        current = sorted(p for p in self.folder.iterdir() if SEALED.fullmatch(p.name) or OPEN.fullmatch(p.name))
        yield from drained
        yield from current

    def close(self) -> None:
        self.seal()

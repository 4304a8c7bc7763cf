"""The event transport's entries of an erased person (a Redis stream, the collector's log): each
message is a Segment-spec call as JSON, theirs when a value in it is one of their identifiers once
normalised, or their record id, e-mail, handle, phone or full name appears in its text."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from cx360.config import Config
from cx360.erasure.subject import Subject
from cx360.privacy.suppression import Suppression
from cx360.stream import eventlog
from cx360.stream.segments import sync_dir
from cx360.stream.transport import Transport


def matcher(root: Path, subject: Subject, region: str | None) -> Suppression:
    """A suppression list of this one person, for the tests ingest makes against the whole list."""
    mine = Suppression(root, region=region)
    mine.hashes = {mine.hash(kind, value) for kind, value in subject.suppressed()}
    return mine


def _touches(root: Path, subject: Subject, region: str | None):
    mine = matcher(root, subject, region)
    return lambda message: mine.touches(message.decode("utf-8", "replace"))


def erase_entries(transport: Transport, root: Path, subject: Subject, region: str | None) -> int:
    """Remove the person's entries from `transport`; returns how many."""
    return transport.erase(_touches(root, subject, region))


def erase_redis(config: Config, root: Path, subject: Subject, region: str | None) -> dict[str, tuple[int, int]]:
    """With `[collector] transport = "redis"`: the person's entries out of the workspace's accepted and
    rejected streams. Per stream: (entries removed, entries of theirs left after, for the receipt's
    verification). Redis unreachable is TransportUnavailableError: the erasure stays pending and the
    next `cx360 privacy erase` completes it."""
    if config.collector.transport != "redis":
        return {}
    from cx360.stream.redis_log import RedisLog

    touches = _touches(root, subject, region)
    log = RedisLog(config.collector, config.workspace.name)
    try:
        return {f"redis stream {t.stream}": (t.erase(touches), t.count(touches)) for t in (log.events, log.rejected)}
    finally:
        log.close()


def erase_event_log(root: Path, subject: Subject, region: str | None) -> tuple[int, list[str]]:
    """Remove the person's messages from the collector's event log (cx360.stream.eventlog): every
    segment file, sealed, drained (kept for the dedup window) or left open by a dead server, is
    rewritten without them, under the partition's lock so that no server appends meanwhile. Returns
    the messages removed and the partitions a running server holds (their files are left as they
    are; the drain's suppression keeps those messages out of the warehouse)."""
    mine = matcher(root, subject, region)
    busy = eventlog.seal_abandoned(root)  # what dead writers left open becomes sealed segments
    removed = 0
    for part in eventlog.partitions(root):
        if part in busy:
            continue
        fd = os.open(part / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a server took it since
                busy.append(part)
                continue
            for path in sorted(part.rglob("*.jsonl")):
                removed += _rewrite_without(path, mine)
        finally:
            os.close(fd)
    return removed, [p.name for p in busy]


def _rewrite_without(path: Path, mine: Suppression) -> int:
    lines = path.read_bytes().splitlines(keepends=True)
    kept = [line for line in lines if not mine.touches(line.decode("utf-8", "replace"))]
    if len(kept) == len(lines):
        return 0
    tmp = path.with_name(path.name + ".erasing")
    with open(tmp, "wb") as f:
        f.write(b"".join(kept))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    sync_dir(path.parent)
    return len(lines) - len(kept)

"""The collector on Redis Streams (`[collector] transport = "redis"`): what the servers accept goes to
the workspace's streams in Redis, and a relay lands it in the workspace's own event log, from which
the warehouse drain loads it as it loads everything the collector logs.

Two streams per workspace: `<stream>` holds accepted messages, `<stream>:rejected` the rejected
ones with their reasons (they reach `quarantine` the same way). Each line carries its source in its
`cx360` mark, so the relay appends it to that source's log. Several servers (processes or machines)
may append to the same streams, and several relays may land them: each line is landed by one
relay of the group, and again only if that relay died before acknowledging it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from cx360.errors import ConfigError
from cx360.stream.redis_transport import RedisTransport
from cx360.stream.relay import GROUP, Relay

if TYPE_CHECKING:
    from cx360.config import CollectorSettings
    from cx360.stream.eventlog import Partition


def redis_url(settings: CollectorSettings) -> str:
    if settings.redis_url:
        return settings.redis_url
    url = os.environ.get(settings.redis_url_env or "")
    if not url:
        raise ConfigError(
            f"[collector] redis_url_env = {settings.redis_url_env!r}, but that environment variable is not set "
            "(or empty): set it to the Redis URL, e.g. redis://:PASSWORD@HOST:6379/0"
        )
    return url


def stream_name(settings: CollectorSettings, workspace: str) -> str:
    return settings.redis_stream or f"cx360:{workspace}:events"


class RedisLog:
    """The servers' side: `append` accepted lines, `reject` rejected ones; both return once Redis has
    them on disk (see cx360.stream.redis_transport for what that requires of the server)."""

    def __init__(self, settings: CollectorSettings, workspace: str):
        url, stream = redis_url(settings), stream_name(settings, workspace)
        durable = settings.redis_require_durable
        self.events = RedisTransport(url, stream, groups=[GROUP], require_durable=durable)
        self.rejected = RedisTransport(url, f"{stream}:rejected", groups=[GROUP], require_durable=durable)
        self.durable = self.events.durable

    def append(self, lines: Sequence[bytes]) -> list[str]:
        return self.events.append(lines)

    def reject(self, lines: Sequence[bytes]) -> None:
        self.rejected.append(lines)

    def lag(self) -> int:
        """Accepted messages not yet landed in the event log."""
        return self.events.lag(GROUP)

    def size_bytes(self) -> int:
        return self.events.size_bytes() + self.rejected.size_bytes()

    def close(self) -> None:
        self.events.close()
        self.rejected.close()


UNREADABLE = "redis_unreadable"  # the source under which lines without a cx360 mark are quarantined


def _unreadable(line: bytes) -> bytes:
    reason = "a line in the Redis stream without the cx360 mark of its source (not written by a cx360 collector)"
    mark = {"source": UNREADABLE, "key": None, "reason": reason}
    return json.dumps({"cx360": mark, "raw": line.decode("utf-8", "replace")}).encode()


class _SourceLogs:
    """A relay's sink: each line into its source's log of this process's partition."""

    def __init__(self, partition: Partition, *, rejected: bool):
        self.partition, self.rejected = partition, rejected

    def append(self, lines: Sequence[bytes]) -> list[str]:
        by_source: dict[str, list[bytes]] = defaultdict(list)
        unreadable: list[bytes] = []
        for line in lines:
            try:
                by_source[json.loads(line)["cx360"]["source"]].append(line)
            except (ValueError, KeyError, TypeError):
                unreadable.append(line)
        for source, group in by_source.items():
            log = self.partition.log(source)
            if self.rejected:
                log.reject(group)
            else:
                log.append(group)
        if unreadable:  # not written by a cx360 collector: kept, for quarantine, rather than dropped
            self.partition.log(UNREADABLE).reject([_unreadable(line) for line in unreadable])
        return []


class RedisRelay:
    """Lands both streams in the partition's logs: in a thread (`start`/`close`) inside `cx360 serve`,
    or in the foreground (`run`, `drain`) for `cx360 stream consume`."""

    def __init__(
        self, redis: RedisLog, partition: Partition, settings: CollectorSettings, *, consumer: str | None = None
    ):
        consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        reclaim = int(settings.redis_reclaim_seconds * 1000)
        self.relays = [
            Relay(redis.events, _SourceLogs(partition, rejected=False), consumer=consumer, reclaim_after_ms=reclaim),
            Relay(redis.rejected, _SourceLogs(partition, rejected=True), consumer=consumer, reclaim_after_ms=reclaim),
        ]
        self._thread: threading.Thread | None = None

    @property
    def landed(self) -> int:
        return self.relays[0].stats.messages

    def drain(self) -> tuple[int, int]:
        """Land what waits now; (accepted, rejected) messages landed."""
        return self.relays[0].drain(), self.relays[1].drain()

    def run(self, *, block_ms: int = 500, tick: Callable[[], object] | None = None) -> None:
        """Land until `close`; each pass blocks on the accepted stream, then takes the rejected one's batch
        (and calls `tick`, e.g. to seal the event log's segments on time)."""
        events, rejected = self.relays

        def after_each_pass() -> None:
            rejected.step(block_ms=0)
            if tick is not None:
                tick()

        events.tick = after_each_pass
        events.run(block_ms=block_ms)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="cx360-redis-relay", daemon=True)
        self._thread.start()

    def close(self) -> None:
        for r in self.relays:
            r.stop()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

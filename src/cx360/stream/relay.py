"""Move collected messages from a shared transport (Redis Streams) into the workspace's own event log.

A relay reads a batch in its consumer group, appends it to the sink (which returns only once the
batch is on disk), and only then acknowledges it. A relay killed between the two leaves the batch
pending, and it is landed again by whichever relay reads next (its own restart, or another after
`reclaim_after_ms`): delivery is at least once, and the warehouse merge keyed by (source,
messageId) drops the second copy. While the sink refuses (disk full) the relay keeps the batch and
retries it; while the source cannot be reached it waits and tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from cx360.errors import Cx360Error
from cx360.stream.transport import Transport

log = logging.getLogger(__name__)
GROUP = "cx360-eventlog"  # the consumer group of the relays that land a stream in the event log


@dataclass
class RelayStats:
    batches: int = 0
    messages: int = 0
    retries: int = 0  # source or sink unavailable, tried again


class Relay:
    def __init__(
        self,
        source: Transport,
        sink: Transport,
        *,
        consumer: str,
        group: str = GROUP,
        batch: int = 1000,
        reclaim_after_ms: int = 30_000,
        tick: Callable[[], object] | None = None,
    ):
        self.source, self.sink = source, sink
        self.consumer, self.group, self.batch = consumer, group, batch
        self.reclaim_after_ms = reclaim_after_ms
        self.tick = tick  # called after every pass, e.g. to seal the event log's segments on time
        self.stats = RelayStats()
        self._stop = threading.Event()

    def step(self, block_ms: int = 1000) -> int:
        """One batch from source to sink; how many messages it moved (0: none waiting)."""
        entries = self.source.read(
            self.group, self.consumer, count=self.batch, block_ms=block_ms, reclaim_after_ms=self.reclaim_after_ms
        )
        offsets = [e.offset for e in entries]
        # acknowledged only once on disk; a relay stopped in between leaves the batch to the next one
        landed = bool(entries) and self._retrying(
            "the event log refused", lambda: self.sink.append([e.message for e in entries])
        )
        if landed and self._retrying("the acknowledgement failed", lambda: self.source.ack(self.group, offsets)):
            self.stats.batches += 1
            self.stats.messages += len(entries)
        if self.tick is not None:
            self.tick()
        return len(entries)

    def _retrying(self, what: str, call: Callable[[], object]) -> bool:
        """Call until it succeeds (True) or the relay is stopped first (False); terminal errors pass."""
        delay = 0.1
        while True:
            try:
                call()
                return True
            except Cx360Error as exc:
                if not exc.retryable:
                    raise
                self.stats.retries += 1
                log.warning("relay: %s (%s); retrying in %.1fs", what, exc, delay)
                if self._stop.wait(delay):
                    return False  # left pending in the source, landed by the next relay
                delay = min(delay * 2, 5.0)

    def drain(self) -> int:
        """Move everything waiting now; how many messages that was."""
        total = 0
        while moved := self.step(block_ms=0):
            total += moved
        return total

    def run(self, *, block_ms: int = 1000) -> RelayStats:
        """Relay until `stop` is called; a source that cannot be reached is waited for, not given up on."""
        delay = 0.1
        while not self._stop.is_set():
            try:
                self.step(block_ms)
                delay = 0.1
            except Cx360Error as exc:
                if not exc.retryable:
                    raise
                self.stats.retries += 1
                log.warning("relay: %s; retrying in %.1fs", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
        return self.stats

    def stop(self) -> None:
        self._stop.set()

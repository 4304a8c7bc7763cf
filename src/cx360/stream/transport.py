"""The interface every event transport keeps: the workspace's own log, Redis Streams, later Kafka.

The collector appends each accepted message (one Segment-spec call as JSON bytes) and answers only
after `append` returned, so an acknowledged event is durable. Consumers read in consumer groups:
each entry goes to one consumer of a group, stays pending until that consumer acknowledges it,
and is handed again to another consumer of the group once its reader has been silent for
`reclaim_after_ms`, so a consumer that dies loses nothing. Delivery is at least once; the
warehouse merge keyed by (source, messageId) makes it exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol


class Entry(NamedTuple):
    offset: str  # opaque, increasing in the order of `append`
    message: bytes


class Transport(Protocol):
    def append(self, messages: Sequence[bytes]) -> list[str]:
        """Store the messages durably, in order; return their offsets."""
        ...

    def read(
        self, group: str, consumer: str, *, count: int, block_ms: int = 0, reclaim_after_ms: int = 30_000
    ) -> list[Entry]:
        """At most `count` entries for `consumer`: first those that the group's dead consumers left
        pending longer than `reclaim_after_ms`, then new ones; waits up to `block_ms` for any."""
        ...

    def ack(self, group: str, offsets: Sequence[str]) -> None:
        """The group has landed these entries: they are not handed out again."""
        ...

    def lag(self, group: str) -> int:
        """Entries appended and not yet acknowledged by the group."""
        ...

    def size_bytes(self) -> int:
        """What the transport holds, in bytes (for backpressure and /metrics)."""
        ...

    def erase(self, matches: Callable[[bytes], bool]) -> int:
        """Remove, physically (from the files behind it too), every entry whose message `matches`
        holds: how `cx360 privacy erase` reaches the transport. Returns the entries removed."""
        ...

    def close(self) -> None: ...

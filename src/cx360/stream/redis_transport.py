"""The event transport on Redis Streams, for producers and consumers in separate processes or machines.

One stream per workspace. `append` is one XADD per message in a pipeline; consumers read in
consumer groups (XREADGROUP), take over what a silent consumer left pending (XAUTOCLAIM with a
minimum idle time), and acknowledge with XACK. Acknowledged entries are trimmed with XTRIM MINID
below the oldest entry some group still needs, so a trim never drops an unacknowledged entry.

An XADD that Redis answered is durable only if Redis fsyncs its append-only file before it
answers: `appendonly yes` and `appendfsync always`. The transport checks both at connect and
refuses a server that is not durable, unless told to trust it (then `durable` is False, for
/metrics, and a warning is logged).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from cx360.errors import ConfigError, MissingDependencyError, TransportUnavailableError
from cx360.stream.transport import Entry

log = logging.getLogger(__name__)
FIELD = b"m"  # each entry holds one field: the message as received
ERASE_ATTEMPTS = 10  # rebuilds of the stream an erasure tries before it gives up on concurrent appends
COUNT_LIMIT = 10_000  # past this many entries a lag that Redis cannot tell is reported as the stream's length
TRANSIENT = {"LOADING", "BUSY", "MISCONF", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN"}  # try later


def _redis():
    try:
        import redis
    except ImportError as exc:
        raise MissingDependencyError("the Redis Streams transport", "serve") from exc
    return redis


class RedisTransport:
    """The Transport of cx360.stream.transport on one Redis stream.

    `groups` are the consumer groups created at connect (from the stream's first entry), so that
    nothing appended before a consumer first reads is trimmed away from it.
    """

    def __init__(
        self,
        url: str,
        stream: str,
        *,
        groups: Sequence[str] = (),
        require_durable: bool = True,
        timeout_s: float = 5.0,
    ):
        redis = _redis()
        self.url, self.stream = url, stream
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, health_check_interval=30
        )
        self._max_block_ms = int(timeout_s * 500)  # a blocking read must end well within the socket timeout
        self._groups: set[str] = set()
        self._own_pending_read: set[tuple[str, str]] = set()
        self.durable = self._call("connect", self._check_durable, require_durable)
        for group in groups:
            self._ensure_group(group)

    # -- the Transport interface --------------------------------------------------------------

    def append(self, messages: Sequence[bytes]) -> list[str]:
        if not messages:
            return []

        def run() -> list[str]:
            pipe = self._client.pipeline(transaction=True)  # all of a batch or none of it
            for message in messages:
                pipe.xadd(self.stream, {FIELD: message})
            return [offset.decode() for offset in pipe.execute()]

        return self._call("append", run)

    def read(
        self, group: str, consumer: str, *, count: int, block_ms: int = 0, reclaim_after_ms: int = 30_000
    ) -> list[Entry]:
        self._ensure_group(group)
        entries: list[Entry] = []
        if (group, consumer) not in self._own_pending_read:
            # a consumer that restarts under its own name first takes back what it had not acknowledged
            entries += self._read_group(group, consumer, "0", count, None)
            if len(entries) < count:
                self._own_pending_read.add((group, consumer))
        if len(entries) < count:
            entries += self._reclaim(group, consumer, count - len(entries), reclaim_after_ms)
        if len(entries) < count:
            entries += self._read_group(group, consumer, ">", count - len(entries), None if entries else block_ms)
        return entries

    def ack(self, group: str, offsets: Sequence[str]) -> None:
        if offsets:
            self._call("ack", self._client.xack, self.stream, group, *offsets)
            self._trim()

    def lag(self, group: str) -> int:
        info = self._group_info().get(group)
        if info is None:
            return self._call("lag", self._client.xlen, self.stream)
        undelivered = info.get("lag")
        if undelivered is None:
            # Redis forgets a group's read counter when it reloads its append-only file, until the group
            # has read up to the end again: count what lies past the group's last delivery
            after = "(" + _text(info["last-delivered-id"])
            ids = self._call("lag", self._client.xrange, self.stream, after, "+", COUNT_LIMIT)
            undelivered = len(ids) if len(ids) < COUNT_LIMIT else self._call("lag", self._client.xlen, self.stream)
        return int(undelivered) + int(info["pending"])

    def size_bytes(self) -> int:
        return int(self._call("size", self._client.memory_usage, self.stream) or 0)

    def erase(self, matches: Callable[[bytes], bool]) -> int:
        """Remove every entry whose message `matches` holds (an erased person's calls), physically:
        XDEL only marks an entry deleted inside its listpack node, whose bytes Redis keeps (in memory,
        and in the snapshot its append-only file is rewritten from), so the stream is rebuilt in one
        transaction from the entries that stay, with each group's last delivered id and its pending
        entries (claimed back to their consumers with their delivery counts); then Redis rewrites its
        append-only file. A concurrent append makes the rebuild start over. Returns the entries removed."""
        redis = _redis()
        for _ in range(ERASE_ATTEMPTS):
            with self._client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(self.stream)
                    removed = self._rebuild(pipe, matches)
                except redis.WatchError:
                    continue
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    raise TransportUnavailableError(
                        f"Redis at {_safe(self.url)} cannot be reached (erase: {exc}); try again later"
                    ) from exc
            if removed:
                self._rewrite_log()
            return removed
        raise TransportUnavailableError(f"Redis stream {self.stream}: appends kept interrupting the erasure")

    def count(self, matches: Callable[[bytes], bool]) -> int:
        """How many entries' messages `matches` holds (erasure's verification)."""
        entries = self._call("count", self._client.xrange, self.stream, "-", "+")
        return sum(1 for _, fields in entries if fields and matches(fields.get(FIELD, b"")))

    def _rebuild(self, pipe, matches: Callable[[bytes], bool]) -> int:
        entries = pipe.xrange(self.stream, "-", "+")
        kept = [(offset, fields) for offset, fields in entries if not (fields and matches(fields.get(FIELD, b"")))]
        if len(kept) == len(entries):
            pipe.unwatch()
            return 0
        last = pipe.xinfo_stream(self.stream)["last-generated-id"]
        groups = []
        for g in pipe.xinfo_groups(self.stream):
            name = _text(g["name"])
            pending = pipe.xpending_range(self.stream, name, "-", "+", max(int(g["pending"]), 1))
            groups.append((name, g["last-delivered-id"], pending))
        alive = {_text(o) for o, _ in kept}
        pipe.multi()
        pipe.delete(self.stream)
        for offset, fields in kept:
            pipe.xadd(self.stream, fields, id=offset)
        for name, delivered, pending in groups:
            pipe.xgroup_create(self.stream, name, delivered, mkstream=True)
            for p in pending:
                if _text(p["message_id"]) in alive:
                    pipe.xclaim(
                        self.stream,
                        name,
                        p["consumer"],
                        0,
                        [p["message_id"]],
                        retrycount=p["times_delivered"],
                        force=True,
                        justid=True,
                    )
        if kept or groups:  # ids stay increasing past the deleted ones
            pipe.execute_command("XSETID", self.stream, last)
        pipe.execute()
        return len(entries) - len(kept)

    def _rewrite_log(self, timeout_s: float = 60.0) -> None:
        redis = _redis()
        try:
            self._call("erase", self._client.bgrewriteaof)
        except redis.ResponseError as exc:  # one already runs: it may predate the deletes, so wait and redo
            if "already in progress" not in str(exc):
                raise
            self._wait_rewrite(timeout_s)
            self._call("erase", self._client.bgrewriteaof)
        self._wait_rewrite(timeout_s)

    def _wait_rewrite(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            info = self._call("erase", self._client.info, "persistence")
            if not int(info.get("aof_rewrite_in_progress", 0)) and not int(info.get("aof_rewrite_scheduled", 0)):
                return
            time.sleep(0.05)
        raise TransportUnavailableError(
            f"Redis at {_safe(self.url)} did not finish rewriting its append-only file in {timeout_s:.0f} s"
        )

    def close(self) -> None:
        self._client.close()

    # -- Redis ----------------------------------------------------------------------------------

    def _call(self, what: str, fn, *args, **kwargs):
        redis = _redis()
        try:
            return fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._own_pending_read.clear()  # a read whose reply was lost left entries pending with us
            raise TransportUnavailableError(
                f"Redis at {_safe(self.url)} cannot be reached ({what}: {exc}); try again later"
            ) from exc
        except redis.ResponseError as exc:
            if str(exc).partition(" ")[0] in TRANSIENT:
                raise TransportUnavailableError(
                    f"Redis at {_safe(self.url)} cannot take this now ({what}: {exc}); try again later"
                ) from exc
            raise

    def _check_durable(self, require: bool) -> bool:
        redis = _redis()
        try:
            config = self._client.config_get("append*")
        except redis.ResponseError as exc:  # CONFIG renamed or forbidden, as on some managed services
            if require:
                raise ConfigError(
                    f"Redis at {_safe(self.url)} does not let cx360 read its configuration ({exc}), so cx360 "
                    "cannot check that an acknowledged event is on disk; if the server runs with "
                    "appendonly yes and appendfsync always, set redis_require_durable = false in [collector]"
                ) from exc
            log.warning("Redis at %s: durability unknown (%s)", _safe(self.url), exc)
            return False
        durable = config.get("appendonly") == "yes" and config.get("appendfsync") == "always"
        if not durable:
            problem = (
                f"Redis at {_safe(self.url)} runs with appendonly {config.get('appendonly')} and appendfsync "
                f"{config.get('appendfsync')}: an event it acknowledged can be lost if it stops"
            )
            if require:
                raise ConfigError(
                    f"{problem}; run it with `appendonly yes` and `appendfsync always` (redis.conf, or "
                    "CONFIG SET), or set redis_require_durable = false in [collector] to accept the risk"
                )
            log.warning("%s (accepted: redis_require_durable = false)", problem)
        return durable

    def _ensure_group(self, group: str) -> None:
        if group in self._groups:
            return
        redis = _redis()
        try:
            self._call("create group", self._client.xgroup_create, self.stream, group, "0", True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add(group)

    def _read_group(self, group: str, consumer: str, start: str, count: int, block_ms: int | None) -> list[Entry]:
        reply = self._call(
            "read",
            self._client.xreadgroup,
            group,
            consumer,
            {self.stream: start},
            count=count,
            block=min(block_ms, self._max_block_ms) if block_ms else None,
        )
        return [_entry(offset, fields) for _, items in reply or [] for offset, fields in items if fields]

    def _reclaim(self, group: str, consumer: str, count: int, min_idle_ms: int) -> list[Entry]:
        entries: list[Entry] = []
        cursor = "0-0"
        while len(entries) < count:
            left = count - len(entries)
            reply = self._call(
                "reclaim", self._client.xautoclaim, self.stream, group, consumer, min_idle_ms, cursor, count=left
            )
            cursor, claimed, deleted = reply[0], reply[1], reply[2] if len(reply) > 2 else []  # Redis 6.2: two
            entries += [_entry(offset, fields) for offset, fields in claimed if fields]
            if deleted:  # cannot happen while only cx360 trims; say so loudly if someone else did
                log.error(
                    "Redis stream %s: pending entries %s were deleted before they were landed", self.stream, deleted
                )
                self._call("ack", self._client.xack, self.stream, group, *deleted)
            if cursor in (b"0-0", "0-0"):
                break
        return entries

    def _group_info(self) -> dict[str, dict]:
        redis = _redis()
        try:
            groups = self._call("lag", self._client.xinfo_groups, self.stream)
        except redis.ResponseError:  # no such key yet: nothing appended, no group created
            return {}
        return {_text(g["name"]): g for g in groups}

    def _trim(self) -> None:
        """Drop the entries every group has acknowledged: below the oldest pending or undelivered entry."""
        groups = self._group_info()
        if not groups:
            return
        keep_from = []
        for name, info in groups.items():
            if int(info["pending"]):
                summary = self._call("trim", self._client.xpending, self.stream, name)
                keep_from.append(_parse(summary["min"]))
            else:
                ms, seq = _parse(info["last-delivered-id"])
                keep_from.append((ms, seq + 1))
        ms, seq = min(keep_from)
        self._call("trim", self._client.xtrim, self.stream, minid=f"{ms}-{seq}", approximate=False)


def _entry(offset: bytes, fields: dict) -> Entry:
    return Entry(offset.decode(), fields[FIELD])


def _parse(offset: bytes | str) -> tuple[int, int]:
    ms, _, seq = _text(offset).partition("-")
    return int(ms), int(seq or 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _safe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=user + host).geturl()

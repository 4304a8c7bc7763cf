"""The collector's service: one request of Segment-spec calls in, a receipt per message out.

A message is answered `accepted` only once its line is fsynced in the event log; `duplicate` when
its (source, messageId) was accepted within the dedup window with the same payload fingerprint
(a retry: nothing is stored again); `rejected` with a reason otherwise: invalid, or a messageId
already used for a different payload. Rejected messages are stored with their reason and raw
payload and drained into `quarantine`. The window is rebuilt from the log itself on start, so it
survives restarts and a kill -9 (nothing acknowledged is missing from the log).

Past `min_free_disk_mb` or `max_lag` ([collector] in cx360.toml) a request is refused whole with
503 and Retry-After before anything of it is stored: clients keep their events and retry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import shutil
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from cx360.config import CollectorSettings
from cx360.errors import TransportUnavailableError, UnavailableError
from cx360.stream import eventlog
from cx360.stream.eventlog import Partition
from cx360.stream.messages import MAX_BATCH_BYTES, Checked, MalformedError, check, messages_of, raw_text, read_body
from cx360.stream.segments import span

RECEIPTS = ("accepted", "duplicate", "duplicate_synthetic", "rejected")
log = logging.getLogger("cx360.collector")


class BackpressureError(UnavailableError):
    """The collector is refusing new events for now (disk nearly full, or the warehouse far behind)."""

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Answer:
    receipts: list[dict[str, Any]]
    counts: Counter = field(default_factory=Counter)

    def body(self) -> dict[str, Any]:
        return {
            "success": True,
            "accepted": self.counts["accepted"],
            "duplicates": self.counts["duplicate"],
            "rejected": self.counts["rejected"] + self.counts["duplicate_synthetic"],
            "receipts": self.receipts,
        }


class DedupWindow:
    """(source, messageId) -> payload fingerprint of what was accepted within `hours`, at most `max_ids`
    of them (the oldest go first). Kept compact, as 64-bit hashes (about 200 bytes an id), since a busy
    collector accepts millions a day; a retry older than the window is still stored once in the
    warehouse, whose key is (source, messageId), and counted there as a duplicate."""

    def __init__(self, hours: float, max_ids: int = 1_000_000):
        self.seconds, self.max_ids = hours * 3600, max_ids
        self._seen: dict[int, int] = {}  # hash of (source, messageId) -> hash of the fingerprint
        self._order: deque[tuple[float, int]] = deque()  # (accepted at, key), oldest first

    @staticmethod
    def _hash(text: str) -> int:
        return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")

    def load(self, root: Path) -> int:
        """Fill the window from the newest segments of the log written within it; how many ids it holds."""
        cutoff, files, lines = time.time() - self.seconds, [], 0
        for folder in (f for part in eventlog.partitions(root) for f in part.glob("*/events")):
            files += [*folder.glob("drained/*.jsonl"), *folder.glob("*.jsonl"), *folder.glob("*.open")]
        newest = sorted(((p.stat().st_mtime, p) for p in files), reverse=True)
        chosen = []
        for at, path in newest:
            if at < cutoff or lines >= self.max_ids:
                break
            chosen.append((at, path))
            s = span(path)
            lines += s[1] - s[0] + 1 if s else 0
        for at, path in reversed(chosen):
            with open(path, "rb") as f:
                for line in f:
                    try:
                        m = orjson.loads(line)
                        mark = m["cx360"]
                        self.put((mark["source"], m["messageId"]), mark["fingerprint"], at=at)
                    except (ValueError, KeyError, TypeError):
                        continue  # a torn last line: never acknowledged
        return len(self._seen)

    def get(self, key: tuple[str, str]) -> str | None:
        """The fingerprint (as a 16-digit hex prefix) of what was accepted under this key, if in the window."""
        hit = self._seen.get(self._hash(f"{key[0]}\x1f{key[1]}"))
        return None if hit is None else f"{hit:016x}"

    def put(self, key: tuple[str, str], fp: str, *, at: float | None = None) -> None:
        k = self._hash(f"{key[0]}\x1f{key[1]}")
        self._seen[k] = int(fp[:16], 16)
        self._order.append((time.time() if at is None else at, k))
        while len(self._order) > self.max_ids:
            self._seen.pop(self._order.popleft()[1], None)

    def drop(self, key: tuple[str, str]) -> None:
        self._seen.pop(self._hash(f"{key[0]}\x1f{key[1]}"), None)

    def prune(self) -> None:
        cutoff = time.time() - self.seconds
        while self._order and self._order[0][0] < cutoff:
            self._seen.pop(self._order.popleft()[1], None)

    def __len__(self) -> int:
        return len(self._seen)


class Collector:
    def __init__(self, root: Path, settings: CollectorSettings | None = None):
        self.root = root
        self.settings = settings or CollectorSettings()
        self.partition = Partition(root, segment_bytes=int(self.settings.segment_mb * (1 << 20)))
        self.redis, self.relay = self._open_redis() if self.settings.transport == "redis" else (None, None)
        self.window = DedupWindow(self.settings.dedup_window_hours, self.settings.dedup_window_ids)
        self.window.load(root)
        self._lock = threading.Lock()
        self.totals: Counter = Counter()
        self._health_at = 0.0
        self._free_mb = float("inf")
        self._lag = 0
        self._in_redis = 0

    def _open_redis(self):
        from cx360.config import CONFIG_FILE, load_config
        from cx360.stream.redis_log import RedisLog, RedisRelay

        redis = RedisLog(self.settings, load_config(self.root / CONFIG_FILE).workspace.name)
        return redis, RedisRelay(redis, self.partition, self.settings) if self.settings.redis_consume else None

    def _log(self, source: str):
        """Where this source's lines go before the 200: Redis when it is the transport, else the partition."""
        return self.redis if self.redis is not None else self.partition.log(source)

    # -- one request ---------------------------------------------------------------------------------
    def collect(self, body: bytes, encoding: str | None, *, source: str, key_id: str, call: str | None) -> Answer:
        self.refuse_if_overloaded()
        received = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        mark = {"source": source, "key": key_id}
        try:
            doc = read_body(body, encoding)
            raw, sent_at = messages_of(doc, call)
        except MalformedError as exc:  # an authenticated sender's unreadable body: kept, for quarantine
            self._store_rejected(
                source, [(body.decode("utf-8", "replace")[:MAX_BATCH_BYTES], str(exc))], received, mark
            )
            raise
        checked = [check(m, call, sent_at) for m in raw]
        receipts: list[dict[str, Any]] = []
        accepted: list[tuple[tuple[str, str], str, bytes]] = []
        rejected: list[tuple[str, str]] = []
        counts: Counter = Counter()
        with self._lock:
            self.window.prune()
            for c in checked:
                status, reason = self._decide(c, source, accepted)
                receipt: dict[str, Any] = {"messageId": c.message_id, "status": "rejected" if reason else status}
                if reason:
                    receipt["reason"] = reason
                    rejected.append((raw_text(c.message), reason))
                if status == "accepted":
                    key = (source, c.message_id)
                    self.window.put(key, c.fingerprint)  # reserved now: a concurrent copy is a duplicate
                    line = {**c.message, "receivedAt": received, "cx360": {**mark, "fingerprint": c.fingerprint}}
                    accepted.append((key, c.fingerprint, orjson.dumps(line)))
                counts[status] += 1
                receipts.append(receipt)
        try:
            self._store_rejected(source, rejected, received, mark)
            if accepted:
                self._log(source).append([line for _, _, line in accepted])
        except BaseException as exc:
            with self._lock:
                for key, _, _ in accepted:
                    self.window.drop(key)
            if isinstance(exc, TransportUnavailableError):  # Redis is down: a 503 the clients retry
                raise BackpressureError(str(exc), retry_after=self.settings.retry_after_seconds) from exc
            raise
        with self._lock:
            self.totals.update(counts)
        return Answer(receipts, counts)

    def _decide(self, c: Checked, source: str, batch: list) -> tuple[str, str | None]:
        if c.reason is not None:
            return "rejected", c.reason
        seen = self.window.get((source, c.message_id))  # type: ignore[arg-type]
        if seen is None:
            return "accepted", None
        if seen == c.fingerprint[:16]:  # type: ignore[index]
            return "duplicate", None
        return "duplicate_synthetic", (
            f"messageId {c.message_id!r} was accepted before with a different payload (a synthetic duplicate); "
            "a new event needs a new messageId"
        )

    def _store_rejected(self, source: str, rejected: list[tuple[str, str]], received: str, mark: dict) -> None:
        if rejected:
            lines = [
                orjson.dumps({"receivedAt": received, "cx360": {**mark, "reason": r}, "raw": t}) for t, r in rejected
            ]
            self._log(source).reject(lines)

    def seal(self, older_than_s: float | None = None) -> int:
        """Seal open segments older than `older_than_s` (default [collector].seal_seconds); how many."""
        age = self.settings.seal_seconds if older_than_s is None else older_than_s
        return sum(len(log.seal_older_than(age)) for log in self.partition.logs())

    # -- backpressure and health ---------------------------------------------------------------------
    def health(self, *, fresh: bool = False) -> dict[str, Any]:
        now = time.monotonic()
        if fresh or now - self._health_at > 0.5:
            self._health_at = now
            self._free_mb = shutil.disk_usage(self.partition.folder).free / (1 << 20)
            own = sum(log.events.open_lines() for log in self.partition.logs())  # known without reading
            self._lag = eventlog.backlog(self.root, skip=self.partition.folder) + own + self.transport_lag()
        return {"free_disk_mb": round(self._free_mb, 1), "lag": self._lag}

    def transport_lag(self) -> int:
        """Accepted messages still in Redis, not yet landed in the event log (0 with the log transport)."""
        if self.redis is None:
            return 0
        with contextlib.suppress(TransportUnavailableError):  # while Redis is down, the last figure holds
            self._in_redis = self.redis.lag()
        return self._in_redis

    def _redis_stats(self) -> dict[str, Any]:
        try:
            size = self.redis.size_bytes()
        except TransportUnavailableError:
            size = None
        return {"transport": "redis", "redis_durable": self.redis.durable, "redis_bytes": size}

    def refuse_if_overloaded(self) -> None:
        h, s = self.health(), self.settings
        if h["free_disk_mb"] < s.min_free_disk_mb:
            self.totals["refused"] += 1
            raise BackpressureError(
                f"the event log's disk has {h['free_disk_mb']:.0f} MB free, below [collector].min_free_disk_mb = "
                f"{s.min_free_disk_mb:g}: nothing of this request was stored; retry later",
                retry_after=s.retry_after_seconds,
            )
        if h["lag"] > s.max_lag:
            self.totals["refused"] += 1
            raise BackpressureError(
                f"{h['lag']:,} messages wait to be loaded into the warehouse, above [collector].max_lag = "
                f"{s.max_lag:,}: nothing of this request was stored; retry later",
                retry_after=s.retry_after_seconds,
            )

    def stats(self) -> dict[str, Any]:
        h = self.health()
        return {
            **h,
            "log_bytes": eventlog.size_bytes(self.root),
            "window_ids": len(self.window),
            "partition": self.partition.folder.name,
            **(self._redis_stats() if self.redis is not None else {}),
            **{k: self.totals[k] for k in (*RECEIPTS, "refused")},
        }

    # -- in the background: sealing, draining ------------------------------------------------------------
    def start(self) -> None:
        """Seal segments as they age and drain them into the warehouse every [collector].drain_seconds,
        in a daemon thread, until `close`."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cx360-collector", daemon=True)
        self._thread.start()
        if self.relay is not None:
            self.relay.start()  # lands the Redis streams in this process's partition

    def _run(self) -> None:
        every, drained_at = self.settings.drain_seconds, time.monotonic()
        while not self._stop.wait(min(0.25, self.settings.seal_seconds / 4)):
            try:
                self.seal()
                if every and time.monotonic() - drained_at >= every:
                    drained_at = time.monotonic()
                    self.drain()
            except Exception:
                log.exception("collector: sealing or draining the event log failed; retrying")

    def drain(self) -> list:
        """Load the sealed segments into the warehouse now (skipped while another process holds it)."""
        from cx360.errors import WarehouseLockedError
        from cx360.stream.drain import drain
        from cx360.workspace import Workspace

        try:
            with Workspace(self.root) as ws:
                reports = drain(ws, wait=False)
        except WarehouseLockedError:
            return []  # `cx360 ingest` or another command holds it: the next pass drains
        for r in reports:
            if not r.ok:
                log.warning("collector: draining source %s: %s", r.source, r.error)
        return reports  # drained segments age out by [retention] event_log, in the retention stage

    def close(self) -> None:
        if self.relay is not None:
            self.relay.close()
        if getattr(self, "_thread", None) is not None:
            self._stop.set()
            self._thread.join()
        if self.redis is not None:
            self.redis.close()
        self.partition.close()

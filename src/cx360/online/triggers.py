"""Triggers: segment entries and exits (and events) delivered to webhooks and Redis streams.

A trigger fired by the processor is written to the online store's outbox in the same transaction as
the membership change that fired it, so nothing is fired that did not happen, and nothing that
happened is lost. The deliverer then POSTs it:

    POST <webhook>  {"trigger", "segment", "on", "profile_id", "at", "event_id", "key"}
    X-Cx360-Signature: sha256=<HMAC-SHA256 of "<timestamp>.<body>" with the key in $CX360_TRIGGER_SECRET>
    X-Cx360-Timestamp: <unix seconds>      Idempotency-Key: <key>

A 2xx delivers it. Anything else is retried with exponential backoff ([trigger_delivery]); after
give_up_hours the delivery is dead: kept in the outbox with its last error, listed by
`cx360 triggers list --dead` and sent again by `cx360 triggers replay`. Delivery is at least once:
a receiver deduplicates by the idempotency key, which is the same on every try.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from cx360.errors import ConfigError

if TYPE_CHECKING:
    from cx360.config import TriggerSettings, TriggerSpec
    from cx360.online.store import OnlineStore

log = logging.getLogger("cx360.online")
Consent = Callable[[str, str, "str | None"], Any]  # (profile, purpose, channel) -> a Decision with .allowed, .reason


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="microseconds")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Triggers:
    """Queues the triggers that entries, exits and events fire (inside the processor's transaction)."""

    def __init__(self, specs: list[TriggerSpec]):
        self.specs = specs

    def queue(self, con, pid: str, entered: list[str], exited: list[str], at: str, event_id: str | None) -> int:
        fired = 0
        for t in self.specs:
            if t.segment is None:
                continue
            if t.segment in (entered if t.on == "enter" else exited):
                self._put(con, t, {"segment": t.segment, "on": t.on}, pid, at, event_id)
                fired += 1
        return fired

    def queue_event(self, con, pid: str, name: str, at: str, event_id: str) -> None:
        for t in self.specs:
            if t.event == name:
                self._put(con, t, {"segment": None, "on": "event", "event": name}, pid, at, event_id)

    def _put(self, con, t: TriggerSpec, what: dict, pid: str, at: str, event_id: str | None) -> None:
        for target in (x for x in (t.webhook and "webhook", t.redis_stream and "redis") if x):
            key = hashlib.sha256(f"{t.name}|{pid}|{what.get('on')}|{at}|{event_id}|{target}".encode()).hexdigest()[:32]
            payload = {"trigger": t.name, **what, "profile_id": pid, "at": at, "event_id": event_id, "key": key}
            con.execute(
                "INSERT INTO outbox (key, trigger, target, payload, status, attempts, next_at, created_at) "
                "VALUES (?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT DO NOTHING",
                (key, t.name, target, json.dumps(payload), at, at),
            )


class Deliverer:
    """Sends what the outbox holds, in a daemon thread of `cx360 serve` (or once, from the CLI)."""

    def __init__(
        self,
        store: OnlineStore,
        specs: list[TriggerSpec],
        settings: TriggerSettings,
        redis_url: str | None,
        consent: Consent | None = None,
    ):
        self.store, self.settings, self.redis_url, self.consent = store, settings, redis_url, consent
        self.specs = {t.name: t for t in specs}
        secret = os.environ.get(settings.secret_env)
        if any(t.webhook for t in specs) and not secret:
            raise ConfigError(
                f"triggers with a webhook sign their deliveries: set the HMAC key in ${settings.secret_env} "
                "([trigger_delivery].secret_env names the variable)"
            )
        self.secret = (secret or "").encode()
        self._redis = None
        self._pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="cx360-trigger-send")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cx360-triggers", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._pool.shutdown()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.deliver_due():
                    self._stop.wait(0.02)
            except Exception:
                log.exception("triggers: delivering failed; retrying")
                self._stop.wait(1.0)

    def deliver_due(self, now: dt.datetime | None = None) -> int:
        """Try every pending delivery that is due; how many were tried. The due rows are leased in one
        transaction and their outcomes written in another, so the processor's writes wait little."""
        now = now or _now()
        rows = self._claim(now, limit=16 * self.settings.concurrency)
        outcomes = list(self._pool.map(self._outcome, rows))  # receivers answer in parallel: one slow one
        if outcomes:  # does not hold back the rest
            with self.store.write() as con:
                for row, status, error in outcomes:
                    self._record(con, row, status, error, now)
        return len(rows)

    def _outcome(self, row: dict) -> tuple[dict, str | None, str | None]:
        refused = self._refused(row)
        return (row, "suppressed", refused) if refused is not None else (row, None, self._send(row))

    def _claim(self, now: dt.datetime, limit: int) -> list[dict]:
        """Lease the due deliveries (no other worker takes them until the lease ends, which outlasts the
        rounds of sends the pool needs for them even if every receiver times out)."""
        rounds = -(-limit // self.settings.concurrency)
        lease = _iso(now + dt.timedelta(seconds=self.settings.timeout_seconds * (rounds + 1)))
        if not self.store.outbox(status="pending", due_before=_iso(now), limit=1):
            return []  # nothing due: a read, so that polling takes no write lock from the processor
        with self.store.write() as con:
            rows = con.execute(
                "SELECT * FROM outbox WHERE status = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?",
                (_iso(now), limit),
            ).fetchall()
            con.executemany("UPDATE outbox SET next_at = ? WHERE key = ?", [(lease, r["key"]) for r in rows])
        return [dict(r) for r in rows]

    def _refused(self, row: dict) -> str | None:
        """Why the person may not receive this now (consent checked at send time, not when it fired)."""
        spec = self.specs.get(row["trigger"])
        if spec is None or spec.purpose is None:
            return None
        if self.consent is None:
            return f"no consent check: trigger {spec.name!r} declares purpose {spec.purpose!r}"
        decision = self.consent(json.loads(row["payload"])["profile_id"], spec.purpose, spec.channel)
        return None if decision.allowed else f"suppressed by consent: {decision.reason}"

    def _send(self, row: dict) -> str | None:
        spec = self.specs.get(row["trigger"])
        if spec is None:
            return f"trigger {row['trigger']!r} is no longer declared in cx360.toml"
        body = row["payload"].encode()
        try:
            if row["target"] == "redis":
                self._redis_client().xadd(spec.redis_stream, {"payload": body, "key": row["key"]})
                return None
            stamp = str(int(time.time()))
            signature = hmac.new(self.secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            request = urllib.request.Request(
                spec.webhook,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": "cx360-triggers",
                    "X-Cx360-Timestamp": stamp,
                    "X-Cx360-Signature": f"sha256={signature}",
                    "Idempotency-Key": row["key"],
                },
            )
            with urllib.request.urlopen(request, timeout=self.settings.timeout_seconds) as response:
                response.read()
            return None
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code} from {spec.webhook}"
        except Exception as exc:  # noqa: BLE001 - a refused connection, a timeout, Redis down: all retried
            return f"{type(exc).__name__}: {exc}"

    def _redis_client(self):
        if self._redis is None:
            import redis

            if not self.redis_url:
                raise ConfigError("a trigger with redis_stream needs [collector].redis_url")
            self._redis = redis.Redis.from_url(self.redis_url)
        return self._redis

    def _record(self, con, row: dict, status: str | None, error: str | None, now: dt.datetime) -> None:
        attempts = row["attempts"] + 1
        if status == "suppressed":
            con.execute("UPDATE outbox SET status = 'suppressed', error = ? WHERE key = ?", (error, row["key"]))
            return
        if error is None:
            con.execute(
                "UPDATE outbox SET status = 'delivered', attempts = ?, delivered_at = ?, error = NULL WHERE key = ?",
                (attempts, _iso(_now()), row["key"]),
            )
            self.delivered += 1
            return
        s = self.settings
        if now - dt.datetime.fromisoformat(row["created_at"]) > dt.timedelta(hours=s.give_up_hours):
            con.execute(
                "UPDATE outbox SET status = 'dead', attempts = ?, error = ? WHERE key = ?",
                (attempts, error, row["key"]),
            )
            return
        delay = min(s.retry_seconds * 2 ** (attempts - 1), s.max_retry_seconds)
        con.execute(
            "UPDATE outbox SET attempts = ?, error = ?, next_at = ? WHERE key = ?",
            (attempts, error, _iso(now + dt.timedelta(seconds=delay)), row["key"]),
        )


def replay(store: OnlineStore, trigger: str | None = None) -> int:
    """Send the dead deliveries (of one trigger) again: back to pending, due now. How many."""
    now = _iso(_now())
    with store.write() as con:
        sql = "UPDATE outbox SET status = 'pending', next_at = ?, created_at = ? WHERE status = 'dead'"
        params: list = [now, now]
        if trigger:
            sql += " AND trigger = ?"
            params.append(trigger)
        return con.execute(sql, params).rowcount

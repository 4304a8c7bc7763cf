"""What `cx360 serve` tells its operators: one access log line per request, a request id echoed in
`X-Request-ID`, and Prometheus metrics that add up across `--workers` processes.

The access log names the route template (`/v1/profiles/{profile_id}`), never the path, which may
hold an e-mail; with the key id and the request id, and no address or other personal data.

With PROMETHEUS_MULTIPROC_DIR set (`cx360 serve --workers N` sets it), every worker writes its
samples there and /metrics, whichever worker answers, reads them all (prometheus_client's
multiprocess mode). The process collector cannot work across processes, so then each worker
exports its own memory, CPU time and open files as `cx360_worker_*{pid}` instead of `process_*`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

from cx360.api.ids import unique_hex

REQUEST_ID_HEADER = b"x-request-id"
_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")  # an incoming id is kept only if it cannot forge a log line
access = logging.getLogger("cx360.access")
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class Metrics:
    """The metrics of one app; `expose()` renders them for /metrics."""

    def __init__(
        self,
        *,
        index_built_at: Callable[[], dt.datetime],
        audit_backlog: Callable[[], int],
        collector: Callable[[], Any] | None = None,
        collector_counts: Callable[[], dict[str, int]] | None = None,
    ):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        from prometheus_client.gc_collector import GCCollector
        from prometheus_client.platform_collector import PlatformCollector
        from prometheus_client.process_collector import ProcessCollector

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # One registry per app (tests build several apps in one process); in multiprocess mode the
        # samples live in files, and a registry is built per scrape.
        registry = None if self.multiprocess else CollectorRegistry()
        if registry is not None:
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        self.registry = registry
        self.requests = Counter(
            "cx360_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=registry
        )
        self.duration = Histogram(
            "cx360_http_request_duration_seconds",
            "Time to answer a request",
            ["route"],
            registry=registry,
            buckets=BUCKETS,
        )
        self.in_progress = Gauge(
            "cx360_http_requests_in_progress",
            "Requests being answered now (all workers)",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.index_age = Gauge(
            "cx360_index_age_seconds",
            "Seconds since the serving index was built",
            registry=registry,
            multiprocess_mode="max",
        )
        self.audit_backlog = Gauge(
            "cx360_audit_backlog_bytes",
            "Audit entries journaled but not yet in access.sqlite, in bytes (all workers)",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.eventlog_bytes = Gauge(
            "cx360_eventlog_bytes", "Bytes the collector's event log holds", registry=registry, multiprocess_mode="max"
        )
        self.eventlog_lag = Gauge(
            "cx360_eventlog_lag_messages",
            "Messages in the event log not yet loaded into the warehouse",
            registry=registry,
            multiprocess_mode="max",
        )
        self.transport_lag = Gauge(
            "cx360_transport_lag_messages",
            "Messages in the collector's Redis stream not yet landed in the event log (0 with the log transport)",
            registry=registry,
            multiprocess_mode="max",
        )
        self.transport_durable = Gauge(
            "cx360_transport_durable",
            "1 when the collector's transport is on disk before it answers; 0 for a Redis accepted without "
            "appendfsync always (redis_require_durable = false)",
            registry=registry,
            multiprocess_mode="min",
        )
        self.collected = Gauge(
            "cx360_collector_messages",
            "Messages the collector answered since start, by receipt (all workers)",
            ["receipt"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._built_at, self._backlog, self._collector = index_built_at, audit_backlog, collector
        self._counts = collector_counts
        self._worker: dict[str, object] = {}
        self._worker_at = 0.0
        if self.multiprocess:
            for name, doc in (
                ("resident_memory_bytes", "Resident memory of the worker process"),
                ("cpu_seconds", "CPU time the worker process used"),
                ("open_fds", "Open file descriptors of the worker process"),
            ):
                self._worker[name] = Gauge(f"cx360_worker_{name}", doc, registry=None, multiprocess_mode="liveall")
            self._process = ProcessCollector(registry=None)

    def refresh_collector(self) -> None:
        """The event log's gauges, read from disk at each scrape (too costly after every request)."""
        if self._collector is None:
            return
        h = self._collector()
        self.eventlog_bytes.set(h.log_bytes)
        self.eventlog_lag.set(h.lag)
        self.transport_lag.set(h.transport_lag)
        self.transport_durable.set(1 if h.transport_durable else 0)

    def refresh(self) -> None:
        """Gauges that are read rather than counted; called after every request and at each scrape."""
        self.audit_backlog.set(self._backlog())
        if self._counts is not None:  # set by each worker as it answers, so the livesum is current
            for receipt, n in self._counts().items():
                self.collected.labels(receipt).set(n)
        now = time.monotonic()
        if self.multiprocess and now - self._worker_at > 1.0:  # reading /proc once a second is enough
            self._worker_at = now
            values = {m.name: m.samples[0].value for m in self._process.collect() if m.samples}
            for name, source in (
                ("resident_memory_bytes", "process_resident_memory_bytes"),
                ("cpu_seconds", "process_cpu_seconds"),
                ("open_fds", "process_open_fds"),
            ):
                if source in values:
                    self._worker[name].set(values[source])  # type: ignore[attr-defined]

    def expose(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        self.index_age.set((dt.datetime.now(dt.UTC).replace(tzinfo=None) - self._built_at()).total_seconds())
        self.refresh()
        self.refresh_collector()
        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        from prometheus_client.platform_collector import PlatformCollector

        PlatformCollector(registry=registry)  # the same in every worker
        return generate_latest(registry)

    def close(self) -> None:
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())  # drops this worker's live gauges


class Observe:
    """Times, counts and logs every request, and gives it a request id. Plain ASGI: Starlette's
    BaseHTTPMiddleware costs a task and a stream per request, a visible share of a 1 ms lookup."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        incoming = next((v for k, v in scope["headers"] if k == REQUEST_ID_HEADER), b"")
        request_id = incoming.decode() if _SANE_ID.fullmatch(incoming) else unique_hex()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = [500]

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())],
                }
            await send(message)

        m = self.metrics
        m.in_progress.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            m.in_progress.dec()
            route = getattr(scope.get("route"), "path", "unmatched")
            m.requests.labels(scope["method"], route, str(status[0])).inc()
            m.duration.labels(route).observe(seconds)
            m.refresh()
            key_id = state.get("key_id")
            access.info(
                "%s %s %s %.1fms key=%s request=%s",
                scope["method"],
                route,
                status[0],
                seconds * 1000,
                key_id or "-",
                request_id,
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status[0],
                    "duration_ms": round(seconds * 1000, 3),
                    "key_id": key_id,
                    "request_id": request_id,
                },
            )

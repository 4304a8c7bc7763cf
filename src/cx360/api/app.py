"""The FastAPI application: routers, the error handlers, /health and /metrics, the docs, the dashboard."""

from __future__ import annotations

import logging
import math
import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from cx360.api.services import Context
from cx360.errors import Cx360Error, RateLimitError

log = logging.getLogger("cx360.api")


def open_context(root: Path, *, reindex: bool = False) -> tuple[Context, object]:
    """Build the serving index if the warehouse changed, then open it with the key ring and audit log."""
    from cx360.api import index
    from cx360.api.access import KeyRing
    from cx360.api.audit import AuditLog
    from cx360.api.store import Store
    from cx360.config import DuckDBEngine
    from cx360.errors import ConfigError
    from cx360.online.store import open_online
    from cx360.privacy.vault import Vault
    from cx360.workspace import Workspace

    ws = Workspace(root)
    ws.check_erasures()
    cfg = ws.config
    if not isinstance(cfg.engine, DuckDBEngine):
        raise ConfigError(
            f"{ws.config_path}: `cx360 serve` reads the DuckDB engine; this workspace uses {cfg.engine.kind!r}"
        )
    vault = Vault.of(ws)
    report = index.ensure(ws.root / cfg.engine.path, force=reindex, vault=vault)
    on = cfg.serve.online and os.environ.get("CX360_ONLINE", "1") != "0"  # `cx360 serve --no-online`
    online = open_online(ws.root, cfg) if on else None
    store = Store(report.path, region=cfg.workspace.default_region, online=online, vault=vault)
    return Context(
        root=ws.root,
        store=store,
        keys=KeyRing(ws.root),
        audit=AuditLog(ws.root),
        settings=cfg.serve,
        calls=cfg.calls,
        privacy=cfg.privacy,
        collector_settings=cfg.collector,
        config=cfg,
        vault=vault,
    ), report


def app_from_env() -> FastAPI:
    """The app of one worker process of `cx360 serve --workers N` (uvicorn imports it by name)."""
    ctx, _ = open_context(Path(os.environ["CX360_SERVE_ROOT"]))
    ctx.collector()  # each worker appends to a log partition of its own
    return create_app(ctx, threads=int(os.environ.get("CX360_SERVE_THREADS", "16")))


def create_app(ctx: Context, *, threads: int | None = None) -> FastAPI:
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    from cx360.api import docs
    from cx360.api.observe import Metrics, Observe
    from cx360.api.routers import audit, calls, collector, consents, decisions, profiles, search, segments
    from cx360.api.schemas import CollectorHealth, Health, OnlineHealth
    from cx360.stream import eventlog
    from cx360.web import routes as web

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if threads:  # sync routes run in this pool; each of its threads gets its own DuckDB cursor
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield
        telemetry.close()
        ctx.close()

    app = FastAPI(
        title="cx360",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="One explainable 3D profile per customer. Authenticate with `Authorization: Bearer KEY`.",
    )
    app.state.ctx = ctx
    for module in (profiles, segments, search, audit, calls, consents, decisions, collector):
        app.include_router(module.router)
    docs.mount(app)
    web.mount(app)

    def collector_counts() -> dict[str, int]:
        """What this process's collector answered since start, by receipt."""
        running = ctx.running_collector
        totals = running.totals if running is not None else {}
        names = {"duplicate": "duplicates", "duplicate_synthetic": "synthetic_duplicates"}
        kinds = ("accepted", "duplicate", "duplicate_synthetic", "rejected", "refused")
        return {names.get(k, k): totals.get(k, 0) for k in kinds}

    def collector_health() -> CollectorHealth:
        import shutil

        running = ctx.running_collector
        free = running.health()["free_disk_mb"] if running is not None else shutil.disk_usage(ctx.root).free / (1 << 20)
        redis = running.redis if running is not None else None
        in_redis = running.transport_lag() if running is not None else 0
        return CollectorHealth(
            log_bytes=eventlog.size_bytes(ctx.root),
            lag=eventlog.backlog(ctx.root) + in_redis,
            transport="redis" if redis is not None else "log",
            transport_lag=in_redis,
            transport_durable=redis.durable if redis is not None else True,
            free_disk_mb=round(free, 1),
            **collector_counts(),
        )

    telemetry = Metrics(
        index_built_at=lambda: ctx.store.built_at,
        audit_backlog=ctx.audit.backlog,
        collector=collector_health,
        collector_counts=collector_counts,
    )
    app.add_middleware(Observe, metrics=telemetry)

    @app.exception_handler(Cx360Error)
    async def cx360_error(request: Request, exc: Cx360Error) -> Response:
        if not request.url.path.startswith("/v1"):
            return web.error_page(request, exc)  # dashboard pages answer in HTML
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else {}
        if isinstance(exc, RateLimitError):
            headers["Retry-After"] = str(math.ceil(exc.retry_after))
        return _error(type(exc).__name__, str(exc), exc.http_status, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        """FastAPI's own 422 (a query parameter out of range, of the wrong type) in the same envelope."""
        message = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return _error("ValidationError", message or "malformed request", 422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        """A bug: logged with its traceback and request id; the caller gets the id, not the traceback."""
        request_id = request.scope.get("state", {}).get("request_id")
        log.error(
            "unexpected error answering %s %s",
            request.method,
            getattr(request.scope.get("route"), "path", "unmatched"),
            exc_info=exc,
            extra={"request_id": request_id},
        )
        return _error(
            "InternalError",
            f"internal error (request id {request_id}); the server log has the details",
            500,
            {"X-Request-ID": request_id} if request_id else None,
        )

    @app.get(
        "/health",
        tags=["service"],
        summary="Liveness, what the serving index holds, the collector's event log",
        response_model=Health,
    )
    def health() -> Health:
        return Health(
            status="ok",
            index_built_at=str(ctx.store.built_at),
            rows=ctx.store.counts(),
            collector=collector_health(),
            online=OnlineHealth(**ctx.processor.health()) if ctx.processor is not None else None,
        )

    @app.get(
        "/metrics",
        tags=["service"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={
            200: {
                "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                "description": "the Prometheus text format",
            }
        },
    )
    def metrics() -> Response:
        return Response(telemetry.expose(), media_type=CONTENT_TYPE_LATEST)

    return app


def _error(kind: str, message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status, headers=headers)

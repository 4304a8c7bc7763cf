"""The FastAPI application: routers, the one error handler, /health and /metrics, the dashboard."""

from __future__ import annotations

import math
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from cx360.api.services import Context
from cx360.errors import Cx360Error, RateLimitError


def open_context(root: Path, *, reindex: bool = False) -> tuple[Context, object]:
    """Build the serving index if the warehouse changed, then open it with the key ring and audit log."""
    from cx360.api import index
    from cx360.api.access import KeyRing
    from cx360.api.audit import AuditLog
    from cx360.api.store import Store
    from cx360.config import DuckDBEngine
    from cx360.errors import ConfigError
    from cx360.workspace import Workspace

    ws = Workspace(root)
    cfg = ws.config
    if not isinstance(cfg.engine, DuckDBEngine):
        raise ConfigError(f"{ws.config_path}: `cx360 serve` reads the DuckDB engine; this workspace uses "
                          f"{cfg.engine.kind!r}")
    report = index.ensure(ws.root / cfg.engine.path, force=reindex)
    store = Store(report.path, region=cfg.workspace.default_region)
    return Context(root=ws.root, store=store, keys=KeyRing(ws.root), audit=AuditLog(ws.root), settings=cfg.serve), report


def app_from_env() -> FastAPI:
    """The app of one worker process of `cx360 serve --workers N` (uvicorn imports it by name)."""
    ctx, _ = open_context(Path(os.environ["CX360_SERVE_ROOT"]))
    return create_app(ctx, threads=int(os.environ.get("CX360_SERVE_THREADS", "16")))


def create_app(ctx: Context, *, threads: int | None = None) -> FastAPI:
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    from cx360.api import docs
    from cx360.api.routers import audit, profiles, search, segments
    from cx360.api.schemas import Health
    from cx360.web import routes as web

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if threads:  # sync routes run in this pool; each of its threads gets its own DuckDB cursor
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield
        ctx.close()

    app = FastAPI(title="cx360", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="One explainable 3D profile per customer. Authenticate with `Authorization: Bearer KEY`.")
    app.state.ctx = ctx
    for module in (profiles, segments, search, audit):
        app.include_router(module.router)
    docs.mount(app)
    web.mount(app)

    registry = CollectorRegistry()  # per app, so tests can build several apps in one process
    requests = Counter("cx360_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=registry)
    latency = Histogram("cx360_http_request_seconds", "Request latency", ["route"], registry=registry,
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))

    app.add_middleware(_Measure, requests=requests, latency=latency)

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

    @app.get("/health", tags=["service"], summary="Liveness and what the serving index holds", response_model=Health)
    def health() -> Health:
        return Health(status="ok", index_built_at=str(ctx.store.built_at), rows=ctx.store.counts())

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics", response_class=Response,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                              "description": "the Prometheus text format"}})
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _error(kind: str, message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status, headers=headers)


class _Measure:
    """Counts and times every request. Plain ASGI: Starlette's BaseHTTPMiddleware costs a task and
    a stream per request, a visible share of a one-millisecond lookup."""

    def __init__(self, app, requests, latency):
        self.app, self.requests, self.latency = app, requests, latency

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.requests.labels(scope["method"], route, str(status[0])).inc()
            self.latency.labels(route).observe(time.perf_counter() - started)

"""The collector with Redis Streams as its transport, against real redis-server processes: what it
acknowledges reaches `events` (and what it rejects `quarantine`) through the relay into the event
log; while Redis is down it answers 503 with Retry-After and nothing is lost; a Redis that does not
fsync is refused at start; `cx360 stream consume` lands the streams apart from the server."""

from __future__ import annotations

import base64
import time

import duckdb
import pytest
from fastapi.testclient import TestClient
from redis_server import RedisServer

from cx360.api.access import create_key
from cx360.api.app import create_app, open_context
from cx360.errors import ConfigError
from cx360.pipeline import run_stage
from cx360.stream.drain import drain
from cx360.workspace import Workspace, init_workspace

TS = "2026-03-01T10:00:00.000Z"


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.kill()


def _workspace(root, url: str, extra: str = ""):
    init_workspace(root)
    with (root / "cx360.toml").open("a") as f:
        f.write(f'\n[collector]\ntransport = "redis"\nredis_url = "{url}"\nseal_seconds = 0.2\n{extra}\n')
    with Workspace(root) as ws:
        run_stage(ws, "ingest")  # an empty warehouse, for the serving index
    _, key = create_key(root, "writer", "web-site", source="web")
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _track(mid: str) -> dict:
    return {"type": "track", "messageId": mid, "userId": "u1", "event": "login", "timestamp": TS}


def _warehouse(root) -> tuple[list, list]:
    with Workspace(root) as ws:
        drain(ws)
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        events = con.sql("SELECT event_id, source FROM events ORDER BY event_id").fetchall()
        quarantine = con.sql("SELECT source, reasons FROM quarantine").fetchall()
    finally:
        con.close()
    return events, quarantine


def _until(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_acknowledged_events_reach_the_warehouse_and_redis_down_is_a_503(tmp_path, redis_server):
    root = tmp_path / "ws"
    auth = _workspace(root, redis_server.url)
    ctx, _ = open_context(root)
    collector = ctx.collector()  # with its relay, landing the stream in the event log
    with TestClient(create_app(ctx)) as client:
        ok = client.post("/v1/batch", json={"batch": [_track("m1"), _track("m2"), {"type": "nope"}]}, headers=auth)
        assert ok.status_code == 200 and ok.json()["accepted"] == 2

        redis_server.kill()
        down = client.post("/v1/batch", json={"batch": [_track("m3")]}, headers=auth)
        assert down.status_code == 503 and "cannot be reached" in down.json()["message"]
        assert int(down.headers["Retry-After"]) >= 1
        redis_server.start()
        again = client.post("/v1/batch", json={"batch": [_track("m3")]}, headers=auth)
        assert again.status_code == 200 and again.json()["accepted"] == 1  # the client's retry succeeds

        _until(lambda: collector.redis.lag() == 0)
        stats = collector.stats()
        assert stats["transport"] == "redis" and stats["redis_durable"] is True
        health = client.get("/health").json()["collector"]
        assert health["transport"] == "redis" and health["transport_lag"] == 0 and health["transport_durable"]
    ctx.close()
    events, quarantine = _warehouse(root)
    assert events == [("m1", "web"), ("m2", "web"), ("m3", "web")]
    assert [q[0] for q in quarantine] == ["web"]


def test_a_redis_that_does_not_fsync_is_refused_at_start(tmp_path):
    server = RedisServer(tmp_path / "r", "--appendonly", "no").start()
    try:
        root = tmp_path / "ws"
        _workspace(root, server.url)
        ctx, _ = open_context(root)
        with pytest.raises(ConfigError, match="appendonly no"):
            ctx.collector()
        ctx.close()
    finally:
        server.kill()


def test_stream_consume_lands_the_streams_apart_from_the_server(tmp_path, redis_server):
    from typer.testing import CliRunner

    from cx360.cli import app

    root = tmp_path / "ws"
    auth = _workspace(root, redis_server.url, "redis_consume = false")
    ctx, _ = open_context(root)
    ctx.collector()
    with TestClient(create_app(ctx)) as client:
        posted = client.post("/v1/batch", json={"batch": [_track(f"m{i}") for i in range(5)]}, headers=auth)
        assert posted.json()["accepted"] == 5
    ctx.close()
    assert _warehouse(root)[0] == []  # nobody landed the stream yet

    result = CliRunner().invoke(app, ["stream", "consume", "-w", str(root), "--once", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert '"accepted"' in result.output
    assert [e[0] for e in _warehouse(root)[0]] == [f"m{i}" for i in range(5)]

"""The collector under the real SDKs: `cx360 serve` as a subprocess, segment-analytics-python and
rudder-sdk-python (gzip) sending and retrying, the server killed with SIGKILL mid-batch and started
again; then every acknowledged event is in `events` exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest
from test_collector import _workspace
from test_dashboard import _free_port
from typer.testing import CliRunner

from cx360.api.access import create_key
from cx360.cli import app

segment = pytest.importorskip("segment.analytics")
rudder = pytest.importorskip("rudderstack.analytics")


def _serve(root: Path, port: int, log) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cx360", "serve", "-w", str(root), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("cx360 serve did not start")
            time.sleep(0.1)


def _health(port: int) -> dict:
    return json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5))["collector"]


def test_kill_9_mid_batch_loses_nothing_acknowledged_and_doubles_nothing(tmp_path):
    root = _workspace(tmp_path / "ws", "seal_seconds = 0.3\ndrain_seconds = 0.5")
    _, key = create_key(root, "writer", "sdks", source="web")
    port, url = _free_port(), None
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("w")
    server = _serve(root, port, log)
    sent: list[str] = []
    failed: list[str] = []
    lock = threading.Lock()

    def on_error(exc, batch):
        with lock:
            failed.extend(m["messageId"] for m in batch)

    clients = {
        "segment": segment.Client(key, host=url, upload_interval=0.05, on_error=on_error, gzip=False),
        "rudder": rudder.Client(key, host=url, upload_interval=0.05, on_error=on_error, gzip=True),
    }
    stop = threading.Event()

    def produce(name: str, client) -> None:
        i = 0
        while not stop.is_set():
            mid = f"{name}-{i}"
            ok, _ = client.track(f"u{i % 40}", "login", {"i": i}, message_id=mid)
            if ok:  # queued: the SDK now owns it, and must deliver it or report it to on_error
                with lock:
                    sent.append(mid)
            i += 1
            if i % 10 == 0:
                time.sleep(0.01)  # about 1,000 events a second per client: the 2 cores are shared

    producers = [threading.Thread(target=produce, args=item) for item in clients.items()]
    for t in producers:
        t.start()
    time.sleep(1.0)
    server.kill()  # SIGKILL, with batches in flight
    server.wait()
    time.sleep(0.5)  # the clients meet a dead port and retry
    server = _serve(root, port, log)
    time.sleep(0.5)
    stop.set()
    for t in producers:
        t.join()
    for client in clients.values():
        client.flush()
    time.sleep(1.0)  # the running server drains on its own, every 0.5 s: `cx360 ingest` meets it
    ingest = CliRunner().invoke(app, ["ingest", "-w", str(root), "--format", "json"])
    assert ingest.exit_code == 0, ingest.output
    assert _health(port)["lag"] == 0  # what was collected before `cx360 ingest` is in the warehouse
    server.terminate()
    server.wait()
    log.close()
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    rows = con.sql("SELECT event_id, count(*) FROM events WHERE source = 'web' GROUP BY 1").fetchall()
    con.close()
    acknowledged = set(sent) - set(failed)
    landed = {event_id for event_id, _ in rows}
    assert len(sent) > 1000 and {m.split("-")[0] for m in landed} == {"segment", "rudder"}
    assert acknowledged - landed == set(), "acknowledged events missing from the warehouse"
    assert all(n == 1 for _, n in rows), "an event landed twice"
    assert landed <= set(sent)
    assert failed == []  # the SDKs retried through the restart: nothing was given up

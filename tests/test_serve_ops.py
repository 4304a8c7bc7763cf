"""What operators of a real `cx360 serve --workers 2 --log-format json` see: one JSON access log
line per request (route template, status, latency, key id, request id; no personal data), the
request id echoed in X-Request-ID, and Prometheus counts that add up across both workers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from serve_world import build_world
from test_dashboard import _free_port

from cx360.api.access import create_key


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("ops")
    build_world(root)
    key_id, key = create_key(root, "agent", "ops")
    port = _free_port()
    log_path = tmp_path_factory.getbasetemp() / "serve-json.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cx360",
                "serve",
                "-w",
                str(root),
                "--port",
                str(port),
                "--workers",
                "2",
                "--log-format",
                "json",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("cx360 serve did not start: " + log_path.read_text())
            time.sleep(0.2)
    yield url, key_id, key, log_path
    proc.terminate()
    proc.wait(10)


def _get(url: str, key: str | None = None, headers: dict | None = None):
    request = urllib.request.Request(
        url, headers={**({"Authorization": f"Bearer {key}"} if key else {}), **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:  # a new connection each time
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _access_lines(log_path: Path) -> list[dict]:
    text = log_path.read_text()
    complete = text[: text.rfind("\n") + 1]  # a worker may be writing the last line right now
    lines = [json.loads(line) for line in complete.splitlines() if line.strip()]  # every line is JSON
    return [e for e in lines if e["logger"] == "cx360.access"]


def _wait_for(log_path: Path, request_id: str) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [e for e in _access_lines(log_path) if e["request_id"] == request_id]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no access log line for {request_id}")


def test_access_log_is_json_with_route_template_and_request_id(server):
    url, key_id, key, log_path = server
    status, headers, _ = _get(url + "/v1/profiles/anna@x.ru", key, {"X-Request-ID": "trace-42.a"})
    assert status == 200 and headers["x-request-id"] == "trace-42.a"
    entry = _wait_for(log_path, "trace-42.a")
    assert (entry["method"], entry["route"], entry["status"], entry["key_id"]) == (
        "GET",
        "/v1/profiles/{profile_id}",
        200,
        key_id,
    )
    assert entry["duration_ms"] > 0 and entry["level"] == "info" and entry["ts"].endswith("+00:00")

    status, headers, _ = _get(url + "/v1/profiles?email=boris@x.ru", None, {"X-Request-ID": 'bad id" {}'})
    assert status == 401 and re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"]), "an unsafe id is replaced"
    entry = _wait_for(log_path, headers["x-request-id"])
    assert (entry["route"], entry["status"], entry["key_id"]) == ("/v1/profiles", 401, None)
    assert _get(url + "/nowhere/anna@x.ru")[0] == 404

    time.sleep(0.5)
    text = log_path.read_text()
    for personal in ("anna@x.ru", "boris@x.ru", "Петрова", key.split("_", 2)[2], "127.0.0.1"):
        assert personal not in text, personal
    assert any(e["route"] == "unmatched" and e["status"] == 404 for e in _access_lines(log_path))


def _samples(text: str, name: str) -> dict[str, float]:
    return {
        m.group(1) or "": float(m.group(2)) for m in re.finditer(rf"^{re.escape(name)}(\{{.*?\}})? (\S+)$", text, re.M)
    }


def test_metrics_add_up_across_workers(server):
    url, _, key, log_path = server
    route = 'method="GET",route="/v1/segments",status="200"'
    before = _samples(_get(url + "/metrics")[2].decode(), "cx360_http_requests_total").get("{" + route + "}", 0.0)
    sent, pids = 0, set()
    while sent < 200 and (sent < 20 or len(pids) < 2):  # until both workers have answered some
        status, headers, _ = _get(url + "/v1/segments", key)
        assert status == 200
        sent += 1
        pids.add(_wait_for(log_path, headers["x-request-id"])["pid"])
    assert len(pids) == 2, "the kernel gave every connection to one worker"
    for _ in range(4):  # whichever worker answers the scrape, it counts both workers' requests
        text = _get(url + "/metrics")[2].decode()
        assert _samples(text, "cx360_http_requests_total")["{" + route + "}"] == before + sent
    assert _samples(text, "cx360_http_request_duration_seconds_count")['{route="/v1/segments"}'] >= sent
    assert len(_samples(text, "cx360_worker_resident_memory_bytes")) == 2, "one per worker"
    assert "python_info{" in text and _samples(text, "cx360_index_age_seconds")[""] > 0
    assert "cx360_audit_backlog_bytes" in text and "cx360_http_requests_in_progress" in text


def test_unknown_log_format_is_a_clear_error(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "cx360", "serve", "-w", str(tmp_path), "--log-format", "xml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        done.returncode != 0 and "--log-format: expected text or json" in done.stderr and "Traceback" not in done.stderr
    )

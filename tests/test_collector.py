"""The Segment-spec collector in-process: write keys, limits, receipts, the dedup window, backpressure,
the durable log and its drain into `events` and `quarantine` through the ingest path."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import threading
from contextlib import contextmanager

import duckdb
import pytest
from fastapi.testclient import TestClient

from cx360.api.access import create_key, revoke_key
from cx360.api.app import create_app, open_context
from cx360.pipeline import run_stage
from cx360.stream import eventlog
from cx360.stream.drain import drain
from cx360.stream.eventlog import Partition
from cx360.stream.segments import Segments
from cx360.workspace import Workspace, init_workspace

TS = "2026-03-01T10:00:00.000Z"


def _workspace(root, collector: str = ""):
    init_workspace(root)
    if collector:
        with (root / "cx360.toml").open("a") as f:
            f.write(f"\n[collector]\n{collector}\n")
    with Workspace(root) as ws:
        run_stage(ws, "ingest")  # an empty warehouse, for the serving index
    return root


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _track(mid: str, event: str = "login", user: str = "u1", **extra) -> dict:
    return {"type": "track", "messageId": mid, "userId": user, "event": event, "timestamp": TS, **extra}


@pytest.fixture
def served(tmp_path):
    """(client, root, write key) over a fresh workspace; the collector drains only when a test says so."""
    with _served(_workspace(tmp_path)) as s:
        yield s


@contextmanager
def _served(root):
    _, key = create_key(root, "writer", "web-site", source="web")
    ctx, _ = open_context(root)
    ctx.collector(background=False)
    with TestClient(create_app(ctx)) as client:
        yield client, root, key


def _drain(root):
    with Workspace(root) as ws:
        reports = drain(ws)
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        events = con.sql("SELECT event_id, source, name, customer_no FROM events ORDER BY event_id").fetchall()
        quarantine = con.sql("SELECT source, raw, reasons FROM quarantine ORDER BY row_number").fetchall()
    finally:
        con.close()
    return reports, events, quarantine


def test_write_keys_authenticate_as_the_sdks_send_them(served):
    client, root, key = served
    body = {"batch": [_track("a1")]}
    assert client.post("/v1/batch", json=body, headers=_basic(key)).json()["accepted"] == 1
    assert (
        client.post("/v1/batch", json={"batch": [_track("a2")]}, headers={"Authorization": f"Bearer {key}"}).json()[
            "accepted"
        ]
        == 1
    )
    missing = client.post("/v1/batch", json=body)
    assert missing.status_code == 401 and "write key" in missing.json()["message"]
    assert missing.json()["code"] == "AuthError"  # the field Segment's and RudderStack's SDKs read
    wrong = client.post("/v1/batch", json=body, headers=_basic(key[:-4] + "AAAA"))
    assert wrong.status_code == 401 and "unknown API key" in wrong.json()["message"]
    _, agent = create_key(root, "agent", "not-a-writer")
    assert client.post("/v1/batch", json=body, headers=_basic(agent)).status_code == 403
    writer_reads = client.get("/v1/segments", headers={"Authorization": f"Bearer {key}"})
    assert writer_reads.status_code == 403  # a writer key posts events and reads nothing
    revoke_key(root, key.split("_")[1])
    client.app.state.ctx.keys.ttl = 0
    assert client.post("/v1/batch", json=body, headers=_basic(key)).status_code == 401


def test_receipts_duplicates_and_rejections_reach_events_and_quarantine(served):
    client, root, key = served
    big = _track("big", properties={"blob": "x" * (33 << 10)})
    first = client.post(
        "/v1/batch",
        json={
            "batch": [
                _track("m1"),
                _track("m2", user="u2"),
                {"type": "track", "userId": "u1", "event": "login", "timestamp": TS},  # no messageId
                {"type": "purchase", "messageId": "m3", "userId": "u1"},  # unknown call type
                big,
                _track("m1"),  # the same message twice in one batch: a natural duplicate
                _track("m2", user="someone-else"),  # the same id, another payload: a synthetic duplicate
            ],
            "sentAt": TS,
        },
        headers=_basic(key),
    )
    assert first.status_code == 200  # some rejected: still 200, so the SDKs do not retry the batch
    receipts = first.json()["receipts"]
    assert [r["status"] for r in receipts] == [
        "accepted",
        "accepted",
        "rejected",
        "rejected",
        "rejected",
        "duplicate",
        "rejected",
    ]
    assert "missing messageId" in receipts[2]["reason"]
    assert "unknown call type 'purchase'" in receipts[3]["reason"]
    assert "larger than 32 KB" in receipts[4]["reason"]
    assert "different payload" in receipts[6]["reason"]
    again = client.post("/v1/batch", json={"batch": [_track("m1"), _track("m4")]}, headers=_basic(key)).json()
    assert [r["status"] for r in again["receipts"]] == ["duplicate", "accepted"]
    single = client.post("/v1/track", json=_track("m5") | {"type": None}, headers=_basic(key)).json()
    assert single["accepted"] == 1  # a single-call endpoint implies its type
    mismatch = client.post("/v1/page", json=_track("m6"), headers=_basic(key)).json()
    assert "posted to /v1/page" in mismatch["receipts"][0]["reason"]
    metrics = client.get("/metrics").text
    assert 'cx360_collector_messages{receipt="duplicates"} 2.0' in metrics
    assert 'cx360_collector_messages{receipt="synthetic_duplicates"} 1.0' in metrics
    assert client.get("/health").json()["collector"]["rejected"] == 4

    client.app.state.ctx.running_collector.seal(0)
    reports, events, quarantine = _drain(root)
    assert [(e[0], e[1], e[2]) for e in events] == [(m, "web", "login") for m in ("m1", "m2", "m4", "m5")]
    reasons = [q[2] for q in quarantine]
    assert len(reasons) == 5 and all(r.startswith("collector: ") for r in reasons)
    assert any("different payload" in r for r in reasons)
    assert any('"someone-else"' in q[1] for q in quarantine)  # the raw payload is kept
    (report,) = reports
    assert report.ok and report.read == report.loaded + report.quarantined + report.duplicates
    assert (report.loaded, report.quarantined) == (4, 5)
    assert client.get("/health").json()["collector"]["lag"] == 0
    assert _drain(root)[1] == events  # drained segments are not loaded twice


def test_bodies_limits_and_gzip(served):
    client, root, key = served
    packed = gzip.compress(json.dumps({"batch": [_track("g1")]}).encode())
    r = client.post("/v1/batch", content=packed, headers={**_basic(key), "Content-Encoding": "gzip"})
    assert r.json()["accepted"] == 1
    malformed = client.post("/v1/batch", content=b'{"batch": [', headers=_basic(key))
    assert malformed.status_code == 400 and "malformed JSON" in malformed.json()["message"]
    assert client.post("/v1/batch", json={"batch": {}}, headers=_basic(key)).status_code == 400
    assert client.post("/v1/batch", json=[1, 2], headers=_basic(key)).status_code == 400
    large = {"batch": [_track(f"l{i}", properties={"pad": "y" * 20_000}) for i in range(30)]}
    too_big = client.post("/v1/batch", json=large, headers=_basic(key))
    assert too_big.status_code == 413 and "500 KB" in too_big.json()["message"]
    bomb = gzip.compress(json.dumps({"batch": [_track("z", properties={"pad": "0" * (2 << 20)})]}).encode())
    r = client.post("/v1/batch", content=bomb, headers={**_basic(key), "Content-Encoding": "gzip"})
    assert r.status_code == 413 and "decompressed" in r.json()["message"]
    client.app.state.ctx.running_collector.seal(0)
    _, events, quarantine = _drain(root)
    assert [e[0] for e in events] == ["g1"]
    assert [q[2] for q in quarantine] == [
        "collector: malformed JSON: " + quarantine[0][2].split("malformed JSON: ")[1],
        'collector: malformed batch: expected {"batch": [messages...]}',
        "collector: malformed request: the body must be a JSON object",
    ]
    assert quarantine[0][1] == '{"batch": ['


def test_stored_lines_are_the_message_with_what_the_collector_adds(served):
    client, root, key = served
    future = "2026-12-31T00:00:00.000Z"  # a client clock far ahead: sentAt says by how much
    client.post("/v1/batch", json={"batch": [_track("f1", timestamp=future)], "sentAt": future}, headers=_basic(key))
    client.app.state.ctx.running_collector.seal(0)
    (path,) = eventlog.sealed(root, "web")
    line = json.loads(path.read_text())
    assert line["timestamp"] == future and line["sentAt"] == future and line["receivedAt"] < future
    assert line["cx360"]["source"] == "web" and len(line["cx360"]["fingerprint"]) == 32
    assert line["cx360"]["key"] == key.split("_")[1]
    with Workspace(root) as ws:
        drain(ws)
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    (ts,) = con.sql("SELECT ts FROM events WHERE event_id = 'f1'").fetchone()
    con.close()
    received = dt.datetime.fromisoformat(line["receivedAt"].replace("Z", "+00:00")).replace(tzinfo=None)
    assert abs((ts - received).total_seconds()) < 1  # Segment's correction: receivedAt - (sentAt - timestamp)


def test_the_dedup_window_survives_a_restart(tmp_path):
    root = _workspace(tmp_path)
    with _served(root) as (client, _, key):
        assert client.post("/v1/batch", json={"batch": [_track("r1")]}, headers=_basic(key)).json()["accepted"] == 1
    with _served(root) as (client, _, key):
        answer = client.post("/v1/batch", json={"batch": [_track("r1"), _track("r1", user="u9")]}, headers=_basic(key))
        assert [r["status"] for r in answer.json()["receipts"]] == ["duplicate", "rejected"]


@pytest.mark.parametrize(
    ("setting", "why"), [("min_free_disk_mb = 1e12", "min_free_disk_mb"), ("max_lag = 2", "max_lag")]
)
def test_backpressure_answers_503_and_stores_nothing(tmp_path, setting, why):
    with _served(_workspace(tmp_path, setting)) as (client, root, key):
        _refuses(client, root, key, why)


def _refuses(client, root, key, why):
    if why == "max_lag":
        batch = {"batch": [_track("b1"), _track("b2"), _track("b3")]}
        assert client.post("/v1/batch", json=batch, headers=_basic(key)).json()["accepted"] == 3
        client.app.state.ctx.running_collector.health(fresh=True)
    refused = client.post("/v1/batch", json={"batch": [_track("b4")]}, headers=_basic(key))
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert why in refused.json()["message"]
    assert client.get("/health").json()["collector"]["refused"] == 1
    client.app.state.ctx.running_collector.seal(0)
    _, events, _ = _drain(root)
    assert [e[0] for e in events] == (["b1", "b2", "b3"] if why == "max_lag" else [])


def test_a_torn_last_line_is_cut_and_the_rest_sealed(tmp_path):
    seg = Segments(tmp_path, segment_bytes=1 << 20)
    seg.write([b'{"a":1}', b'{"a":2}'])
    seg.sync()
    with open(next(tmp_path.glob("*.open")), "ab") as f:
        f.write(b'{"a":3')  # a kill -9 mid-write: never synced, never acknowledged
    again = Segments(tmp_path, segment_bytes=1 << 20)
    (sealed,) = tmp_path.glob("*.jsonl")
    assert sealed.name == "0000000000000001-0000000000000002.jsonl"
    assert sealed.read_bytes() == b'{"a":1}\n{"a":2}\n'
    assert again.next_seq == 3
    sealed.unlink()  # retention removed every segment: the sequence still goes on
    assert Segments(tmp_path, segment_bytes=1 << 20).next_seq == 3


def test_concurrent_appends_share_fsyncs_and_keep_every_line(tmp_path, monkeypatch):
    part = Partition(tmp_path)
    log = part.log("web")
    syncs = []
    real = Segments.sync
    monkeypatch.setattr(Segments, "sync", lambda self: (syncs.append(1), real(self)))
    offsets: list[str] = []
    lock = threading.Lock()

    def send(t):
        for i in range(25):
            got = log.append([f'{{"t":{t},"i":{i}}}'.encode()])
            with lock:
                offsets.extend(got)

    threads = [threading.Thread(target=send, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(offsets)) == 200
    assert len(syncs) < 200  # concurrent appends were committed together
    part.close()
    lines = [json.loads(x) for p in eventlog.sealed(tmp_path, "web") for x in p.read_text().splitlines()]
    assert sorted((x["t"], x["i"]) for x in lines) == [(t, i) for t in range(8) for i in range(25)]


def test_the_log_is_a_transport_with_consumer_groups(tmp_path):
    part = Partition(tmp_path)
    log = part.log("web")
    offsets = log.append([b"a", b"b", b"c"])
    first = log.read("g", "c1", count=2)
    assert [e.message for e in first] == [b"a", b"b"]
    assert log.read("g", "c2", count=5) == [(offsets[2], b"c")]  # c1's entries are not handed out again
    log.ack("g", [first[0].offset])
    assert log.lag("g") == 2
    reclaimed = log.read("g", "c3", count=5, reclaim_after_ms=0)  # c1 and c2 went silent
    assert [e.message for e in reclaimed] == [b"b", b"c"]
    log.ack("g", [e.offset for e in reclaimed])
    assert log.lag("g") == 0 and log.read("g", "c3", count=5) == []
    part.close()
    again = Partition(tmp_path).log("web")
    assert again.lag("g") == 0 and again.read("g", "c4", count=5) == []  # acknowledged offsets persist


def test_keys_create_writer_prints_the_key_last(tmp_path):
    from typer.testing import CliRunner

    from cx360.cli import app

    init_workspace(tmp_path)
    runner = CliRunner()
    r = runner.invoke(app, ["keys", "create", "--role", "writer", "--source", "web", "-w", str(tmp_path)])
    assert r.exit_code == 0 and r.output.strip().splitlines()[-1].startswith("cx360_")
    r = runner.invoke(
        app, ["keys", "create", "--role", "writer", "--source", "web", "-w", str(tmp_path), "--format", "json"]
    )
    assert json.loads(r.output)["key"].startswith("cx360_")
    r = runner.invoke(app, ["keys", "create", "--role", "writer", "-w", str(tmp_path)])
    assert r.exit_code != 0 and "--source" in str(r.exception)


def test_the_dedup_window_is_bounded_oldest_out_first():
    from cx360.stream.collector import DedupWindow

    window = DedupWindow(24, max_ids=2)
    for mid in ("a", "b", "c"):
        window.put(("web", mid), mid * 32)
    assert window.get(("web", "a")) is None  # the oldest went: a retry of it lands once by the warehouse key
    assert window.get(("web", "c")) == "c" * 16 and window.get(("other", "c")) is None
    assert len(window) == 2

"""`cx360 stream`: the stream processor in a process of its own, reading the open segment a live writer
appends to, killed with SIGKILL in the middle of a micro-batch and restarted: each event applied once,
none lost, each trigger queued once; and `[stream] processor = "separate"` keeps it out of the servers."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from cx360.api.app import open_context
from cx360.online.feed import Feeds
from cx360.online.store import OnlineStore, open_online
from cx360.pipeline import run_stage
from cx360.stream.eventlog import Partition
from cx360.workspace import Workspace, init_workspace

CONFIG = """
[stream]
processor = "separate"

[[segments]]
name = "payers"
where = "txn_count >= 6"  # each person enters with the last payment, after the kill

[[triggers]]
name = "welcome_payer"
segment = "payers"
on = "enter"
webhook = "http://127.0.0.1:9/unused"
"""
PEOPLE, EACH = 40, 6  # card payments per person
FIRST = 100  # applied before the kill


def _stream(root):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "CX360_TRIGGER_SECRET": "s"}
    return subprocess.Popen(
        [sys.executable, "-m", "cx360", "stream", "-w", str(root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _applied(store: OnlineStore) -> int:
    return store.offset("p0/web")


def _writing(store: OnlineStore) -> bool:
    """Whether another process holds the online store's write transaction now (it is mid-batch)."""
    if store.path is None:  # PostgreSQL: the writers' advisory lock of this schema is granted to someone
        key = "(hashtext(current_schema() || '.cx360-online')::bigint & 4294967295)::oid"
        locks = f"SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = {key}"
        return store._rows(locks)[0]["n"] > 0
    con = sqlite3.connect(store.path, timeout=0, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        con.close()


def _until(check, timeout: float, proc=None):
    deadline = time.monotonic() + timeout
    while not check():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode())
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_separate_processor_killed_mid_batch_resumes_from_its_offsets(tmp_path, monkeypatch, online_store):
    root = tmp_path / "ws"
    init_workspace(root)
    with (root / "cx360.toml").open("a") as f:
        f.write(CONFIG + online_store)
    with Workspace(root) as ws:
        run_stage(ws, "ingest")  # an empty warehouse, for the serving index
    monkeypatch.setenv("CX360_TRIGGER_SECRET", "s")
    server, _ = open_context(root)
    server.collector()  # a server's collector, with the workspace's [stream] setting
    assert server.processor is None, "the servers leave the stream to `cx360 stream`"
    server.close()

    writer = Partition(root)  # a live server's partition: its segment stays open all along
    log = writer.log("web")
    store = open_online(root, Workspace(root).config)
    messages = [
        {
            "type": "track",
            "messageId": f"m{i}",
            "event": "card_payment",
            "timestamp": f"2026-11-{1 + i // PEOPLE:02d}T10:00:00Z",
            "anonymousId": f"cookie-{i % PEOPLE}",
            "properties": {"amount": 10},
            "cx360": {"source": "web"},
        }
        for i in range(PEOPLE * EACH)
    ]
    lines = [json.dumps(m).encode() for m in messages]
    first = _stream(root)
    try:
        log.append(lines[:FIRST])
        _until(lambda: _applied(store) == FIRST, 60, first)
        log.append(lines[FIRST:])
        _until(lambda: _writing(store), 60, first)
        first.send_signal(signal.SIGKILL)  # in the middle of the next micro-batch's transaction
        first.wait()
    finally:
        first.kill()
    killed_at = _applied(store)
    assert FIRST <= killed_at < len(lines)
    assert list(log.folder.glob("events/*.open")), "the writer's segment is still open"

    second = _stream(root)
    try:
        _until(lambda: _applied(store) == len(lines), 60, second)
        assert Feeds(root, store.offset).claim() == [], "a partition has one processor at a time"
    finally:
        second.send_signal(signal.SIGTERM)
        rc = second.wait(30)
        assert rc == 0, second.stderr.read().decode()[-3000:]
    writer.close()

    docs = {r["profile_id"]: json.loads(r["doc"]) for r in store._rows("SELECT * FROM docs")}
    assert len(docs) == PEOPLE
    assert sorted(d["traits"]["events_total"] for d in docs.values()) == [EACH] * PEOPLE  # no loss, no double
    assert store.counts()["events"] == len(lines)
    welcomed = [json.loads(r["payload"])["profile_id"] for r in store.outbox(limit=1000)]
    assert sorted(welcomed) == sorted(docs), "each person's trigger queued once"


def test_the_next_days_sql_is_compiled_ahead_so_midnight_does_not_stall_the_processor():
    import datetime as dt

    from cx360.config import Config
    from cx360.online.compute import SliceEngine, compile_for

    config = Config.model_validate({"segments": [{"name": "payers", "where": "txn_count >= 2"}]})
    slices = SliceEngine(config.segments)
    today = dt.datetime(2026, 11, 21)
    slices.prepare(today)
    slices.wait_ahead()
    assert slices.compiled_here == 1
    tomorrow = slices.prepare(today + dt.timedelta(days=1))  # the day changed: nothing to compile now
    assert slices.compiled_here == 1
    fresh = compile_for(slices.engine, slices.specs, today + dt.timedelta(days=1), "UTC")
    assert tomorrow == fresh, "the SQL compiled ahead is the SQL compiled in place"
    slices.wait_ahead()
    assert (today + dt.timedelta(days=2)) in slices._compiled, "and the day after is compiled ahead in turn"

"""Audit entries survive kill -9 at load: a real `cx360 serve` answers personal-data reads, searches
and lookups that find nobody (404) from several clients, is SIGKILLed at a seeded random moment,
restarted, and every request it answered must have its audit entry (none lost, none doubled by the
replay)."""

from __future__ import annotations

import http.client
import json
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from serve_world import world_copy

from cx360.api.access import create_key
from cx360.api.audit import read_audit

ROUNDS, CLIENTS = 2, 4
KINDS = ("read", "search", "miss")


def _kind(entry: dict) -> str | None:
    """Which request an audit entry records: a profile read, a search (its own entry, hits or not), a miss."""
    if entry["action"] == "search" and entry["profile_id"] is None:
        return "search"
    if entry["action"] == "profile":
        return "read" if entry["profile_id"] else "miss"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(root: Path, port: int, log) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cx360", "serve", "-w", str(root), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("cx360 serve did not start: " + Path(log.name).read_text())
            time.sleep(0.1)


def _get(url: str, key: str) -> tuple[int, dict]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_no_audit_entry_is_lost_when_the_server_is_killed(tmp_path, tmp_path_factory):
    rng = random.Random(12)
    root = tmp_path / "w"
    world_copy(root, tmp_path_factory.getbasetemp() / "served-world")
    with open(root / "cx360.toml", "a", encoding="utf-8") as f:  # searches at load: no rate limit to hit
        f.write("\n[serve]\nsearch_burst = 1000000\nsearch_per_minute = 1000000\n")
    admin = create_key(root, "admin", "crash-admin")[1]
    keys = [create_key(root, "agent", f"crash-{i}")[1] for i in range(CLIENTS)]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("w")
    answered = {(k, kind): 0 for k in keys for kind in KINDS}
    refused: list[int] = []
    proc = _start(root, port, log)
    try:
        pid = _get(f"{base}/v1/profiles?email=anna@x.ru", admin)[1]["profile_id"]
        for _ in range(ROUNDS):
            stop = threading.Event()

            def load(key: str, stop: threading.Event) -> None:
                urls = {
                    "read": (f"{base}/v1/profiles/{pid}", 200),
                    "search": (f"{base}/v1/search?q=anna", 200),
                    "miss": (f"{base}/v1/profiles?email=nobody@x.ru", 404),
                }
                n = 0
                while not stop.is_set():
                    kind = KINDS[n % len(KINDS)]
                    n += 1
                    url, expected = urls[kind]
                    try:
                        status, _ = _get(url, key)
                    except (OSError, http.client.HTTPException, ValueError):  # killed mid-answer: not answered
                        return
                    if status != expected:
                        refused.append(status)
                        return
                    answered[key, kind] += 1

            threads = [threading.Thread(target=load, args=(k, stop)) for k in keys]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.5, 1.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            stop.set()
            for t in threads:
                t.join(10)
            proc = _start(root, port, log)
        status, _ = _get(f"{base}/v1/audit?limit=10000", admin)  # waits for the dead servers' journals
        assert status == 200
    finally:
        proc.kill()
        proc.wait(10)
    assert refused == [], "a read the server answered with an error"
    entries = read_audit(root, limit=100_000)
    logged = {
        (k, kind): sum(1 for e in entries if e["key_id"] == k.split("_")[1] and _kind(e) == kind)
        for k, kind in answered
    }
    assert sum(answered.values()) >= 20 * ROUNDS, f"the load was too light to tell: {answered}"
    assert all(answered[k, "miss"] and answered[k, "search"] for k in keys), answered
    print(f"answered {sum(answered.values())} requests over {ROUNDS} kills, logged {sum(logged.values())}")
    lost = {
        f"{k.split('_')[1]} {kind}": answered[k, kind] - n for (k, kind), n in logged.items() if n < answered[k, kind]
    }
    assert lost == {}, f"answered requests without an audit entry: {lost}"
    in_flight = {f"{k.split('_')[1]} {kind}": n - answered[k, kind] for (k, kind), n in logged.items()}
    assert all(0 <= n <= ROUNDS for n in in_flight.values()), (
        f"entries without a request, or replayed twice: {in_flight}"
    )
    assert not list((root / "audit-journal").glob("*.jsonl"))[1:], "dead servers' journals are removed once drained"


def test_a_coroutine_read_waits_for_the_shared_sync_and_fails_without_it(tmp_path, monkeypatch):
    """`AuditLog.deferred()` (the profile routes): the entries of many concurrent reads are on disk when
    each block ends, and a journal that cannot be synced fails the read instead of answering it."""
    import asyncio
    import os

    from cx360.api.access import Principal
    from cx360.api.audit import AuditLog
    from cx360.errors import UnavailableError

    log = AuditLog(tmp_path)
    who = Principal(key_id="k1", name="test", role="agent")

    async def read(i: int) -> int:
        """How far the journal is on disk when the read may answer, past its own entry's end."""
        async with log.deferred():
            log.record(who, "profile", f"P{i}", ["attributes.first_name"], None)
            mine = log._written  # no other coroutine runs between the append and this line
        return log._synced - mine

    async def reads() -> list[int]:
        return await asyncio.gather(*(read(i) for i in range(50)))

    try:
        synced = asyncio.run(reads())
        assert min(synced) >= 0  # each answered only once its entry is on disk
        log.flush()
        assert len(read_audit(tmp_path)) == 50

        def broken(fd: int) -> None:
            raise OSError("disk gone")

        monkeypatch.setattr(os, "fdatasync", broken)
        with pytest.raises(UnavailableError, match="cannot be synced"):
            asyncio.run(read(99))
    finally:
        monkeypatch.undo()
        log.close()

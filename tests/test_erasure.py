"""Erasure that leaves no trace, and subject access, on one small demo bank shared by the tests
(each test erases in its own copy)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cx360.api import index
from cx360.api.audit import read_audit, record_cli
from cx360.erasure.erase import erase, resume
from cx360.erasure.export import CSV_FILE, JSON_FILE, export
from cx360.erasure.scan import scan
from cx360.erasure.stores import unclaimed
from cx360.erasure.subject import resolve
from cx360.errors import ErasurePendingError, NotFoundError
from cx360.identity.explain import find_profile
from cx360.pipeline import run
from cx360.privacy.suppression import ERASED, Suppression, key_path
from cx360.workspace import Workspace

SRC = str(Path(__file__).resolve().parents[1] / "src")


def cx360(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cx360", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "PYTHONPATH": SRC},
    )


@pytest.fixture(scope="module")
def bank(tmp_path_factory) -> Path:
    from cx360.demo import generate_world

    root = tmp_path_factory.mktemp("bank") / "ws"
    generate_world(root, customers=60, seed=3)
    with Workspace(root) as ws:
        assert run(ws).ok
    return root


@pytest.fixture
def ws_root(bank, tmp_path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(bank, root)
    return root


def person(root: Path) -> dict:
    """A person merged from two CRM records whose social handle other people's posts tag."""
    with Workspace(root) as ws:
        profiles = ws.engine.table("profiles").to_pyarrow().to_pylist()
        posts = ws.engine.table("events").filter(lambda t: t.source == "social").to_pyarrow().to_pylist()
    for p in sorted(profiles, key=lambda p: p["profile_id"]):
        ids = json.loads(p["identifiers"])
        handle = (ids.get("social_handle") or [None])[0]
        if p["records"] < 2 or not ids.get("email") or not ids.get("phone") or not handle:
            continue
        tagged = [e for e in posts if f"@{handle}" in (e["properties"] or "") and e["social_handle"] != handle]
        if tagged:
            return {
                "pid": p["profile_id"],
                "email": ids["email"][0],
                "phone": ids["phone"][0],
                "handle": handle,
                "names": [f"{p['first_name']} {p['last_name']}", f"{p['last_name']} {p['first_name']}"],
                "tagged": sorted(e["event_id"] for e in tagged),
            }
    raise AssertionError("the demo bank has no merged person tagged by others")


def values_of(who: dict) -> list[bytes]:
    out = [who["email"], who["phone"], who["phone"].lstrip("+"), *who["names"]]
    return [v.encode() for v in out] + [v.lower().encode() for v in who["names"]]


def files_holding(root: Path, who: dict) -> list[str]:
    """Files outside data/ whose raw bytes hold the person's e-mail, phone or full name."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("data/"):
            continue
        data = path.read_bytes()
        if any(v in data for v in values_of(who)):
            found.append(rel)
    return found


def others(root: Path, who: dict) -> dict[str, set]:
    """Everyone else's records and events, and the golden records of their profiles."""
    with Workspace(root) as ws:
        e = ws.engine
        records = e.table("records").select("source", "record_id", "record_hash").to_pyarrow().to_pylist()
        events = e.table("events").select("source", "event_id", "properties").to_pyarrow().to_pylist()
        profiles = e.table("profiles").select("profile_id", "first_name", "last_name", "records").to_pyarrow()
    return {
        "records": {tuple(r.values()) for r in records},
        "events": {tuple(r.values()) for r in events},
        "profiles": {tuple(r.values()) for r in profiles.to_pylist() if r["profile_id"] != who["pid"]},
    }


def test_erase_leaves_no_trace_and_reingesting_the_sources_brings_nobody_back(ws_root):
    who = person(ws_root)
    with Workspace(ws_root) as ws:
        warehouse = ws.root / ws.config.engine.path
    index.ensure(warehouse)  # a serving index and an audit entry that hold them too
    record_cli(ws_root, "profile", who["pid"], ["email", "phone"])
    assert files_holding(ws_root, who)

    result = cx360("privacy", "erase", who["email"], "-w", ws_root, "--reason", "Art. 17 request", "--format", "json")
    assert result.returncode == 0, result.stderr
    receipt = json.loads(result.stdout)
    assert receipt["verification"]["hits"] == 0 and receipt["verification"]["files_scanned"] > 10
    assert receipt["subject"]["records"] == 2 and receipt["subject"]["identifiers"]["email"] >= 1
    warehouse_store = next(s for s in receipt["stores"] if s["store"] == "warehouse")
    assert warehouse_store["rows_removed"]["records"] == 2 and warehouse_store["rows_removed"]["events"] > 0
    assert warehouse_store["rows_redacted"]["events"] >= len(who["tagged"])
    assert receipt["files"]["serving index"] == "rebuilt" and receipt["files"]["truth/persons.parquet"] == 1
    assert receipt["user_files_holding_the_person"] and all(
        f.startswith("data/") for f in receipt["user_files_holding_the_person"]
    )
    assert files_holding(ws_root, who) == []
    assert [e for e in read_audit(ws_root) if e["profile_id"] == who["pid"]] == []
    assert any(e["action"] == "erasure" for e in read_audit(ws_root))  # the tombstone, naming no one
    with Workspace(ws_root) as ws:
        with pytest.raises(NotFoundError):
            find_profile(ws, who["email"])
        ev = ws.engine.table("events")
        tagged = ev.filter(ev.event_id.isin(who["tagged"])).properties.to_pyarrow().to_pylist()
        ledger = [b for b in ws.engine.table("ingest_batches").to_pyarrow().to_pylist() if b["status"] == "committed"]
    counts = ("rows_loaded", "rows_quarantined", "rows_duplicate", "rows_suppressed")
    assert all(b["rows_read"] == sum(b[c] or 0 for c in counts) for b in ledger)
    assert sum(b["rows_suppressed"] or 0 for b in ledger) == sum(
        warehouse_store["rows_removed"].get(t, 0) for t in ("records", "events", "consents", "quarantine")
    )
    assert tagged and all(f"@{ERASED}" in t and who["handle"] not in t for t in tagged)
    again = erase(ws_root, who["phone"], "the same request again")
    assert again["erasure_id"] == receipt["erasure_id"] and "erased before" in again["note"]

    # The sources change (a new customer, a new post): both files are read again in full.
    before = others(ws_root, who)
    with open(ws_root / "data" / "crm_core.csv", "a", encoding="utf-8") as f:
        f.write(
            "C999999;Новиков;Пётр;Ильич;01.02.1990;+7 903 9999999;;petr.novikov999@mail.ru;"
            "ул. Садовая, д. 1;Люблино;debit_card;;01.05.2025 10:00\n"
        )
    post = {"author": "@petr_n", "created": "2025-05-01T10:00:00Z", "followers": 3, "kind": "post"}
    post |= {"platform": "vk", "post_id": "sp-99999999", "rating": None, "text": f"hi @{who['handle']}"}
    with open(ws_root / "data" / "social.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(post, ensure_ascii=False) + "\n")
    with Workspace(ws_root) as ws:
        report = run(ws)
        assert report.ok, report.as_dict()
        sources = {r.source: r for r in report.stages[0].report}
        with pytest.raises(NotFoundError):
            find_profile(ws, who["email"])
    for r in sources.values():
        assert r.read == r.loaded + r.quarantined + r.duplicates + r.suppressed
    assert sources["crm_core"].suppressed == 1 and sources["crm_core"].loaded == 1
    assert sources["social"].suppressed > 0 and sources["social"].loaded == 1
    after = others(ws_root, who)
    assert after["records"] - before["records"] == {r for r in after["records"] if r[1] == "C999999"}
    assert before["records"] <= after["records"] and before["events"] <= after["events"]
    new_events = after["events"] - before["events"]
    assert [(s, e) for s, e, _ in new_events] == [("social", "sp-99999999")]
    assert f"hi @{ERASED}" in next(iter(new_events))[2]
    assert before["profiles"] <= after["profiles"] and len(after["profiles"]) == len(before["profiles"]) + 1
    assert files_holding(ws_root, who) == []


def test_an_unknown_identifier_is_a_clear_error(ws_root):
    result = cx360("privacy", "erase", "nobody@nowhere.example", "-w", ws_root, "--reason", "request")
    assert result.returncode == 1
    assert "no profile holds 'nobody@nowhere.example': nothing to erase" in " ".join(result.stderr.split())
    assert not (ws_root / "erasure").exists() and not key_path(ws_root).exists()


def test_a_crash_mid_erasure_is_completed_by_the_next_run(ws_root):
    who = person(ws_root)
    crash = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from cx360.engine import DuckDB
        from cx360.erasure.erase import erase
        DuckDB.compact = lambda self: os._exit(137)  # killed after the rows went, before the rewrite
        erase(Path({str(ws_root)!r}), {who["email"]!r}, "request")
    """)
    died = subprocess.run([sys.executable, "-c", crash], env={**os.environ, "PYTHONPATH": SRC}, timeout=300)
    assert died.returncode == 137
    with pytest.raises(ErasurePendingError, match="privacy erase --resume"), Workspace(ws_root) as ws:
        ws.engine  # noqa: B018 - nothing reads a workspace with an erasure half done
    [receipt] = resume(ws_root)
    assert receipt["interrupted"] == {"at_step": "rows", "runs": 2, "completed": True}
    assert receipt["verification"]["hits"] == 0 and files_holding(ws_root, who) == []
    assert resume(ws_root) == []
    with Workspace(ws_root) as ws, pytest.raises(NotFoundError):
        find_profile(ws, who["phone"])


def test_erase_while_serving_drops_the_person_from_the_running_api(ws_root):
    from fastapi.testclient import TestClient

    from cx360.api.access import create_key
    from cx360.api.app import create_app, open_context

    who = person(ws_root)
    _, key = create_key(ws_root, "admin", "dpo")
    auth = {"Authorization": f"Bearer {key}"}
    ctx, _ = open_context(ws_root)
    with TestClient(create_app(ctx)) as client:
        assert client.get("/v1/profiles", params={"email": who["email"]}, headers=auth).status_code == 200
        last_name = who["names"][0].split()[-1]
        hits = client.get("/v1/search", params={"q": last_name}, headers=auth).json()["results"]
        assert who["pid"] in {h["profile_id"] for h in hits}
        receipt = erase(ws_root, who["email"], "request")
        assert receipt["verification"]["hits"] == 0
        assert client.get("/v1/profiles", params={"email": who["email"]}, headers=auth).status_code == 404
        hits = client.get("/v1/search", params={"q": last_name}, headers=auth).json()["results"]
        assert who["pid"] not in {h["profile_id"] for h in hits}
        assert client.get("/health").json()["status"] == "ok"
    # every file of this full workspace (index, keys, audit, collector log, suppression list, receipt) has a store
    from cx360.stream.eventlog import Partition

    log = Partition(ws_root)
    log.log("web").append([b'{"type": "track", "event": "Signed In", "messageId": "m1"}'])
    log.close()
    with Workspace(ws_root) as ws:
        assert unclaimed(ws.root, ws.config) == []
        (ws.root / "stray.bin").write_bytes(b"?")
        assert unclaimed(ws.root, ws.config) == ["stray.bin"]


def test_erase_reaches_the_collectors_redis_streams(ws_root, tmp_path):
    from redis_server import RedisServer

    from cx360.stream.redis_log import RedisLog

    who = person(ws_root)
    server = RedisServer(tmp_path / "redis").start()
    try:
        with (ws_root / "cx360.toml").open("a") as f:
            f.write(f'\n[collector]\ntransport = "redis"\nredis_url = "{server.url}"\n')
        with Workspace(ws_root) as ws:
            streams = RedisLog(ws.config.collector, ws.config.workspace.name)
        theirs = {"type": "identify", "messageId": "m1", "traits": {"email": who["email"].upper()}}
        other = {"type": "track", "messageId": "m2", "userId": "someone-else", "event": "Signed In"}
        streams.append([json.dumps(theirs).encode(), json.dumps(other).encode()])
        streams.reject([json.dumps({"line": {"phone": who["phone"]}, "reasons": ["no time"]}).encode()])
        receipt = erase(ws_root, who["email"], "request")
        names = sorted(s["store"] for s in receipt["stores"])
        assert "redis streams" in names
        stream = streams.events.stream
        assert receipt["files"][f"redis stream {stream}"] == 1
        assert receipt["files"][f"redis stream {stream}:rejected"] == 1
        assert receipt["verification"]["hits"] == 0
        assert receipt["verification"]["streams_scanned"] == [
            f"redis stream {stream}",
            f"redis stream {stream}:rejected",
        ]
        left = streams.events.read("probe", "c1", count=10)
        assert [json.loads(e.message)["messageId"] for e in left] == ["m2"]
        streams.close()
        aof = [p for p in (tmp_path / "redis").rglob("*") if p.is_file() and p.name != "redis.log"]
        assert aof and not any(who["email"].upper().encode() in p.read_bytes() for p in aof)
    finally:
        server.kill()


def test_subject_access_export_writes_everything_held_with_source_time_and_purpose(ws_root, tmp_path):
    who = person(ws_root)
    record_cli(ws_root, "profile", who["pid"], ["email"])
    summary = export(ws_root, who["phone"], tmp_path / "out")
    assert summary["profile_ids"] == [who["pid"]]
    assert {"records", "events", "profiles", "identity_map", "audit"} <= set(summary["tables"])
    doc = json.loads((tmp_path / "out" / JSON_FILE).read_text(encoding="utf-8"))
    assert doc["identifiers"]["email"] == [who["email"]] and len(doc["items"]) == summary["items"]
    assert all(i["source"] and i["purpose"] and i["time"] for i in doc["items"])
    assert {i["data"]["record_id"] for i in doc["items"] if i["table"] == "records"} and all(
        i["source"] in ("crm_core", "crm_cards") for i in doc["items"] if i["table"] == "records"
    )
    csv_text = (tmp_path / "out" / CSV_FILE).read_text(encoding="utf-8")
    assert csv_text.startswith("table,source,time,purpose,field,value") and who["email"] in csv_text
    assert any(e["action"] == "subject_access_export" and e["profile_id"] == who["pid"] for e in read_audit(ws_root))
    with Workspace(ws_root) as ws:  # what the export lists is what erasure removes: the same rows
        subject = resolve(ws, who["email"])
        assert scan(ws.root, ws.config, subject).hits  # before erasure the scan does find them
    result = cx360("privacy", "export", "nobody@nowhere.example", "-w", ws_root, "-o", tmp_path / "none")
    assert result.returncode == 1 and "no profile holds" in result.stderr


def test_suppression_redacts_text_and_keeps_its_secret_private(tmp_path):
    s = Suppression.load(tmp_path, "RU")
    assert not s and s.redact("Иван Петров @ivan") == "Иван Петров @ivan"
    s.add(
        [("email", "ivan@mail.ru"), ("phone", "+79161234567"), ("social_handle", "ivan_p"), ("name", "иван петров")],
        "e1",
    )
    assert oct(key_path(tmp_path).stat().st_mode & 0o777) == "0o600"
    text = "Call Иван Петров on 8 (916) 123-45-67 or IVAN@mail.ru, cc @ivan_p and @ivan_pp"
    assert s.redact(text) == f"Call {ERASED} on {ERASED} or {ERASED}, cc @{ERASED} and @ivan_pp"
    again = Suppression.load(tmp_path, "RU")
    assert again.hashes == s.hashes and again.holds("email", "ivan@mail.ru")
    assert again.touches('{"line": 3, "fields": ["x", "+7 916 123 45 67"]}')
    assert not again.touches('{"phone": "+7 916 000 00 00", "text": "hello"}')
    assert "ivan" not in (tmp_path / "privacy" / "suppressed.jsonl").read_text()


def test_ingest_counts_suppressed_rows_and_quarantines_none_of_them(duckdb_workspace):
    f = duckdb_workspace
    f.write(
        "data/crm.csv",
        """\
        id,email,dob,note
        1,ivan@mail.ru,1990-01-01,first
        2,olga@mail.ru,1991-01-01,friend of ivan@mail.ru
        3,ivan@mail.ru,not a date,bad row of Ivan
        4,petr@mail.ru,not a date,bad row of Petr
        """,
    )
    ws = f.config(
        """
        [[sources]]
        name = "crm"
        kind = "csv"
        path = "data/crm.csv"
        [sources.records]
        record_id = "id"
        identifiers = { email = "email" }
        attributes = { birth_date = { column = "dob", type = "date" }, note = "note" }
        """
    )
    from cx360.sources.ingest import ingest

    Suppression.load(ws.root).add([("email", "ivan@mail.ru")], "e1")
    with ws:
        [report] = ingest(ws)
        assert (report.read, report.loaded, report.quarantined, report.duplicates, report.suppressed) == (4, 1, 1, 0, 2)
        records = ws.engine.table("records").to_pyarrow().to_pylist()
        assert [r["record_id"] for r in records] == ["2"] and ERASED in records[0]["extra"]
        [q] = ws.engine.table("quarantine").to_pyarrow().to_pylist()
        assert "Petr" in q["raw"]
        [ledger] = [b for b in ws.engine.table("ingest_batches").to_pyarrow().to_pylist() if b["status"] == "committed"]
        assert ledger["rows_suppressed"] == 2 and ledger["rows_read"] == 4

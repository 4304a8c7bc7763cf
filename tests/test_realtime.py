"""The profile in real time: collector -> event log -> stream processor -> online store -> API, triggers
to webhooks, and the nightly batch agreeing with what the stream computed."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import random
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cx360.api.access import create_key
from cx360.api.app import create_app, open_context
from cx360.api.reconcile import after_batch
from cx360.cli import app
from cx360.erasure.erase import erase
from cx360.online.compute import as_of_for
from cx360.online.feed import Feeds
from cx360.online.processor import Processor
from cx360.online.store import open_online
from cx360.online.triggers import Deliverer, Triggers, replay
from cx360.pipeline import run_stage
from cx360.privacy.vault import Vault
from cx360.stream.drain import drain
from cx360.stream.eventlog import Partition
from cx360.workspace import Workspace, init_workspace

SECRET = "s3cret"
CONFIG = """
[collector]
drain_seconds = 0

[[segments]]
name = "payers"
where = "txn_count >= 2"

[[segments]]
name = "recent_payer"
events = [{ name = "card_payment", within_days = 30 }]

[[triggers]]
name = "welcome_payer"
segment = "payers"
on = "enter"
webhook = "WEBHOOK"
"""


class Hook(BaseHTTPRequestHandler):
    """A webhook receiver that is down (503) while `down` is set, and keeps what it accepted."""

    down = threading.Event()
    got: ClassVar[list[tuple[dict, dict]]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.down.is_set():
            self.send_response(503)
        else:
            Hook.got.append((dict(self.headers), json.loads(body)))
            stamp = self.headers["X-Cx360-Timestamp"].encode()
            want = hmac.new(SECRET.encode(), stamp + b"." + body, hashlib.sha256).hexdigest()
            self.send_response(200 if self.headers["X-Cx360-Signature"] == f"sha256={want}" else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook():
    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Hook.got.clear()
    Hook.down.clear()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def _workspace(root, webhook: str = "http://127.0.0.1:9/unused", *, vault: bool = False, online: str = ""):
    init_workspace(root)
    with (root / "cx360.toml").open("a") as f:
        f.write(CONFIG.replace("WEBHOOK", webhook) + ("\n[privacy]\nvault = true\n" if vault else "") + online)
    with Workspace(root) as ws:
        run_stage(ws, "ingest")  # an empty warehouse, for the serving index
    return root


@contextmanager
def _served(root, monkeypatch):
    monkeypatch.setenv("CX360_TRIGGER_SECRET", SECRET)
    _, writer = create_key(root, "writer", "site", source="web")
    _, admin = create_key(root, "admin", "ops")
    ctx, _ = open_context(root)
    ctx.collector()  # with its stream processor and trigger deliverer
    assert ctx.processor.ready.wait(30)
    with TestClient(create_app(ctx)) as client:
        client.headers["Authorization"] = f"Bearer {admin}"
        client.write = {"Authorization": "Basic " + base64.b64encode(f"{writer}:".encode()).decode()}
        yield client, ctx


def _track(mid, event="login", ts="2026-11-20T10:00:00Z", **who):
    return {"type": "track", "messageId": mid, "event": event, "timestamp": ts, **who}


def _wait(fn, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = fn()
        if out:
            return out
        time.sleep(0.01)
    raise AssertionError("timed out")


def test_an_accepted_event_is_in_the_profile_within_a_second(tmp_path, monkeypatch, online_store):
    with _served(_workspace(tmp_path, online=online_store), monkeypatch) as (client, _ctx):
        sent = time.monotonic()
        r = client.post("/v1/track", json=_track("m1", anonymousId="c-1"), headers=client.write)
        assert r.status_code == 200
        found = _wait(lambda: (x := client.get("/v1/profiles", params={"cookie_id": "c-1"})).status_code == 200 and x)
        assert time.monotonic() - sent < 1.0
        profile = found.json()
        assert profile["identifiers"] == {"cookie_id": ["c-1"]}
        assert profile["traits"]["events_total"] == 1
        assert profile["traits"]["last_seen_at"] == "2026-11-20T10:00:00Z"
        assert profile["freshness"]["origin"] == "stream" and profile["freshness"]["last_event_id"] == "m1"
        timeline = client.get(f"/v1/profiles/{profile['profile_id']}/timeline").json()
        assert [e["event_id"] for e in timeline["events"]] == ["m1"]

        # a burst for one person, sent as one batch: every event counted, none twice (one is a retry)
        burst = [_track(f"b{i}", ts=f"2026-11-21T10:{i % 60:02d}:00Z", anonymousId="c-1") for i in range(120)]
        client.post("/v1/batch", json={"batch": burst}, headers=client.write)
        client.post("/v1/batch", json={"batch": burst[:5]}, headers=client.write)

        def counted():
            t = client.get("/v1/profiles", params={"cookie_id": "c-1"}).json()["traits"]
            return t["events_total"] == 121

        _wait(counted)


def test_identify_merges_the_anonymous_profile_into_the_known_one(tmp_path, monkeypatch, online_store):
    root = _workspace(tmp_path, online=online_store)
    with _served(root, monkeypatch) as (client, _):
        client.post(
            "/v1/identify",
            json={
                "type": "identify",
                "messageId": "i1",
                "userId": "u1",
                "traits": {"email": "ivan@mail.ru", "birthday": "1980-05-01"},
                "timestamp": "2026-11-01T09:00:00Z",
            },
            headers=client.write,
        )
        _wait(lambda: client.get("/v1/profiles", params={"email": "ivan@mail.ru"}).status_code == 200)
    # the nightly batch: drain, resolve, build; the index is rebuilt and the online copy dropped
    with Workspace(root) as ws:
        drain(ws)
        for stage in ("identity", "profiles"):
            assert run_stage(ws, stage).status == "ok"
    done = after_batch(root, Workspace(root).config, root / "warehouse.duckdb")
    assert done.index_rebuilt and done.profiles_dropped == 1
    with _served(root, monkeypatch) as (client, _ctx):  # a restart: the online store outlives the server
        known = client.get("/v1/profiles", params={"email": "ivan@mail.ru"}).json()
        assert known["freshness"]["origin"] == "batch"
        client.post("/v1/track", json=_track("a1", anonymousId="anon-7"), headers=client.write)
        anonymous = _wait(
            lambda: (x := client.get("/v1/profiles", params={"cookie_id": "anon-7"})).status_code == 200 and x
        )
        assert anonymous.json()["profile_id"] != known["profile_id"]
        client.post(
            "/v1/identify",
            json={
                "type": "identify",
                "messageId": "i2",
                "userId": "u1",
                "anonymousId": "anon-7",
                "timestamp": "2026-11-20T11:00:00Z",
            },
            headers=client.write,
        )

        def merged():
            p = client.get("/v1/profiles", params={"cookie_id": "anon-7"}).json()
            return p["profile_id"] == known["profile_id"] and p

        p = _wait(merged)
        assert p["traits"]["events_total"] == 1  # the anonymous login, now the known person's
        assert p["traits"]["age_years"] == 46  # from the batch's golden birth date
        assert "anon-7" in p["identifiers"]["cookie_id"]
        timeline = client.get(f"/v1/profiles/{known['profile_id']}/timeline").json()["events"]
        kinds = [e["name"] for e in timeline]
        assert "profile_merged" in kinds and "login" in kinds
        merge = next(e for e in timeline if e["name"] == "profile_merged")
        assert merge["properties"]["merged"] == anonymous.json()["profile_id"]
        # the old id still finds the person
        assert client.get(f"/v1/profiles/{anonymous.json()['profile_id']}").json()["profile_id"] == known["profile_id"]
    # erasure reaches the online store and what only the stream knew (the cookie merged online)
    receipt = erase(root, "ivan@mail.ru", "test")
    assert receipt["files"]["online store"] > 0 and receipt["verification"]["hits"] == 0
    store = open_online(root, Workspace(root).config)
    assert receipt["files"]["online store at"] == store.where
    held = [json.dumps(dict(r)) for t in store.counts() for r in store._rows(f"SELECT * FROM {t}")]
    assert not [r for r in held if "anon-7" in r or "ivan@mail.ru" in r]
    store.close()
    for name in ("online.sqlite", "online.sqlite-wal"):
        path = root / name
        assert not path.exists() or (b"anon-7" not in path.read_bytes() and b"ivan@mail.ru" not in path.read_bytes())


@pytest.mark.postgres
@pytest.mark.parametrize("online_store", ["postgresql"], indirect=True)
def test_two_servers_sharing_one_postgresql_store_see_each_others_updates(tmp_path, monkeypatch, online_store):
    a, b = tmp_path / "a", tmp_path / "b"
    a, b = _workspace(a, online=online_store), _workspace(b, online=online_store)
    with _served(a, monkeypatch) as (on_a, _), _served(b, monkeypatch) as (on_b, _):
        on_a.post("/v1/track", json=_track("m1", anonymousId="c-1"), headers=on_a.write)
        seen = _wait(lambda: (x := on_b.get("/v1/profiles", params={"cookie_id": "c-1"})).status_code == 200 and x)
        assert seen.json()["traits"]["events_total"] == 1  # applied by server a, served by server b
        identify = {"type": "identify", "messageId": "i1", "anonymousId": "c-1", "userId": "u-9"}
        on_b.post("/v1/identify", json={**identify, "traits": {"email": "olga@mail.ru"}}, headers=on_b.write)
        found = _wait(
            lambda: (x := on_a.get("/v1/profiles", params={"email": "olga@mail.ru"})).status_code == 200 and x
        )
        assert found.json()["profile_id"] == seen.json()["profile_id"]  # b attached the email to a's profile
        burst = [_track(f"x{i}", ts=f"2026-11-21T10:{i:02d}:00Z", anonymousId="c-1") for i in range(30)]
        on_a.post("/v1/batch", json={"batch": burst[::2]}, headers=on_a.write)  # one person, both servers at once
        on_b.post("/v1/batch", json={"batch": burst[1::2]}, headers=on_b.write)
        _wait(lambda: on_a.get("/v1/profiles", params={"cookie_id": "c-1"}).json()["traits"]["events_total"] == 31)
    store = open_online(a, Workspace(a).config)
    streams = [r["stream"] for r in store._rows("SELECT stream FROM offsets ORDER BY stream")]
    assert len(streams) == 2 and len({s.split("|")[0] for s in streams}) == 2, "offsets are kept per server"
    store.close()


def _history(seed: int, n: int = 90) -> list[dict]:
    """A random history of 6 people: anonymous visits, payments, identify calls that join them."""
    rng = random.Random(seed)
    out, t = [], dt.datetime(2026, 10, 1, 8)
    for i in range(n):
        t += dt.timedelta(hours=rng.randint(1, 20))
        person = rng.randrange(6)
        who = {"anonymousId": f"cookie-{person}"} if rng.random() < 0.5 else {"userId": f"user-{person}"}
        ts = t.isoformat() + "Z"
        if rng.random() < 0.12:
            out.append(
                {
                    "type": "identify",
                    "messageId": f"h{i}",
                    "userId": f"user-{person}",
                    "anonymousId": f"cookie-{person}",
                    "timestamp": ts,
                }
            )
        elif rng.random() < 0.5:
            out.append(
                _track(
                    f"h{i}", "card_payment", ts, properties={"amount": rng.randint(5, 90), "category": "food"}, **who
                )
            )
        else:
            out.append(_track(f"h{i}", "login", ts, **who))
    return out


@pytest.mark.parametrize("vault", [False, True], ids=["clear", "vault"])
def test_batch_and_stream_agree_at_random_cut_points(tmp_path, monkeypatch, vault):
    root = _workspace(tmp_path, vault=vault)
    history = _history(seed=7)
    cuts = [*sorted(random.Random(11).sample(range(20, len(history)), 2)), len(history)]
    cuts = cuts[1:] if vault else cuts  # the clear run covers every cut; the vault's is the same code on tokens
    sent = 0
    for cut in cuts:
        with _served(root, monkeypatch) as (client, ctx):
            client.post("/v1/batch", json={"batch": history[sent:cut]}, headers=client.write)
            want = cut - sent
            _wait(lambda: ctx.processor.applied >= want, timeout=20)  # noqa: B023 - called at once
            online = ctx.store.online
            docs = {r["profile_id"]: json.loads(r["doc"]) for r in online._rows("SELECT * FROM docs")}
            if vault:  # the stream keeps tokens too, and the vault their values
                nodes = [
                    r["node"] for r in online._rows("SELECT node FROM nodes") if not r["node"].startswith("record:")
                ]
                assert nodes and all(n.split(":", 1)[1].startswith("tk_") for n in nodes)
                assert len(Vault.open(root).reveal(nodes)) == len(nodes)
            as_of = {r["as_of"] for r in online._rows("SELECT as_of FROM docs")}
        sent = cut
        assert len(as_of) == 1
        with Workspace(root) as ws:
            drain(ws)
            assert run_stage(ws, "identity").status == "ok"
            assert run_stage(ws, "profiles", as_of=dt.datetime.fromisoformat(as_of.pop())).status == "ok"
            assert run_stage(ws, "segments").status == "ok"
            batch = {
                r["profile_id"]: r for r in ws.engine.to_arrow(ws.engine.table("profile_traits"), step="t").to_pylist()
            }
            members = ws.engine.to_arrow(ws.engine.table("segment_members"), step="m").to_pylist()
        assert docs and set(docs) <= set(batch), "the stream's profile ids are the batch's"
        for pid, doc in docs.items():
            for name in ("events_total", "txn_count", "spend_total", "last_seen_at", "logins_90d", "n_sources"):
                want = batch[pid][name]
                got = doc["traits"][name]
                want = want.isoformat() if isinstance(want, dt.datetime) else want
                assert got == want, (cut, pid, name)
            online_in = {m["segment"] for m in doc["segments"] if m["exited_at"] is None} & {"payers", "recent_payer"}
            batch_in = {m["segment"] for m in members if m["profile_id"] == pid and m["exited_at"] is None}
            assert online_in == batch_in & {"payers", "recent_payer"}, (cut, pid)
        after_batch(root, Workspace(root).config, root / "warehouse.duckdb")


def test_a_crash_mid_batch_replays_without_duplicates_and_time_windows_exit_on_time(
    tmp_path, monkeypatch, online_store
):
    root = _workspace(tmp_path, online=online_store)
    monkeypatch.setenv("CX360_TRIGGER_SECRET", SECRET)
    ctx, _ = open_context(root)
    clock = [dt.datetime(2026, 11, 20, 12)]
    partition = Partition(root)
    log = partition.log("web")
    paid = [_track(f"p{i}", "card_payment", f"2026-11-{18 + i}T10:00:00Z", anonymousId="c-9") for i in range(2)]
    log.append([json.dumps({**m, "cx360": {"source": "web"}}).encode() for m in paid])
    feeds = Feeds(root, ctx.store.online.offset, only=partition.folder)
    proc = Processor(ctx.config, ctx.store.online, ctx.store, feeds, clock=lambda: clock[0])

    original = proc.stitcher.place
    calls = []

    def dies_on_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return original(*args, **kwargs)

    proc.stitcher.place = dies_on_the_second
    with pytest.raises(RuntimeError):
        proc.step()
    assert ctx.store.online.counts()["events"] == 0  # all of the batch or nothing
    feeds.close()  # the processor is gone, and its partition's lock with it
    feeds = Feeds(root, ctx.store.online.offset, only=partition.folder)
    restarted = Processor(ctx.config, ctx.store.online, ctx.store, feeds, clock=lambda: clock[0])
    assert restarted.step() == 2  # not acknowledged: read again
    assert restarted.step() == 0
    online = ctx.store.online
    pid = online._rows("SELECT profile_id FROM docs")[0]["profile_id"]
    assert online.counts()["events"] == 2
    segs = {m["segment"]: m for m in online.members_of(pid)}
    assert segs["recent_payer"]["exited_at"] is None and segs["payers"]["exited_at"] is None
    assert [r["trigger"] for r in online.outbox()] == ["welcome_payer"]

    # 30 days after the last payment (11-19) the window closes: timers, not a nightly job, exit the person
    # on the day the batch's as_of (midnight after) passes it: the evaluation at 2026-12-19, as of 12-20
    while segs["recent_payer"]["exited_at"] is None:
        due = online._rows("SELECT due_at FROM timers WHERE profile_id = ?", [pid])[0]["due_at"]
        clock[0] = dt.datetime.fromisoformat(due)
        assert clock[0] < dt.datetime(2026, 12, 20) and restarted.tick() == 1
        segs = {m["segment"]: m for m in online.members_of(pid)}
    assert segs["recent_payer"]["exited_at"].startswith("2026-12-19") and segs["payers"]["exited_at"] is None
    assert as_of_for(clock[0], clock[0]) == dt.datetime(2026, 12, 20)
    feeds.close()
    partition.close()
    ctx.close()


def test_a_webhook_down_for_a_while_gets_each_trigger_once_then_dead_letters_replay(
    tmp_path, hook, monkeypatch, online_store
):
    monkeypatch.setenv("CX360_TRIGGER_SECRET", SECRET)
    root = _workspace(tmp_path, webhook=hook, online=online_store)
    ctx, _ = open_context(root)
    store = open_online(root, ctx.config)
    spec = ctx.config.triggers[0]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with store.write() as con:
        Triggers([spec]).queue(con, "P1", ["payers"], [], now.isoformat(), "e1")
    settings = ctx.config.trigger_delivery.model_copy(update={"retry_seconds": 0.05, "give_up_hours": 1})
    deliverer = Deliverer(store, [spec], settings, None)
    Hook.down.set()
    for i in range(4):  # down: retried with backoff, not lost
        deliverer.deliver_due(now + dt.timedelta(seconds=i * 10))
    row = store.outbox()[0]
    assert row["status"] == "pending" and row["attempts"] == 4 and "503" in row["error"]
    Hook.down.clear()
    deliverer.deliver_due(now + dt.timedelta(seconds=60))
    assert store.outbox()[0]["status"] == "delivered"
    ((headers, body),) = Hook.got
    assert body["trigger"] == "welcome_payer" and body["segment"] == "payers" and body["profile_id"] == "P1"
    assert body["at"] and body["event_id"] == "e1" and headers["Idempotency-Key"] == body["key"]

    with store.write() as con:
        Triggers([spec]).queue(con, "P2", ["payers"], [], now.isoformat(), "e2")
    Hook.down.set()
    deliverer.deliver_due(now + dt.timedelta(hours=2))  # failing past give_up_hours: dead, and kept
    assert [r["profile_id"] for r in (json.loads(r["payload"]) for r in store.outbox(status="dead"))] == ["P2"]
    Hook.down.clear()
    assert replay(store) == 1
    _wait(lambda: deliverer.deliver_due() and store.outbox(status="delivered", limit=10)[1:])
    assert [b["profile_id"] for _, b in Hook.got] == ["P1", "P2"]
    listed = CliRunner().invoke(app, ["triggers", "list", "-w", str(root), "--format", "json"])
    assert listed.exit_code == 0 and {r["status"] for r in json.loads(listed.stdout)} == {"delivered"}
    ctx.close()


def test_a_consent_withdrawn_after_the_trigger_fired_suppresses_the_send(tmp_path, hook, monkeypatch, online_store):
    from cx360.api.services import decide
    from cx360.config import TriggerSpec
    from cx360.privacy import ledger

    monkeypatch.setenv("CX360_TRIGGER_SECRET", SECRET)
    root = _workspace(tmp_path, webhook=hook, online=online_store)
    ctx, _ = open_context(root)
    store = ctx.store.online
    spec = TriggerSpec(name="offer_mail", segment="payers", webhook=hook, purpose="marketing", channel="email")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for pid, status in (("P5", "granted"), ("P6", "granted")):
        ledger.submit(root, ledger.change(ctx.privacy, pid, "marketing", status, channel="email", source="test"))
    with store.write() as con:
        for pid in ("P5", "P6"):
            Triggers([spec]).queue(con, pid, ["payers"], [], now.isoformat(), f"e-{pid}")
    time.sleep(0.01)  # the withdrawal comes after the grant, and after the trigger fired
    ledger.submit(root, ledger.change(ctx.privacy, "P6", "marketing", "withdrawn", channel="email", source="test"))
    later = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    deliverer = Deliverer(
        store, [spec], ctx.config.trigger_delivery, None, consent=lambda p, u, c: decide(ctx, p, u, c)
    )
    deliverer.deliver_due(later + dt.timedelta(seconds=1))
    status = {json.loads(r["payload"])["profile_id"]: r for r in store.outbox()}
    assert status["P5"]["status"] == "delivered"
    assert status["P6"]["status"] == "suppressed" and "withdrawn" in status["P6"]["error"]
    assert [b["profile_id"] for _, b in Hook.got] == ["P5"]
    ctx.close()


def test_junk_identifiers_link_nobody_online(tmp_path, online_store):
    import tomllib

    from cx360.config import Config, IdentitySettings
    from cx360.online.stitch import Stitcher

    store = open_online(tmp_path, Config.model_validate(tomllib.loads(online_store)))
    stitcher = Stitcher(store, IdentitySettings(), lambda pid: None)
    with store.write() as con:
        assert stitcher.place(con, ["email:noreply@example.com"], "e1", "2026-11-20T10:00:00", {}) is None
        pid, merged = stitcher.place(
            con, ["email:noreply@example.com", "cookie_id:c1"], "e2", "2026-11-20T10:00:01", {}
        )
    assert merged == [] and store.node_profiles(["email:noreply@example.com", "cookie_id:c1"]) == {"cookie_id:c1": pid}

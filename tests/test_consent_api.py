"""Consent in the API: keys carry purposes, the profiling purpose and the person's consent gate traits and
scores, and `POST /v1/consents` records a change that the very next answer obeys."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from fastapi.testclient import TestClient
from serve_world import build_world
from typer.testing import CliRunner

from cx360.api.access import create_key, list_keys
from cx360.api.app import create_app, open_context
from cx360.cli import app
from cx360.privacy import ledger
from cx360.profiles.build import build
from cx360.workspace import Workspace

AS_OF = dt.datetime(2025, 7, 1)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("consents")
    build_world(root)
    with Workspace(root) as ws:  # Boris refused profiling in June
        boris = ws.engine.table("identity_map").filter(lambda t: t.node == "customer_no:C2").to_pyarrow()
        pid = boris["profile_id"][0].as_py()
        c = ledger.change(ws.config.privacy, pid, "profiling", "denied", at=dt.datetime(2025, 6, 10), source="crm")
        ledger.append(ws.engine, [c.row()])
        build(ws, AS_OF)
    ctx, _ = open_context(root)
    keys = {role: create_key(root, role, f"test-{role}")[1] for role in ("admin", "agent", "marketer")}
    keys["mailer"] = create_key(root, "marketer", "mailer", ["marketing"])[1]
    with TestClient(create_app(ctx)) as client:
        yield root, client, keys


def _get(client, keys, who, **params):
    return client.get("/v1/profiles", params=params, headers={"Authorization": f"Bearer {keys[who]}"})


def _post(client, keys, who, **body):
    return client.post("/v1/consents", json=body, headers={"Authorization": f"Bearer {keys[who]}"})


def test_profiling_purpose_and_consent_gate_traits_and_scores(served):
    _, client, keys = served
    anna = _get(client, keys, "admin", email="anna@x.ru").json()
    assert anna["traits"]["calls_total"] == 1 and anna["scores"] is not None and anna["withheld"] is None
    assert anna["traits"]["consents"] == "analytics|profiling"  # marketing is opt-in: nothing granted
    boris = _get(client, keys, "admin", email="boris@x.ru").json()
    assert boris["traits"] is None and boris["scores"] is None and boris["segments"] == []
    assert boris["withheld"].startswith("the person does not consent to profiling (profiling: denied at 2025-06-10")
    assert boris["attributes"]["city"]["value"] == "Kazan"  # who they are is still answered
    mailer = _get(client, keys, "mailer", email="anna@x.ru").json()
    assert mailer["traits"] is None and mailer["breakdowns"] == {}
    assert mailer["withheld"] == "this API key is not for profiling (its purposes: marketing)"


def test_call_routing_uses_no_profiling_output_of_a_person_who_refused_it(served):
    _, client, keys = served
    headers = {"Authorization": f"Bearer {keys['agent']}"}
    boris = client.post("/v1/calls/route", json={"phone": "+79160000002"}, headers=headers).json()
    assert boris["caller"]["value_tier"] is None and boris["caller"]["churn_risk"] is None
    assert boris["reasons"] == [] and "no forecast: the person does not consent to profiling" in " ".join(
        boris["notes"]
    )
    anna = client.post("/v1/calls/route", json={"phone": "+79160000001"}, headers=headers).json()
    assert anna["caller"]["value_tier"] is not None and not any("no forecast:" in n for n in anna["notes"])


def test_posted_consent_is_obeyed_at_once_recorded_once_and_audited(served):
    root, client, keys = served
    at = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    body = {"subject": "anna@x.ru", "purpose": "profiling", "status": "withdrawn", "at": at}
    r = _post(client, keys, "agent", **body)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["recorded"] and answer["decision"]["allowed"] is False
    assert answer["decision"]["source"] == "api" and answer["decision"]["status"] == "withdrawn"
    assert _post(client, keys, "agent", **body).json()["recorded"] is False  # a retried request
    anna = _get(client, keys, "admin", email="anna@x.ru").json()
    assert anna["traits"] is None and "does not consent to profiling" in anna["withheld"]
    audit = client.get("/v1/audit", headers={"Authorization": f"Bearer {keys['admin']}"}).json()["entries"]
    entries = [e for e in audit if e["action"] == "consent"]  # the route drains the journal first
    assert entries and "consents.profiling" in entries[0]["fields"]
    # the next ingest copies the change into the warehouse, where every batch check sees it
    with Workspace(root) as ws:
        from cx360.sources.ingest import ingest

        assert {r.source: r.loaded for r in ingest(ws)}["api consents"] == 1
        rows = ws.engine.table("consents").to_pyarrow().to_pylist()
        assert {(r["source"], r["status"]) for r in rows} == {("crm", "denied"), ("api", "withdrawn")}


@pytest.mark.parametrize(
    ("who", "body", "status", "message"),
    [
        ("marketer", {"subject": "anna@x.ru", "purpose": "profiling", "status": "granted"}, 403, "may not record"),
        ("agent", {"subject": "anna@x.ru", "purpose": "lottery", "status": "granted"}, 422, "unknown purpose"),
        ("agent", {"subject": "anna@x.ru", "purpose": "marketing", "status": "granted"}, 422, "per channel"),
        ("agent", {"subject": "nobody@x.ru", "purpose": "profiling", "status": "granted"}, 404, "no profile"),
        ("agent", {"subject": "anna@x.ru", "purpose": "profiling", "status": "maybe"}, 422, "status"),
        (
            "agent",
            {"subject": "anna@x.ru", "purpose": "profiling", "status": "granted", "at": "2999-01-01T00:00:00Z"},
            422,
            "in the future",
        ),
    ],
)
def test_bad_consent_changes_are_refused_with_the_reason(served, who, body, status, message):
    _, client, keys = served
    r = _post(client, keys, who, **body)
    assert r.status_code == status and message in r.text


def test_keys_carry_declared_purposes_only(served):
    root, _, _ = served
    runner = CliRunner()
    r = runner.invoke(app, ["keys", "create", "--role", "marketer", "--purpose", "lottery", "-w", str(root)])
    assert r.exit_code == 1 and "unknown purpose 'lottery'" in str(r.exception)
    r = runner.invoke(
        app,
        ["keys", "create", "--role", "marketer", "--purpose", "marketing", "--purpose", "profiling", "-w", str(root)],
    )
    assert r.exit_code == 0, r.output
    purposes = {k["name"]: k["purposes"] for k in list_keys(root)}
    assert purposes["mailer"] == "marketing" and purposes["test-admin"] == "profiling"
    assert "marketing,profiling" in purposes.values()


def test_the_collector_takes_segment_consent_into_the_ledger(tmp_path):
    from cx360.pipeline import run_stage
    from cx360.stream.drain import drain
    from cx360.workspace import init_workspace

    init_workspace(tmp_path)
    with Workspace(tmp_path) as ws:
        run_stage(ws, "ingest")  # an empty warehouse, for the serving index
    _, key = create_key(tmp_path, "writer", "web-site", source="web")
    ctx, _ = open_context(tmp_path)
    ctx.collector(background=False)
    consent = {"consent": {"categoryPreferences": {"marketing": True, "analytics": False}}}
    message = {"type": "track", "messageId": "k1", "userId": "u1", "event": "Segment Consent Preference Updated",
               "context": consent, "timestamp": "2026-03-01T10:00:00.000Z"}  # fmt: skip
    with TestClient(create_app(ctx)) as client:
        auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
        assert client.post("/v1/track", json=message, headers=auth).json()["accepted"] == 1
        client.app.state.ctx.running_collector.seal(0)
        with Workspace(tmp_path) as ws:
            [report] = drain(ws)
            assert (report.read, report.loaded, report.quarantined) == (3, 3, 0)
            rows = ws.engine.table("consents").order_by("consent_id").to_pyarrow().to_pylist()
            events = ws.engine.table("events").to_pyarrow().to_pylist()
    assert [(r["consent_id"], r["purpose"], r["status"], r["customer_no"]) for r in rows] == [
        ("k1:analytics", "analytics", "denied", "U1"),
        ("k1:marketing", "marketing", "granted", "U1"),
    ]
    assert [(e["event_id"], e["name"]) for e in events] == [("k1", "consent_changed")]

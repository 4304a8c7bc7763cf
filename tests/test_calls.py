"""The contact centre on a small synthetic bank: planted causes of calls in its ground truth, the
call-reason forecast against its baselines, routing through `POST /v1/calls/route` (a known caller,
an unknown one, a family's shared phone, a reason the routing table does not know), and outcomes."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cx360.api.access import create_key
from cx360.api.app import create_app, open_context
from cx360.api.audit import read_audit
from cx360.calls import features, outcomes, routing, summary
from cx360.cli import app as cli
from cx360.config import CallRoute, CallSettings
from cx360.demo import generate_world
from cx360.demo.causes import CAUSES
from cx360.demo.junk import SHARED_CALLER
from cx360.pipeline import run_stage
from cx360.workspace import Workspace

SINCE = "2025-10-01"
# what the calls and their causes come from (social posts, surveys and mall visits are not read)
SOURCES = ["crm_core", "crm_cards", "marketing", "web", "app", "cards", "contact_centre", "complaints"]


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    root = tmp_path_factory.mktemp("calls-bank")
    generate_world(root, customers=250, seed=5)
    toml = root / "cx360.toml"  # deterministic identity only: the forecast does not need Splink's recall
    toml.write_text(toml.read_text(encoding="utf-8").replace("[identity]\n", "[identity]\nprobabilistic = false\n", 1))
    with Workspace(root) as ws:
        assert run_stage(ws, "ingest", only=SOURCES).status == "ok"
        for stage in ("identity", "texts", "profiles"):
            assert run_stage(ws, stage).status == "ok", stage
    return root


def _cli(*args, catch: bool = False):
    return CliRunner().invoke(cli, list(args), catch_exceptions=catch)


def test_planted_calls_follow_their_causes_in_the_ground_truth(bank):
    truth = pd.read_parquet(bank / "truth" / "calls.parquet")
    calls = pd.read_csv(bank / "data" / "contact_centre.csv", dtype=str, on_bad_lines="skip")
    extra = {"CALL-SHARED-1", "CALL-SHARED-2", "CALL99999999"}  # a shared phone's two calls, a broken line
    assert set(truth.call_id) == set(calls.call_id) - extra
    planted = truth[truth.cause.isin(CAUSES)].merge(calls[["call_id", "started_at"]], on="call_id")
    assert len(planted) > 0.3 * len(truth)
    assert (planted.reason_code == planted.cause.map({k: r for k, (r, _) in CAUSES.items()})).all()
    delay = pd.to_datetime(planted.started_at) - planted.cause_ts
    assert (delay > pd.Timedelta(0)).all() and (delay < pd.Timedelta(days=15)).all()
    repeats = truth[truth.cause == "repeat"].merge(truth, left_on="cause_event_id", right_on="call_id")
    assert (repeats.reason_code_x == repeats.reason_code_y).all() and (repeats.outcome_y == "unresolved").all()


def test_features_read_only_events_strictly_before_the_call():
    at = dt.datetime(2025, 5, 1, 12)
    events = pd.DataFrame(
        {
            "key": "c",
            "at": pd.Timestamp(at),
            "ts": pd.to_datetime(["2025-05-01 12:00", "2025-05-01 11:00", "2025-03-01 00:00", "2025-04-30 00:00"]),
            "name": ["card_declined", "fee_charged", "card_declined", "complaint"],
            "properties": [None, None, None, json.dumps({"closed_at": "2025-05-02 00:00:00"})],
        }
    )
    fam = features.families(events)
    assert sorted(fam.family) == ["complaint_open", "fee_charged"]  # at the call's second, or 61 days before: not read
    x = features.matrix(fam, ["c"], ["card_declined", "fee_charged"])
    assert x.shape == (1, 2 * (len(features.WINDOWS_H) + 1)) and x[0, 0] == 0 and x[0, 1] > 0


def test_evaluate_beats_both_baselines_and_reports_unrouted_reasons(bank):
    result = _cli("calls", "evaluate", "-w", str(bank), "--since", SINCE, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    model, base = report["model"], report["baselines"]
    assert report["test_calls"] > 100 and report["train_calls"] > report["test_calls"]
    assert report["calls_without_reason"] == 0
    assert model["top1"] >= 2 * base["most_frequent"]["top1"]
    assert model["top1"] > base["last_reason"]["top1"] and model["top3"] >= model["top1"]
    assert report["reasons_without_route"] == []  # the demo's routing table names every reason
    toml = bank / "cx360.toml"
    original = toml.read_text(encoding="utf-8")
    try:
        toml.write_text(original.replace('reason = "transfer_issue"', 'reason = "transfers"'), encoding="utf-8")
        report = json.loads(_cli("calls", "evaluate", "-w", str(bank), "--since", SINCE, "--format", "json").stdout)
        assert report["reasons_without_route"] == ["transfer_issue"]
    finally:
        toml.write_text(original, encoding="utf-8")
    bad = _cli("calls", "evaluate", "-w", str(bank), "--since", "2030-01-01", catch=True)
    assert bad.exit_code != 0 and "no calls with a reason code since 2030-01-01" in str(bad.exception)


def test_routing_table_first_match_and_unknown_reason():
    settings = CallSettings(
        default_queue="general",
        routes=[
            CallRoute(reason=["close_account"], queue="retention"),
            CallRoute(value_tier=["platinum"], min_churn_risk=0.5, queue="vip"),
            CallRoute(language=["en"], queue="english"),
            CallRoute(reason=["fees"], queue="billing", skills=["refunds"]),
        ],
    )
    assert routing.choose(settings, routing.Caller("fees")).queue == "billing"
    assert routing.choose(settings, routing.Caller("fees", "platinum", 0.7)).queue == "vip"
    assert routing.choose(settings, routing.Caller("fees", "platinum", None)).skills == ["refunds"]
    assert routing.choose(settings, routing.Caller("fees", language="en")).queue == "english"
    odd = routing.choose(settings, routing.Caller("lost_pet"))
    assert (odd.queue, odd.route, odd.unrouted_reason) == ("general", None, "lost_pet")
    assert routing.unrouted(settings, {"fees", "lost_pet"}) == ["lost_pet"]


@pytest.fixture(scope="module")
def served(bank):
    assert _cli("calls", "train", "-w", str(bank)).exit_code == 0
    keys = {role: create_key(bank, role, f"calls-{role}")[1] for role in ("agent", "analyst")}
    keys["service"] = create_key(bank, "agent", "calls-service", purposes=["analytics"])[1]
    ctx, _ = open_context(bank)
    with TestClient(create_app(ctx)) as client:
        yield client, keys


def _route(client, keys, body, role="agent"):
    return client.post("/v1/calls/route", json=body, headers={"Authorization": f"Bearer {keys[role]}"})


def test_route_a_known_caller(bank, served):
    client, keys = served
    with duckdb.connect(str(bank / "warehouse.duckdb"), read_only=True) as con:
        phone, at, pid = con.execute(
            "SELECT e.phone, e.ts, p.profile_id FROM events e JOIN profile_events p USING (event_id) "
            "WHERE e.name = 'call' AND e.phone IS NOT NULL AND e.event_id LIKE 'CALL-P%' AND e.ts > ? "
            "ORDER BY e.ts LIMIT 1",
            [SINCE],
        ).fetchone()
    r = _route(client, keys, {"phone": phone.removeprefix("+7"), "at": at.isoformat() + "Z"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["profile_id"] == pid and body["candidates"] == []
    reasons = body["reasons"]
    assert len(reasons) == 3 and reasons[0]["probability"] >= reasons[1]["probability"] >= reasons[2]["probability"]
    assert sum(x["probability"] for x in reasons) <= 1 + 1e-6
    assert reasons[0]["evidence"], "the likeliest reason says what speaks for it"
    assert all(e[:4].isalpha() for x in reasons for e in x["evidence"])
    assert body["queue"] and body["unrouted_reason"] is None
    issues = body["prior_issues"]
    assert set(issues) >= {"last_calls", "last_complaints", "open_issues", "repeat_contact"}
    assert all(c["ts"] < at.isoformat() + "Z" for c in issues["last_calls"])  # strictly before the call
    assert _route(client, keys, {"phone": phone}, role="analyst").status_code == 403
    plain = _route(client, keys, {"phone": phone, "at": at.isoformat() + "Z"}, role="service").json()
    assert plain["reasons"] == [] and "not for profiling" in plain["notes"][0], "forecasting is profiling"
    assert plain["prior_issues"] == issues and plain["caller"]["value_tier"] is None
    client.app.state.ctx.audit.flush()
    entries = read_audit(bank)
    assert any(
        e["action"] == "call_route" and e["profile_id"] == pid and "calls.reasons" in e["fields"] for e in entries
    )


def test_route_unknown_caller_and_shared_phone(bank, served):
    client, keys = served
    unknown = _route(client, keys, {"phone": "+7 999 000 11 22"}).json()
    assert unknown["profile_id"] is None and unknown["reasons"] == [] and unknown["queue"] == "general"
    shared = _route(client, keys, {"phone": SHARED_CALLER}).json()
    assert shared["profile_id"] is None and len(shared["candidates"]) == 2 and shared["reasons"] == []
    assert shared["queue"] == "general" and "nothing was merged" in shared["notes"][0]
    with duckdb.connect(str(bank / "warehouse.duckdb"), read_only=True) as con:
        assert (
            con.execute("SELECT count(*) FROM identity_map WHERE node LIKE ?", [f"%{SHARED_CALLER}"]).fetchone()[0] == 0
        )
    assert _route(client, keys, {"phone": " "}).status_code == 422


def test_outcomes_show_specialists_lead_to_fewer_repeats(bank):
    result = _cli("calls", "outcomes", "-w", str(bank), "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert 0 < report["first_contact_resolution"] < 1 and set(report["by_reason"]) >= {"card_blocked", "fees"}
    fcr = {(r["reason"], r["queue"]): r["first_contact_resolution"] for r in report["by_reason_and_queue"]}
    assert fcr[("card_blocked", "cards")] > fcr[("card_blocked", "general")]
    assert report["fewest_repeats"]["card_blocked"] == "cards"


def test_repeat_flags_and_prior_issue_summary():
    t = pd.Timestamp("2025-05-01")
    calls = pd.DataFrame(
        {
            "key": ["a", "b", "c", "d"],
            "profile_id": ["P1", "P1", "P1", "P2"],
            "at": [t, t + pd.Timedelta(days=3), t + pd.Timedelta(days=20), t + pd.Timedelta(days=40)],
            "reason": ["fees", "fees", "fees", "fees"],
            "queue": ["general", "billing", "billing", "billing"],
        }
    )
    flagged = outcomes.flag_repeats(calls).set_index("key")
    assert list(flagged.repeated) == [True, False, False, False] and list(flagged.is_repeat) == [
        False,
        True,
        False,
        False,
    ]
    events = [
        {
            "event_id": "a",
            "ts": dt.datetime(2025, 5, 1),
            "name": "call",
            "properties": {"reason": "fees", "outcome": "unresolved"},
        },
        {
            "event_id": "k",
            "ts": dt.datetime(2025, 4, 1),
            "name": "complaint",
            "properties": {"topic": "card", "closed_at": None},
        },
        {"event_id": "z", "ts": dt.datetime(2025, 5, 9), "name": "call", "properties": {"reason": "app_problem"}},
    ]
    s = summary.prior_issues(events, dt.datetime(2025, 5, 3))
    assert [c["id"] for c in s["last_calls"]] == ["a"] and s["repeat_contact"]
    assert {(i["kind"], i["id"]) for i in s["open_issues"]} == {("complaint", "k"), ("call", "a")}

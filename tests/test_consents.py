"""The consents ledger and the one policy check: loading with quarantine, out-of-order changes, defaults per
purpose, withdrawals, the CLI, and segments that declare a purpose."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import WorkspaceFactory
from typer.testing import CliRunner

from cx360.api.audit import read_audit
from cx360.cli import app
from cx360.errors import ConfigError
from cx360.identity.resolve import resolve
from cx360.privacy import ledger
from cx360.privacy.consent import Policy, resolved
from cx360.profiles.build import build
from cx360.segments.evaluate import evaluate, listing
from cx360.sources.ingest import ingest

CRM = """
    id,email,phone
    C1,anna@x.ru,+79161110001
    C2,boris@x.ru,+79161110002
    C3,vera@x.ru,+79161110003
    C4,gleb@x.ru,+79161110004
"""
# Listed out of order: the file's order is arrival, never the order that counts.
CONSENTS = """
    customer,email,purpose,channel,status,at,basis
    C1,,marketing,email,withdrawn,2025-05-01T09:00:00,
    C1,,marketing,email,granted,2025-03-01T09:00:00,consent
    C1,,marketing,sms,granted,2025-03-01T09:00:00,consent
    ,boris@x.ru,Marketing,,granted,2025-02-01T00:00:00,consent
    C2,,marketing,sms,denied,2025-04-01T00:00:00,
    C3,,profiling,,denied,2025-01-15T00:00:00,
    C4,,marketing,email,granted,2025-06-01T00:00:00,consent
    C4,,marketing,email,withdrawn,2025-06-01T00:00:00,
    C1,,marketing,fax,granted,2025-03-01T00:00:00,
    C1,,lottery,,granted,2025-03-01T00:00:00,
    C1,,marketing,email,maybe,2025-03-01T00:00:00,
    C1,,profiling,email,granted,2025-03-01T00:00:00,
    ,,marketing,email,granted,2025-03-01T00:00:00,
    C2,,marketing,email,granted,someday,
"""
SOURCES = """
    [identity]
    probabilistic = false

    [segmentation]
    clusters = 0
    rfm = false

    [privacy.purposes.analytics]
    default = "opt-in"

    [[sources]]
    name = "crm"
    kind = "csv"
    path = "data/crm.csv"
    [sources.records]
    record_id = "id"
    identifiers = { customer_no = "id", email = "email", phone = "phone" }

    [[sources]]
    name = "preferences"
    kind = "csv"
    path = "data/consents.csv"
    [sources.consents]
    timestamp = { column = "at", type = "timestamp" }
    purpose = "purpose"
    channel = "channel"
    status = "status"
    legal_basis = "basis"
    identifiers = { customer_no = "customer", email = "email" }
"""
JUNE = dt.datetime(2025, 6, 15)


def _workspace(factory, extra: str = ""):
    factory.write("data/crm.csv", CRM)
    factory.write("data/consents.csv", CONSENTS)
    ws = factory.config(SOURCES + extra)
    reports = {r.source: r for r in ingest(ws)}
    resolve(ws)
    return ws, reports["preferences"]


def _customers(ws) -> dict[str, str]:
    """customer number -> profile id."""
    m = ws.engine.table("identity_map")
    rows = ws.engine.to_arrow(m.filter(m.kind == "customer_no"), step="test").to_pylist()
    return {r["node"].split(":", 1)[1]: r["profile_id"] for r in rows}


def _allowed(ws, purpose, channel, at) -> set[str]:
    who = {p: c for c, p in _customers(ws).items()}
    ids = Policy(ws.config.privacy).allowed(ws.engine, purpose, channel, at)
    return {who[p] for p in ws.engine.to_arrow(ids, step="test")["profile_id"].to_pylist()}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The ledger of CONSENTS loaded and resolved once, for the tests that only read it."""
    ws, report = _workspace(WorkspaceFactory(tmp_path_factory.mktemp("consents") / "ws", "duckdb"))
    yield ws, report
    ws.close()


def test_consent_rows_load_with_quarantine_and_accounting(loaded):
    ws, report = loaded
    assert (report.read, report.loaded, report.quarantined, report.duplicates) == (14, 8, 6, 0)
    q = ws.engine.table("quarantine")
    reasons = sorted(ws.engine.to_arrow(q.filter(q.source == "preferences"), step="test")["reasons"].to_pylist())
    assert any("channel: 'fax' is not a channel of purpose 'marketing'" in r for r in reasons)
    assert any("purpose: unknown purpose 'lottery'" in r for r in reasons)
    assert any("status: 'maybe' is not one of granted, denied, withdrawn" in r for r in reasons)
    assert any("channel: 'email' is not a channel of purpose 'profiling'" in r for r in reasons)
    assert any(r.startswith("no identifier: every consent needs one of customer_no, email") for r in reasons)
    assert any("timestamp (at): not a valid timestamp: 'someday'" in r for r in reasons)
    again = {r.source: r for r in ingest(ws)}["preferences"]
    assert (again.loaded, again.duplicates) == (0, 14)  # an unchanged file adds nothing


def test_latest_change_by_event_time_decides_not_arrival(loaded):
    _check_decisions(loaded[0])


@pytest.mark.parametrize("engine_kind", [pytest.param("spark", marks=pytest.mark.spark)], indirect=True)
def test_the_check_runs_on_spark(make_workspace):
    """Every (purpose, channel) at once, in one query: what the consent trait computes."""
    ws, _ = _workspace(make_workspace)
    who = {p: c for c, p in _customers(ws).items()}
    pairs = Policy(ws.config.privacy).granted_pairs(ws.engine, JUNE)
    assert {who[r["profile_id"]]: r["consents"] for r in ws.engine.to_arrow(pairs, step="test").to_pylist()} == {
        "C1": "marketing:sms|profiling",
        "C2": "marketing:call|marketing:email|marketing:post|marketing:push|profiling",
        "C3": "",
        "C4": "profiling",
    }


def _check_decisions(ws) -> None:
    # Anna granted e-mail in March and withdrew it in May, though the withdrawal arrived first.
    assert "C1" in _allowed(ws, "marketing", "email", dt.datetime(2025, 4, 1))
    assert "C1" not in _allowed(ws, "marketing", "email", JUNE)
    assert "C1" in _allowed(ws, "marketing", "sms", JUNE)
    # Boris's consent for all of marketing (no channel) holds on every channel, until his SMS refusal.
    assert "C2" in _allowed(ws, "marketing", "email", JUNE)
    assert "C2" in _allowed(ws, "marketing", "sms", dt.datetime(2025, 3, 1))
    assert "C2" not in _allowed(ws, "marketing", "sms", JUNE)
    # a grant and a withdrawal at the same instant: the withdrawal wins, whatever the order
    assert "C4" not in _allowed(ws, "marketing", "email", JUNE)
    # before anything was said, opt-in purposes exclude and opt-out ones include
    assert _allowed(ws, "marketing", "email", dt.datetime(2024, 1, 1)) == set()
    assert _allowed(ws, "profiling", None, JUNE) == {"C1", "C2", "C4"}
    assert _allowed(ws, "analytics", None, JUNE) == set()  # declared opt-in in this workspace


def test_point_form_agrees_and_says_why(loaded):
    ws, _ = loaded
    policy = Policy(ws.config.privacy)
    pid = _customers(ws)["C1"]
    rows = resolved(ws.engine)
    mine = ws.engine.to_arrow(rows.filter(rows.profile_id == pid), step="test").to_pylist()
    d = policy.decide(mine, "marketing", "email", JUNE)
    assert (d.allowed, d.status, d.since, d.source) == (False, "withdrawn", dt.datetime(2025, 5, 1, 9), "preferences")
    assert "withdrawn at 2025-05-01 09:00" in d.reason
    d = policy.decide(mine, "marketing", "push", JUNE)
    assert not d.allowed and d.reason == "no consent recorded for marketing by push; the purpose is opt-in"
    assert policy.decide(mine, "profiling", None, JUNE).allowed
    with pytest.raises(ConfigError, match="consented per channel: give one of email, sms"):
        policy.decide(mine, "marketing", None, JUNE)


def test_cli_records_changes_and_shows_the_decisions(duckdb_workspace):
    ws, _ = _workspace(duckdb_workspace)
    root = str(ws.root)
    ws.close()
    runner = CliRunner()
    grant = ["consents", "grant", "anna@x.ru", "--purpose", "marketing", "--channel", "email"]
    grant += ["--at", "2025-06-01T00:00:00", "--basis", "consent", "-w", root]
    r = runner.invoke(app, grant)
    assert r.exit_code == 0, r.output
    again = runner.invoke(app, grant)
    assert again.exit_code == 0 and "already recorded" in again.output
    r = runner.invoke(app, ["consents", "show", "C1", "--at", "2025-06-15", "-w", root, "--format", "json"])
    assert r.exit_code == 0, r.output
    shown = {(d["purpose"], d["channel"]): d for d in json.loads(r.output)}
    assert shown[("marketing", "email")]["allowed"] and shown[("marketing", "email")]["source"] == "cli"
    assert not shown[("marketing", "push")]["allowed"]
    bad = runner.invoke(app, ["consents", "withdraw", "C1", "--purpose", "marketing", "-w", root])
    assert bad.exit_code == 1 and "consented per channel" in str(bad.exception)
    unknown = runner.invoke(app, ["consents", "deny", "nobody@x.ru", "--purpose", "profiling", "-w", root])
    assert unknown.exit_code == 1 and "no profile holds" in str(unknown.exception)
    audited = [(e["action"], e["fields"]) for e in read_audit(ws.root)]
    assert ("consents", "query.identifier,consents") in audited
    assert ("consent", "query.identifier,consents.marketing") in audited


def test_api_intake_reaches_the_warehouse_once(duckdb_workspace):
    ws, _ = _workspace(duckdb_workspace)
    pid = _customers(ws)["C3"]
    c = ledger.change(ws.config.privacy, pid, "profiling", "granted", at=dt.datetime(2025, 6, 1), source="api")
    assert ledger.submit(ws.root, c) and not ledger.submit(ws.root, c)  # a retried request records one change
    assert [r["consent_id"] for r in ledger.intake(ws.root, [pid])] == [c.consent_id]
    assert "C3" not in _allowed(ws, "profiling", None, JUNE)  # not in the warehouse yet
    drained = {r.source: r for r in ingest(ws)}["api consents"]
    assert drained.loaded == 1
    assert "C3" in _allowed(ws, "profiling", None, JUNE)
    assert "api consents" not in {r.source for r in ingest(ws)}  # copied once


SEGMENTS = """
    [[segments]]
    name = "sms_audience"
    where = "n_sources >= 1"
    purpose = "marketing"
    channel = "sms"

    [[segments]]
    name = "everyone"
    where = "n_sources >= 1"
"""


def test_purpose_segments_keep_only_consenting_members_and_consent_is_a_trait(duckdb_workspace):
    ws, _ = _workspace(duckdb_workspace, SEGMENTS)
    build(ws, JUNE)
    who = {p: c for c, p in _customers(ws).items()}
    traits = ws.engine.to_arrow(ws.engine.table("profile_traits"), step="test").to_pylist()
    assert {who[t["profile_id"]]: t["consents"] for t in traits} == {
        "C1": "marketing:sms|profiling",
        "C2": "marketing:call|marketing:email|marketing:post|marketing:push|profiling",  # all of it but SMS
        "C3": "",
        "C4": "profiling",
    }
    results = {r.name: r for r in evaluate(ws, now=JUNE)}
    assert results["sms_audience"].status == "ok" and results["everyone"].size == 4
    m = ws.engine.table("segment_members")
    rows = ws.engine.to_arrow(m.filter(m.exited_at.isnull()), step="test").to_pylist()
    assert {who[r["profile_id"]] for r in rows if r["segment"] == "sms_audience"} == {"C1"}
    # Anna withdraws SMS: the next evaluation lets her go, though her traits did not change
    pid = _customers(ws)["C1"]
    c = ledger.change(ws.config.privacy, pid, "marketing", "withdrawn", channel="sms", at=JUNE, source="cli")
    ledger.append(ws.engine, [c.row()])
    later = JUNE + dt.timedelta(days=1)
    assert {r.name: r for r in evaluate(ws, now=later)}["sms_audience"].size == 0
    listed = {r["name"]: r for r in listing(ws)}
    assert listed["sms_audience"]["definition"] == "n_sources >= 1 and consent to marketing by sms"


@pytest.mark.parametrize(
    ("segment", "message"),
    [
        ('purpose = "marketing"', "consented per channel: give one of email, sms"),
        ('purpose = "profiling"\n    channel = "sms"', "purpose 'profiling' has no channels"),
        ('channel = "sms"', "a channel needs the purpose it is for"),
        ('purpose = "lottery"', "unknown purpose 'lottery'"),
    ],
)
def test_segment_purposes_are_checked_against_the_workspace(duckdb_workspace, segment, message):
    duckdb_workspace.write("data/crm.csv", CRM)
    duckdb_workspace.write("data/consents.csv", CONSENTS)
    ws = duckdb_workspace.config(SOURCES + f'\n[[segments]]\nname = "s"\nwhere = "n_sources >= 1"\n{segment}\n')
    with pytest.raises(ConfigError, match=message):
        ws.config  # noqa: B018


SEGMENT_EXPORT = [
    {"type": "identify", "messageId": "s1", "userId": "C1", "traits": {"email": "anna@x.ru"},
     "timestamp": "2025-03-01T10:00:00Z"},
    # Segment's consent management: the preference update, and the consent every later call carries
    {"type": "track", "messageId": "s2", "userId": "C1", "event": "Segment Consent Preference Updated",
     "context": {"consent": {"categoryPreferences": {"Advertising": True, "Analytics": False}}},
     "timestamp": "2025-03-02T10:00:00Z"},
    {"type": "page", "messageId": "s3", "userId": "C1", "name": "Cards",
     "context": {"consent": {"categoryPreferences": {"Advertising": False, "Functional": True}}},
     "timestamp": "2025-04-01T10:00:00Z"},
]  # fmt: skip
SEGMENT_SOURCE = """
    [[sources]]
    name = "web"
    kind = "jsonl"
    path = "data/web.jsonl"
    format = "segment"
    [sources.consents]
    purpose = { column = "_cx360_consent_category", values = { Advertising = "marketing", Analytics = "analytics" } }
"""


def test_segment_consent_reaches_the_ledger(duckdb_workspace):
    duckdb_workspace.write("data/crm.csv", CRM)
    duckdb_workspace.write("data/consents.csv", "customer,email,purpose,channel,status,at,basis\n")
    duckdb_workspace.write("data/web.jsonl", "\n".join(json.dumps(m) for m in SEGMENT_EXPORT) + "\n")
    ws = duckdb_workspace.config(SOURCES.replace('name = "preferences"', 'name = "unused"') + SEGMENT_SOURCE)
    report = {r.source: r for r in ingest(ws)}["web"]
    # 3 calls, and 4 consent categories: every row loaded or quarantined (Functional is no purpose here)
    assert (report.read, report.loaded, report.quarantined, report.duplicates) == (7, 6, 1, 0)
    q = ws.engine.table("quarantine")
    [reason] = ws.engine.to_arrow(q.filter(q.source == "web"), step="test")["reasons"].to_pylist()
    assert "unknown purpose 'functional'" in reason
    rows = ws.engine.to_arrow(ws.engine.table("consents").order_by("consent_id"), step="test").to_pylist()
    assert [(r["consent_id"], r["purpose"], r["channel"], r["status"], r["customer_no"]) for r in rows] == [
        ("s2:Advertising", "marketing", None, "granted", "C1"),
        ("s2:Analytics", "analytics", None, "denied", "C1"),
        ("s3:Advertising", "marketing", None, "denied", "C1"),
    ]
    events = ws.engine.to_arrow(ws.engine.table("events"), step="test").to_pylist()
    assert {e["event_id"]: e["name"] for e in events} == {"s2": "consent_changed", "s3": "page_viewed"}
    resolve(ws)
    assert "C1" in _allowed(ws, "marketing", "sms", dt.datetime(2025, 3, 15))
    assert "C1" not in _allowed(ws, "marketing", "sms", dt.datetime(2025, 5, 1))
    assert {r.source: r for r in ingest(ws)}["web"].duplicates == 7  # an unchanged export adds nothing

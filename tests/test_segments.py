"""Segments on every engine: declared conditions over traits, scores and recent events, membership history
across evaluations, freshness, and failures that are recorded and loud."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import textwrap

import pytest
from conftest import WorkspaceFactory
from typer.testing import CliRunner

from cx360.cli import app
from cx360.errors import ConfigError
from cx360.identity.resolve import resolve
from cx360.profiles.build import build
from cx360.segments.evaluate import evaluate, listing
from cx360.sources.ingest import ingest
from cx360.workspace import Workspace

AS_OF = dt.datetime(2025, 7, 1)
LATER = dt.datetime(2025, 8, 1)

CRM = """
    id,email,card
    C1,anna@x.ru,TK1
    C2,boris@x.ru,TK2
    C3,vera@x.ru,TK3
    C4,gleb@x.ru,TK4
"""


def _event(i, ts, name, **kw):
    return json.dumps({"id": f"e{i}", "ts": ts, "name": name, **kw}, ensure_ascii=False)


def _pay(i, ts, card, amount):
    return _event(i, ts, "card_payment", channel="pos", card=card, amount=amount)


BEFORE = [
    _pay(1, "2025-06-01T10:00:00Z", "TK1", 500.0),
    _pay(2, "2025-06-10T10:00:00Z", "TK1", 500.0),
    _pay(3, "2025-06-20T10:00:00Z", "TK1", 500.0),
    _pay(4, "2025-06-05T10:00:00Z", "TK2", 10.0),
    _pay(5, "2025-01-10T10:00:00Z", "TK4", 100.0),
    _pay(6, "2025-01-20T10:00:00Z", "TK4", 100.0),
    _event(7, "2025-06-20T10:00:00Z", "offer_rejected", channel="sms", customer="C1", offer="auto_loan"),
    _event(8, "2025-06-21T10:00:00Z", "offer_rejected", channel="sms", customer="C2", offer="mortgage"),
    _event(9, "2025-06-25T10:00:00Z", "login", channel="mobile_app", customer="C3"),
]
AFTER = [  # July: Boris spends a lot; Anna's rejection grows old
    _pay(20, "2025-07-10T10:00:00Z", "TK2", 2000.0),
]

SOURCES = """
    [identity]
    probabilistic = false

    [segmentation]
    clusters = 0

    [[sources]]
    name = "crm"
    kind = "csv"
    path = "data/crm.csv"
    [sources.records]
    record_id = "id"
    identifiers = { customer_no = "id", email = "email", card_token = "card" }

    [[sources]]
    name = "activity"
    kind = "jsonl"
    path = "data/activity/*.jsonl"
    [sources.events]
    event_id = "id"
    timestamp = { column = "ts", type = "timestamp" }
    name = "name"
    channel = "channel"
    amount = { column = "amount", type = "float" }
    identifiers = { customer_no = "customer", card_token = "card" }
    properties = { offer = "offer" }
"""

SEGMENTS = """
    [[segments]]
    name = "big_spenders"
    description = "spent more than 1,000"
    where = "spend_total > 1000"

    [[segments]]
    name = "auto_loan_refusers"
    events = { name = "offer_rejected", where = "properties.offer = 'auto_loan'", within_days = 30 }

    [[segments]]
    name = "buyers_who_said_no"
    where = "spend_total > 0"
    events = [{ name = "offer_rejected", within_days = 180, min_count = 1 }]

    [[segments]]
    name = "buyers_never_in_the_app"
    where = "txn_count > 0"
    events = { name = "login", within_days = 90, min_count = 0, max_count = 0 }
"""


def _workspace(factory, segments: str = SEGMENTS, later: bool = False):
    factory.write("data/crm.csv", CRM)
    factory.write("data/activity/1.jsonl", "\n".join(BEFORE) + "\n")
    if later:
        factory.write("data/activity/2.jsonl", "\n".join(AFTER) + "\n")
    ws = factory.config(SOURCES + segments)
    ingest(ws)
    resolve(ws)
    return ws


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A DuckDB workspace with both months of activity, profiled as of AS_OF: built once, copied per test."""
    ws = _workspace(WorkspaceFactory(tmp_path_factory.mktemp("built") / "ws", "duckdb"), later=True)
    build(ws, AS_OF)
    ws.close()
    return ws.root


def _copy(built, tmp_path, segments: str = "") -> Workspace:
    root = shutil.copytree(built, tmp_path / "ws")
    if segments:
        (root / "cx360.toml").write_text((root / "cx360.toml").read_text() + textwrap.dedent(segments))
    return Workspace(root)


def _customers(ws) -> dict[str, str]:
    """profile_id -> customer number."""
    m = ws.engine.table("identity_map")
    rows = ws.engine.to_arrow(m.filter(m.kind == "customer_no"), step="test").to_pylist()
    return {r["profile_id"]: r["node"].split(":", 1)[1] for r in rows}


def _members(ws, name: str, *, current: bool = True) -> set[str]:
    who = _customers(ws)
    m = ws.engine.table("segment_members")
    m = m.filter(m.segment == name)
    if current:
        m = m.filter(m.exited_at.isnull())
    return {who[r["profile_id"]] for r in ws.engine.to_arrow(m, step="test").to_pylist()}


def test_declared_segments_on_traits_and_events(make_workspace):
    ws = _workspace(make_workspace)
    build(ws, AS_OF)
    results = {r.name: r for r in evaluate(ws)}
    assert all(r.status == "ok" for r in results.values())
    assert _members(ws, "big_spenders") == {"C1"}
    assert _members(ws, "auto_loan_refusers") == {"C1"}
    assert _members(ws, "buyers_who_said_no") == {"C1", "C2"}
    assert _members(ws, "buyers_never_in_the_app") == {"C1", "C2", "C4"}
    assert results["buyers_who_said_no"].size == 2 and results["buyers_who_said_no"].entered == 2
    # the built-in RFM cells cover everyone exactly once
    rfm = [r for r in results.values() if r.kind == "rfm"]
    assert sum(r.size for r in rfm) == 4 and _members(ws, "rfm_no_transactions") == {"C3"}


def test_membership_history_and_freshness(built, tmp_path):
    ws = _copy(built, tmp_path)
    evaluate(ws, now=dt.datetime(2025, 7, 1, 6))
    assert all(r["fresh"] for r in listing(ws))
    build(ws, LATER)  # profiles rebuilt: every segment is stale until evaluated again
    assert not any(r["fresh"] for r in listing(ws))
    results = {r.name: r for r in evaluate(ws, now=dt.datetime(2025, 8, 1, 6))}
    assert (results["big_spenders"].entered, results["big_spenders"].exited) == (1, 0)
    assert (results["auto_loan_refusers"].entered, results["auto_loan_refusers"].exited) == (0, 1)
    assert _members(ws, "big_spenders") == {"C1", "C2"}
    assert _members(ws, "auto_loan_refusers") == set()
    m = ws.engine.table("segment_members")
    rows = ws.engine.to_arrow(m.filter(m.segment == "auto_loan_refusers"), step="test").to_pylist()
    assert [(r["entered_at"], r["exited_at"]) for r in rows] == [(AS_OF, LATER)]
    assert all(r["fresh"] for r in listing(ws))


def test_failed_segment_is_recorded_and_loud(built, tmp_path):
    bad = """
    [[segments]]
    name = "typo"
    where = "spend_totl > 5"

    [[segments]]
    name = "needs_churn"
    where = "churn_risk > 0.7"
    """
    ws = _copy(built, tmp_path, bad)
    results = {r.name: r for r in evaluate(ws)}
    assert results["big_spenders"].status == "ok"
    typo = results["typo"]
    assert typo.status == "failed" and "unknown field(s) 'spend_totl'" in typo.error
    assert "known fields:" in typo.error and "spend_total" in typo.error and "archetype" in typo.error
    assert "churn_scores, which is empty" in results["needs_churn"].error
    assert "run `cx360 run --select churn -w " in results["needs_churn"].error
    listed = {r["name"]: r for r in listing(ws)}
    assert listed["typo"]["status"] == "failed" and not listed["typo"]["fresh"] and listed["typo"]["size"] is None
    ws.close()
    runner = CliRunner()
    for command in ("evaluate", "list"):
        result = runner.invoke(app, ["segments", command, "-w", str(ws.root)])
        assert result.exit_code == 1, result.output
        assert "spend_totl" in result.output


def test_segment_declared_but_never_evaluated_is_not_ok(built, tmp_path):
    ws = _copy(built, tmp_path)
    evaluate(ws)
    ws.close()
    (ws.root / "cx360.toml").write_text(
        (ws.root / "cx360.toml").read_text() + '\n[[segments]]\nname = "late"\nwhere = "txn_count > 0"\n'
    )
    with Workspace(ws.root) as again:
        late = {r["name"]: r for r in listing(again)}["late"]
    assert late["status"] == "never evaluated" and not late["fresh"]


def test_bad_segment_declarations_name_the_key(tmp_path):
    from cx360.config import load_config

    cases = {
        'name = "x"\nwhere = "spend_total >"': "segments[0] (x).where: condition 'spend_total >': expected a field",
        'name = "x"\nwhere = "a = 1; drop table t"': "unexpected character ';'",
        'name = "x"\nevents = { name = "no_such_event" }': "unknown event name(s) ['no_such_event']",
        'name = "x"\nwhere = "a > 1"\nwher = "b"': "segments[0] (x).wher: unknown key",
        'name = "x"': "give 'where'",
        'name = "rfm_mine"\nwhere = "a > 1"': "kept for the built-in",
        'name = "x"\nevents = { name = "login", min_count = 3, max_count = 1 }': "max_count (1) is below min_count (3)",
    }
    for body, message in cases.items():
        path = tmp_path / "cx360.toml"
        path.write_text(f"[[segments]]\n{body}\n", encoding="utf-8")
        with pytest.raises(ConfigError) as err:
            load_config(path)
        assert message in str(err.value), (body, str(err.value))

"""Digital habits over time: the archetype history each archetypes run keeps, its change rates per
period and per person, and `cx360 habits show`."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from cx360 import schema
from cx360.cli import app
from cx360.engine import DuckDB
from cx360.errors import NotFoundError, StageNotRunError
from cx360.identity.resolve import resolve
from cx360.pipeline import run_stage
from cx360.profiles.build import build
from cx360.scoring import habits
from cx360.sources.ingest import ingest
from cx360.workspace import Workspace

T0, T1, T2, T3 = (dt.datetime(2025, m, 1) for m in (1, 3, 6, 9))


def _place(engine, as_of, archetypes: dict[str, str]):
    rows = {
        "profile_id": list(archetypes),
        "as_of": [as_of] * len(archetypes),
        "digital_sophistication": [0.5] * len(archetypes),
        "data_sharing": [0.5] * len(archetypes),
        "archetype": list(archetypes.values()),
        "archetype_from": ["rules"] * len(archetypes),
    }
    engine.replace("profile_archetypes", pa.table(rows, schema=schema.ibis_schema("profile_archetypes").to_pyarrow()))
    return habits.record(engine, as_of)


@pytest.fixture(scope="module")
def engine():
    e = DuckDB.in_memory()
    assert _place(e, T1, {"A": "analog", "B": "nomad", "C": "paranoid"}) is None
    _place(e, T2, {"A": "wannabe", "B": "nomad", "C": "paranoid", "D": "analog"})
    # the same as_of again (a retrained model): it replaces what the run at T2 found
    _place(e, T2, {"A": "wannabe", "B": "chameleon", "C": "paranoid", "D": "analog"})
    _place(e, T3, {"A": "analog", "B": "chameleon", "D": "analog"})  # C is gone (erased, merged)
    return e


def _history(engine):
    rows = engine.to_arrow(engine.table("archetype_history"), step="test").to_pylist()
    return sorted((r["profile_id"], r["archetype"], r["entered_at"], r["exited_at"]) for r in rows)


def test_the_history_keeps_every_stay(engine):
    assert _history(engine) == [
        ("A", "analog", T1, T2),
        ("A", "analog", T3, None),
        ("A", "wannabe", T2, T3),
        ("B", "chameleon", T2, None),
        ("B", "nomad", T1, T2),
        ("C", "paranoid", T1, T3),
        ("D", "analog", T2, None),
    ]


def test_an_older_run_leaves_the_history_alone():
    e = DuckDB.in_memory()
    _place(e, T2, {"A": "analog"})
    warning = _place(e, T0, {"A": "nomad"})
    assert "not updated" in warning and "older than its latest change" in warning
    assert _history(e) == [("A", "analog", T2, None)]


def test_change_rates_per_period_and_per_person(engine):
    r = habits.report(engine)
    # T1 -> T2: A and B changed among the three placed at T1 (D arrived at T2: no change);
    # T2 -> T3: A changed among the four placed at T2 (C left without a new archetype: no change)
    assert [(p["since"], p["until"], p["people"], p["changed"], p["rate"]) for p in r.periods] == [
        (T1, T2, 3, 2, 0.6667),
        (T2, T3, 4, 1, 0.25),
    ]
    assert (r.people, r.changers, r.changes_per_person) == (4, 2, {"0": 2, "1": 1, "2": 1, "3+": 0})
    assert {(t["from_archetype"], t["to_archetype"]): t["changes"] for t in r.transitions} == {
        ("analog", "wannabe"): 1,
        ("wannabe", "analog"): 1,
        ("nomad", "chameleon"): 1,
    }
    # 3 changes over A, B, C from T1 and D from T2, each to T3
    years = (3 * (T3 - T1).days + (T3 - T2).days) / 365.25
    assert r.yearly_change_rate == pytest.approx(3 / years, abs=1e-4)


def test_one_person(engine):
    p = habits.person(engine, "A")
    assert p.changes == 2 and [s["archetype"] for s in p.archetypes] == ["analog", "wannabe", "analog"]


CRM = "id,email\nC1,anna@x.ru\nC2,boris@x.ru\n"
EVENTS = "\n".join(
    json.dumps({"id": f"e{i}", "ts": ts, "name": "login", "channel": "mobile_app", "customer": c, "device": d})
    for i, (ts, c, d) in enumerate([("2025-02-01T10:00:00Z", "C1", "d1"), ("2025-05-01T10:00:00Z", "C2", "d2")])
)
CONFIG = """
[workspace]
name = "t"
default_region = "RU"

[identity]
probabilistic = false

[[sources]]
name = "crm"
kind = "csv"
path = "data/crm.csv"
[sources.records]
record_id = "id"
identifiers = { customer_no = "id", email = "email" }

[[sources]]
name = "app"
kind = "jsonl"
path = "data/app.jsonl"
[sources.events]
event_id = "id"
timestamp = { column = "ts", type = "timestamp" }
name = "name"
channel = "channel"
identifiers = { customer_no = "customer", device_id = "device" }
"""

runner = CliRunner()


def test_the_archetypes_stage_keeps_history_and_the_cli_shows_it(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "crm.csv").write_text(CRM)
    (tmp_path / "data" / "app.jsonl").write_text(EVENTS + "\n")
    (tmp_path / "cx360.toml").write_text(CONFIG)
    with Workspace(tmp_path) as ws:
        ingest(ws)
        resolve(ws)
        with pytest.raises(StageNotRunError, match="no archetype history yet"):
            habits.habits_report(ws)
        build(ws, T1, score_texts=False)
        result = run_stage(ws, "archetypes")  # one run: the stage's part; several runs are tested above
        assert result.status == "ok" and result.rows_written["archetype_history"] == 2
        pid = ws.engine.to_arrow(ws.engine.table("profiles").select("profile_id"), step="t").column(0)[0].as_py()
    res = runner.invoke(app, ["habits", "show", "-w", str(tmp_path), "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert (doc["people"], doc["periods"], doc["changers"]) == (2, [], 0)
    res = runner.invoke(app, ["habits", "show", "-w", str(tmp_path), "--profile", pid, "--format", "json"])
    assert res.exit_code == 0, res.output
    one = json.loads(res.stdout)
    assert one["profile_id"] == pid and one["archetypes"][0]["entered_at"] == "2025-03-01 00:00:00"
    res = runner.invoke(app, ["habits", "show", "-w", str(tmp_path), "--profile", "Pnobody"])
    assert isinstance(res.exception, NotFoundError)

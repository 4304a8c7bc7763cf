"""Retention per table and event kind: declared in cx360.toml, applied by `cx360 run` right after ingest
and by `cx360 privacy retain`, reported per rule, idempotent, with clear errors for a bad rule."""

from __future__ import annotations

import datetime as dt
import json
import os

from typer.testing import CliRunner

from cx360.cli import app
from cx360.privacy.retention import cutoff

SOURCE = """
[identity]
probabilistic = false

[[sources]]
name = "crm"
kind = "csv"
path = "data/crm.csv"
[sources.records]
record_id = "id"
identifiers = { customer_no = "id" }

[[sources]]
name = "activity"
kind = "csv"
path = "data/activity.csv"
[sources.events]
event_id = "id"
timestamp = { column = "at", type = "timestamp" }
name = { column = "kind" }
channel = { column = "channel" }
identifiers = { customer_no = "client" }
properties = { text = "text" }
"""
RULES = """
[retention]
events.web = "13 months"
events.call = "3 years"
events.default = "5 years"
quarantine = "90 days"
"""
# (id, days ago, name, channel): which rule governs each, and whether it outlives it
ROWS = [
    ("w_old", 420, "page_viewed", "web"),  # web, past 13 months: removed
    ("w_new", 30, "page_viewed", "web"),
    ("c_kept", 800, "call", "call_centre"),  # the name's rule (3 years) wins over the default
    ("c_old", 1200, "call", "call_centre"),  # removed
    ("c_web", 500, "call", "web"),  # a call on the web channel: its name's rule, so kept
    ("s_kept", 1500, "store_visit", "branch"),  # the default, 5 years
    ("s_old", 2000, "store_visit", "branch"),  # removed
]


def _workspace(tmp_path, rules: str = RULES):
    root = tmp_path / "ws"
    (root / "data").mkdir(parents=True)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    lines = ["id,at,kind,channel,client,text"]
    for i, (event, days, name, channel) in enumerate(ROWS):
        at = (now - dt.timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{event},{at},{name},{channel},C{i % 3},hello")
    lines.append("bad,not a time,call,web,C1,")  # quarantined
    (root / "data" / "activity.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "data" / "crm.csv").write_text("id\nC0\nC1\nC2\n", encoding="utf-8")
    (root / "cx360.toml").write_text(f'[engine]\nkind = "duckdb"\n{rules}\n{SOURCE}', encoding="utf-8")
    return root


def _json(*args: str) -> dict:
    result = CliRunner().invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _event_ids(root) -> set[str]:
    from cx360.workspace import Workspace

    with Workspace(root) as ws:
        return set(ws.engine.table("events").event_id.to_pyarrow().to_pylist())


def test_rules_remove_what_they_govern_once_and_the_run_reports_it(tmp_path):
    root = _workspace(tmp_path)
    _json("run", "-w", str(root), "--select", "ingest")
    dry = _json("privacy", "retain", "-w", str(root), "--dry-run")
    assert dry["dry_run"] and {r["rule"]: r["removed"] for r in dry["rules"]} == {
        "events.web": 1,
        "events.call": 1,
        "events.default": 1,
        "quarantine": 0,
    }
    assert {r["unit"] for r in dry["rules"]} == {"rows"}
    assert _event_ids(root) == {r[0] for r in ROWS}, "a dry run removes nothing"

    report = _json("run", "-w", str(root))
    [stage] = [s for s in report["stages"] if s["stage"] == "retention"]
    assert [s["stage"] for s in report["stages"]][:3] == ["ingest", "retention", "identity"]
    assert stage["status"] == "ok" and stage["report"]["removed"] == 3
    assert any("DuckDB keeps the bytes" in w for w in report["warnings"])
    assert _event_ids(root) == {"w_new", "c_kept", "c_web", "s_kept"}

    _json("run", "-w", str(root), "--select", "ingest")  # the same file again
    [stage] = _json("run", "-w", str(root), "--select", "retention")["stages"]
    assert stage["report"]["removed"] == 0 and stage["rows_written"] == {}, "a re-run removes nothing more"
    assert _event_ids(root) == {"w_new", "c_kept", "c_web", "s_kept"}, "re-ingesting the file brings none back"
    from cx360.workspace import Workspace

    with Workspace(root) as ws:
        profiled = ws.engine.table("profile_events").event_id.to_pyarrow().to_pylist()
    assert sorted(profiled) == ["c_kept", "c_web", "s_kept", "w_new"], "the profiles are built without them"


def test_quarantine_and_drained_event_log_segments_age_out_and_an_unseen_channel_is_flagged(tmp_path):
    root = _workspace(tmp_path, '[retention]\nquarantine = "1 day"\nevents.wbe = "1 year"\nevent_log = "30 days"\n')
    _json("run", "-w", str(root), "--select", "ingest")
    drained = root / "eventlog" / "p0" / "web" / "events" / "drained"
    drained.mkdir(parents=True)
    old, fresh = (
        drained / "0000000000000001-0000000000000009.jsonl",
        drained / "0000000000000010-0000000000000019.jsonl",
    )
    for segment, days in ((old, 40), (fresh, 1)):
        segment.write_text('{"type": "track"}\n', encoding="utf-8")
        at = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).timestamp()
        os.utime(segment, (at, at))
    from cx360 import pipeline
    from cx360.workspace import Workspace

    with Workspace(root) as ws:
        dry = pipeline.run_stage(ws, "retention", dry_run=True)
        assert {r.key: r.removed for r in dry.report.rules}["event_log"] == 1 and old.exists()
        later = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=2)
        result = pipeline.run_stage(ws, "retention", now=later)
        assert {r.key: r.removed for r in result.report.rules} == {"events.wbe": 0, "quarantine": 1, "event_log": 1}
        assert any("no event has the name or channel 'wbe'" in w for w in result.warnings)
        assert ws.engine.scalar(ws.engine.table("quarantine").count(), step="count") == 0
    assert not old.exists() and fresh.exists()


def test_bad_rules_are_configuration_errors(tmp_path):
    runner = CliRunner()
    root = _workspace(tmp_path, '[retention]\nevents.web = "13 mnths"\n')
    result = runner.invoke(app, ["privacy", "retain", "-w", str(root)])
    assert result.exit_code == 1 and "retention.events.web: '13 mnths' is not a duration" in str(result.exception)
    (root / "cx360.toml").write_text('[retention]\nevnts = "1 year"\n', encoding="utf-8")
    result = runner.invoke(app, ["privacy", "retain", "-w", str(root)])
    assert result.exit_code == 1 and "unknown table(s) ['evnts']; retention applies to events, records" in str(
        result.exception
    )
    (root / "cx360.toml").write_text("", encoding="utf-8")
    result = runner.invoke(app, ["privacy", "retain", "-w", str(root)])
    assert result.exit_code == 1 and "no [retention] rules" in str(result.exception)


def test_calendar_months_and_years():
    assert cutoff("1 month", dt.datetime(2025, 3, 31)) == dt.datetime(2025, 2, 28)
    assert cutoff("13 months", dt.datetime(2025, 1, 15, 8)) == dt.datetime(2023, 12, 15, 8)
    assert cutoff("2 years", dt.datetime(2024, 2, 29)) == dt.datetime(2022, 2, 28)
    assert cutoff("2 weeks", dt.datetime(2025, 1, 15)) == dt.datetime(2025, 1, 1)


def test_compact_rewrites_the_warehouse_so_removed_rows_leave_its_bytes(tmp_path):
    root = _workspace(tmp_path)
    csv = root / "data" / "activity.csv"
    marker = "w-old-remark-7f3a9c"  # only the expired web event's text holds it
    lines = csv.read_text(encoding="utf-8").splitlines()
    lines = [line.replace(",hello", f",{marker}") if line.startswith("w_old,") else line for line in lines]
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _json("run", "-w", str(root), "--select", "ingest")
    warehouse = root / "warehouse.duckdb"
    assert marker.encode() in warehouse.read_bytes()

    report = _json("privacy", "retain", "-w", str(root), "--compact")
    assert report["removed"] == 3 and report["compacted"] is True
    assert not any("DuckDB keeps the bytes" in w for w in report["warnings"])
    assert marker.encode() not in warehouse.read_bytes()
    assert _event_ids(root) == {"w_new", "c_kept", "c_web", "s_kept"}

    report = _json("privacy", "retain", "-w", str(root), "--compact")
    assert report["removed"] == 0 and report["compacted"] is False, "nothing removed: nothing rewritten"


def test_compact_in_cx360_toml_rewrites_during_the_run_and_later_stages_read_the_new_file(tmp_path):
    root = _workspace(tmp_path, RULES + "compact = true\n")
    report = _json("run", "-w", str(root))
    stages = {s["stage"]: s for s in report["stages"]}
    assert stages["retention"]["report"]["compacted"] is True
    assert stages["identity"]["status"] == stages["profiles"]["status"] == "ok"
    assert _event_ids(root) == {"w_new", "c_kept", "c_web", "s_kept"}

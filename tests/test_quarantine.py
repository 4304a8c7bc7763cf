"""The quarantine view shows what is still failing now, and --replay loads what a fixed mapping accepts."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from cx360.sources.ingest import ingest
from cx360.sources.replay import replay
from cx360.status import quarantine_counts, quarantine_rows

SRC = str(Path(__file__).resolve().parents[1] / "src")

SOURCE = """
[[sources]]
name = "crm"
kind = "csv"
path = "data/crm*.csv"
[sources.records]
record_id = "id"
identifiers = {{ email = "email" }}
attributes = {{ birth_date = {{ column = "dob", type = "date"{formats} }} }}
"""
ISO = SOURCE.format(formats="")
BOTH = SOURCE.format(formats=', formats = ["%Y-%m-%d", "%d.%m.%Y"]')
CRM = 'id,email,dob\n1,a@x.com,1980-01-02\n2,b@x.com,03.04.1985\n,c@x.com,1990-01-01\n4,"broken\n'


def failing(ws) -> list[tuple[str, int, str]]:
    return sorted(
        (Path(r["input"]).name, r["row_number"], r["reasons"].split(":")[0]) for r in quarantine_rows(ws, limit=None)
    )


def test_rows_fixed_later_leave_the_view_and_no_row_shows_twice(duckdb_workspace):
    w = duckdb_workspace
    w.write("data/crm.csv", CRM)
    ws = w.config(ISO)
    ingest(ws)
    assert failing(ws) == [
        ("crm.csv", 2, "birth_date (dob)"),
        ("crm.csv", 3, "record_id (id)"),
        ("crm.csv", 4, "malformed CSV line"),
    ]
    w.write("data/crm.csv", CRM + "5,c@x.com,1999-09-09\n")  # the file grows: a new batch of the same input
    ingest(ws)
    assert quarantine_counts(ws) == {"crm": 3}  # not 6: counts are not summed over runs
    w.write("data/crm2.csv", "id,email,dob\n,c@x.com,1990-01-01\n")  # the same bad row in another export
    ingest(ws)
    assert quarantine_counts(ws) == {"crm": 3}
    ws.close()
    ws = w.config(BOTH)  # a mapping fixed in cx360.toml, then ingested again: the date now parses
    ingest(ws)  # the same bad row of both files shows once, from the newest batch
    assert failing(ws) == [("crm.csv", 4, "malformed CSV line"), ("crm2.csv", 1, "record_id (id)")]
    ws.close()


def test_replay_loads_what_the_current_mapping_accepts_and_keeps_the_accounts(duckdb_workspace):
    w = duckdb_workspace
    w.write("data/crm.csv", CRM)
    ws = w.config(ISO)
    [first] = ingest(ws)
    assert (first.read, first.loaded, first.quarantined) == (4, 1, 3)
    ws.close()
    ws = w.config(BOTH)
    [report] = replay(ws)
    assert (report.read, report.loaded, report.quarantined, report.duplicates) == (3, 1, 2, 0)
    births = {r["record_id"]: str(r["birth_date"]) for r in ws.engine.table("records").to_pyarrow().to_pylist()}
    assert births == {"1": "1980-01-02", "2": "1985-04-03"}
    assert failing(ws) == [("crm.csv", 3, "record_id (id)"), ("crm.csv", 4, "malformed CSV line")]
    [again] = replay(ws)  # nothing new passes: nothing is loaded twice
    assert (again.read, again.loaded, again.quarantined) == (2, 0, 2)
    assert ws.engine.table("records").count().execute() == 2
    [reread] = ingest(ws)  # the file read under the new mapping: what replay loaded is a duplicate now
    assert (reread.loaded, reread.quarantined, reread.duplicates) == (0, 2, 2)
    assert failing(ws) == [("crm.csv", 3, "record_id (id)"), ("crm.csv", 4, "malformed CSV line")]
    ws.close()


def test_quarantine_command_formats_and_replay(duckdb_workspace):
    w = duckdb_workspace
    w.write("data/crm.csv", CRM)
    w.config(ISO).close()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": SRC, "COLUMNS": "200"}

    def cx360(*args):
        return subprocess.run(
            [sys.executable, "-m", "cx360", *args, "-w", str(w.root)],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )

    assert cx360("ingest").returncode == 0
    rows = json.loads(cx360("quarantine", "--format", "json").stdout)
    assert sorted(r["row"] for r in rows) == [2, 3, 4] and rows[0]["input"].endswith("crm.csv")
    table = list(csv.DictReader(io.StringIO(cx360("quarantine", "--format", "csv").stdout)))
    assert sorted(int(r["row"]) for r in table) == [2, 3, 4]
    assert json.loads(next(r["raw"] for r in table if r["row"] == "2"))["dob"] == "03.04.1985"  # the whole raw row
    assert "3 rows still failing (crm 3)" in cx360("quarantine").stdout
    w.config(BOTH).close()
    replayed = cx360("quarantine", "--replay", "--format", "json")
    assert replayed.returncode == 0, replayed.stderr
    assert "replay crm: read 3, loaded 1, still failing 2" in replayed.stderr
    assert sorted(r["row"] for r in json.loads(replayed.stdout)) == [3, 4]

"""Ingestion keeps its promises on hostile input: every row is loaded, quarantined with a reason, or
counted as a duplicate; no input crashes the run or stops the other sources."""

from __future__ import annotations

import codecs
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
from conftest import DUCKDB_ONLY

from cx360.profiles.build import default_as_of
from cx360.sources import readers
from cx360.sources.ingest import ingest

SRC = str(Path(__file__).resolve().parents[1] / "src")

EVENTS = """
    [[sources]]
    name = "{name}"
    kind = "{kind}"
    path = "data/{file}"
    {extra}
    [sources.events]
    event_id = "id"
    timestamp = {{ column = "at", type = "timestamp" }}
    name = {{ value = "card_payment" }}
    amount = {{ column = "amount", type = "float" }}
    identifiers = {{ customer_no = "who" }}
    properties = {{ note = "note" }}
"""


def source(name: str, kind: str, file: str, extra: str = "") -> str:
    return EVENTS.format(name=name, kind=kind, file=file, extra=extra)


def counts(report) -> tuple[int, int, int, int]:
    return report.read, report.loaded, report.quarantined, report.duplicates


def quarantine(ws, name: str) -> dict[int, tuple[str, str]]:
    q = ws.engine.table("quarantine").to_pyarrow().to_pylist()
    return {r["row_number"]: (r["reasons"], r["raw"]) for r in q if r["source"] == name}


def csv_rows(n: int, start: int = 0) -> list[str]:
    return [f"e{i},2025-01-01 10:00:00,1.5,C{i % 9},note {i}" for i in range(start, start + n)]


HEADER = "id,at,amount,who,note"


def test_a_stray_quote_quarantines_its_line_and_the_rest_still_loads(duckdb_workspace):
    lines = csv_rows(1000)
    lines[2] = 'e2,2025-01-01 10:00:00,1.5,C2,"an unclosed quote'
    lines[500] = 'e500,2025-01-01 10:00:00,1.5,C5,"two\nlines, kept"'  # a quoted field may span lines
    duckdb_workspace.write("data/e.csv", "\n".join([HEADER, *lines]) + "\n")
    ws = duckdb_workspace.config(source("e", "csv", "e.csv"))
    [report] = ingest(ws)
    assert counts(report) == (1000, 999, 1, 0) and report.ok
    [(reason, raw)] = quarantine(ws, "e").values()
    assert 'unclosed quote (") on line 4' in reason  # line 1 is the header
    assert json.loads(raw) == {"line": 4, "text": lines[2]}
    notes = {
        r["event_id"]: json.loads(r["properties"])["note"] for r in ws.engine.table("events").to_pyarrow().to_pylist()
    }
    assert notes["e500"] == "two\nlines, kept" and notes["e999"] == "note 999"
    ws.close()


def test_a_quoted_field_past_the_limits_is_quarantined_line_by_line(duckdb_workspace):
    long_field = "x" * 5000
    lines = [
        *csv_rows(3),
        f'e3,2025-01-01 10:00:00,1.5,C3,"{long_field}"',
        'e4,2025-01-01 10:00:00,1.5,C4,"a',
        "b",
        'c"',
        *csv_rows(2, start=5),
    ]
    duckdb_workspace.write("data/e.csv", "\n".join([HEADER, *lines]) + "\n")
    ws = duckdb_workspace.config(
        source("e", "csv", "e.csv"), extra="[ingest]\nmax_field_chars = 4096\nmax_row_lines = 2\n"
    )
    [report] = ingest(ws)
    # the 3-line quoted field is over max_row_lines: its first line is quarantined, "b" and 'c"' are rows of their own
    assert counts(report) == (9, 5, 4, 0)
    reasons = quarantine(ws, "e")
    assert "field larger than field limit (4096)" in reasons[4][0]
    assert "unclosed quote" in reasons[5][0] and "more than 2 lines (max_row_lines)" in reasons[5][0]
    assert "expected 5 fields, found 1" in reasons[6][0] and "expected 5 fields, found 1" in reasons[7][0]
    ws.close()


def test_blank_lines_are_not_rows_and_every_other_line_is_accounted_for(duckdb_workspace):
    text = "\n".join(
        [HEADER, "", *csv_rows(2), "   ", "\t", "e0,2025-01-01 10:00:00,1.5,C0,note 0", 'e9,"x"y,1,C1,n', ""]
    )
    duckdb_workspace.write("data/e.csv", text + "\n\n")
    duckdb_workspace.write(
        "data/e.jsonl",
        '\n  \n{"id":"j1","_id":"a","at":"2025-01-01","who":"c"}\n'
        '{"id":null,"_id":"b","at":"2025-01-01","who":"c"}\n'
        '{"id":null,"_id":"c","at":"2025-01-01","who":"c"}\n\n',
    )
    ws = duckdb_workspace.config(source("e", "csv", "e.csv") + source("j", "jsonl", "e.jsonl"))
    csv_report, jsonl_report = ingest(ws)
    assert counts(csv_report) == (4, 2, 1, 1)  # blank and whitespace-only lines are not rows
    assert "',' expected after '\"'" in quarantine(ws, "e")[4][0]
    # rows told apart only by a column starting with "_" are different events, not duplicates
    assert counts(jsonl_report) == (3, 3, 0, 0)
    ws.close()


def test_a_file_changed_while_read_is_discarded_and_read_again(duckdb_workspace, monkeypatch):
    path = duckdb_workspace.write("data/e.csv", "\n".join([HEADER, *csv_rows(30)]) + "\n")
    ws = duckdb_workspace.config(source("e", "csv", "e.csv"))
    monkeypatch.setattr(readers, "CHUNK_ROWS", 10)
    appended = []

    def append_once(source, label, rows):
        if not appended:
            appended.append(rows)
            with open(path, "a", encoding="utf-8") as f:
                f.write("\n".join(csv_rows(20, start=30)) + "\n")

    [report] = ingest(ws, on_progress=append_once)
    assert report.ok and counts(report) == (50, 50, 0, 0)
    ledger = ws.engine.table("ingest_batches").to_pyarrow().to_pylist()
    assert [(r["status"], r["rows_read"]) for r in ledger] == [("started", None), ("committed", 50)]
    [again] = ingest(ws)  # the committed fingerprint is that of the 50 rows read
    assert (again.unchanged, again.loaded) == (1, 0)
    ws.close()


def test_a_file_that_keeps_changing_fails_its_source_with_nothing_committed(duckdb_workspace, monkeypatch):
    path = duckdb_workspace.write("data/e.csv", "\n".join([HEADER, *csv_rows(30)]) + "\n")
    duckdb_workspace.write("data/ok.csv", "\n".join([HEADER, *csv_rows(3)]) + "\n")
    ws = duckdb_workspace.config(source("e", "csv", "e.csv") + source("ok", "csv", "ok.csv"))
    monkeypatch.setattr(readers, "CHUNK_ROWS", 10)

    def keep_appending(source, label, rows):
        if source == "e":
            with open(path, "a", encoding="utf-8") as f:
                f.write(csv_rows(1, start=100 + rows)[0] + "\n")

    e, ok = ingest(ws, on_progress=keep_appending)
    assert not e.ok and "changed while it was read on each of 3 attempts; nothing of it was loaded" in e.error
    assert (e.read, e.loaded) == (0, 0) and ok.ok and ok.loaded == 3
    ledger = ws.engine.table("ingest_batches").to_pyarrow().to_pylist()
    assert {r["source"] for r in ledger} == {"ok"}
    assert ws.engine.table("events").count().execute() == 3
    ws.close()


JSONL = """
    {"id":"m1","at":"2025-01-01T10:00:00Z","who":"c1","amount":10}
    {"id":"m1","at":"2025-01-01T10:00:00Z","who":"c1","amount":10}
    {"id":"m1","at":"2025-01-01T10:00:00Z","who":"c1","amount":12}
    {"id":"m2","at":"2025-01-01T10:00:00Z","who":"c1","amount":5}
"""


@DUCKDB_ONLY
def test_a_corrected_event_with_a_used_event_id_is_quarantined_not_dropped(make_workspace):
    make_workspace.write("data/a.jsonl", JSONL)
    ws = make_workspace.config(source("e", "jsonl", "*.jsonl"))
    [first] = ingest(ws)
    assert counts(first) == (4, 2, 1, 1)  # an identical repeat is a duplicate; a different payload is not
    assert "conflicting payload for event_id 'm1' already loaded from row 1 of this batch" in quarantine(ws, "e")[3][0]
    make_workspace.write(
        "data/b.jsonl",
        '{"id":"m2","at":"2025-01-01T10:00:00Z","who":"c1","amount":6}\n'
        '{"id":"m1","at":"2025-01-01T10:00:00Z","who":"c1","amount":10}\n',
    )
    [second] = ingest(ws)
    assert (second.loaded, second.quarantined, second.duplicates) == (0, 1, 1 + 4)
    batch = ws.engine.table("events").to_pyarrow().to_pylist()[0]["batch_id"]
    reasons = [r for r, _ in quarantine(ws, "e").values()]
    assert any(f"event_id 'm2' already loaded from batch {batch} (row 4)" in r for r in reasons)
    assert sorted(r["amount"] for r in ws.engine.table("events").to_pyarrow().to_pylist()) == [5.0, 10.0]


def test_nonsense_dates_and_amounts_are_quarantined(make_workspace):
    now = dt.datetime.now(dt.UTC)
    soon = (now + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (now + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    make_workspace.write(
        "data/a.jsonl",
        "\n".join(
            [
                '{"id":"ok","at":"2025-01-01T10:00:00Z","who":"c1","amount":10}',
                '{"id":"far","at":"9999-12-31T00:00:00Z","who":"c1","amount":10}',
                f'{{"id":"soon","at":"{soon}","who":"c1","amount":1}}',
                f'{{"id":"later","at":"{later}","who":"c1","amount":1}}',
                '{"id":"old","at":"1812-09-07T00:00:00Z","who":"c1","amount":1}',
                '{"id":"nan","at":"2025-01-01T10:00:00Z","who":"c1","amount":NaN}',
                '{"id":"inf","at":"2025-01-01T10:00:00Z","who":"c1","amount":"-Infinity"}',
                '{"id":"big","at":"2025-01-01T10:00:00Z","who":"c1","amount":1e999}',
            ]
        )
        + "\n",
    )
    ws = make_workspace.config(source("e", "jsonl", "a.jsonl"))
    [report] = ingest(ws)
    assert counts(report) == (8, 2, 6, 0)
    reasons = {json.loads(raw)["id"]: r for r, raw in quarantine(ws, "e").values()}
    assert "timestamp (at): 9999-12-31 00:00:00 is in the future" in reasons["far"]
    assert "[ingest].max_future_days" in reasons["later"]
    assert "is before 1900-01-01 ([ingest].earliest)" in reasons["old"]
    assert all("amount (amount): not a finite number" in reasons[k] for k in ("nan", "inf", "big"))


def test_as_of_never_moves_past_today(duckdb_workspace):
    ws = duckdb_workspace.config(source("e", "csv", "e.csv"))
    row = dict.fromkeys(ws.engine.table("events").columns)
    row.update(event_id="x", source="e", name="login", ts=dt.datetime(9999, 12, 31), batch_id="b", row_number=1)
    ws.engine.append(
        "events", pa.Table.from_pylist([row], schema=ws.engine.table("events").schema().to_pyarrow()), step="test"
    )
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    assert default_as_of(ws) == dt.datetime.combine(tomorrow, dt.time())  # no OverflowError, no year 9999
    ws.close()


def test_byte_order_marks_decide_the_encoding(duckdb_workspace):
    lines = [
        '{"id":"m1","at":"2025-01-01T10:00:00Z","who":"Пётр","note":"привет"}',
        '{"id":"m2","at":"2025-01-01T10:00:00Z","who":"c2"}',
    ]
    text = "\n".join(lines) + "\n"
    duckdb_workspace.write("data/le.jsonl", text.encode("utf-16"))  # with its BOM, little-endian here
    duckdb_workspace.write("data/be.jsonl", codecs.BOM_UTF16_BE + text.encode("utf-16-be"))
    duckdb_workspace.write("data/u8.jsonl", codecs.BOM_UTF8 + text.encode())
    duckdb_workspace.write("data/u16.csv", f"{HEADER}\n{csv_rows(1)[0]}\n".encode("utf-16"))
    ws = duckdb_workspace.config(
        source("le", "jsonl", "le.jsonl")
        + source("be", "jsonl", "be.jsonl")
        + source("u8", "jsonl", "u8.jsonl")
        + source("c16", "csv", "u16.csv")
    )
    reports = ingest(ws)
    assert [counts(r) for r in reports] == [(2, 2, 0, 0)] * 3 + [(1, 1, 0, 0)]
    assert ws.engine.table("events").filter(ws.engine.table("events").customer_no == "ПЁТР").count().execute() == 3
    ws.close()


def test_a_file_entirely_quarantined_fails_its_source(duckdb_workspace):
    duckdb_workspace.write("data/a.jsonl", "\n".join(['{"id":"m1","at":"yesterday","who":"c1"}'] * 3) + "\n")
    ws = duckdb_workspace.config(source("e", "jsonl", "a.jsonl"))
    [report] = ingest(ws)
    assert counts(report) == (3, 0, 3, 0) and not report.ok
    assert (
        "every one of its 3 rows was quarantined (first reason: timestamp (at): not a valid timestamp" in report.error
    )
    ws.close()


def test_hostile_inputs_give_a_clear_error_or_a_quarantined_row(duckdb_workspace):
    w = duckdb_workspace
    w.write("data/case.csv", "id,at,amount,who,note,Note\ne1,2025-01-01,1,c,n,N\n")
    w.write("data/noname.csv", "id,at,amount,who,note,\ne1,2025-01-01,1,c,n,\n")
    w.write("data/reserved.csv", "id,at,amount,who,note,_cx360_row\ne1,2025-01-01,1,c,n,1\n")
    w.write("data/header.csv", b"id,at,amount,who,note,\xff\xfe\xfdname\ne1,2025-01-01,1,c,n,x\n")
    w.write("data/cp.csv", b"id,at,amount,who,note\ne1,2025-01-01,1,c,\xcf\xf0\xe8\xe2\xe5\xf2\ne2,2025-01-01,1,c,ok\n")
    w.write("data/row.csv", "id,at,amount,who,note,_row\ne1,2025-01-01,1,c,n,7\n")
    deep = '{"id":"d","at":"2025-01-01","who":"c","p":' + '{"a":' * 990 + "1" + "}" * 990 + "}"
    w.write(
        "data/deep.jsonl",
        "\n".join(
            [
                deep,
                '{"id":"x","at":"2025-01-01","who":"c","list":' + "[" * 990 + "]" * 990 + "}",
                '{"id":"ok","at":"2025-01-01","who":"c"}',
                '{"id":"k","at":"2025-01-01","WHO":"c"}',
                '{"id":"n","at":"2025-01-01","who":"c","a":{"b":1},"a.b":2}',
            ]
        )
        + "\n",
    )
    w.write("data/enc.csv", f"{HEADER}\n{csv_rows(1)[0]}\n")
    ws = w.config(
        source("case", "csv", "case.csv")
        + source("noname", "csv", "noname.csv")
        + source("reserved", "csv", "reserved.csv")
        + source("header", "csv", "header.csv")
        + source("cp", "csv", "cp.csv")
        + source("row", "csv", "row.csv")
        + source("deep", "jsonl", "deep.jsonl")
        + source("enc", "csv", "enc.csv", 'encoding = "utf-42"')
    )
    reports = {r.source: r for r in ingest(ws)}
    assert (
        "repeated column names (names differing only in case count as the same): 'note' and 'Note'"
        in reports["case"].error
    )
    assert "column(s) [6] of the header have no name" in reports["noname"].error
    assert "names starting with '_cx360_' are reserved" in reports["reserved"].error
    assert "the header line is not valid utf-8 text (byte 0xff)" in reports["header"].error
    assert counts(reports["cp"]) == (2, 1, 1, 0)
    assert "not valid utf-8 text (byte 0xcf); set `encoding`" in quarantine(ws, "cp")[1][0]
    assert counts(reports["row"]) == (1, 1, 0, 0)  # `_row` is an ordinary column name
    assert counts(reports["deep"]) == (5, 1, 4, 0)
    deep_reasons = quarantine(ws, "deep")
    assert "nested deeper than 32 levels" in deep_reasons[1][0] and "nested deeper" in deep_reasons[2][0]
    assert "key 'WHO' differs only in case from key 'who'" in deep_reasons[4][0]
    assert "key 'a.b' appears twice" in deep_reasons[5][0]
    assert "encoding = 'utf-42' is not an encoding Python knows" in reports["enc"].error
    ws.close()


def test_the_command_reports_every_failing_source_without_a_traceback(duckdb_workspace):
    w = duckdb_workspace
    w.write("data/case.csv", "id,at,amount,who,note,NOTE\ne1,2025-01-01,1,c,n,N\n")
    w.write("data/good.csv", f"{HEADER}\n{csv_rows(1)[0]}\n")
    w.config(
        source("case", "csv", "case.csv")
        + source("enc", "csv", "good.csv", 'encoding = "nope"')
        + source("good", "csv", "good.csv")
    ).close()
    result = subprocess.run(
        [sys.executable, "-m", "cx360", "ingest", "-w", str(w.root), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": SRC},
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "case: " in result.stderr and "enc: source 'enc': encoding = 'nope'" in result.stderr
    report = {r["source"]: r for r in json.loads(result.stdout)}
    assert report["good"]["loaded"] == 1 and report["good"]["status"] == "ok"

"""Ingestion end to end on every engine: mapping, coercion, quarantine, idempotency, recovery."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import DUCKDB_ONLY

from cx360.errors import ConfigError
from cx360.sources import ingest as ingest_module
from cx360.sources import readers
from cx360.sources.ingest import ingest

CRM = """
    client_id;fname;lname;dob;mobile;email;city;vip;balance
    C001;Иван;Иванов;03.05.1980;8 (916) 123-45-67; Ivan@Mail.RU ;Москва;да;1 234,56
    C002;Anna;Petrova;1985-13-45;+7 916 765 43 21;anna@x.com;Казань;0;0
    C003;Bob;Smith;1990-01-01;12-34;bob@x;Тула;0;0
    C004;bad;line
    C001;Иван;Иванов;03.05.1980;8 (916) 123-45-67; Ivan@Mail.RU ;Москва;да;1 234,56
    ;No;Id;01.01.1990;;;;;
    C005;Олег;Сидоров;;;;;;
"""
CRM_SOURCE = """
    [[sources]]
    name = "crm"
    kind = "csv"
    path = "data/crm.csv"
    delimiter = ";"

    [sources.records]
    record_id = "client_id"
    identifiers = { customer_no = "client_id", phone = "mobile", email = "email" }
    attributes = { first_name = "fname", last_name = "lname", city = "city", birth_date = { column = "dob", type = "date", formats = ["%d.%m.%Y", "%Y-%m-%d"] }, vip = { column = "vip", type = "bool" }, balance = { column = "balance", type = "float" } }
"""  # noqa: E501 (TOML 1.0: an inline table stays on one line)
WEB = """
    {"message_id":"m1","anonymous_id":"ck1","user_id":"c001","type":"page","timestamp":"2025-03-01T10:00:00Z","properties":{"path":"/cards"}}
    {"message_id":"m2","anonymous_id":"CK1","type":"login","timestamp":"2025-03-01T10:01:00+03:00"}
    not json
    {"message_id":"m3","anonymous_id":"ck2","type":"weird","timestamp":"yesterday"}
    {"message_id":"m1","anonymous_id":"ck1","user_id":"c001","type":"page","timestamp":"2025-03-01T10:00:00Z","properties":{"path":"/cards"}}
    {"message_id":"m4","type":"page","timestamp":"2025-03-01T10:00:00Z"}
    [1, 2]
"""
WEB_SOURCE = """
    [[sources]]
    name = "web"
    kind = "jsonl"
    path = "data/web.jsonl"

    [sources.events]
    event_id = "message_id"
    timestamp = { column = "timestamp", type = "timestamp" }
    name = { column = "type", values = { page = "page_viewed" } }
    channel = { value = "Web" }
    identifiers = { cookie_id = "anonymous_id", customer_no = "user_id" }
    properties = { path = "properties.path" }
"""


def rows(ws, table: str, order: list[str]) -> list[dict]:
    return ws.engine.table(table).order_by(order).to_pyarrow().to_pylist()


def reasons_by_row(ws, source: str) -> dict[int, str]:
    return {r["row_number"]: r["reasons"] for r in rows(ws, "quarantine", ["row_number"]) if r["source"] == source}


def test_csv_records_are_typed_normalised_and_bad_rows_quarantined(make_workspace):
    make_workspace.write("data/crm.csv", CRM)
    ws = make_workspace.config(CRM_SOURCE)
    [report] = ingest(ws)
    assert (report.read, report.loaded, report.quarantined, report.duplicates) == (7, 3, 3, 1)
    loaded = rows(ws, "records", ["record_id"])
    ivan, bob, oleg = loaded
    assert ivan["record_id"] == "C001" and ivan["customer_no"] == "C001"
    assert ivan["phone"] == "+79161234567"
    assert ivan["email"] == "ivan@mail.ru"
    assert str(ivan["birth_date"]) == "1980-05-03"
    assert json.loads(ivan["extra"]) == {"vip": True, "balance": 1234.56}
    assert ivan["row_number"] == 1 and len(ivan["batch_id"]) == 32
    assert oleg["birth_date"] is None and oleg["phone"] is None  # empty optional fields are NULL, not errors
    # a malformed phone or e-mail costs the row only that identifier, and leaves a trace
    assert (bob["first_name"], bob["phone"], bob["email"], bob["customer_no"]) == ("Bob", None, None, "C003")
    dropped = rows(ws, "dropped_identifiers", ["kind"])
    assert [(d["row_number"], d["key"], d["kind"], d["value"]) for d in dropped] == [
        (3, "C003", "email", "bob@x"),
        (3, "C003", "phone", "12-34"),
    ]
    assert (
        dropped[0]["reason"] == "email (email): not a valid email"
        and "phone (mobile): not a valid phone number" in dropped[1]["reason"]
    )
    assert report.identifiers_dropped == 2
    reasons = reasons_by_row(ws, "crm")
    assert set(reasons) == {2, 4, 6}
    assert "birth_date (dob): not a valid date: '1985-13-45'" in reasons[2]
    assert "expected 9 fields, found 3" in reasons[4]
    assert "record_id (client_id): a value is required" in reasons[6]
    raw = {r["row_number"]: json.loads(r["raw"]) for r in rows(ws, "quarantine", ["row_number"])}
    assert raw[2]["dob"] == "1985-13-45" and raw[4]["fields"] == ["C004", "bad", "line"]


def test_jsonl_events_map_names_and_quarantine_unknown_or_anonymous(make_workspace):
    make_workspace.write("data/web.jsonl", WEB)
    ws = make_workspace.config(WEB_SOURCE)
    [report] = ingest(ws)
    assert (report.read, report.loaded, report.quarantined, report.duplicates) == (7, 2, 4, 1)
    m1, m2 = rows(ws, "events", ["event_id"])
    assert (m1["name"], m1["channel"], m1["customer_no"], m1["cookie_id"]) == ("page_viewed", "web", "C001", "ck1")
    assert json.loads(m1["properties"]) == {"path": "/cards"}
    assert str(m2["ts"]) == "2025-03-01 07:01:00"  # offsets are converted to UTC
    assert m2["cookie_id"] == "CK1"  # cookie ids are case-sensitive
    reasons = reasons_by_row(ws, "web")
    assert "malformed JSON" in reasons[3]
    assert "not a valid timestamp: 'yesterday'" in reasons[4] and "unknown event name 'weird'" in reasons[4]
    assert "no identifier" in reasons[6]
    assert "must be an object" in reasons[7]


@DUCKDB_ONLY
def test_reingest_adds_nothing_and_overlapping_export_loads_only_new_rows(make_workspace):
    make_workspace.write("data/web.jsonl", WEB)
    ws = make_workspace.config(WEB_SOURCE.replace("data/web.jsonl", "data/*.jsonl"))
    ingest(ws)
    before = {t: ws.engine.table(t).count().execute() for t in ("events", "quarantine")}
    [again] = ingest(ws)
    assert (again.unchanged, again.loaded, again.quarantined, again.duplicates) == (1, 0, 0, 7)
    assert {t: ws.engine.table(t).count().execute() for t in ("events", "quarantine")} == before
    # a second export that repeats m1 and brings m5
    make_workspace.write(
        "data/web2.jsonl",
        '{"message_id":"m1","anonymous_id":"ck1","user_id":"c001","type":"page","timestamp":"2025-03-01T10:00:00Z","properties":{"path":"/cards"}}\n'
        '{"message_id":"m5","anonymous_id":"ck9","type":"login","timestamp":"2025-03-02T08:00:00Z"}\n',
    )
    [third] = ingest(ws)
    assert (third.inputs, third.unchanged, third.loaded, third.duplicates) == (2, 1, 1, 1 + 7)
    assert [r["event_id"] for r in rows(ws, "events", ["event_id"])] == ["m1", "m2", "m5"]


@DUCKDB_ONLY
def test_events_without_an_id_are_keyed_by_content(make_workspace):
    make_workspace.write(
        "data/calls.csv",
        """
        phone,at,reason
        +79161234567,2025-01-02 10:00:00,fees
        +79161234567,2025-01-02 10:00:00,fees
        +79161234567,2025-01-02 11:00:00,fees
        """,
    )
    ws = make_workspace.config(
        """
        [[sources]]
        name = "calls"
        kind = "csv"
        path = "data/calls.csv"
        [sources.events]
        timestamp = { column = "at", type = "timestamp", formats = ["%Y-%m-%d %H:%M:%S"] }
        name = { value = "call" }
        channel = { value = "call_centre" }
        identifiers = { phone = "phone" }
        properties = { reason = "reason" }
        """
    )
    [report] = ingest(ws)
    assert (report.loaded, report.duplicates) == (2, 1)
    ids = {r["event_id"] for r in rows(ws, "events", ["ts"])}
    assert len(ids) == 2 and all(len(i) == 32 for i in ids)


@DUCKDB_ONLY
def test_parquet_keeps_native_types(make_workspace):
    table = pa.table(
        {
            "tx_id": ["t1", "t2", "t3"],
            "card": ["tok-a", "tok-b", None],
            "at": pa.array([1_735_700_000_000_000, 1_735_800_000_000_000, 1_735_900_000_000_000], pa.timestamp("us")),
            "amount": [12.5, 100.0, 3.0],
            "mcc": [5411, 5812, 5411],
        }
    )
    pq.write_table(table, make_workspace.root / "data" / "tx.parquet")
    ws = make_workspace.config(
        """
        [[sources]]
        name = "cards"
        kind = "parquet"
        path = "data/tx.parquet"
        [sources.events]
        event_id = "tx_id"
        timestamp = "at"
        name = { value = "card_payment" }
        amount = "amount"
        identifiers = { card_token = "card" }
        properties = { mcc = { column = "mcc", type = "int" } }
        """
    )
    [report] = ingest(ws)
    assert (report.loaded, report.quarantined) == (2, 1)
    t1, _ = rows(ws, "events", ["event_id"])
    assert t1["card_token"] == "TOK-A" and t1["amount"] == 12.5 and json.loads(t1["properties"]) == {"mcc": 5411}
    assert "no identifier" in reasons_by_row(ws, "cards")[3]


def test_interrupted_batch_is_removed_and_completed_by_the_next_run(make_workspace, monkeypatch):
    lines = ["id,cookie,at"] + [f"e{i},c{i % 7},2025-01-01 00:00:{i % 60:02d}" for i in range(25)] + ["bad"]
    make_workspace.write("data/clicks.csv", "\n".join(lines) + "\n")
    ws = make_workspace.config(
        """
        [[sources]]
        name = "clicks"
        kind = "csv"
        path = "data/clicks.csv"
        [sources.events]
        event_id = "id"
        timestamp = { column = "at", type = "timestamp" }
        name = { value = "page_viewed" }
        identifiers = { cookie_id = "cookie" }
        """
    )
    monkeypatch.setattr(readers, "CHUNK_ROWS", 10)
    original = ingest_module._load_chunk
    calls = {"n": 0}

    def crash_on_second_chunk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("power cut")  # not an error cx360 handles: it must still leave no trace
        return original(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "_load_chunk", crash_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        ingest(ws)
    assert ws.engine.table("events").count().execute() == 0  # the first chunk's rows were removed
    # a crash that also prevents the clean-up: rows of the unfinished batch stay until the next run
    monkeypatch.setattr(ingest_module, "_discard", lambda *a: None)
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        ingest(ws)
    assert ws.engine.table("events").count().execute() == 10
    monkeypatch.setattr(ingest_module, "_load_chunk", original)
    [report] = ingest(ws)
    assert (report.read, report.loaded, report.quarantined) == (26, 25, 1)
    assert ws.engine.table("events").count().execute() == 25
    assert ws.engine.table("quarantine").count().execute() == 1
    ledger = rows(ws, "ingest_batches", ["status"])
    assert [r["status"] for r in ledger] == ["committed", "started"]


@DUCKDB_ONLY
def test_vanished_file_fails_that_source_only_and_keeps_what_was_loaded(make_workspace):
    for i in range(3):
        make_workspace.write(f"data/part{i}.jsonl", f'{{"id":"e{i}","c":"k","t":"2025-01-01T00:00:00Z"}}\n')
    ws = make_workspace.config(
        """
        [[sources]]
        name = "parts"
        kind = "jsonl"
        path = "data/part*.jsonl"
        [sources.events]
        event_id = "id"
        timestamp = { column = "t", type = "timestamp" }
        name = { value = "login" }
        identifiers = { cookie_id = "c" }
        """
    )

    def delete_next_file(source, label, rows):
        if label.endswith("part0.jsonl"):
            (make_workspace.root / "data" / "part1.jsonl").unlink()

    [report] = ingest(ws, on_progress=delete_next_file)
    assert not report.ok and "part1.jsonl: file vanished" in report.error
    assert report.loaded == 1
    assert [r["event_id"] for r in rows(ws, "events", ["event_id"])] == ["e0"]


@DUCKDB_ONLY
def test_empty_file_header_only_and_missing_column(make_workspace):
    make_workspace.write("data/empty.csv", "")
    make_workspace.write("data/header.csv", "client_id;fname\n")
    make_workspace.write("data/nocol.csv", "client_no;fname\nC1;A\n")
    source = """
        [[sources]]
        name = "{name}"
        kind = "csv"
        path = "data/{name}.csv"
        delimiter = ";"
        [sources.records]
        record_id = "client_id"
        attributes = {{ first_name = "fname" }}
    """
    ws = make_workspace.config("".join(source.format(name=n) for n in ("empty", "header", "nocol")))
    empty, header, nocol = ingest(ws)
    assert "file is empty" in empty.error
    assert header.ok and header.read == 0
    assert "mapped column(s) ['client_id'] are not in the input; it has ['client_no', 'fname']" in nocol.error


def test_missing_input_file_is_a_configuration_error(duckdb_workspace):
    ws = duckdb_workspace.config(CRM_SOURCE)
    [report] = ingest(ws)
    assert "path = 'data/crm.csv': no such file" in report.error
    ws.close()


def test_unknown_source_name_is_an_error(duckdb_workspace):
    duckdb_workspace.write("data/crm.csv", CRM)
    ws = duckdb_workspace.config(CRM_SOURCE)
    with pytest.raises(ConfigError, match="no source named 'crm2'; the workspace has: crm"):
        ingest(ws, ["crm2"])
    ws.close()

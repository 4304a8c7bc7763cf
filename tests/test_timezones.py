"""Time zones: a source's times written without an offset are its wall clock, stored as UTC; hours
that people see (peak hour, quiet hours) are on the workspace's clock."""

from __future__ import annotations

import datetime as dt

import ibis
import pytest

from cx360.config import Config
from cx360.engine import DuckDB
from cx360.errors import ConfigError
from cx360.identity.resolve import resolve
from cx360.profiles.build import build
from cx360.profiles.read import read
from cx360.sources.ingest import ingest
from cx360.sources.segment import corrected_time
from cx360.workspace import Workspace

# A Yekaterinburg (UTC+5) card processor writes its local time; the web analytics write offsets.
CARDS = """
    id,card,at,amount
    t1,TK1,2025-03-01 10:00:00,5
    t2,TK1,2025-03-02 10:30:00,5
    t3,TK1,01.03.2025 10:15,5
    t4,TK1,2025-03-03 10:00:00+0100,5
"""
WEB = '{"id":"w1","customer":"C1","ts":"2025-03-01T10:00:00Z"}\n{"id":"w2","customer":"C1","ts":"2025-03-01 10:00"}\n'
CRM = "id,card\nC1,TK1\n"
SOURCES = """
    [identity]
    probabilistic = false

    [[sources]]
    name = "crm"
    kind = "csv"
    path = "data/crm.csv"
    [sources.records]
    record_id = "id"
    identifiers = { customer_no = "id", card_token = "card" }

    [[sources]]
    name = "cards"
    kind = "csv"
    path = "data/cards.csv"
    timezone = "Asia/Yekaterinburg"
    [sources.events]
    event_id = "id"
    timestamp = { column = "at", type = "timestamp", formats = ["%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M", "%Y-%m-%d %H:%M:%S%z"] }
    name = { value = "card_payment" }
    amount = { column = "amount", type = "float" }
    identifiers = { card_token = "card" }

    [[sources]]
    name = "web"
    kind = "jsonl"
    path = "data/web.jsonl"
    [sources.events]
    event_id = "id"
    timestamp = { column = "ts", type = "timestamp" }
    name = { value = "login" }
    identifiers = { customer_no = "customer" }
"""  # noqa: E501 (TOML 1.0: an inline table stays on one line)


def test_local_times_are_stored_as_utc_and_hours_shown_on_the_workspace_clock(duckdb_workspace):
    duckdb_workspace.write("data/crm.csv", CRM)
    duckdb_workspace.write("data/cards.csv", CARDS)
    duckdb_workspace.write("data/web.jsonl", WEB)
    root = duckdb_workspace.config(SOURCES).root
    text = (root / "cx360.toml").read_text(encoding="utf-8")
    (root / "cx360.toml").write_text(text.replace('name = "test"', 'name = "test"\ntimezone = "Europe/Moscow"'))
    with Workspace(root) as ws:
        ingest(ws)
        events = ws.engine.table("events").to_pyarrow().to_pylist()
        ts = {e["event_id"]: e["ts"] for e in events}
        assert ts["t1"] == dt.datetime(2025, 3, 1, 5, 0)  # Yekaterinburg is UTC+5
        assert ts["t2"] == dt.datetime(2025, 3, 2, 5, 30)
        assert ts["t3"] == dt.datetime(2025, 3, 1, 5, 15)  # a strptime format, read on the same clock
        assert ts["t4"] == dt.datetime(2025, 3, 3, 9, 0)  # an offset it carries is kept
        assert ts["w1"] == dt.datetime(2025, 3, 1, 10, 0)  # Z is UTC
        assert ts["w2"] == dt.datetime(2025, 3, 1, 7, 0)  # no zone of its own: the workspace's (UTC+3)
        assert ws.config.contact_policy.time_zone == "Europe/Moscow"  # quiet hours on the same clock

        resolve(ws)
        build(ws, dt.datetime(2025, 4, 1))
        traits = read(ws, "C1").traits.model_dump()
        # 05:00, 05:30, 05:15 and 09:00 UTC are 08, 08, 08 and 12 in Moscow
        assert (traits["txn_count"], traits["peak_hour"], traits["weekend_share"]) == (4, 8, 0.75)  # Sat, Sun, Sat, Mon


def test_a_zone_that_does_not_exist_is_an_error_naming_the_source(duckdb_workspace):
    ws = duckdb_workspace.config(SOURCES.replace('"Asia/Yekaterinburg"', '"Asia/Ekaterinburgh"'))
    with pytest.raises(ConfigError, match=r"sources\[1\] \(cards\)\.timezone: 'Asia/Ekaterinburgh' is not a time"):
        ws.config  # noqa: B018 (reading it validates it)
    with pytest.raises(ValueError, match="'Moscow' is not a time zone"):
        Config.model_validate({"workspace": {"timezone": "Moscow"}})


def test_the_contact_policy_keeps_its_own_zone_when_it_names_one():
    config = Config.model_validate(
        {"workspace": {"timezone": "Europe/Moscow"}, "contact_policy": {"time_zone": "Asia/Tokyo"}}
    )
    assert config.contact_policy.time_zone == "Asia/Tokyo"
    assert Config.model_validate({}).contact_policy.time_zone == "UTC"


def test_a_segment_time_says_whether_the_message_gave_its_zone():
    assert corrected_time({"timestamp": "2025-03-01T10:00:00+03:00"}) == "2025-03-01 07:00:00+00:00"
    assert corrected_time({"timestamp": "2025-03-01T10:00:00"}) == "2025-03-01 10:00:00"  # the source's clock


def test_zone_conversions_are_engine_functions_in_both_directions():
    engine = DuckDB.in_memory()
    t = ibis.memtable({"ts": [dt.datetime(2025, 1, 15, 10), dt.datetime(2025, 7, 15, 10)]})
    out = engine.con.execute(
        t.mutate(utc=engine.local_to_utc(t.ts, "Europe/Berlin"), local=engine.utc_to_local(t.ts, "Europe/Berlin"))
    )
    assert list(out.utc.dt.hour) == [9, 8]  # daylight saving time is the zone's own
    assert list(out.local.dt.hour) == [11, 12]
    column = t.ts
    assert engine.local_to_utc(column, "UTC") is column  # UTC adds nothing to the query

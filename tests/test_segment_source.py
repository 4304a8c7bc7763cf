"""The `format = "segment"` preset: a six-call Segment export loads whole, every row accounted for, and
identity stitches the anonymous activity to the known person."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cx360.config import load_config
from cx360.errors import ConfigError
from cx360.identity.explain import explain
from cx360.identity.resolve import resolve
from cx360.profiles.events import attribute
from cx360.sources import segment
from cx360.sources.ingest import ingest
from cx360.sources.readers import Unfit
from cx360.sources.replay import replay

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)


def _iso(t: dt.datetime) -> str:
    return t.isoformat() + "Z"


WEB = {"page": {"path": "/cards"}, "userAgent": "Mozilla/5.0"}
APP = {"app": {"name": "bank"}, "device": {"id": "dev-1"}}
MESSAGES = [
    # anonymous browsing before the person signs in
    {"type": "page", "messageId": "m01", "anonymousId": "anon-1", "name": "Cards", "properties": {"path": "/cards"},
     "context": WEB, "timestamp": "2025-03-01T10:00:00Z"},
    {"type": "track", "messageId": "m02", "anonymousId": "anon-1", "event": "form_started",
     "properties": {"form": "loan"}, "context": WEB, "timestamp": "2025-03-01T10:01:00Z"},
    {"type": "identify", "messageId": "m03", "anonymousId": "anon-1", "userId": "c-001",
     "traits": {"email": "Ivan@Mail.RU", "firstName": "Ivan", "lastName": "Petrov", "phone": "+7 916 123-45-67",
                "birthday": "1980-05-03", "address": {"city": "Moscow", "postalCode": "101000"}, "plan": "gold"},
     "context": WEB, "timestamp": "2025-03-01T10:02:00Z"},
    {"type": "track", "messageId": "m04", "anonymousId": "anon-1", "userId": "c-001", "event": "login",
     "context": {**WEB, "traits": {"email": "ivan@mail.ru"}}, "timestamp": "2025-03-01T10:03:00Z"},
    # a second browser, tied to the person by an alias call, then seen anonymously
    {"type": "alias", "messageId": "m05", "previousId": "anon-2", "userId": "c-001", "context": WEB,
     "timestamp": "2025-03-02T09:00:00Z"},
    {"type": "page", "messageId": "m06", "anonymousId": "anon-2", "name": "Deposits", "context": WEB,
     "timestamp": "2025-03-02T09:01:00Z"},
    # the app: its anonymousId is a device identifier
    {"type": "screen", "messageId": "m07", "anonymousId": "dev-1", "userId": "c-001", "name": "Home",
     "context": APP, "timestamp": "2025-03-03T08:00:00Z"},
    {"type": "group", "messageId": "m08", "userId": "c-001", "groupId": "acme", "traits": {"name": "Acme"},
     "timestamp": "2025-03-03T08:05:00Z"},
    # the client's clock is five minutes slow: sentAt 12:00:00 arrived at 12:05:00 by the server's clock
    {"type": "track", "messageId": "m09", "userId": "c-001", "event": "form_submitted",
     "timestamp": "2025-03-03T11:59:00Z", "sentAt": "2025-03-03T12:00:00Z", "receivedAt": "2025-03-03T12:05:00Z"},
    # a client clock ten days fast: the corrected time is now, not in the future
    {"type": "track", "messageId": "m10", "userId": "c-001", "event": "login",
     "timestamp": _iso(NOW + dt.timedelta(days=10)), "sentAt": _iso(NOW + dt.timedelta(days=10)),
     "receivedAt": _iso(NOW)},
    # bad input, each quarantined with its reason
    {"type": "heartbeat", "messageId": "m11", "anonymousId": "anon-1", "timestamp": "2025-03-01T10:00:00Z"},
    {"type": "track", "messageId": "m12", "anonymousId": "anon-1", "timestamp": "2025-03-01T10:00:00Z"},
    {"type": "group", "messageId": "m13", "userId": "c-001", "timestamp": "2025-03-01T10:00:00Z"},
    {"type": "track", "messageId": "m14", "userId": "c-001", "event": "login", "timestamp": "2099-01-01T00:00:00Z"},
    {"type": "track", "messageId": "m15", "event": "login", "timestamp": "2025-03-01T10:00:00Z"},
]  # fmt: skip
LINES = [json.dumps(m) for m in MESSAGES]
LINES.insert(3, LINES[0])  # the same message twice: a duplicate
LINES.append('{"type": "track", "messageId": "m16"')  # cut short
SOURCE = """
    [identity]
    probabilistic = false

    [[sources]]
    name = "web"
    kind = "{kind}"
    path = "data/export.{kind}"
    format = "segment"
"""


def _rows(ws, table: str) -> list[dict]:
    return ws.engine.table(table).to_pyarrow().to_pylist()


def _message_id(raw: str) -> str | None:
    """The messageId of a quarantined row: a parsed row's own key, or that of the line that did not parse."""
    row = json.loads(raw)
    if "text" in row and "line" in row:
        try:
            row = json.loads(row["text"])
        except ValueError:
            return None
    return row.get("messageId")


def _check_export(ws) -> None:
    [report] = ingest(ws)
    assert report.ok, report.error
    assert (report.read, report.quarantined, report.duplicates) == (17, 6, 1)
    assert report.loaded == 10 and report.read == report.loaded + report.quarantined + report.duplicates

    events = {e["event_id"]: e for e in _rows(ws, "events")}
    assert sorted(events) == ["m01", "m02", "m04", "m05", "m06", "m07", "m08", "m09", "m10"]
    page, login, screen = events["m01"], events["m04"], events["m07"]
    assert (page["name"], page["channel"], page["cookie_id"], page["customer_no"]) == (
        "page_viewed",
        "web",
        "anon-1",
        None,
    )
    assert json.loads(page["properties"]) == {"path": "/cards", "name": "Cards"}
    assert (login["customer_no"], login["email"]) == ("C-001", "ivan@mail.ru")
    assert (screen["channel"], screen["device_id"], screen["cookie_id"]) == ("mobile_app", "dev-1", None)
    assert events["m05"]["name"] == "alias" and events["m05"]["cookie_id"] == "anon-2"
    assert json.loads(events["m08"]["properties"]) == {"group_id": "acme", "traits": {"name": "Acme"}}
    assert events["m09"]["ts"] == dt.datetime(2025, 3, 3, 12, 4)  # 11:59 plus the five minutes of skew
    assert abs(events["m10"]["ts"] - NOW) < dt.timedelta(seconds=1)

    [record] = _rows(ws, "records")
    assert (record["record_id"], record["customer_no"], record["cookie_id"]) == ("c-001", "C-001", "anon-1")
    assert (record["email"], record["phone"], record["first_name"], record["city"]) == (
        "ivan@mail.ru",
        "+79161234567",
        "Ivan",
        "Moscow",
    )
    assert record["birth_date"] == dt.date(1980, 5, 3) and record["postcode"] == "101000"
    assert json.loads(record["extra"]) == {"plan": "gold"}

    reasons = {_message_id(q["raw"]): q["reasons"] for q in _rows(ws, "quarantine")}
    assert "unknown call type 'heartbeat'" in reasons["m11"]
    assert "name (_cx360_name): a value is required" in reasons["m12"]
    assert "a group call needs a groupId" in reasons["m13"]
    assert "is in the future" in reasons["m14"]
    assert "no identifier" in reasons["m15"]
    assert "malformed JSON" in reasons[None]

    # stitching: both anonymous browsers and the app device belong to the person who signed in
    resolve(ws)
    mapping = {r["node"]: r["profile_id"] for r in _rows(ws, "identity_map")}
    person = mapping["customer_no:C-001"]
    assert mapping["cookie_id:anon-1"] == mapping["cookie_id:anon-2"] == mapping["device_id:dev-1"] == person
    attributed = ws.engine.to_arrow(attribute(ws.engine.table("events"), ws.engine.table("identity_map")), step="test")
    mine = {e["event_id"] for e in attributed.to_pylist() if e["profile_id"] == person}
    assert {"m01", "m02", "m06"} <= mine  # the anonymous page views and form are in the person's profile
    assert mine == set(events)
    [alias] = [
        link for link in explain(ws, "cookie_id:anon-2").links if "cookie_id:anon-2" in (link["left"], link["right"])
    ]
    assert alias["rule"] == "event_cooccurrence"  # the alias call is the evidence, named by its messageId
    assert (alias["evidence"]["first_event"], alias["evidence"]["first_event_name"]) == ("m05", "alias")

    again = ingest(ws)[0]  # an unchanged export adds nothing
    assert (again.unchanged, again.loaded, again.duplicates) == (1, 0, 17)


def test_a_six_call_jsonl_export_loads_every_call_type_and_stitches_identity(duckdb_workspace):
    duckdb_workspace.write("data/export.jsonl", "\n".join(LINES) + "\n")
    with duckdb_workspace.config(SOURCE.replace("{kind}", "jsonl")) as ws:
        _check_export(ws)


def test_a_parquet_export_of_nested_messages_loads_the_same(duckdb_workspace):
    messages = [json.loads(line) for line in LINES[:-1]]
    messages.append({"type": "track", "messageId": "m16", "properties": {"a": 1}})  # stands in for the cut line
    table = pa.Table.from_struct_array(pa.array(messages))
    pq.write_table(table, duckdb_workspace.root / "data" / "export.parquet")
    with duckdb_workspace.config(SOURCE.replace("{kind}", "parquet")) as ws:
        [report] = ingest(ws)
        assert (report.read, report.loaded, report.quarantined, report.duplicates) == (17, 10, 6, 1)
        assert {e["event_id"] for e in _rows(ws, "events")} >= {"m01", "m05", "m07", "m08"}
        assert [r["record_id"] for r in _rows(ws, "records")] == ["c-001"]


def test_the_source_mapping_overrides_the_preset_key_by_key(duckdb_workspace):
    duckdb_workspace.write(
        "data/orders.jsonl",
        "\n".join(
            json.dumps(m)
            for m in [
                {"type": "track", "messageId": "o1", "userId": "ivan@mail.ru", "event": "Order Completed",
                 "properties": {"revenue": 1250.5, "sku": "X"}, "timestamp": "2025-03-01T10:00:00Z"},
                {"type": "identify", "messageId": "o2", "userId": "ivan@mail.ru", "traits": {"name": "Ivan"},
                 "timestamp": "2025-03-01T10:00:00Z"},
            ]
        ),
    )  # fmt: skip
    preset = """
        [[sources]]
        name = "shop"
        kind = "jsonl"
        path = "data/orders.jsonl"
        format = "segment"
    """
    with duckdb_workspace.config(preset) as ws:
        [report] = ingest(ws)
        assert (report.loaded, report.quarantined) == (1, 1)  # 'Order Completed' is no canonical name
    source = (
        preset
        + """
        [sources.events]
        name = { column = "_cx360_name", values = { "Order Completed" = "card_payment" } }
        amount = { column = "properties.revenue", type = "float" }
        identifiers = { email = "userId" }
        [sources.records]
        identifiers = { email = "userId" }
        attributes = { first_name = "traits.name" }
    """
    )
    with duckdb_workspace.config(source) as ws:
        [replayed] = replay(ws)  # the quarantined track call, under the new mapping
        assert (replayed.read, replayed.loaded, replayed.quarantined) == (1, 1, 0)
        [report] = ingest(ws)  # the file under the new mapping: the event is there, the record has a new version
        assert (report.loaded, report.quarantined, report.duplicates) == (1, 0, 1), report.error
        [event] = _rows(ws, "events")
        assert (event["name"], event["amount"], event["email"], event["customer_no"]) == (
            "card_payment",
            1250.5,
            "ivan@mail.ru",
            None,
        )
        assert json.loads(event["properties"]) == {"revenue": 1250.5, "sku": "X"}  # still kept whole
        [record] = [r for r in _rows(ws, "records") if r["first_name"] is not None]
        assert (record["email"], record["first_name"], record["extra"]) == ("ivan@mail.ru", "Ivan", None)


def test_segment_is_a_format_of_json_and_parquet_sources_only(tmp_path):
    toml = tmp_path / "cx360.toml"
    toml.write_text('[[sources]]\nname = "x"\nkind = "csv"\npath = "x.csv"\nformat = "segment"\n')
    with pytest.raises(ConfigError, match="format: unknown key"):
        load_config(toml)
    toml.write_text('[[sources]]\nname = "x"\nkind = "jsonl"\npath = "x.jsonl"\nformat = "segment"\n')
    [source] = load_config(toml).sources
    assert [entity for entity, _ in source.targets()] == ["records", "events", "consents"]


def test_the_collector_entry_point_translates_messages_and_sets_bad_ones_aside():
    chunk = segment.to_chunk([LINES[0].encode(), b"{not json", {"type": "flush"}, {"type": "alias", "userId": "u"}])
    assert chunk.data.num_rows == 1 and chunk.data["_cx360_name"].to_pylist() == ["page_viewed"]
    assert [(m.row_number, m.reason.split(":")[0]) for m in chunk.malformed] == [
        (2, "malformed JSON"),
        (3, "malformed Segment message"),
        (4, "malformed Segment message"),
    ]
    with pytest.raises(Unfit, match="sentAt is not a time"):
        segment.translate({"type": "track", "timestamp": "2025-01-01T00:00:00Z", "sentAt": "x", "receivedAt": "y"})
    rudder_web = {"type": "identify", "channel": "web", "context": {"app": {"name": "RudderLabs JavaScript SDK"}}}
    rudder_web["context"]["traits"] = {"email": "a@b.ru", "tier": "gold"}  # identify's traits, as it sends them
    row = segment.translate(rudder_web)
    assert (row["_cx360_channel"], row["traits.email"], row["_cx360_extra"]) == ("web", "a@b.ru", '{"tier": "gold"}')
    from_phone = {"type": "track", "anonymousId": "a1", "context": {"device": {"id": "d"}, "userAgent": "Dalvik"}}
    assert segment.translate(from_phone)["_cx360_device_id"] == "a1"
    consent = {"categoryPreferences": {"marketing": True}}
    assert segment.consent({"context": {"consent": consent}}) == consent
    assert segment.consent({"context": {}}) is None


def test_a_file_of_nothing_but_bad_messages_is_quarantined_whole(duckdb_workspace):
    duckdb_workspace.write("data/export.jsonl", '{"type": "flush"}\n{"type": "group", "userId": "u"}\nnot json\n')
    with duckdb_workspace.config(SOURCE.replace("{kind}", "jsonl")) as ws:
        [report] = ingest(ws)
        assert (report.read, report.loaded, report.quarantined) == (3, 0, 3)
        assert "every one of its 3 rows was quarantined" in report.error


def test_a_gzipped_export_is_read_as_it_is_and_a_cut_one_fails_its_source(duckdb_workspace):
    packed = gzip.compress(("\n".join(LINES[:3]) + "\n").encode())
    duckdb_workspace.write("data/export.jsonl", packed)
    with duckdb_workspace.config(SOURCE.replace("{kind}", "jsonl")) as ws:
        [report] = ingest(ws)
        assert (report.read, report.loaded, report.quarantined) == (3, 3, 0), report.error
        assert [r["record_id"] for r in _rows(ws, "records")] == ["c-001"]
    duckdb_workspace.write("data/export.jsonl", packed[: len(packed) // 2])
    with duckdb_workspace.config(SOURCE.replace("{kind}", "jsonl")) as ws:
        [report] = ingest(ws)
        assert "not a readable gzip file" in report.error and report.loaded == 0


def test_a_call_without_a_time_happened_when_the_collector_received_it():
    from cx360.sources.segment import corrected_time

    assert (
        corrected_time({"type": "track", "receivedAt": "2026-12-02T10:00:00.123Z"})
        == "2026-12-02 10:00:00.123000+00:00"
    )
    assert corrected_time({"type": "track"}) is None  # an export without times: quarantined by the mapping

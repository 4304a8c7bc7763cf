"""Social listening on a tiny workspace: mentions of the watch-list with their tone, prospects kept for
post authors no CRM knows, leads out for the CRM with consent checked, and the bad input (a term off
the watch-list, a term that matches nothing, an empty period)."""

from __future__ import annotations

import datetime as dt
import json
import stat

import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from cx360.cli import app
from cx360.errors import ConfigError, NotFoundError, StageNotRunError
from cx360.identity.resolve import resolve
from cx360.listening import service
from cx360.pipeline import run_stage
from cx360.profiles.build import build
from cx360.sources.ingest import ingest
from cx360.workspace import Workspace

CRM = "id,handle\nC1,@anna\nC2,@boris\n"
CONSENTS = "client,purpose,channel,status,ts\nC2,marketing,email,granted,2025-01-01 00:00:00\n"


def _post(i, ts, author, text, name="social_post"):
    return {"id": f"s{i}", "ts": ts, "name": name, "channel": "social", "author": author, "text": text,
            "platform": "vk", "followers": 10 * i}  # fmt: skip


POSTS = [
    _post(1, "2025-01-05T10:00:00Z", "@anna", "Love the new app from @Acme, so fast"),
    _post(2, "2025-01-20T10:00:00Z", "@boris", "Хочу взять ипотеку в Acme, какие условия?"),
    _post(3, "2025-02-03T10:00:00Z", "@zoe", "Очередь в отделении Acme час, кошмар", "review_posted"),
    _post(4, "2025-02-10T10:00:00Z", "@zoe", "Хочу оформить ипотеку, посоветуйте банк"),
    _post(5, "2025-02-11T10:00:00Z", "@max", "Nice weather today"),
]

CONFIG = """
[workspace]
name = "t"
default_region = "RU"

[identity]
probabilistic = false

[listening]
brands = ["acme"]
keywords = ["ипотек", "overdraft"]
high_intent = 0.5
export_purpose = "prospecting"

[privacy.purposes.prospecting]
default = "opt-out"
identifiers = ["social_handle"]

[[sources]]
name = "crm"
kind = "csv"
path = "data/crm.csv"
[sources.records]
record_id = "id"
identifiers = { customer_no = "id", social_handle = "handle" }

[[sources]]
name = "social"
kind = "jsonl"
path = "data/social.jsonl"
[sources.events]
event_id = "id"
timestamp = { column = "ts", type = "timestamp" }
name = "name"
channel = "channel"
identifiers = { social_handle = "author" }
properties = { text = "text", platform = "platform", followers = { column = "followers", type = "int" } }

[[sources]]
name = "prefs"
kind = "csv"
path = "data/consents.csv"
[sources.consents]
timestamp = { column = "ts", type = "timestamp" }
purpose = "purpose"
channel = "channel"
status = "status"
identifiers = { customer_no = "client" }
"""

runner = CliRunner()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("listening")
    (root / "data").mkdir()
    (root / "data" / "crm.csv").write_text(CRM)
    (root / "data" / "consents.csv").write_text(CONSENTS)
    (root / "data" / "social.jsonl").write_text("\n".join(json.dumps(p) for p in POSTS) + "\n")
    (root / "cx360.toml").write_text(CONFIG)
    with Workspace(root) as ws:
        ingest(ws)
        resolve(ws)
        with pytest.raises(StageNotRunError, match="mentions have not been built"):
            service.trend(ws)
        run_stage(ws, "texts")
        build(ws, score_texts=False)
        result = run_stage(ws, "listening")
    assert result.status == "ok", result.error
    assert result.warnings == ["watch-list term 'overdraft' matched none of the 5 posts"]
    return root


def _rows(root, table):
    with Workspace(root) as ws:
        return ws.engine.to_arrow(ws.engine.table(table), step="test").to_pylist()


def test_mentions_carry_term_tone_intent_and_who(root):
    got = {(r["event_id"], r["term"]): r for r in _rows(root, "mentions")}
    assert set(got) == {("s1", "acme"), ("s2", "acme"), ("s2", "ипотек"), ("s3", "acme"), ("s4", "ипотек")}
    anna, zoe = got[("s1", "acme")], got[("s3", "acme")]
    assert (anna["term_kind"], anna["social_handle"], anna["customer"], anna["sentiment"]) == (
        "brand",
        "anna",
        True,
        "positive",
    )
    assert anna["profile_id"] is not None and anna["followers"] == 10
    assert (zoe["profile_id"], zoe["customer"], zoe["sentiment"]) == (None, False, "negative")
    assert got[("s2", "ипотек")]["intent"] >= 0.5 and got[("s2", "ипотек")]["intent_product"] == "mortgage"


def test_authors_no_crm_knows_are_kept_as_prospects(root):
    rows = {r["social_handle"]: r for r in _rows(root, "prospects")}
    assert set(rows) == {"zoe", "max"}  # anna and boris are customers
    zoe = rows["zoe"]
    assert (zoe["posts"], zoe["mentions"], zoe["share_negative"], zoe["intent_product"]) == (2, 2, 0.5, "mortgage")
    assert (zoe["first_at"], zoe["last_at"]) == (dt.datetime(2025, 2, 3, 10), dt.datetime(2025, 2, 10, 10))
    assert (rows["max"]["posts"], rows["max"]["mentions"]) == (1, 0)


def test_tone_over_time(root):
    with Workspace(root) as ws:
        t = service.trend(ws, "acme")
        assert [(r["period"], r["mentions"], r["positive"], r["negative"]) for r in t.periods] == [
            (dt.date(2025, 1, 1), 2, 1, 0),
            (dt.date(2025, 2, 1), 1, 0, 1),
        ]
        assert t.totals[0]["customers"] == 2 and t.totals[0]["prospects"] == 1
        quiet = service.trend(ws, "overdraft")  # on the watch-list, matched nothing: an empty trend
        assert (quiet.periods, quiet.totals) == ([], [])
        with pytest.raises(NotFoundError, match=r"not on the watch-list .*: acme, ипотек, overdraft"):
            service.trend(ws, "zzz")
        with pytest.raises(ConfigError, match="empty period"):
            service.trend(ws, since=dt.datetime(2025, 3, 1), until=dt.datetime(2025, 2, 1))
        with pytest.raises(ConfigError, match="day, week, month"):
            service.trend(ws, every="year")
        assert service.trend(ws, since=dt.datetime(2026, 1, 1)).totals == []


def test_leads_for_the_crm_are_consent_checked(root):
    with Workspace(root) as ws:
        out = service.leads(ws)  # prospecting: opt-out, and the handle may go
        assert out.rows.column("event_id").to_pylist() == ["s2", "s4"] and out.withheld == 0
        assert out.rows.column("terms").to_pylist()[0] in ("acme, ипотек", "ипотек, acme")
        assert out.rows.column("social_handle").to_pylist() == ["boris", "zoe"]
        # marketing by e-mail is opt-in: boris consented; zoe, a handle alone, cannot have
        mk = service.leads(ws, purpose="marketing", channel="email")
        assert mk.rows.column("event_id").to_pylist() == ["s2"] and mk.withheld == 1
        assert "social_handle" not in mk.rows.column_names
        with pytest.raises(ConfigError, match="min-intent"):
            service.leads(ws, min_intent=0)


def test_cli(root, tmp_path):
    res = runner.invoke(app, ["listening", "show", "-w", str(root), "--every", "week", "--format", "json"])
    assert res.exit_code == 0, res.output
    assert {r["term"] for r in json.loads(res.stdout)["totals"]} == {"acme", "ипотек"}
    target = tmp_path / "leads.csv"
    res = runner.invoke(app, ["listening", "export", "-w", str(root), "-o", str(target)])
    assert res.exit_code == 0, res.output
    assert pacsv.read_csv(target).num_rows == 2 and stat.S_IMODE(target.stat().st_mode) == 0o600
    res = runner.invoke(app, ["listening", "prospects", "-w", str(root), "--format", "json"])
    assert json.loads(res.stdout)["prospects"] == 2
    res = runner.invoke(app, ["listening", "show", "-w", str(root), "--term", "zzz"])
    assert isinstance(res.exception, NotFoundError)


def test_the_watch_list_is_checked():
    from pydantic import ValidationError

    from cx360.config import ListeningSettings

    with pytest.raises(ValidationError, match="both a brand and a keyword: acme"):
        ListeningSettings(brands=["Acme"], keywords=["acme"])
    with pytest.raises(ValidationError, match="an empty term"):
        ListeningSettings(keywords=[" "])


def test_a_prospect_can_be_erased(root, tmp_path):
    import shutil

    from cx360.erasure.erase import erase

    copy = tmp_path / "ws"
    shutil.copytree(root, copy)
    receipt = erase(copy, "@zoe", "the author asked")
    [warehouse] = [s for s in receipt["stores"] if s["store"] == "warehouse"]
    removed = warehouse["rows_removed"]
    assert (removed["events"], removed["mentions"], removed["prospects"]) == (2, 2, 1)
    assert receipt["subject"] == {"profiles": 0, "records": 0, "identifiers": {"social_handle": 1}, "names": 0}
    assert receipt["verification"]["hits"] == 0, receipt["verification"]
    assert {r["social_handle"] for r in _rows(copy, "prospects")} == {"max"}
    assert "zoe" not in {r["social_handle"] for r in _rows(copy, "mentions")}
    again = erase(copy, "@zoe", "asked twice")
    assert again["erasure_id"] == receipt["erasure_id"] and "erased before" in again["note"]


@pytest.mark.spark
def test_listening_and_habits_on_spark_equal_duckdb(root, spark_twin):
    """The listening stage, its tone over time, and the archetype history with its change rates give on
    Spark what they give on DuckDB over the same tables."""
    import pyarrow as pa

    from cx360 import schema
    from cx360.engine import DuckDB
    from cx360.scoring import habits

    inputs = ("events", "text_scores", "profile_events", "profiles", "consents", "identity_map")
    spark = spark_twin(root, inputs)
    assert run_stage(spark, "listening").status == "ok"
    key = lambda r: (r["event_id"], r["term"])  # noqa: E731
    assert sorted(_rows(root, "mentions"), key=key) == sorted(
        spark.engine.to_arrow(spark.engine.table("mentions"), step="test").to_pylist(), key=key
    )
    with Workspace(root) as ws:
        assert service.trend(ws, every="week") == service.trend(spark, every="week")

    def history(engine):
        for at, placed in (
            (dt.datetime(2025, 1, 1), {"A": "analog", "B": "nomad", "C": "paranoid"}),
            (dt.datetime(2025, 3, 1), {"A": "wannabe", "B": "nomad", "C": "analog"}),
            (dt.datetime(2025, 6, 1), {"A": "analog", "B": "chameleon"}),
        ):
            n = len(placed)
            rows = {"profile_id": list(placed), "as_of": [at] * n, "digital_sophistication": [0.5] * n,
                    "data_sharing": [0.5] * n, "archetype": list(placed.values()),
                    "archetype_from": ["rules"] * n}  # fmt: skip
            engine.replace(
                "profile_archetypes", pa.table(rows, schema=schema.ibis_schema("profile_archetypes").to_pyarrow())
            )
            habits.record(engine, at)
        stays = engine.to_arrow(engine.table(habits.TABLE), step="test").to_pylist()
        return sorted(stays, key=lambda r: (r["profile_id"], r["entered_at"])), habits.report(engine)

    on_duckdb = history(DuckDB.in_memory())
    assert on_duckdb[1].changers == 3
    assert history(spark.engine) == on_duckdb

"""The profile stage on every engine: traits from each family of events, computed as of a point in
time with nothing later leaking in, and one person's profile read back by any identifier."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cx360 import trait_catalog as catalog
from cx360.errors import Cx360Error, NotFoundError
from cx360.identity.resolve import resolve
from cx360.profiles.build import build
from cx360.profiles.read import read
from cx360.sources.ingest import ingest

AS_OF = dt.datetime(2025, 7, 1)

CRM = """
    id,email,phone,card,products,first,last,dob,handle
    C1,anna@x.ru,+79160000001,TK1,debit_card|deposit,Анна,Петрова,1990-03-15,@anna_p
    C2,boris@x.ru,+79160000002,,credit_card,Борис,Сидоров,1980-01-01,@boris
"""


def _event(i, ts, name, **kw):
    return json.dumps({"id": f"e{i}", "ts": ts, "name": name, **kw}, ensure_ascii=False)


GAMES = [
    _event(
        i,
        f"2025-{d}T12:00:00Z",
        "card_payment",
        channel="pos",
        card="TK1",
        amount=10.0,
        category="Digital games",
        district="Тверской",
    )
    for i, d in enumerate(["05-06", "05-13", "05-20", "05-27", "06-03", "06-10", "06-17", "06-24"])
]
BEFORE = [
    *GAMES,
    _event(
        20,
        "2025-06-30T23:00:00Z",
        "card_payment",
        channel="pos",
        card="TK1",
        amount=500.0,
        category="Groceries",
        district="Арбат",
    ),
    _event(21, "2025-06-01T10:00:00Z", "atm_withdrawal", channel="atm", card="TK1", amount=1000.0),
    _event(
        22,
        "2025-03-01T10:00:00Z",
        "call",
        channel="call_centre",
        customer="C1",
        reason="fees",
        text="Опять списали комиссию за обслуживание, это безобразие, верните деньги",
    ),
    _event(23, "2025-06-15T10:00:00Z", "call", channel="call_centre", customer="C1", reason="complaint_staff"),
    _event(24, "2025-06-20T10:00:00Z", "offer_rejected", channel="sms", customer="C1", offer="auto_loan"),
    _event(25, "2025-02-01T10:00:00Z", "offer_accepted", channel="email", customer="C1", offer="deposit"),
    _event(26, "2025-04-01T10:00:00Z", "offer_ignored", channel="push", customer="C1", offer="credit_card"),
    _event(27, "2025-06-10T10:00:00Z", "login", channel="web", customer="C1", cookie="ck1"),
    _event(28, "2025-06-11T10:00:00Z", "form_abandoned", channel="web", cookie="ck1", form="mortgage", field="income"),
    _event(
        29,
        "2025-06-05T10:00:00Z",
        "store_visit",
        channel="mall",
        phone="+79160000001",
        mall="Авиапарк",
        dwell=30,
        home="Арбат",
    ),
    _event(
        30,
        "2025-06-12T10:00:00Z",
        "store_visit",
        channel="mall",
        phone="+79160000001",
        mall="Авиапарк",
        dwell=50,
        home="Арбат",
    ),
    _event(
        31, "2025-05-01T10:00:00Z", "survey_answered", channel="survey", email="anna@x.ru", share=4, device="smartphone"
    ),
    _event(
        32,
        "2025-05-02T10:00:00Z",
        "social_post",
        channel="social",
        handle="@boris",
        text="Thanks @Anna_P for the tip",
        followers=10,
    ),
]
AFTER = [
    _event(39, "2025-07-04T10:00:00Z", "login", channel="web", customer="C1", cookie="ck2"),
    _event(40, "2025-07-05T12:00:00Z", "card_payment", channel="pos", card="TK1", amount=9999.0, category="Travel"),
    _event(41, "2025-07-02T10:00:00Z", "call", channel="call_centre", customer="C1", reason="close_account"),
    _event(42, "2025-07-03T10:00:00Z", "offer_rejected", channel="sms", customer="C1", offer="mortgage"),
    _event(
        43,
        "2025-07-01T00:00:00Z",
        "store_visit",
        channel="mall",
        phone="+79160000001",
        mall="Европейский",
        dwell=5,
        home="Митино",
    ),
]

SOURCES = """
    [identity]
    probabilistic = false

    [[sources]]
    name = "crm"
    kind = "csv"
    path = "data/crm.csv"
    [sources.records]
    record_id = "id"
    identifiers = { customer_no = "id", email = "email", phone = "phone", card_token = "card", social_handle = "handle" }
    attributes = { first_name = "first", last_name = "last", birth_date = { column = "dob", type = "date" }, products = "products" }

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
    identifiers = { customer_no = "customer", card_token = "card", cookie_id = "cookie", phone = "phone", email = "email", social_handle = "handle" }
    properties = { text = "text", followers = { column = "followers", type = "int" }, reason = "reason", offer = "offer", category = "category", district = "district", form = "form", field = "field", mall = "mall", dwell_minutes = { column = "dwell", type = "int" }, home_district = "home", ok_to_share_data = { column = "share", type = "int" }, preferred_device = "device" }
"""  # noqa: E501 (TOML 1.0: an inline table stays on one line)


def _workspace(make_workspace, *, later: bool):
    make_workspace.write("data/crm.csv", CRM)
    make_workspace.write("data/activity/1.jsonl", "\n".join(BEFORE) + "\n")
    if later:
        make_workspace.write("data/activity/2.jsonl", "\n".join(AFTER) + "\n")
    ws = make_workspace.config(SOURCES)
    ingest(ws)
    resolve(ws)
    return ws


def _traits(ws) -> dict[str, dict]:
    rows = ws.engine.table("profile_traits").to_pyarrow().to_pylist()
    return {r["profile_id"]: r for r in rows}


def test_traits_from_every_family(make_workspace):
    ws = _workspace(make_workspace, later=False)
    report = build(ws, AS_OF)
    assert report.profiles == 2 and report.events_attributed == len(BEFORE)
    anna = read(ws, "anna@x.ru")
    t = anna.traits.model_dump()
    assert t["as_of"] == AS_OF.replace(tzinfo=dt.UTC)  # the profile view gives stored naive UTC times their offset
    assert (t["age_years"], t["products"], t["n_products"]) == (35, "debit_card|deposit", 2)
    assert (t["calls_total"], t["calls_90d"], t["complaints_total"], t["last_call_reason"]) == (
        2,
        1,
        1,
        "complaint_staff",
    )
    assert (t["offers_seen"], t["offers_accepted"], t["offers_rejected"], t["last_rejected_offer"]) == (
        3,
        1,
        1,
        "auto_loan",
    )
    assert t["acceptance_rate"] == pytest.approx(1 / 3)
    # the abandonment carries only a cookie: attributed through the login that joined it to C1
    assert (t["logins_90d"], t["forms_abandoned"], t["last_abandoned_form"], t["last_abandoned_field"]) == (
        1,
        1,
        "mortgage",
        "income",
    )
    assert (t["txn_count"], t["spend_total"], t["cash_90d"]) == (10, 580.0, 1000.0)
    assert (t["days_since_txn"], t["top_category"], t["top_district"]) == (0, "Groceries", "Тверской")
    assert t["recurring_interests"] == 1 and anna.breakdowns["recurring_interest"] == {"Digital games": 8.0}
    assert anna.breakdowns["spend_by_category"] == {"Digital games": 80.0, "Groceries": 500.0}
    assert anna.breakdowns["calls_by_reason"] == {"complaint_staff": 1.0, "fees": 1.0}
    assert (t["visits_total"], t["avg_dwell_minutes"], t["visitor_type"], t["top_place"], t["home_district"]) == (
        2,
        40.0,
        "occasional",
        "Авиапарк",
        "Арбат",
    )
    assert (t["survey_ok_to_share_data"], t["survey_preferred_device"]) == (4, "smartphone")
    assert (t["texts_total"], t["share_negative"], t["text_complaints"]) == (1, 1.0, 1)
    assert anna.breakdowns["complaints_by_topic"] == {"fees": 1.0, "refund": 1.0}  # "верните деньги"
    assert anna.attributes["first_name"].value == "Анна" and anna.attributes["first_name"].record == "crm:C1"

    boris = read(ws, "C2")  # no payments, calls or offers: counts are zero, recencies unknown
    b = boris.traits.model_dump()
    assert (b["txn_count"], b["spend_total"], b["calls_total"], b["visitor_type"]) == (0, 0.0, 0, "none")
    assert b["days_since_txn"] is None and b["last_rejected_offer"] is None
    assert (b["posts_total"], b["followers"]) == (1, 10)

    # Boris mentions Anna: she reaches him; one card holder is too few to fit lifetime value, and says so
    assert report.scores.influence_edges == 1
    assert anna.scores.reach == 1 and anna.scores.influence_score > boris.scores.influence_score
    assert anna.scores.clv_12m is None and anna.scores.value_tier in ("bronze", "silver", "gold", "platinum")
    assert any("lifetime value not fitted" in w for w in report.scores.warnings)


def test_nothing_after_as_of_leaks_in(duckdb_workspace):
    with _workspace(duckdb_workspace, later=True) as ws:  # events on and after AS_OF are in the store
        _check_point_in_time(ws)


def _check_point_in_time(ws):
    build(ws, AS_OF)
    anna = read(ws, "C1")
    t = anna.traits.model_dump()
    assert (t["txn_count"], t["spend_total"], t["days_since_txn"]) == (10, 580.0, 0)
    assert (t["calls_total"], t["last_call_reason"], t["offers_rejected"], t["last_rejected_offer"]) == (
        2,
        "complaint_staff",
        1,
        "auto_loan",
    )
    assert (t["visits_total"], t["top_place"], t["home_district"]) == (2, "Авиапарк", "Арбат")
    assert "Travel" not in anna.breakdowns["spend_by_category"]
    assert "close_account" not in anna.breakdowns["calls_by_reason"]
    assert t["devices"] == 1  # the cookie first seen after as_of is not counted yet

    build(ws, dt.datetime(2025, 8, 1))  # a later point in time sees them
    t = read(ws, "C1").traits.model_dump()
    assert (t["txn_count"], t["spend_total"], t["last_rejected_offer"], t["visits_total"]) == (
        11,
        580.0 + 9999.0,
        "mortgage",
        3,
    )
    assert t["devices"] == 2


def test_unknown_identifier_and_missing_identity_are_clear_errors(duckdb_workspace):
    duckdb_workspace.write("data/crm.csv", CRM)
    duckdb_workspace.write("data/activity/1.jsonl", "\n".join(BEFORE) + "\n")
    with duckdb_workspace.config(SOURCES) as ws:
        ingest(ws)
        with pytest.raises(Cx360Error, match="--select identity"):
            build(ws, AS_OF)
        resolve(ws)
        build(ws, AS_OF)
        with pytest.raises(NotFoundError, match=r"nobody@x\.ru"):
            read(ws, "nobody@x.ru")
        assert read(ws, "TK1").profile_id == read(ws, "+7 916 000-00-01").profile_id == ws.profile("ck1").profile_id


def test_profile_show_cli(duckdb_workspace):
    duckdb_workspace.write("data/crm.csv", CRM)
    duckdb_workspace.write("data/activity/1.jsonl", "\n".join(BEFORE) + "\n")
    with duckdb_workspace.config(SOURCES) as ws:
        ingest(ws)
        resolve(ws)
    root = str(duckdb_workspace.root)
    cli = [sys.executable, "-m", "cx360"]
    built = subprocess.run(
        [*cli, "profile", "build", "-w", root, "--as-of", "2025-07-01"], capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr
    shown = subprocess.run(
        [*cli, "profile", "show", "anna@x.ru", "-w", root, "--format", "json"], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    profile = json.loads(shown.stdout)
    assert profile["attributes"]["last_name"] == {"value": "Петрова", "record": "crm:C1", "rule": "most_recent"}
    assert profile["traits"]["spend_total"] == 580.0
    missing = subprocess.run([*cli, "profile", "show", "nobody@x.ru", "-w", root], capture_output=True, text=True)
    assert missing.returncode == 1 and "nobody@x.ru" in missing.stderr
    bad = subprocess.run([*cli, "profile", "build", "-w", root, "--as-of", "July"], capture_output=True, text=True)
    assert bad.returncode == 1 and "--as-of" in bad.stderr


def test_traits_doc_lists_every_trait():
    doc = (Path(__file__).parents[1] / "docs" / "traits.md").read_text(encoding="utf-8")
    assert doc == catalog.markdown(), "regenerate docs/traits.md from cx360.trait_catalog.markdown()"


def test_texts_scored_in_batches_are_those_of_one_pass(make_workspace):
    """Texts are scored in batches where the events are (DuckDB chunks, Spark executors); batch boundaries
    change nothing, a repeated text gets the scores of its first copy, and a re-run scores nothing."""
    import pyarrow as pa

    from cx360 import schema
    from cx360.config import TextSettings
    from cx360.profiles import texts

    said = [
        "Опять списали комиссию, верните деньги",
        "Great app, thanks!",
        "Great app, thanks!",
        "Хочу оформить ипотеку",
        "Карта не работает, ужасный сервис",
        None,
        "Great app, thanks!",
    ]
    events = schema.ibis_schema("events").to_pyarrow()
    rows = {c: pa.nulls(len(said) + 1, events.field(c).type) for c in events.names}
    rows["event_id"] = pa.array([f"e{i}" for i in range(len(said) + 1)])
    rows["name"] = pa.array(
        ["call", "review_posted", "social_post", "call", "complaint", "call", "review_posted", "card_payment"]
    )
    rows["properties"] = pa.array(
        [json.dumps({"text": t}) if t else "{}" for t in said] + ['{"text": "not a text event"}']
    )
    ws = make_workspace.config("")
    ws.engine.append("events", pa.table(rows, schema=events), step="events")

    settings = TextSettings()
    assert texts.score_new(ws.engine, settings, batch_rows=2) == 6
    got = ws.engine.table("text_scores").to_pandas().sort_values("event_id", ignore_index=True)
    batch = pa.table({"event_id": [f"e{i}" for i, t in enumerate(said) if t], "text": [t for t in said if t]})
    expected = texts._TextScorer(settings.backend, None, got["scored_at"].iloc[0])(batch)
    cols = [c for c in got.columns if c != "scored_at"]
    assert got[cols].equals(expected.sort_values("event_id", ignore_index=True)[cols].astype(got[cols].dtypes))
    assert got["sentiment"].notna().all() and got.loc[got.event_id == "e3", "intent_product"].item()
    assert texts.score_new(ws.engine, settings, batch_rows=2) == 0


def test_lifetime_value_predicted_in_batches_is_that_of_one_pass(make_workspace):
    """Lifetime value is predicted in batches where the purchases are (DuckDB chunks, Spark executors)
    with the models fitted once on the driver: the same as one pass over everyone, from purchases summed
    here in pandas. Sums of float amounts vary in their last bits between runs, hence the tolerance."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from cx360 import schema
    from cx360.profiles import scores

    rng = np.random.default_rng(7)
    ids, ts, amounts = [], [], []
    for p in range(60):
        for _ in range(int(rng.integers(1, 12))):
            ids.append(f"P{p:03d}")
            ts.append(dt.datetime(2025, 1, 1) + dt.timedelta(days=float(rng.uniform(0, 180))))
            amounts.append(float(rng.uniform(5, 200)))
    target = schema.ibis_schema("profile_events").to_pyarrow()
    rows = pa.table(
        {
            "profile_id": ids,
            "event_id": [f"e{i}" for i in range(len(ids))],
            "ts": ts,
            "source": ["cards"] * len(ids),
            "name": ["card_payment"] * len(ids),
            "channel": ["pos"] * len(ids),
            "amount": amounts,
            "properties": ["{}"] * len(ids),
        },
        schema=target,
    )
    ws = make_workspace.config("")
    ws.engine.replace("profile_events", rows)

    report, used = scores.ScoreReport(), []
    map_batches = ws.engine.map_batches

    def recording(expr, fn, *args, **kwargs):  # keeps the batch function: the models fitted on the driver
        used.append(fn)
        return map_batches(expr, fn, *args, **kwargs)

    ws.engine.map_batches = recording
    got = scores.lifetime_value(ws.engine, AS_OF, report, batch_rows=7)
    assert report.repeat_customers >= scores.MIN_REPEAT_CUSTOMERS and report.clv_params and not report.warnings
    assert len(got) == 60 and got["clv_12m"].gt(0).all()
    (predict,) = used
    assert report.clv_params == {
        **{f"bgnbd_{k}": v for k, v in predict.bgf.params_.items()},
        **{f"gamma_gamma_{k}": v for k, v in predict.ggf.params_.items()},
    }
    whole = ws.engine.table("profile_events").to_pyarrow().to_pandas()
    whole = whole.assign(day=whole.ts.dt.floor("D")).groupby(["profile_id", "day"], as_index=False).amount.sum()
    whole["d"] = (whole.day - pd.Timestamp(1970, 1, 1)).dt.days
    per = (
        whole.sort_values(["profile_id", "d"])
        .groupby("profile_id")
        .agg(
            days=("d", "count"),
            first=("d", "min"),
            last=("d", "max"),
            total=("amount", "sum"),
            first_spend=("amount", "first"),
        )
        .reset_index()
    )
    expected = predict(pa.Table.from_pandas(per, preserve_index=False))  # one pass over everyone
    pd.testing.assert_frame_equal(got, expected.sort_values("profile_id", ignore_index=True)[got.columns], rtol=1e-6)


def test_a_record_updated_after_as_of_falls_back_to_its_earlier_version(duckdb_workspace):
    source = SOURCES.replace(
        'products = "products" }',
        'products = "products" }\n    updated_at = { column = "updated", type = "timestamp" }',
    )
    header = "id,email,phone,card,products,first,last,dob,handle,updated\n"
    duckdb_workspace.write("data/crm.csv", header + "C1,anna@x.ru,,,debit_card,Анна,Петрова,,,2025-01-10T00:00:00Z\n")
    duckdb_workspace.write("data/activity/1.jsonl", "\n".join(BEFORE) + "\n")
    ws = duckdb_workspace.config(source)
    assert all(r.ok for r in ingest(ws))
    later = "C1,anna@x.ru,,,debit_card|mortgage,Анна,Петрова,,,2025-08-01T00:00:00Z\n"
    ws.root.joinpath("data/crm.csv").write_text(header + later, encoding="utf-8")
    assert all(r.ok for r in ingest(ws))
    resolve(ws)
    build(ws, AS_OF)
    t = read(ws, "C1").traits.model_dump()
    assert (t["products"], t["n_products"]) == ("debit_card", 1)
    build(ws, dt.datetime(2025, 9, 1))
    assert read(ws, "C1").traits.model_dump()["products"] == "debit_card|mortgage"

"""Visit analytics on a tiny workspace: visitor classes, catchment, dwell, purchases around visits,
non-customers apart, consent, and the bad input (an unknown place, an empty period)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from cx360.cli import app
from cx360.errors import ConfigError, NotFoundError
from cx360.identity.resolve import resolve
from cx360.profiles.build import build
from cx360.sources.ingest import ingest
from cx360.visits.service import visit_report
from cx360.workspace import Workspace

CRM = """\
id,phone,district
C1,+79160000001,Митино
C2,+79160000002,
C3,+79160000003,Арбат
"""

CONSENTS = """\
client,purpose,status,ts
C3,analytics,withdrawn,2025-01-01 00:00:00
"""


def _visit(i, ts, mall, dwell, *, phone, device, home=None):
    return {"id": f"v{i}", "ts": ts, "name": "store_visit", "channel": "mall", "phone": phone, "device": device,
            "mall": mall, "dwell": dwell, "home": home}  # fmt: skip


def _pay(i, ts, customer, amount, category):
    return {"id": f"p{i}", "ts": ts, "name": "card_payment", "channel": "pos", "customer": customer,
            "amount": amount, "category": category}  # fmt: skip


EVENTS = [
    # Anna (C1): three visits to Mall A; a restaurant bill during the second, a fuel bill days later
    _visit(1, "2025-06-01T10:00:00Z", "Mall A", 30, phone="+79160000001", device="a1"),
    _visit(2, "2025-06-05T10:00:00Z", "Mall A", 90, phone="+79160000001", device="a1"),
    _pay(1, "2025-06-05T11:00:00Z", "C1", 1500.0, "Restaurants"),
    _pay(2, "2025-06-09T11:00:00Z", "C1", 900.0, "Fuel"),
    _visit(3, "2025-06-20T10:00:00Z", "Mall A", 200, phone="+79160000001", device="a1"),
    # Boris (C2): once, to Mall B; no district on his record, the wifi form's says Бутово
    _visit(4, "2025-06-03T12:00:00Z", "Mall B", 10, phone="+79160000002", device="b1", home="Бутово"),
    # a stranger: a device and a phone no CRM record holds, twice at Mall A
    _visit(5, "2025-06-02T15:00:00Z", "Mall A", 45, phone="+79580012345", device="s1", home="Марьино"),
    _visit(6, "2025-06-10T15:00:00Z", "Mall A", 50, phone="+79580012345", device="s1", home="Марьино"),
    # Vera (C3) withdrew analytics: her visit is not counted
    _visit(7, "2025-06-04T12:00:00Z", "Mall A", 60, phone="+79160000003", device="c1"),
    # a device alone, without a phone: it reaches no profile, and is reported as not counted
    _visit(8, "2025-06-06T12:00:00Z", "Mall B", 20, phone=None, device="lone"),
]

CONFIG = """
[workspace]
name = "t"
default_region = "RU"

[identity]
probabilistic = false

[segmentation]
clusters = 0
rfm = false

[visits]
regular_per_month = 3
purchase_window_minutes = 30

[[sources]]
name = "crm"
kind = "csv"
path = "data/crm.csv"
[sources.records]
record_id = "id"
identifiers = { customer_no = "id", phone = "phone" }
attributes = { district = "district" }

[[sources]]
name = "activity"
kind = "jsonl"
path = "data/activity.jsonl"
[sources.events]
event_id = "id"
timestamp = { column = "ts", type = "timestamp" }
name = "name"
channel = "channel"
amount = { column = "amount", type = "float" }
identifiers = { customer_no = "customer", phone = "phone", device_id = "device" }
properties = { mall = "mall", dwell_minutes = { column = "dwell", type = "int" }, home_district = "home", category = "category" }

[[sources]]
name = "prefs"
kind = "csv"
path = "data/consents.csv"
[sources.consents]
timestamp = { column = "ts", type = "timestamp" }
purpose = "purpose"
status = "status"
identifiers = { customer_no = "client" }
"""  # noqa: E501

runner = CliRunner()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("visits")
    (root / "data").mkdir()
    (root / "data" / "crm.csv").write_text(CRM)
    (root / "data" / "consents.csv").write_text(CONSENTS)
    (root / "data" / "activity.jsonl").write_text("\n".join(json.dumps(e) for e in EVENTS) + "\n")
    (root / "cx360.toml").write_text(CONFIG)
    with Workspace(root) as ws:
        ingest(ws)
        resolve(ws)
        build(ws)
    return root


@pytest.fixture(scope="module")
def report(root):
    with Workspace(root) as ws:
        return visit_report(ws)


def test_visitors_by_kind_with_non_customers_apart(report):
    # the default period runs from the first visit's day to the day after the last one: 20 days
    assert (report.since, report.until) == (dt.datetime(2025, 6, 1), dt.datetime(2025, 6, 21))
    assert (report.visits, report.visitors) == (6, 3)
    assert (report.customers, report.non_customers, report.non_customer_visits) == (2, 1, 2)
    # 3 a month over 20 days: at least 2 visits; Anna's 3 make her regular, the stranger's 2 too
    assert report.thresholds["regular_min_visits"] == 2
    assert report.frequency == {
        "regular": {"customers": 1, "non_customers": 1},
        "occasional": {"customers": 0, "non_customers": 0},
        "one_time": {"customers": 1, "non_customers": 0},
    }
    assert report.not_counted == {"visits_without_profile": 1, "visitors_without_analytics_consent": 1}  # Vera


def test_catchment_takes_the_record_then_the_visit(report):
    got = {r["district"]: (r["customers"], r["non_customers"]) for r in report.catchment}
    assert got == {"Митино": (1, 0), "Бутово": (1, 0), "Марьино": (0, 1)}


def test_dwell_distribution(report):
    d = report.dwell
    assert d["visits_with_dwell"] == 6
    assert d["minutes"]["p50"] == pytest.approx(47.5)
    hist = {b["bucket"]: b["visits"] for b in d["histogram"]}
    assert hist == {"under 15 min": 1, "15-30 min": 0, "30-60 min": 3, "1-2 h": 1, "2-4 h": 1, "4 h and more": 0}


def test_purchases_around_visits_only(report):
    p = report.purchases
    # the restaurant bill fell within the second visit; the fuel bill four days later did not
    assert p["rows"] == [{"category": "Restaurants", "payments": 1, "amount": 1500.0, "buyers": 1}]
    assert p["window_minutes"] == 30


def test_one_place_and_a_period(root):
    with Workspace(root) as ws:
        r = visit_report(ws, "Mall A", dt.datetime(2025, 6, 2), dt.datetime(2025, 6, 11))
    # the stranger twice, Anna once (her 5 June visit); Vera is not counted
    assert (r.visits, r.customers, r.non_customers) == (3, 1, 1)
    assert r.places == []
    assert r.frequency["one_time"] == {"customers": 1, "non_customers": 0}


def test_a_period_without_visits_is_empty_not_an_error(root):
    with Workspace(root) as ws:
        r = visit_report(ws, since=dt.datetime(2024, 1, 1), until=dt.datetime(2024, 2, 1))
    assert (r.visits, r.visitors, r.catchment, r.purchases["rows"]) == (0, 0, [], [])


def test_bad_input(root):
    with Workspace(root) as ws:
        with pytest.raises(NotFoundError, match="no visits to a place named 'Mall Z'; places: Mall A, Mall B"):
            visit_report(ws, "Mall Z")
        with pytest.raises(ConfigError, match="empty period"):
            visit_report(ws, since=dt.datetime(2025, 6, 5), until=dt.datetime(2025, 6, 5))
        with pytest.raises(ConfigError, match="category, merchant"):
            visit_report(ws, purchases_by="colour")


def test_cli(root):
    res = runner.invoke(app, ["visits", "show", "-w", str(root), "--place", "Mall B", "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert (doc["place"], doc["visits"], doc["catchment"][0]["district"]) == ("Mall B", 1, "Бутово")
    # `cx360` prints these errors as one line and exits 1
    res = runner.invoke(app, ["visits", "show", "-w", str(root), "--place", "Mall Z"])
    assert isinstance(res.exception, NotFoundError) and "places: Mall A, Mall B" in str(res.exception)
    res = runner.invoke(app, ["visits", "show", "-w", str(root), "--since", "2025-07-01", "--until", "2025-06-01"])
    assert isinstance(res.exception, ConfigError) and "empty period" in str(res.exception)
    res = runner.invoke(app, ["visits", "show", "-w", str(root), "--since", "June"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["visits", "places", "-w", str(root), "--format", "json"])
    assert json.loads(res.stdout) == ["Mall A", "Mall B"]


def test_the_demo_world_has_visitors_who_are_not_customers(tmp_path):
    import pandas as pd

    from cx360.demo.world import generate_world

    world = generate_world(tmp_path / "w", customers=60, seed=5)
    visits = pd.read_csv(world.out_dir / "data" / "mall_visits.csv", sep=";", dtype=str)
    truth = pd.read_parquet(world.out_dir / "truth" / "mall_visitors.parquet")
    strangers = pd.read_parquet(world.out_dir / "truth" / "strangers.parquet")
    assert len(strangers) == 12 and visits.visit_id.is_unique and set(truth.visit_id) == set(visits.visit_id)
    theirs = visits[visits.visit_id.isin(truth.visit_id[~truth.customer])]
    assert len(theirs) > 0 and set(theirs.wifi_phone) <= set(strangers.mobile)
    crm = pd.read_csv(world.out_dir / "data" / "crm_cards.csv", dtype=str)
    assert not set(theirs.wifi_phone) & set(crm.phone)  # no CRM knows them


@pytest.mark.spark
def test_visits_on_spark_equal_duckdb(root, report, spark_twin):
    spark = spark_twin(root, ("events", "profile_events", "profiles", "consents", "identity_map"))
    period = {"since": report.since, "until": report.until}
    assert visit_report(spark, **period) == report

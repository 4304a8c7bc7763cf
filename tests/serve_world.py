"""A tiny served workspace shared by test_api.py and test_dashboard.py: two CRM customers,
a handful of events, and the optional tables (scores, segments) that other stages write."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

CRM = """\
id,email,phone,card,first,last,dob,city
C1,Anna@X.ru,+79160000001,TK1,Анна,Петрова,1990-03-15,Moscow
C2,boris@x.ru,+79160000002,,Борис,Сидоров,1980-01-01,Kazan
"""
EVENTS = [
    {"id": "e1", "ts": "2025-06-01T10:00:00Z", "name": "card_payment", "channel": "pos", "card": "TK1", "amount": 10.0, "category": "Groceries"},
    {"id": "e2", "ts": "2025-06-02T10:00:00Z", "name": "call", "channel": "call_centre", "customer": "C1", "reason": "fees"},
    {"id": "e3", "ts": "2025-06-03T10:00:00Z", "name": "offer_made", "channel": "sms", "customer": "C1", "offer": "deposit"},
    {"id": "e4", "ts": "2025-06-04T10:00:00Z", "name": "offer_accepted", "channel": "sms", "customer": "C1", "offer": "deposit"},
    {"id": "e5", "ts": "2025-06-05T10:00:00Z", "name": "login", "channel": "web", "customer": "C1", "cookie": "ck1"},
    {"id": "e6", "ts": "2025-06-05T10:00:00Z", "name": "page_viewed", "channel": "web", "cookie": "ck1"},
    {"id": "e7", "ts": "2025-06-06T10:00:00Z", "name": "offer_made", "channel": "email", "customer": "C2", "offer": "credit_card"},
]
CONFIG = """\
[workspace]
name = "served"
default_region = "RU"

[engine]
kind = "duckdb"

[identity]
probabilistic = false

[[sources]]
name = "crm"
kind = "csv"
path = "data/crm.csv"
[sources.records]
record_id = "id"
identifiers = { customer_no = "id", email = "email", phone = "phone", card_token = "card" }
attributes = { first_name = "first", last_name = "last", birth_date = { column = "dob", type = "date" }, city = "city" }

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
identifiers = { customer_no = "customer", card_token = "card", cookie_id = "cookie" }
properties = { reason = "reason", offer = "offer", category = "category" }
"""


def build_world(root: Path) -> Path:
    """Ingest, resolve and build profiles in `root`; returns the warehouse path."""
    import datetime as dt

    from cx360.identity.resolve import resolve
    from cx360.profiles.build import build
    from cx360.sources.ingest import ingest
    from cx360.workspace import Workspace

    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "cx360.toml").write_text(CONFIG, encoding="utf-8")
    (root / "data" / "crm.csv").write_text(textwrap.dedent(CRM), encoding="utf-8")
    (root / "data" / "activity.jsonl").write_text("\n".join(json.dumps(e) for e in EVENTS) + "\n", encoding="utf-8")
    with Workspace(root) as ws:
        ingest(ws)
        resolve(ws)
        build(ws, dt.datetime(2025, 7, 1))
    return root / "warehouse.duckdb"


def add_scores_and_segments(warehouse: Path) -> None:
    """Write the tables the scoring and segment stages add, as they would."""
    import duckdb

    with duckdb.connect(str(warehouse)) as con:
        con.execute("""CREATE TABLE profile_scores AS SELECT profile_id,
                         CASE WHEN first_name = 'Анна' THEN 1200.0 ELSE 80.0 END::DOUBLE AS clv_12m,
                         CASE WHEN first_name = 'Анна' THEN 0.9 ELSE 0.3 END::DOUBLE AS p_alive,
                         0.5::DOUBLE AS influence_score,
                         CASE WHEN first_name = 'Анна' THEN 'high' ELSE 'low' END AS value_tier,
                         CASE WHEN first_name = 'Анна' THEN 'recent card payments' ELSE 'no activity for 25 days' END AS churn_reasons
                       FROM profiles""")
        con.execute("""CREATE TABLE segments AS SELECT * FROM (VALUES
                         ('high_value', 'CLV in the top decile', 1, TIMESTAMP '2025-07-01 02:00', 'ok', NULL),
                         ('at_risk', 'p_alive under 0.5', 1, TIMESTAMP '2025-07-01 02:00', 'ok', NULL))
                       AS t(name, description, size, evaluated_at, status, error)""")
        con.execute("""CREATE TABLE segment_members AS
                       SELECT CASE WHEN first_name = 'Анна' THEN 'high_value' ELSE 'at_risk' END AS segment, profile_id,
                              TIMESTAMP '2025-07-01 02:00' AS entered_at, NULL::TIMESTAMP AS exited_at FROM profiles""")

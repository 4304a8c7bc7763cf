"""A tiny served workspace shared by test_api.py and test_dashboard.py: two CRM customers,
a handful of events, their profiles and scores, and two declared segments."""

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
    {
        "id": "e1",
        "ts": "2025-06-01T10:00:00Z",
        "name": "card_payment",
        "channel": "pos",
        "card": "TK1",
        "amount": 10.0,
        "category": "Groceries",
    },
    {
        "id": "e2",
        "ts": "2025-06-02T10:00:00Z",
        "name": "call",
        "channel": "call_centre",
        "customer": "C1",
        "reason": "fees",
    },
    {
        "id": "e3",
        "ts": "2025-06-03T10:00:00Z",
        "name": "offer_made",
        "channel": "sms",
        "customer": "C1",
        "offer": "deposit",
    },
    {
        "id": "e4",
        "ts": "2025-06-04T10:00:00Z",
        "name": "offer_accepted",
        "channel": "sms",
        "customer": "C1",
        "offer": "deposit",
    },
    {"id": "e5", "ts": "2025-06-05T10:00:00Z", "name": "login", "channel": "web", "customer": "C1", "cookie": "ck1"},
    {"id": "e6", "ts": "2025-06-05T10:00:00Z", "name": "page_viewed", "channel": "web", "cookie": "ck1"},
    {
        "id": "e7",
        "ts": "2025-06-06T10:00:00Z",
        "name": "offer_made",
        "channel": "email",
        "customer": "C2",
        "offer": "credit_card",
    },
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

[segmentation]
rfm = false
clusters = 0

[[segments]]
name = "high_value"
description = "pays by card"
where = "spend_total > 5"

[[segments]]
name = "at_risk"
description = "no card payments"
where = "txn_count = 0"
"""


def build_world(root: Path, *, config: str = CONFIG, events: list[dict] = EVENTS) -> Path:
    """Ingest, resolve and build profiles in `root` (of CONFIG and EVENTS unless told); returns the warehouse."""
    import datetime as dt

    from cx360.identity.resolve import resolve
    from cx360.profiles.build import build
    from cx360.sources.ingest import ingest
    from cx360.workspace import Workspace

    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "cx360.toml").write_text(config, encoding="utf-8")
    (root / "data" / "crm.csv").write_text(textwrap.dedent(CRM), encoding="utf-8")
    (root / "data" / "activity.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n", encoding="utf-8")
    with Workspace(root) as ws:
        ingest(ws)
        resolve(ws)
        build(ws, dt.datetime(2025, 7, 1))
    return root / "warehouse.duckdb"


def evaluate_segments(root: Path) -> None:
    """Run the archetypes and segments stages, as `cx360 run` does after the profiles."""
    from cx360.pipeline import run
    from cx360.workspace import Workspace

    with Workspace(root) as ws:
        assert run(ws, "archetypes+").ok


def write_churn_scores(root: Path) -> dict[str, float]:
    """Churn scores for both customers, written as `cx360 churn score` writes them (two customers are
    too few to train the churn model on); returns each profile's risk."""
    import datetime as dt

    import pyarrow as pa

    from cx360 import schema
    from cx360.workspace import Workspace

    with Workspace(root) as ws:
        pids = sorted(
            r["profile_id"] for r in ws.engine.table("profiles").select("profile_id").to_pyarrow().to_pylist()
        )
        as_of, now = dt.datetime(2025, 7, 1), dt.datetime(2025, 7, 2, 9, 30)
        rows = {
            "profile_id": pids,
            "as_of": [as_of] * len(pids),
            "churn_risk": [0.125, 0.8][: len(pids)],
            "churn_reasons": ["days_since_txn; calls_90d", "txn_count"][: len(pids)],
            "horizon_days": [90] * len(pids),
            "scored_at": [now] * len(pids),
        }
        ws.engine.replace("churn_scores", pa.table(rows, schema=schema.ibis_schema("churn_scores").to_pyarrow()))
    return dict(zip(rows["profile_id"], rows["churn_risk"], strict=True))


def world_copy(root: Path, cache: Path) -> Path:
    """The world with its segments evaluated, built once into `cache` and copied to `root` (a copy
    costs milliseconds, a build seconds); returns the warehouse path."""
    import shutil

    if not (cache / "warehouse.duckdb").exists():
        build_world(cache)
        evaluate_segments(cache)
    shutil.copytree(cache, root, dirs_exist_ok=True)
    return root / "warehouse.duckdb"

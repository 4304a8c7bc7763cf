"""The profile stage on DuckDB at scale, next to the floor: one DuckDB scan-and-aggregate of the same
events (count, sum, last time per customer) over the same table.

    python benchmarks/bench_profiles.py --customers 1000000 --events 50000000

The workspace is synthesised directly in DuckDB (identity already resolved: one CRM record, a customer
number, a card token and a cookie per person), with a realistic mix of events: card payments and ATM
withdrawals with category and district, web and app events, offers and answers, calls, visits, posts.
It is kept in benchmarks/.data/ so repeated runs skip the build.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
from pathlib import Path

import duckdb

from cx360.profiles import build as profile_build
from cx360.workspace import Workspace, init_workspace

DATA = Path(__file__).parent / ".data"
AS_OF = dt.datetime(2026, 1, 1)
# name, channel, identifier column, share of events
MIX = [
    ("card_payment", "pos", "card_token", 0.62),
    ("atm_withdrawal", "atm", "card_token", 0.04),
    ("page_viewed", "web", "cookie_id", 0.12),
    ("login", "mobile_app", "customer_no", 0.05),
    ("form_abandoned", "web", "cookie_id", 0.01),
    ("offer_rejected", "sms", "customer_no", 0.03),
    ("offer_ignored", "email", "customer_no", 0.04),
    ("offer_accepted", "push", "customer_no", 0.01),
    ("call", "call_centre", "customer_no", 0.03),
    ("store_visit", "mall", "customer_no", 0.04),
    ("social_post", "social", "customer_no", 0.01),
]


def synthesise(root: Path, customers: int, events: int) -> None:
    init_workspace(root, name="bench", region="RU", force=True)
    with Workspace(root) as ws:
        ws.engine.ensure_canonical_tables()
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"""
        INSERT INTO profiles (profile_id, first_name, last_name, birth_date, records, sources)
        SELECT 'P' || lpad(i::VARCHAR, 8, '0'), 'Name' || i, 'Surname' || (i % 5000),
               DATE '1950-01-01' + (i * 7919 % 18000)::INT, 1, 'crm'
        FROM range({customers}) r(i)""")
    con.execute(f"""
        INSERT INTO records (source, record_id, customer_no, card_token, first_name, extra,
            updated_at, record_hash, batch_id, row_number, ingested_at)
        SELECT 'crm', 'C' || i, 'C' || i, 'T' || i, 'Name' || i,
               '{{"products":"' || CASE i % 3 WHEN 0 THEN 'debit_card|deposit'
                   WHEN 1 THEN 'debit_card' ELSE 'credit_card|debit_card|mortgage' END || '"}}',
               TIMESTAMP '2024-01-01', md5(i::VARCHAR), 'b0', i + 1, now()
        FROM range({customers}) r(i)""")
    con.execute(f"""
        INSERT INTO identity_map (node, kind, profile_id, first_seen_at)
        SELECT node, kind, 'P' || lpad(i::VARCHAR, 8, '0'), now() FROM (
            SELECT i, 'record:crm:C' || i AS node, 'record' AS kind FROM range({customers}) r(i)
            UNION ALL SELECT i, 'customer_no:C' || i, 'customer_no' FROM range({customers}) r(i)
            UNION ALL SELECT i, 'card_token:T' || i, 'card_token' FROM range({customers}) r(i)
            UNION ALL SELECT i, 'cookie_id:K' || i, 'cookie_id' FROM range({customers}) r(i))""")
    cases, lo = [], 0.0
    for name, channel, ident, share in MIX:
        cases.append((lo, lo + share, name, channel, ident))
        lo += share

    def pick(col: int) -> str:
        return (
            "CASE " + " ".join(f"WHEN u < {hi:.4f} THEN '{v}'" for _, hi, *vals in cases for v in [vals[col]]) + " END"
        )

    con.execute(f"""
        INSERT INTO events (event_id, ts, source, name, channel, customer_no, card_token, cookie_id,
            amount, properties, batch_id, row_number, ingested_at)
        WITH base AS (
            SELECT i, (hash(i) % {customers})::BIGINT AS c, (hash(i * 31) % 1000000) / 1000000.0 AS u,
                   TIMESTAMP '2025-01-01' + to_seconds(hash(i * 17) % (365 * 86400)) AS ts
            FROM range({events}) r(i))
        SELECT 'e' || i, ts, 'bench', {pick(0)} AS name, {pick(1)} AS channel,
               CASE WHEN {pick(2)} = 'customer_no' THEN 'C' || c END,
               CASE WHEN {pick(2)} = 'card_token' THEN 'T' || c END,
               CASE WHEN {pick(2)} = 'cookie_id' THEN 'K' || c END,
               CASE WHEN u < 0.66 THEN round(5 + (hash(i * 13) % 20000) / 100.0, 2) END,
               CASE WHEN u < 0.62 THEN '{{"category":"'
                   || ['Groceries','Restaurants','Fuel','Digital games','Clothing','Pharmacies'][1 + c % 6]
                   || '","district":"' || ['Арбат','Митино','Бутово','Тверской'][1 + (i % 4)] || '"}}'
                    WHEN u < 0.78 THEN '{{"path":"/cards"}}'
                    WHEN u < 0.84 THEN '{{"form":"loan_application","field":"income"}}'
                    WHEN u < 0.92 THEN '{{"offer":"' || ['credit_card','auto_loan','deposit'][1 + i % 3] || '"}}'
                    WHEN u < 0.95 THEN '{{"reason":"' || ['fees','card_blocked','app_problem'][1 + i % 3] || '"}}'
                    WHEN u < 0.99 THEN '{{"mall":"Авиапарк","dwell_minutes":'
                        || (10 + i % 120) || ',"home_district":"Митино"}}'
                    ELSE '{{"text":"Great service","followers":' || (i % 500) || '}}' END,
               'b0', i + 1, now()
        FROM base""")
    con.close()


def floor(path: Path) -> float:
    con = duckdb.connect(str(path), read_only=True)
    began = time.perf_counter()
    con.execute("""
        CREATE TEMP TABLE agg AS
        SELECT coalesce(customer_no, card_token, cookie_id) AS who, count(*) AS n, sum(amount) AS spend, max(ts) AS last
        FROM events GROUP BY ALL""")
    seconds = time.perf_counter() - began
    con.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=50_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    root = DATA / f"profiles-{args.customers}-{args.events}"
    if not (root / "warehouse.duckdb").exists():
        began = time.perf_counter()
        synthesise(root, args.customers, args.events)
        print(
            f"synthesised {args.customers:,} customers and {args.events:,} "
            f"events in {time.perf_counter() - began:.0f} s"
        )
    floors, stages, parts = [], [], []
    for _ in range(args.repeat):
        floors.append(floor(root / "warehouse.duckdb"))
        with Workspace(root) as ws:
            began = time.perf_counter()
            report = profile_build.build(ws, AS_OF)
            stages.append(time.perf_counter() - began)
            parts.append(report.seconds)
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, DuckDB {duckdb.__version__}")
    print(
        f"profiles: {report.profiles:,}; events: {report.events:,} (attributed {report.events_attributed:,}); "
        f"median of {args.repeat}"
    )
    print(f"{'':40}{'seconds':>10}")
    print(f"{'floor: DuckDB scan-and-aggregate':40}{statistics.median(floors):>10.1f}")
    print(f"{'cx360 profile stage':40}{statistics.median(stages):>10.1f}")
    for step in parts[0]:
        print(f"{'  ' + step:40}{statistics.median(p[step] for p in parts):>10.1f}")
    print(f"ratio profile stage / floor: {statistics.median(stages) / statistics.median(floors):.1f}")


if __name__ == "__main__":
    main()

"""Time to erase one person from a workspace of N profiles, with the verification scan's result.

The warehouse is written directly in SQL (the synthetic bank's generator would take hours at a
million people): per person two CRM records (e-mail, phone, name, card token), EVENTS card payments
with their profile events, five identity nodes and four links, a golden profile, traits and a
segment membership; plus a serving index. One person is then erased with `cx360.erasure.erase`,
which deletes their rows, rewrites the whole DuckDB file, rebuilds the serving index and scans every
file of the workspace.

    python benchmarks/bench_erasure.py --profiles 1000000 --events 5
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from cx360.api import index
from cx360.erasure.erase import erase
from cx360.workspace import Workspace

CONFIG = """\
[workspace]
name = "bench"
default_region = "RU"

[engine]
kind = "duckdb"
path = "warehouse.duckdb"

[[sources]]
name = "crm_core"
kind = "csv"
path = "data/crm_core.csv"
[sources.records]
record_id = "id"
identifiers = { email = "email", phone = "phone" }

[[sources]]
name = "cards"
kind = "csv"
path = "data/cards.csv"
[sources.events]
event_id = "id"
timestamp = "ts"
name = { value = "card_payment" }
identifiers = { card_token = "card" }
"""


def build(root: Path, profiles: int, events: int) -> dict[str, int]:
    (root / "data").mkdir(parents=True)
    (root / "cx360.toml").write_text(CONFIG, encoding="utf-8")
    with Workspace(root) as ws:
        ws.engine  # noqa: B018 - creates the canonical tables
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    people = f"SELECT range AS i, lpad(range::VARCHAR, 7, '0') AS n FROM range({profiles})"
    con.execute(f"CREATE TEMP TABLE people AS {people}")
    ts = "TIMESTAMP '2025-01-01' + INTERVAL (i % 300) DAY"
    con.execute(f"""INSERT INTO records (source, record_id, email, phone, first_name, last_name, record_hash,
        batch_id, row_number, ingested_at)
        SELECT 'crm_core', 'C' || n, 'person' || n || '@mail.ru', '+7903' || n, 'Имя' || n, 'Фамилия' || n,
               md5('a' || n), 'b1', i + 1, {ts} FROM people
        UNION ALL SELECT 'crm_cards', 'CB-' || n, 'person' || n || '@mail.ru', NULL, 'Name' || n, 'Surname' || n,
               md5('b' || n), 'b2', i + 1, {ts} FROM people""")
    con.execute(f"""INSERT INTO events (event_id, ts, source, name, channel, card_token, amount, properties,
        batch_id, row_number, ingested_at)
        SELECT 'tx-' || n || '-' || e, {ts} + INTERVAL (e) HOUR, 'cards', 'card_payment', 'pos', 'TK' || n,
               (i % 97) + e, '{{"mcc": "5411", "merchant": "shop ' || (i % 500) || '"}}', 'b3', i * {events} + e,
               {ts} FROM people, range({events}) t(e)""")
    con.execute("""INSERT INTO identity_map SELECT node, kind, 'P' || n, TIMESTAMP '2025-01-01' FROM (
        SELECT n, 'record:crm_core:C' || n AS node, 'record' AS kind FROM people
        UNION ALL SELECT n, 'record:crm_cards:CB-' || n, 'record' FROM people
        UNION ALL SELECT n, 'email:person' || n || '@mail.ru', 'email' FROM people
        UNION ALL SELECT n, 'phone:+7903' || n, 'phone' FROM people
        UNION ALL SELECT n, 'card_token:TK' || n, 'card_token' FROM people)""")
    con.execute("""INSERT INTO identity_links SELECT "left", "right", 'record_identifier', 1.0, '{}', 'active',
        NULL, TIMESTAMP '2025-01-01' FROM (
        SELECT 'record:crm_core:C' || n AS "left", 'email:person' || n || '@mail.ru' AS "right" FROM people
        UNION ALL SELECT 'record:crm_cards:CB-' || n, 'email:person' || n || '@mail.ru' FROM people
        UNION ALL SELECT 'record:crm_core:C' || n, 'phone:+7903' || n FROM people
        UNION ALL SELECT 'record:crm_cards:CB-' || n, 'card_token:TK' || n FROM people)""")
    con.execute("""INSERT INTO profile_ids SELECT 'P' || n, TIMESTAMP '2025-01-01', 'active', NULL,
        TIMESTAMP '2025-01-01' FROM people""")
    con.execute("""INSERT INTO profiles (profile_id, first_name, last_name, identifiers, records, sources)
        SELECT 'P' || n, 'Имя' || n, 'Фамилия' || n,
               '{"email": ["person' || n || '@mail.ru"], "phone": ["+7903' || n || '"]}', 2, 'crm_core,crm_cards'
        FROM people""")
    con.execute("""INSERT INTO profile_events (profile_id, event_id, ts, source, name, channel, amount, properties)
        SELECT 'P' || substr(event_id, 4, 7), event_id, ts, source, name, channel, amount, properties FROM events""")
    con.execute("INSERT INTO profile_traits (profile_id, as_of) SELECT 'P' || n, TIMESTAMP '2026-01-01' FROM people")
    con.execute("""INSERT INTO segment_members SELECT 'big_spenders', 'P' || n, TIMESTAMP '2026-01-01', NULL
        FROM people WHERE i % 3 = 0""")
    con.execute("CHECKPOINT")
    counts = {
        t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
        for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() ORDER BY 1"
        ).fetchall()
    }
    con.close()
    return {t: n for t, n in counts.items() if n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=5, help="card payments per person")
    parser.add_argument("--keep", type=Path, help="build the workspace here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="cx360-erasure-"))
    try:
        started = time.perf_counter()
        counts = build(root, args.profiles, args.events)
        built = time.perf_counter() - started
        warehouse = root / "warehouse.duckdb"
        started = time.perf_counter()
        index.ensure(warehouse)
        indexed = time.perf_counter() - started
        size = warehouse.stat().st_size
        print(f"workspace: {args.profiles:,} profiles, {sum(counts.values()):,} rows, warehouse {size / 1e6:,.0f} MB")
        print(f"  built in {built:.1f} s, serving index in {indexed:.1f} s")
        for table, n in counts.items():
            print(f"  {table:<18} {n:>12,}")
        who = f"person{args.profiles // 2:07d}@mail.ru"
        started = time.perf_counter()
        receipt = erase(root, who, "benchmark")
        seconds = time.perf_counter() - started
        v = receipt["verification"]
        removed = receipt["stores"][0]["rows_removed"]
        print(f"erase one person: {seconds:.1f} s wall ({receipt['seconds']:.1f} s in its steps)")
        for step, s in receipt["step_seconds"].items():
            print(f"  {step:<11} {s:>8.1f} s")
        print(f"  rows removed: {sum(removed.values())} ({', '.join(f'{t} {n}' for t, n in removed.items() if n)})")
        print(
            f"verification scan: {v['terms']} values, {v['files_scanned']} files, {v['bytes_scanned'] / 1e6:,.0f} MB, "
            f"{v['tables_scanned']} tables: {v['hits']} hits"
        )
        print(f"warehouse after: {warehouse.stat().st_size / 1e6:,.0f} MB (rewritten)")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

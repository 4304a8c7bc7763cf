"""Visit analytics, social listening and habits over time: their run times on a workspace, and visit
analytics at scale next to a plain scan of the same events.

    python benchmarks/bench_visits.py --workspace cx360-demo --repeat 5
    python benchmarks/bench_visits.py --visits 1000000 4000000 --people 200000 --repeat 3

With `--workspace` (a demo built by `cx360 demo`, with its archetype history): the median of the
repeats of `visit_report` (every place, the whole history), `listening.build` (the stage),
`listening.trend` (per month), `listening.leads`, and `habits_report`.

With `--visits`: for each size, N seeded `store_visit` events (five places, a dwell time and a home
district each) and N card payments for P people, a fifth of them without a CRM record, in a fresh
DuckDB workspace; times `cx360.visits.compute.run` over everything and, side by side, a scan that
counts the same events by place: the floor any report pays for reading its events. Prints medians
and the ratio of the two.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from cx360.config import DuckDBEngine
from cx360.engine import DuckDB
from cx360.visits import compute

FILL_PROFILES = """
INSERT INTO profiles (profile_id, records, district)
SELECT 'P' || lpad(CAST(i AS VARCHAR), 8, '0'), CASE WHEN i % 5 = 0 THEN 0 ELSE 1 END,
       CASE WHEN i % 5 = 0 THEN NULL ELSE 'district ' || CAST(i % 12 AS VARCHAR) END
FROM range({people}) t(i)
"""

FILL_EVENTS = """
INSERT INTO profile_events
SELECT 'P' || lpad(CAST(hash(i, {seed}) % {people} AS VARCHAR), 8, '0') AS profile_id,
       '{kind}' || i AS event_id,
       TIMESTAMP '2025-01-01' + to_seconds(CAST(hash(i, {seed} + 1) % (365 * 86400) AS BIGINT)) AS ts,
       'bench' AS source,
       '{name}' AS name,
       '{channel}' AS channel,
       {amount} AS amount,
       {properties} AS properties
FROM range({events}) t(i)
"""

VISIT = {
    "kind": "v",
    "name": "store_visit",
    "channel": "mall",
    "amount": "NULL",
    "properties": """'{{"mall": "mall ' || CAST(hash(i, {seed} + 2) % 5 AS VARCHAR) || '", "dwell_minutes": '
        || CAST(5 + hash(i, {seed} + 3) % 240 AS VARCHAR) || ', "home_district": "district '
        || CAST(hash(i, {seed} + 4) % 12 AS VARCHAR) || '"}}'""",
}
PAYMENT = {
    "kind": "p",
    "name": "card_payment",
    "channel": "pos",
    "amount": "CAST(hash(i, {seed} + 5) % 5000 AS DOUBLE)",
    "properties": """'{{"category": "category ' || CAST(hash(i, {seed} + 6) % 9 AS VARCHAR) || '"}}'""",
}


def _median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def at_scale(events: int, people: int, repeat: int, seed: int) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = DuckDB(DuckDBEngine(), Path(tmp))
        engine.ensure_canonical_tables()
        engine.con.raw_sql(FILL_PROFILES.format(people=people))
        for kind in (VISIT, PAYMENT):
            fields = {k: v.format(seed=seed) for k, v in kind.items()}
            engine.con.raw_sql(FILL_EVENTS.format(events=events, people=people, seed=seed, **fields))
        pe = engine.table("profile_events")
        allowed = engine.table("profiles").select("profile_id")
        period = compute.Period(dt.datetime(2025, 1, 1), dt.datetime(2026, 1, 1))

        def report():
            return compute.run(engine, pe, allowed, period, None, regular_per_month=1.0, window_minutes=60)

        def scan():
            v = compute.visits(engine, pe)
            return engine.to_arrow(v.group_by("place").aggregate(n=v.count()), step="bench: scan")

        visitors = report().visitors
        took, floor = _median_seconds(report, repeat), _median_seconds(scan, repeat)
        engine.close()
        return took, floor, visitors


def on_workspace(root: Path, repeat: int) -> list[tuple[str, float]]:
    from cx360.listening import build, service
    from cx360.scoring.habits import habits_report
    from cx360.visits.service import visit_report
    from cx360.workspace import Workspace

    with Workspace(root) as ws:
        steps = [
            ("visits show (every place, whole history)", lambda: visit_report(ws)),
            ("listening build (the stage)", lambda: build.build(ws.engine, ws.config.listening)),
            ("listening show (per month)", lambda: service.trend(ws)),
            ("listening export (leads)", lambda: service.leads(ws)),
            ("habits show", lambda: habits_report(ws)),
        ]
        return [(name, _median_seconds(fn, repeat)) for name, fn in steps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path)
    parser.add_argument("--visits", type=int, nargs="*", default=[])
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.workspace:
        print(f"workspace {args.workspace}: median of {args.repeat}")
        for name, seconds in on_workspace(args.workspace, args.repeat):
            print(f"  {name:45s} {seconds:8.3f} s")
    for n in args.visits:
        took, floor, visitors = at_scale(n, args.people, args.repeat, args.seed)
        print(
            f"{n:,} visits and {n:,} card payments, {args.people:,} people ({visitors:,} visitors): "
            f"visits report {took:.2f} s (median of {args.repeat}), scan of the visits {floor:.2f} s, "
            f"ratio {took / floor:.1f}x"
        )


if __name__ == "__main__":
    main()

"""A three-step funnel over many events on DuckDB, next to a plain scan of the same events.

    python benchmarks/bench_funnels.py --events 1000000 4000000 --people 200000 --repeat 3

For each size, writes N seeded events (`profile_events`: five event names, two channels, a path
property, over 90 days) for P people into a fresh DuckDB workspace, then times `cx360.funnels` on a
three-step funnel (a page with a property, a form start, a submission, within 7 days) and, side by
side, a scan that counts the same events by name: the floor any funnel pays for reading its events.
Prints the median of the repeats, events per second, the funnel's ratio to the scan, and a linear
extrapolation to 50M events from the largest size measured (the work is a sort per person and step,
so the real figure grows a little faster than linearly; the extrapolation says it is one).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from cx360.config import DuckDBEngine, FunnelSpec
from cx360.engine import DuckDB
from cx360.funnels.compute import run
from cx360.funnels.fields import EventFields

SPEC = FunnelSpec(
    name="bench",
    steps=["name = 'page_viewed' and path = '/cards'", "name = 'form_started'", "name = 'form_submitted'"],
    within="7d",
)

FILL = """
INSERT INTO profile_events
SELECT 'P' || lpad(CAST(hash(i, {seed}) % {people} AS VARCHAR), 8, '0') AS profile_id,
       'e' || i AS event_id,
       TIMESTAMP '2025-01-01' + to_seconds(CAST(hash(i, {seed} + 1) % (90 * 86400) AS BIGINT)) AS ts,
       'bench' AS source,
       ['page_viewed', 'page_viewed', 'page_viewed', 'form_started', 'form_submitted'][
           1 + CAST(hash(i, {seed} + 2) % 5 AS INTEGER)] AS name,
       CASE WHEN hash(i, {seed} + 3) % 2 = 0 THEN 'web' ELSE 'mobile_app' END AS channel,
       NULL AS amount,
       '{{"path": "' || ['/', '/cards', '/deposits'][1 + CAST(hash(i, {seed} + 4) % 3 AS INTEGER)] || '"}}'
           AS properties
FROM range({events}) t(i)
"""


def _median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(events: int, people: int, repeat: int, seed: int) -> tuple[float, float, list[int]]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = DuckDB(DuckDBEngine(), Path(tmp))
        engine.ensure_canonical_tables()
        engine.con.raw_sql(FILL.format(events=events, people=people, seed=seed))
        fields = EventFields(engine, ["path"])
        entered: list[int] = []

        def funnel() -> None:
            entered[:] = [s.entered for s in run(engine, SPEC, fields).steps]

        pe = engine.table("profile_events")
        scan = pe.group_by("name").aggregate(n=pe.count())
        funnel_s = _median_seconds(funnel, repeat)
        scan_s = _median_seconds(lambda: scan.to_pyarrow(), repeat)
        engine.close()
    return funnel_s, scan_s, entered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"three-step funnel, {args.people:,} people, median of {args.repeat} runs, DuckDB")
    print(f"{'events':>12} {'funnel s':>9} {'events/s':>12} {'scan s':>8} {'ratio':>6}  entered per step")
    last = None
    for n in args.events:
        funnel_s, scan_s, entered = measure(n, args.people, args.repeat, args.seed)
        print(f"{n:>12,} {funnel_s:>9.2f} {n / funnel_s:>12,.0f} {scan_s:>8.2f} {funnel_s / scan_s:>6.1f}  {entered}")
        last = (n, funnel_s)
    if last:
        n, s = last
        print(f"linear extrapolation to 50,000,000 events from {n:,}: {s * 50_000_000 / n:.0f} s (a lower bound)")


if __name__ == "__main__":
    main()

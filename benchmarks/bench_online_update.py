"""The cost of one incremental update: the stream processor alone, in this process, on a log it drains.

A fresh workspace with one segment (`seen`: events_total >= 1) and a trigger on entering it. The log
holds EVENTS track calls of PEOPLE people (cookies), in arrival order; the processor applies them in
micro-batches of --batch, as `cx360 serve` does, and the script prints the wall and CPU time per
event and per micro-batch (median of the batches), and the online store's size. Without HTTP, the
collector or other threads, this is the processor's own cost; bench_realtime.py measures it under load.

    python benchmarks/bench_online_update.py --events 20000 --people 1000
    python benchmarks/bench_online_update.py --online-url postgresql://postgres@127.0.0.1:PORT/cx360_test

With --online-url the online store is that PostgreSQL (`[online] url`), in a schema of its own, dropped
after.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_realtime import logged_workspace


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--online-url", help="a PostgreSQL for the online store ([online] url)")
    args = parser.parse_args()
    online, schema = "", None
    if args.online_url:
        import uuid

        import psycopg

        url = args.online_url.replace("postgresql+psycopg://", "postgresql://", 1)
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(f"CREATE SCHEMA {schema}")
        online = f'\n[online]\nurl = "{url}?options=-csearch_path%3D{schema}"\n'

    from cx360.online.compute import as_of_for
    from cx360.online.processor import Processor

    # a webhook nobody answers: nothing is delivered here
    _, ctx, feeds = logged_workspace("cx360-bench-online-", args.events, args.people, extra=online)
    proc = Processor(ctx.config, ctx.store.online, ctx.store, feeds, batch=args.batch)
    now = proc.clock()
    proc.slices.prepare(as_of_for(now, now))  # as the server does before its first event
    walls, cpus = [], []
    while True:
        wall, cpu = time.perf_counter(), time.process_time()
        done = proc.step()
        if not done:
            break
        walls.append((time.perf_counter() - wall) / done)
        cpus.append((time.process_time() - cpu) / done)
    print(f"online store: {ctx.store.online.where}")
    print(f"{proc.applied:,} events of {args.people:,} people in {proc.batches} micro-batches of <= {args.batch}")
    print(
        f"per event: wall {1000 * statistics.median(walls):.3f} ms, CPU {1000 * statistics.median(cpus):.3f} ms "
        f"(median over micro-batches); per micro-batch: {1000 * proc.seconds / proc.batches:.0f} ms"
    )
    path = ctx.store.online.path
    if path is not None:
        size = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
        print(f"online store: {size / 1e6:.1f} MB for {args.people:,} profiles and {proc.applied:,} events")
    ctx.close()
    if schema is not None:
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()

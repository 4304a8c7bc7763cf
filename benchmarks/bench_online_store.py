"""The online profile store's engines side by side, and its size per stream-touched profile.

Rows of the store's real shape: the stream processor applies EVENTS track calls of PEOPLE people to a
fresh workspace (as bench_online_update.py does), and its rows (documents, nodes, events, memberships,
timers) are the templates every synthetic profile below is cloned from, with its own ids.

1. Operations, on SQLite (WAL, the default file), PostgreSQL (--pg-url, default $CX360_TEST_PG_URL; a
   schema of its own, dropped after) and Redis (a redis-server the script starts on 127.0.0.1, when
   installed), each holding --loaded profiles, in rounds that alternate the engines:
     point read    OnlineStore.doc(pid) of a random profile (Redis: GET)
     point write   one profile's document replaced, in a write transaction of its own (Redis: SET)
     micro-batch   one write transaction of --batch events of as many profiles: the replay check, the
                   event, its node, the document, the timer, the offset (Redis: MULTI/EXEC of the same
                   writes, without the read inside the transaction, which Redis cannot hold)
   Medians per operation over the rounds. Durability as configured: SQLite synchronous=NORMAL (a
   commit survives a process crash, not a power cut), PostgreSQL's default (fsync at commit) and, as
   "postgresql async", with synchronous_commit = off (a crash of the machine may lose the last commits),
   Redis appendonly with appendfsync everysec.
2. Size: --profiles cloned profiles written to a fresh online.sqlite; its bytes on disk, per profile,
   and per million profiles.

    python benchmarks/bench_online_store.py --profiles 1000000
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
DATA = Path(__file__).parent / ".data" / "online-store"


def templates(events: int, people: int) -> list[dict]:
    """Each touched profile's rows as the stream processor wrote them: {table: [rows]} per profile."""
    from bench_realtime import logged_workspace

    from cx360.online.processor import Processor

    root, ctx, feeds = logged_workspace("cx360-bench-store-", events, people, paths=7)
    proc = Processor(ctx.config, ctx.store.online, ctx.store, feeds)
    while proc.step():
        pass
    store = ctx.store.online
    out = {}
    for table in ("docs", "nodes", "events", "members", "timers"):
        for r in store._rows(f"SELECT * FROM {table}"):
            out.setdefault(r["profile_id"], {}).setdefault(table, []).append(dict(r))
    ctx.close()
    shutil.rmtree(root.parent, ignore_errors=True)
    return list(out.values())


def clone(template: dict, n: int) -> dict[str, list[tuple]]:
    """Profile n's rows: the template's, with the profile id, event ids and nodes made its own."""
    old = template["docs"][0]["profile_id"]
    pid = f"P{n:09d}"

    def fix(value):
        return value.replace(old, pid) if isinstance(value, str) else value

    rows = {}
    for table, items in template.items():
        out = []
        for i, r in enumerate(items):
            r = {k: fix(v) for k, v in r.items()}
            if table == "events":
                r["event_id"] = f"{pid}-e{i}"
            if table == "nodes":
                r["node"] = f"cookie_id:c-{n}-{i}"
            out.append(tuple(r.values()))
        rows[table] = out
    return rows


def fill(store, shapes: list[dict], n: int, chunk: int = 2000) -> None:
    for start in range(0, n, chunk):
        batch: dict[str, list[tuple]] = {}
        for i in range(start, min(n, start + chunk)):
            for table, rows in clone(shapes[i % len(shapes)], i).items():
                batch.setdefault(table, []).extend(rows)
        with store.write() as con:
            for table, rows in batch.items():
                con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)


class Sql:
    """An OnlineStore (SQLite or PostgreSQL) under the three operations."""

    def __init__(self, store, loaded: int):
        self.store, self.loaded = store, loaded

    def read(self, pid: str):
        return self.store.doc(pid)

    def write(self, pid: str, doc: str) -> None:
        from cx360.online.store import put

        with self.store.write() as con:
            put(con, "docs", {"profile_id": pid, "doc": doc, "as_of": None, "updated_at": "t", "last_event_id": "x"})

    def batch(self, items: list[tuple[str, str, str]]) -> None:
        from cx360.online.store import put

        with self.store.write() as con:
            for pid, event_id, doc in items:
                if con.execute("SELECT 1 FROM events WHERE event_id = ?", (event_id,)).fetchone():
                    continue
                con.execute("INSERT INTO events VALUES (?, ?, ?, ?)", (event_id, pid, "2026-11-20T10:00:00", doc[:300]))
                con.execute(
                    "INSERT INTO nodes VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (node) DO UPDATE SET profile_id = excluded.profile_id",
                    (f"cookie_id:{event_id}", pid, event_id, "t"),
                )
                put(
                    con,
                    "docs",
                    {"profile_id": pid, "doc": doc, "as_of": None, "updated_at": "t", "last_event_id": event_id},
                )
                con.execute("DELETE FROM timers WHERE profile_id = ?", (pid,))
                con.execute("INSERT INTO timers VALUES (?, ?)", (pid, "2026-12-20T00:00:00"))
            self.store.put_offset(con, "p0/web", len(items))


class Redis:
    """The same operations on Redis: one key per document, event, node and a sorted set of timers."""

    def __init__(self, client, shapes: list[dict], loaded: int):
        self.r = client
        pipe = client.pipeline(transaction=False)
        for i in range(loaded):
            rows = shapes[i % len(shapes)]
            pipe.set(f"doc:P{i:09d}", rows["docs"][0]["doc"])
            if i % 1000 == 999:
                pipe.execute()
        pipe.execute()

    def read(self, pid: str):
        return self.r.get(f"doc:{pid}")

    def write(self, pid: str, doc: str) -> None:
        self.r.set(f"doc:{pid}", doc)

    def batch(self, items: list[tuple[str, str, str]]) -> None:
        pipe = self.r.pipeline(transaction=True)
        for pid, event_id, doc in items:
            pipe.set(f"event:{event_id}", doc[:300], nx=True)
            pipe.set(f"node:cookie_id:{event_id}", pid)
            pipe.set(f"doc:{pid}", doc)
            pipe.zadd("timers", {pid: 1.0})
        pipe.set("offset:p0/web", len(items))
        pipe.execute()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(engine, loaded: int, doc: str, args, counter: list[int]) -> dict[str, float]:
    """Microseconds per point read and point write, milliseconds per micro-batch (medians of this round)."""
    pick = random.Random(counter[0])
    reads, writes, batches = [], [], []
    for _ in range(args.reads):
        pid = f"P{pick.randrange(loaded):09d}"
        t = time.perf_counter()
        engine.read(pid)
        reads.append(time.perf_counter() - t)
    for _ in range(args.writes):
        pid = f"P{pick.randrange(loaded):09d}"
        t = time.perf_counter()
        engine.write(pid, doc)
        writes.append(time.perf_counter() - t)
    for _ in range(args.batches):
        items = []
        for _ in range(args.batch):
            counter[0] += 1
            items.append((f"P{pick.randrange(loaded):09d}", f"bench-{counter[0]}", doc))
        t = time.perf_counter()
        engine.batch(items)
        batches.append(time.perf_counter() - t)
    return {
        "read_us": 1e6 * statistics.median(reads),
        "write_us": 1e6 * statistics.median(writes),
        "batch_ms": 1e3 * statistics.median(batches),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000, help="track calls the processor applies for the templates")
    parser.add_argument("--people", type=int, default=200, help="people among them (template profiles)")
    parser.add_argument("--loaded", type=int, default=20000, help="profiles each engine holds while measured")
    parser.add_argument("--profiles", type=int, default=100000, help="profiles in the store whose size is measured")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100, help="events per micro-batch")
    parser.add_argument("--pg-url", default=os.environ.get("CX360_TEST_PG_URL"))
    parser.add_argument("--no-redis", action="store_true")
    args = parser.parse_args()

    from cx360.online import engines
    from cx360.online.store import OnlineStore

    print(f"load average at start: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    shapes = templates(args.events, args.people)
    doc = shapes[0]["docs"][0]["doc"]
    per = {t: statistics.mean(len(s.get(t, [])) for s in shapes) for t in ("nodes", "events", "members", "timers")}
    print(
        f"template: {len(shapes)} profiles applied by the stream processor; a document is {len(doc):,} bytes of JSON; "
        + ", ".join(f"{v:.1f} {t}" for t, v in per.items())
        + " per profile"
    )
    DATA.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=DATA))
    cleanup = []
    try:
        contenders: dict[str, object] = {}
        sqlite_store = OnlineStore(work / "online.sqlite")
        fill(sqlite_store, shapes, args.loaded)
        contenders["sqlite (WAL)"] = Sql(sqlite_store, args.loaded)
        if args.pg_url:
            import psycopg

            url = args.pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(url, autocommit=True) as con:
                con.execute(f"CREATE SCHEMA {schema}")

            def drop(url=url, schema=schema):
                with psycopg.connect(url, autocommit=True) as con:
                    con.execute(f"DROP SCHEMA {schema} CASCADE")

            cleanup.append(drop)
            pg = OnlineStore(engines.postgresql(f"{url}?options=-csearch_path%3D{schema}"), origin="bench|")
            fill(pg, shapes, args.loaded)
            contenders["postgresql 15"] = Sql(pg, args.loaded)
            # the same tables, commits not waiting for their WAL flush (SQLite's synchronous=NORMAL is alike)
            lazy = f"{url}?options=-csearch_path%3D{schema}%20-csynchronous_commit%3Doff"
            contenders["postgresql async"] = Sql(OnlineStore(engines.postgresql(lazy), origin="bench|"), args.loaded)
        else:
            print("postgresql: skipped (no --pg-url, no $CX360_TEST_PG_URL; .ci/start-postgres starts one)")
        if not args.no_redis and shutil.which("redis-server"):
            import redis

            port = _port()
            server = subprocess.Popen(
                [
                    *("redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""),
                    *("--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(work)),
                ],
                stdout=subprocess.DEVNULL,
            )
            cleanup.append(lambda: (server.terminate(), server.wait()))
            client = redis.Redis(port=port)
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            contenders["redis 7"] = Redis(client, shapes, args.loaded)
        figures: dict[str, list[dict]] = {name: [] for name in contenders}
        counter = [0]
        for _ in range(args.rounds):  # alternating: each round measures every engine once, in turn
            for name, engine in contenders.items():
                figures[name].append(measure(engine, args.loaded, doc, args, counter))
        print(f"\n{args.loaded:,} profiles loaded; medians over {args.rounds} alternating rounds")
        print(f"{'engine':<16}{'point read µs':>15}{'point write µs':>16}{f'batch of {args.batch} ms':>18}")
        base = {
            k: statistics.median(f[k] for f in figures["sqlite (WAL)"]) for k in ("read_us", "write_us", "batch_ms")
        }
        for name, rounds in figures.items():
            med = {k: statistics.median(f[k] for f in rounds) for k in base}
            print(
                f"{name:<16}{med['read_us']:>10.0f} ({med['read_us'] / base['read_us']:.1f}x)"
                f"{med['write_us']:>10.0f} ({med['write_us'] / base['write_us']:.1f}x)"
                f"{med['batch_ms']:>11.1f} ({med['batch_ms'] / base['batch_ms']:.1f}x)"
            )
        sqlite_store.close()

        sized = OnlineStore(work / "sized.sqlite")
        started = time.perf_counter()
        fill(sized, shapes, args.profiles)
        sized._con().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        sized.close()
        size = sum(p.stat().st_size for p in work.glob("sized.sqlite*"))
        print(
            f"\nsize: online.sqlite holds {args.profiles:,} stream-touched profiles in {size / 1e6:,.0f} MB "
            f"({size / args.profiles:,.0f} bytes per profile; {size / args.profiles:,.0f} MB per million"
            + (", extrapolated" if args.profiles < 1_000_000 else "")
            + f"); written in {time.perf_counter() - started:.0f} s"
        )
    finally:
        for undo in cleanup:
            undo()
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()

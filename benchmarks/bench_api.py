"""Profile lookup latency of `cx360 serve` with 1M profiles, under concurrent load.

Synthesises the warehouse tables directly (profiles, identity_map, profile_events, profile_traits)
at the requested size, builds the serving index, starts `cx360 serve` on 127.0.0.1 and drives
`GET /v1/profiles?email=...` from a separate load-generator process (keep-alive HTTP connections,
one per client thread, random existing e-mails). Prints p50 / p99 latency and requests per second
next to the anchors.

    python benchmarks/bench_api.py                      # 1,000,000 profiles, 8 clients, 20 s
    python benchmarks/bench_api.py --profiles 100000 --seconds 5

When wrk is installed (Debian: apt install wrk), the same lookups are also driven by wrk.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_collector import _port, serve


def synthesise(root: Path, n: int, events_per_profile: int) -> Path:
    import duckdb

    from cx360.workspace import init_workspace

    init_workspace(root, name="bench", region="RU")
    warehouse = root / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"""CREATE TABLE profiles AS SELECT 'P' || lpad(i::VARCHAR, 12, '0') AS profile_id,
            'Name' || (i % 5000) AS first_name, NULL::VARCHAR AS middle_name, 'Surname' || (i % 20011) AS last_name,
            DATE '1950-01-01' + (i % 20000)::INT AS birth_date, NULL::VARCHAR AS gender, 'Street ' || i AS address,
            'City' || (i % 300) AS city, NULL::VARCHAR AS postcode, NULL::VARCHAR AS district, 'RU' AS country,
            NULL::VARCHAR AS language, NULL::VARCHAR AS segment, NULL::TIMESTAMP AS registered_at,
            '{{"first_name": {{"record": "crm:C' || i || '", "rule": "source_priority"}}}}' AS attribute_sources,
            '{{"email": ["user' || i || '@example.com"], "customer_no": ["C' || i || '"]}}' AS identifiers,
            2::BIGINT AS records, 'crm,cards' AS sources
            FROM range({n}) t(i)""")
        con.execute(f"""CREATE TABLE identity_map AS
            SELECT 'email:user' || i || '@example.com' AS node, 'email' AS kind,
                'P' || lpad(i::VARCHAR, 12, '0') AS profile_id,
                   TIMESTAMP '2025-01-01' AS first_seen_at FROM range({n}) t(i)
            UNION ALL SELECT 'customer_no:C' || i, 'customer_no', 'P' || lpad(i::VARCHAR, 12, '0'),
                TIMESTAMP '2025-01-01' FROM range({n}) t(i)
            UNION ALL SELECT 'phone:+7916' || lpad(i::VARCHAR, 7, '0'), 'phone', 'P' || lpad(i::VARCHAR, 12, '0'),
                TIMESTAMP '2025-01-01' FROM range({n}) t(i)""")
        con.execute(f"""CREATE TABLE profile_events AS SELECT 'P' || lpad((j % {n})::VARCHAR, 12, '0') AS profile_id,
            'e' || j AS event_id, TIMESTAMP '2025-01-01' + INTERVAL (j % 31536000) SECOND AS ts, 'cards' AS source,
            'card_payment' AS name, 'pos' AS channel, (j % 100)::DOUBLE AS amount, '{{"mcc": "5411"}}' AS properties
            FROM range({n * events_per_profile}) t(j)""")
        con.execute(f"""CREATE TABLE profile_traits AS SELECT 'P' || lpad(i::VARCHAR, 12, '0') AS profile_id,
            TIMESTAMP '2026-01-01' AS as_of, (i % 90)::BIGINT AS txn_count_90d, (i % 1000)::DOUBLE AS spend_90d
            FROM range({n}) t(i)""")
    import ibis

    from cx360 import schema

    con = ibis.duckdb.connect(str(warehouse))
    for name in ("records", "events", "profile_ids"):  # the canonical tables the index reads, empty
        con.create_table(name, schema=schema.ibis_schema(name))
    con.disconnect()
    return warehouse


def load(url: str, key: str, n: int, clients: int, seconds: float) -> dict:
    """The load generator (run in its own process): returns latencies in ms and the request count."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(seed: int) -> None:
        rnd = random.Random(seed)
        con = http.client.HTTPConnection(host, int(port), timeout=30)
        mine = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            con.request(
                "GET",
                f"/v1/profiles?email=user{rnd.randrange(n)}%40example.com",
                headers={"Authorization": f"Bearer {key}"},
            )
            response = con.getresponse()
            response.read()
            mine.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": latencies, "seconds": time.perf_counter() - started, "errors": errors[0]}


WRK_SCRIPT = """
math.randomseed(7)
request = function()
  local path = "/v1/profiles?email=user" .. math.random(0, %d) .. "%%40example.com"
  return wrk.format("GET", path, {["Authorization"] = "Bearer %s"})
end
"""


def run_wrk(url: str, key: str, n: int, connections: int, seconds: float) -> dict:
    """The same lookups driven by wrk (C, one thread): a load generator that costs the machine little."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % (n - 1, key))
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", f.name, url]
    text = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    Path(f.name).unlink()

    def ms(label: str) -> float:
        value = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        return float(value[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[value[2]]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])
    return {"p50": ms("50%"), "p99": ms("99%"), "rps": rps, "errors": int(errors[1]) if errors else 0}


def resident_mb(pid: int) -> float:
    """Resident memory of a process and its children (the workers of `cx360 serve --workers N`), in MB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        status = Path(f"/proc/{p}/status").read_text()
        total += int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)[1])
        todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--events-per-profile", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=1, help="cx360 serve worker processes")
    parser.add_argument("--load", nargs=2, metavar=("URL", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(load(args.load[0], args.load[1], args.profiles, args.clients, args.seconds)))
        return

    from cx360.api import index
    from cx360.api.access import create_key

    with tempfile.TemporaryDirectory(prefix="cx360-bench-api-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        warehouse = synthesise(root, args.profiles, args.events_per_profile)
        synth_s = time.perf_counter() - started
        report = index.ensure(warehouse)
        _, key = create_key(root, "agent", "bench")
        port = _port()
        url = f"http://127.0.0.1:{port}"
        server = serve(root, port, subprocess.DEVNULL, workers=args.workers)
        try:

            def run_load(clients: int, seconds: float) -> dict:
                """One load run in its own process, so the client does not share the server's interpreter."""
                argv = ["--load", url, key, "--profiles", str(args.profiles), "--clients", str(clients)]
                done = subprocess.run(
                    [sys.executable, __file__, *argv, "--seconds", str(seconds)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                return json.loads(done.stdout)

            run_load(1, 2)  # warm-up
            single = run_load(1, max(3.0, args.seconds / 4))
            loaded = run_load(args.clients, args.seconds)
            with_wrk = run_wrk(url, key, args.profiles, args.clients, args.seconds) if shutil.which("wrk") else None
            memory = resident_mb(server.pid)
        finally:
            server.terminate()
            server.wait(10)

    def q(values: list[float], p: float) -> float:
        return statistics.quantiles(values, n=100)[int(p) - 1] if len(values) > 1 else values[0]

    print("cx360 serve: GET /v1/profiles?email=... (identifier -> profile with attributes, identifiers, traits),")
    print(
        f"  {args.profiles:,} profiles, {report.rows['lookup']:,} identifiers, {report.rows['events']:,} events;"
        f" synthesised in {synth_s:.0f} s, serving index built in {report.seconds:.0f} s"
    )
    print(
        f"  server: {args.workers} worker process(es); load generator: separate process on 127.0.0.1,"
        " keep-alive connections, one per client thread"
    )
    for label, r, _clients in (("1 client", single, 1), (f"{args.clients} clients", loaded, args.clients)):
        lat = r["latencies"]
        print(
            f"  {label:>10}: p50 {q(lat, 50):6.2f} ms   p99 {q(lat, 99):6.2f} ms   "
            f"{len(lat) / r['seconds']:8,.0f} requests/s   ({len(lat):,} requests, {r['errors']} errors)"
        )
    if with_wrk:
        print(
            f"  wrk, 1 thread, {args.clients} connections: p50 {with_wrk['p50']:6.2f} ms   "
            f"p99 {with_wrk['p99']:6.2f} ms   {with_wrk['rps']:8,.0f} requests/s   ({with_wrk['errors']} non-2xx)"
        )
    print(f"  server memory after the load: {memory:,.0f} MB resident (all its processes)")
    print("  anchors: single-digit ms per lookup (target); RudderStack ingests ~1.7K events/s on 2 cores")


if __name__ == "__main__":
    main()

"""Profile lookup latency of `cx360 serve` with 1M profiles, under concurrent load.

Synthesises the warehouse tables directly (profiles, identity_map, profile_events, profile_traits,
profile_consents: one profiling consent each) at the requested size, builds the serving index, starts
`cx360 serve` on 127.0.0.1 and drives `GET /v1/profiles?email=...` from a separate load-generator
process (keep-alive HTTP connections, one per client thread, random existing e-mails), then with wrk
when it is installed (Debian: apt install wrk). Prints p50 / p99 latency, requests per second, the
server's CPU time per request and its resident memory, and the serving index's size on disk.

In the same run, one server after another on the same data: with `--before SRC`, the cx360 package
of an older checkout (its `src/`, e.g. from `git archive`), without httptools and uvloop as it ran
before they were installed; then today's code; then a bare FastAPI app that answers the document
today's code answered for one person, with nothing else.

    python benchmarks/bench_api.py                      # 1,000,000 profiles, 8 clients, 20 s
    python benchmarks/bench_api.py --profiles 100000 --seconds 5 --before /tmp/cx360-before/src
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench_collector import _port


def synthesise(root: Path, n: int, events_per_profile: int) -> Path:
    import duckdb

    from cx360.workspace import Workspace, init_workspace

    init_workspace(root, name="bench", region="RU")
    with Workspace(root) as ws:  # every canonical table, so that no server start recreates one
        ws.engine.ensure_canonical_tables()
        warehouse = ws.root / ws.config.engine.path
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"""INSERT INTO profiles BY NAME SELECT 'P' || lpad(i::VARCHAR, 12, '0') AS profile_id,
            'Name' || (i % 5000) AS first_name, NULL::VARCHAR AS middle_name, 'Surname' || (i % 20011) AS last_name,
            DATE '1950-01-01' + (i % 20000)::INT AS birth_date, NULL::VARCHAR AS gender, 'Street ' || i AS address,
            'City' || (i % 300) AS city, NULL::VARCHAR AS postcode, NULL::VARCHAR AS district, 'RU' AS country,
            NULL::VARCHAR AS language, NULL::VARCHAR AS segment, NULL::TIMESTAMP AS registered_at,
            '{{"first_name": {{"record": "crm:C' || i || '", "rule": "source_priority"}}}}' AS attribute_sources,
            '{{"email": ["user' || i || '@example.com"], "customer_no": ["C' || i || '"]}}' AS identifiers,
            2::BIGINT AS records, 'crm,cards' AS sources
            FROM range({n}) t(i)""")
        con.execute(f"""INSERT INTO identity_map BY NAME
            SELECT 'email:user' || i || '@example.com' AS node, 'email' AS kind,
                'P' || lpad(i::VARCHAR, 12, '0') AS profile_id,
                   TIMESTAMP '2025-01-01' AS first_seen_at FROM range({n}) t(i)
            UNION ALL SELECT 'customer_no:C' || i, 'customer_no', 'P' || lpad(i::VARCHAR, 12, '0'),
                TIMESTAMP '2025-01-01' FROM range({n}) t(i)
            UNION ALL SELECT 'phone:+7916' || lpad(i::VARCHAR, 7, '0'), 'phone', 'P' || lpad(i::VARCHAR, 12, '0'),
                TIMESTAMP '2025-01-01' FROM range({n}) t(i)""")
        con.execute(f"""INSERT INTO profile_events BY NAME
            SELECT 'P' || lpad((j % {n})::VARCHAR, 12, '0') AS profile_id, 'e' || j AS event_id,
            TIMESTAMP '2025-01-01' + INTERVAL (j % 31536000) SECOND AS ts, 'cards' AS source,
            'card_payment' AS name, 'pos' AS channel, (j % 100)::DOUBLE AS amount, '{{"mcc": "5411"}}' AS properties
            FROM range({n * events_per_profile}) t(j)""")
        con.execute(f"""INSERT INTO profile_traits BY NAME SELECT 'P' || lpad(i::VARCHAR, 12, '0') AS profile_id,
            TIMESTAMP '2026-01-01' AS as_of, (i % 90)::BIGINT AS txn_count_90d, (i % 1000)::DOUBLE AS spend_90d
            FROM range({n}) t(i)""")
        # each person's consent to profiling, which the API checks on every lookup
        con.execute(f"""INSERT INTO profile_consents BY NAME SELECT 'P' || lpad(i::VARCHAR, 12, '0') AS profile_id,
            'c' || i AS consent_id, TIMESTAMP '2025-01-01' AS ts, 'profiling' AS purpose, 'granted' AS status,
            'consent' AS legal_basis, 'crm' AS source FROM range({n}) t(i)""")
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


def _tree(pid: int) -> list[int]:
    """A process and its children (the workers of `cx360 serve --workers N`)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
    return out


def resident_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    kb = 0
    for p in _tree(pid):
        kb += int(re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{p}/status").read_text(), re.M)[1])
    return kb / 1024


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process and its children have used: a server's cost per request does
    not depend on how busy the rest of the machine is, as its latency does."""
    ticks = 0
    for p in _tree(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def bare_app(port: int, document: Path) -> None:
    """A bare FastAPI app that answers `GET /v1/profiles` with the same document, nothing else."""
    import uvicorn
    from fastapi import FastAPI

    doc = json.loads(document.read_text())
    app = FastAPI()

    @app.get("/v1/profiles")
    async def find(email: str | None = None) -> dict:
        return doc

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def wait_up(proc: subprocess.Popen, url: str, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + 600
    while True:
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2)
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit(f"the server for {url} did not start") from None
            time.sleep(0.2)


# uvicorn picks httptools and uvloop when they import; for the "before" code, they are hidden.
_HIDE = "raise ImportError('hidden by bench_api.py: the server runs as it did before they were installed')\n"


def measure(label: str, argv: list[str], env: dict[str, str], url: str, key: str, args, doc: Path) -> dict:
    """Start one server, drive it (1 client, N clients, wrk), and read its CPU time and memory; the first
    cx360 server's answer for one person is kept in `doc`."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(proc, f"{url}/v1/profiles?email=user0%40example.com", {"Authorization": f"Bearer {key}"})
        if not doc.exists():
            request = urllib.request.Request(
                f"{url}/v1/profiles?email=user0%40example.com", headers={"Authorization": f"Bearer {key}"}
            )
            doc.write_bytes(urllib.request.urlopen(request, timeout=10).read())

        def run_load(clients: int, seconds: float) -> dict:
            """One load run in its own process, so the client does not share the server's interpreter."""
            load_argv = ["--load", url, key, "--profiles", str(args.profiles), "--clients", str(clients)]
            done = subprocess.run(
                [sys.executable, __file__, *load_argv, "--seconds", str(seconds)],
                check=True,
                capture_output=True,
                text=True,
            )
            return json.loads(done.stdout)

        run_load(1, 2)  # warm-up
        out = {"label": label, "single": run_load(1, max(3.0, args.seconds / 4))}
        cpu = cpu_seconds(proc.pid)
        out["loaded"] = run_load(args.clients, args.seconds)
        out["cpu_ms"] = (cpu_seconds(proc.pid) - cpu) * 1000 / max(1, len(out["loaded"]["latencies"]))
        out["wrk"] = run_wrk(url, key, args.profiles, args.clients, args.seconds) if shutil.which("wrk") else None
        out["memory"] = resident_mb(proc.pid)
        out["load_average"] = os.getloadavg()
    finally:
        proc.terminate()
        proc.wait(30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--events-per-profile", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=1, help="cx360 serve worker processes")
    parser.add_argument(
        "--before",
        metavar="SRC",
        help="also serve with the cx360 package under SRC (an older checkout's src/), without httptools and uvloop",
    )
    parser.add_argument(
        "--before-uvloop",
        action="store_true",
        help="serve the --before code with httptools and uvloop too (for code from after they were installed)",
    )
    parser.add_argument("--no-bare", action="store_true", help="skip the bare FastAPI app")
    parser.add_argument("--load", nargs=2, metavar=("URL", "KEY"), help=argparse.SUPPRESS)
    parser.add_argument("--bare", nargs=2, metavar=("PORT", "DOCUMENT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(load(args.load[0], args.load[1], args.profiles, args.clients, args.seconds)))
        return
    if args.bare:
        bare_app(int(args.bare[0]), Path(args.bare[1]))
        return

    from cx360.api import index
    from cx360.api.access import create_key

    results = []
    with tempfile.TemporaryDirectory(prefix="cx360-bench-api-") as tmp:
        root = Path(tmp) / "now"
        started = time.perf_counter()
        warehouse = synthesise(root, args.profiles, args.events_per_profile)
        synth_s = time.perf_counter() - started
        _, key = create_key(root, "agent", "bench")
        serve_argv = ["-m", "cx360", "serve", "--port"]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
        if args.before:  # its own copy of the workspace: the index layout may differ
            old = Path(tmp) / "before"
            shutil.copytree(root, old)
            hide = Path(tmp) / "hide"
            for name in ("httptools", "uvloop"):
                (hide / name).mkdir(parents=True)
                (hide / name / "__init__.py").write_text(_HIDE)
            shown = "" if args.before_uvloop else f"{hide}{os.pathsep}"
            old_env = {**os.environ, "PYTHONPATH": f"{shown}{Path(args.before).resolve()}"}
            build = (
                f"from cx360.api import index; index.ensure(__import__('pathlib').Path({str(old / warehouse.name)!r}))"
            )
            subprocess.run([sys.executable, "-c", build], env=old_env, check=True, capture_output=True)
        report = index.ensure(warehouse)
        online_mb = sum(p.stat().st_size for p in root.glob("serve-points-*.sqlite")) / 1e6
        duckdb_mb = (root / index.SERVE_FILE).stat().st_size / 1e6
        doc = Path(tmp) / "document.json"  # what cx360 answers for one person, for the bare app to answer
        servers = []
        if args.before:
            port = _port()
            argv = [sys.executable, *serve_argv, str(port), "-w", str(old), "--workers", str(args.workers)]
            servers.append((f"before ({args.before})", argv, old_env, port))
        port = _port()
        argv = [sys.executable, *serve_argv, str(port), "-w", str(root), "--workers", str(args.workers)]
        servers.append(("now", argv, env, port))
        if not args.no_bare:
            port = _port()
            servers.append(("bare FastAPI", [sys.executable, __file__, "--bare", str(port), str(doc)], env, port))
        for label, argv, server_env, port in servers:
            results.append(measure(label, argv, server_env, f"http://127.0.0.1:{port}", key, args, doc))
    report_results(args, results, report, synth_s, online_mb, duckdb_mb)


def report_results(args, results: list[dict], report, synth_s: float, points_mb: float, duckdb_mb: float) -> None:
    def q(values: list[float], p: float) -> float:
        return statistics.quantiles(values, n=100)[int(p) - 1] if len(values) > 1 else values[0]

    print("GET /v1/profiles?email=... (identifier -> profile with attributes, identifiers, traits; consent")
    print("checked, masked by role, audited), each server started alone, one after another:")
    print(
        f"  {args.profiles:,} profiles, {report.rows['lookup']:,} identifiers, {report.rows['events']:,} events;"
        f" synthesised in {synth_s:.0f} s, serving index built in {report.seconds:.0f} s"
    )
    print(
        f"  serving index on disk: {duckdb_mb:,.0f} MB DuckDB + {points_mb:,.0f} MB SQLite point-read copy"
        f" = {(duckdb_mb + points_mb) / args.profiles * 1e6:,.0f} MB per 1M profiles"
    )
    print(
        f"  cx360: {args.workers} worker process(es); load generator: separate process on 127.0.0.1,"
        " keep-alive connections, one per client thread; wrk: 1 thread"
    )
    for r in results:
        print(f"  {r['label']}  (load average after: {' '.join(f'{x:.1f}' for x in r['load_average'])})")
        for name, run in (("1 client", r["single"]), (f"{args.clients} clients", r["loaded"])):
            lat = run["latencies"]
            print(
                f"    {name:>10}: p50 {q(lat, 50):6.2f} ms   p99 {q(lat, 99):6.2f} ms   "
                f"{len(lat) / run['seconds']:8,.0f} requests/s   ({len(lat):,} requests, {run['errors']} errors)"
            )
        if r["wrk"]:
            w = r["wrk"]
            print(
                f"    {'wrk, ' + str(args.clients) + ' conn':>10}: p50 {w['p50']:6.2f} ms   p99 {w['p99']:6.2f} ms   "
                f"{w['rps']:8,.0f} requests/s   ({w['errors']} non-2xx)"
            )
        print(
            f"    server CPU per request ({args.clients} clients): {r['cpu_ms']:.2f} ms;"
            f" resident memory after the load: {r['memory']:,.0f} MB (all its processes)"
        )
    print("  goal: >= 2,000 requests/s at p99 <= 5 ms on 2 cores")


if __name__ == "__main__":
    main()

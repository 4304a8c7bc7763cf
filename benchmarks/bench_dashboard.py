"""Dashboard page times of `cx360 serve` at 1M profiles.

Synthesises the warehouse as bench_api.py does (profiles, identifiers, card payments, traits), adds
value and churn scores, a segment with its members and a funnel over the payments, builds the serving
index, starts `cx360 serve`, logs in with a key as a browser does (cookie and CSRF token) and asks
for each page: once cold (the first view computes a workspace report: funnels, forms, visits,
segment history), then `--repeat` times warm. Prints the cold time and the warm median and p95.

    python benchmarks/bench_dashboard.py                        # 1,000,000 profiles
    python benchmarks/bench_dashboard.py --profiles 100000 --repeat 10
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

from bench_api import synthesise
from bench_collector import _port, serve

FUNNEL = """
[[funnels]]
name = "big_payment"
steps = ["name = 'card_payment' and amount >= 50", "name = 'card_payment' and amount < 50"]
within = "30d"
"""


def add_scores_and_segment(warehouse: Path, n: int) -> None:
    import duckdb

    pid = "'P' || lpad(i::VARCHAR, 12, '0')"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"""CREATE TABLE profile_scores AS SELECT {pid} AS profile_id, TIMESTAMP '2026-01-01' AS as_of,
            (i % 997)::DOUBLE AS clv_12m, ((i % 100) / 100.0)::DOUBLE AS p_alive,
            CASE WHEN i % 20 = 0 THEN 'platinum' WHEN i % 5 = 0 THEN 'gold' ELSE 'bronze' END AS value_tier
            FROM range({n}) t(i)""")
        con.execute(f"""CREATE TABLE churn_scores AS SELECT {pid} AS profile_id, TIMESTAMP '2026-01-01' AS as_of,
            ((i * 7919 % 1000) / 1000.0)::DOUBLE AS churn_risk, 'days_since_txn' AS churn_reasons,
            90::BIGINT AS horizon_days, TIMESTAMP '2026-01-02' AS scored_at FROM range({n}) t(i)""")
        con.execute(f"""CREATE TABLE segment_members AS SELECT 'big_spenders' AS segment, {pid} AS profile_id,
            TIMESTAMP '2025-12-01' + INTERVAL (i % 3 * 15) DAY AS entered_at, NULL::TIMESTAMP AS exited_at
            FROM range({n}) t(i) WHERE i % 90 >= 60""")
        size = con.execute("SELECT count(*) FROM segment_members").fetchone()[0]
        con.execute(
            "CREATE TABLE segments AS SELECT 'big_spenders' AS name, 'custom' AS kind, 'spend in 90 days' AS "
            "description, 'spend_90d > 600' AS definition, ?::BIGINT AS size, TIMESTAMP '2026-01-01' AS "
            "evaluated_at, TIMESTAMP '2025-12-31' AS as_of, 'ok' AS status, NULL::VARCHAR AS error",
            [size],
        )
    import ibis

    from cx360 import schema

    con = ibis.duckdb.connect(str(warehouse))
    for name in set(schema.TABLES) - set(con.list_tables()):  # the rest of the canonical tables, empty
        con.create_table(name, schema=schema.ibis_schema(name))
    con.disconnect()


class Browser:
    """One keep-alive connection with the session cookie, as a browser tab holds it."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        headers = {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["content-type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        text = r.read().decode()
        for value in r.headers.get_all("set-cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name] = rest.partition(";")[0]
        return r.status, text

    def login(self, key: str) -> None:
        _, page = self.request("GET", "/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        status, _ = self.request("POST", "/login", urllib.parse.urlencode({"key": key, "csrf": csrf}))
        assert status == 303 and "cx360_session" in self.cookies, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--events-per-profile", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=20, help="warm views of each page")
    args = parser.parse_args()

    from cx360.api import index
    from cx360.api.access import create_key

    with tempfile.TemporaryDirectory(prefix="cx360-bench-dashboard-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        warehouse = synthesise(root, args.profiles, args.events_per_profile)
        add_scores_and_segment(warehouse, args.profiles)
        with (root / "cx360.toml").open("a", encoding="utf-8") as f:
            f.write(FUNNEL)
        synth_s = time.perf_counter() - started
        report = index.ensure(warehouse)
        _, key = create_key(root, "agent", "bench")
        port = _port()
        server = serve(root, port, subprocess.DEVNULL)
        pages = [
            "/",
            "/segments",
            "/segments/big_spenders",
            "/funnels",
            "/forms",
            "/visits",
            "/calls",
            f"/customers/P{args.profiles // 2:012d}",
            "/search?q=P00000012",
        ]
        results = []
        try:
            tab = Browser(port)
            tab.login(key)
            for page in pages:
                t0 = time.perf_counter()
                status, _ = tab.request("GET", page)
                cold = (time.perf_counter() - t0) * 1000
                assert status == 200, (page, status)
                warm = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    status, _ = tab.request("GET", page)
                    warm.append((time.perf_counter() - t0) * 1000)
                    assert status == 200, (page, status)
                results.append((page, cold, warm))
        finally:
            server.terminate()
            server.wait(10)

    def p95(values: list[float]) -> float:
        return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]

    print("cx360 serve: dashboard pages (GET with a session cookie, one keep-alive connection, 1 worker)")
    print(
        f"  {args.profiles:,} profiles, {report.rows['events']:,} events; synthesised in {synth_s:.0f} s, "
        f"serving index built in {report.seconds:.0f} s; {args.repeat} warm views of each page"
    )
    print(f"  {'page':<28} {'cold ms':>9} {'median ms':>10} {'p95 ms':>9}")
    for page, cold, warm in results:
        print(f"  {page:<28} {cold:9.1f} {statistics.median(warm):10.1f} {p95(warm):9.1f}")
    print("  cold: the first view after a start or a warehouse change (workspace reports are computed then kept)")


if __name__ == "__main__":
    main()

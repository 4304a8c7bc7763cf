"""`cx360 segments export` of a segment of N members, next to DuckDB copying the same rows to a file.

    python benchmarks/bench_export.py --members 1000000 --repeat 3

Synthesises a DuckDB workspace of N profiles (an e-mail and a phone each in the identity map, a
consent by SMS for every tenth), all members of one segment evaluated on the current profiles, then
times, as medians of the repeats: the export for profiling (profile ids only) as CSV and as Parquet,
the export for marketing by SMS (the consent check keeps a tenth, with their phones), the same with
--hashed, and the floor: DuckDB alone writing the segment's member ids to CSV (COPY).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from cx360.segments.export import audience, write
from cx360.workspace import Workspace

AS_OF = "TIMESTAMP '2025-06-30'"
FILL = [
    "INSERT INTO profiles (profile_id) SELECT 'P' || lpad(CAST(i AS VARCHAR), 8, '0') FROM range({n}) t(i)",
    f"INSERT INTO profile_traits (profile_id, as_of) SELECT profile_id, {AS_OF} FROM profiles",
    "INSERT INTO profile_ids (profile_id, status) SELECT profile_id, 'active' FROM profiles",
    "INSERT INTO identity_map (node, kind, profile_id) SELECT 'email:' || lower(profile_id) || '@mail.ru', "
    "'email', profile_id FROM profiles "
    "UNION ALL SELECT 'phone:+7916' || substr(profile_id, 2), 'phone', profile_id FROM profiles",
    f"INSERT INTO segment_members (segment, profile_id, entered_at) SELECT 'all', profile_id, {AS_OF} FROM profiles",
    f"INSERT INTO segments (name, kind, size, evaluated_at, as_of, status) VALUES ('all', 'custom', {{n}}, {AS_OF}, "
    f"{AS_OF}, 'ok')",
    "INSERT INTO consents (consent_id, ts, source, profile_id, purpose, channel, status) SELECT 'c' || profile_id, "
    "TIMESTAMP '2025-01-01', 'bench', profile_id, 'marketing', 'sms', 'granted' FROM profiles "
    "WHERE CAST(substr(profile_id, 2) AS INTEGER) % 10 = 0",
]


def _median(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "cx360.toml").write_text('[workspace]\nname = "bench"\n')
        with Workspace(root) as ws:
            for sql in FILL:
                ws.engine.con.raw_sql(sql.format(n=args.members))
            now = dt.datetime(2025, 7, 1)

            def run(out: str, fmt: str, **kw) -> int:
                aud = audience(ws, "all", now=now, **kw)
                write(aud, root / out, fmt)
                return aud.members.num_rows

            cases = [
                ("profiling, csv", lambda: run("a.csv", "csv")),
                ("profiling, parquet", lambda: run("a.parquet", "parquet")),
                ("marketing by sms, csv", lambda: run("b.csv", "csv", purpose="marketing", channel="sms")),
                (
                    "marketing by sms, hashed csv",
                    lambda: run("c.csv", "csv", purpose="marketing", channel="sms", hashed=True),
                ),
            ]
            floor_sql = (
                f"COPY (SELECT profile_id, entered_at FROM segment_members WHERE segment = 'all' AND exited_at IS NULL "
                f"ORDER BY profile_id) TO '{root / 'floor.csv'}' (HEADER)"
            )
            floor_s, _ = _median(lambda: ws.engine.con.raw_sql(floor_sql), args.repeat)
            print(f"segment of {args.members:,} members, DuckDB, median of {args.repeat} runs")
            print(f"{'export':<32} {'seconds':>8} {'rows':>10} {'x floor':>8}")
            for label, fn in cases:
                s, rows = _median(fn, args.repeat)
                print(f"{label:<32} {s:>8.2f} {rows:>10,} {s / floor_s:>8.1f}")
            print(f"{'floor: DuckDB COPY of the ids':<32} {floor_s:>8.2f} {args.members:>10,} {1.0:>8.1f}")


if __name__ == "__main__":
    main()

"""Ingest throughput on DuckDB: cx360 ingest of N card-transaction events from Parquet, CSV or JSON
Lines files, next to the floor (DuckDB alone loading the same files into a table: read_parquet,
read_csv or read_json with every column as text for CSV, as cx360 reads it).

    python benchmarks/bench_ingest.py --events 10000000 --repeat 3
    python benchmarks/bench_ingest.py --events 1000000 --format csv --repeat 3
    python benchmarks/bench_ingest.py --events 1000000 --repeat 3 --vault   # also with [privacy] vault = true
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FILE_ROWS = 1_000_000
SOURCE = """
[workspace]
name = "bench"
[engine]
kind = "duckdb"
[[sources]]
name = "cards"
kind = "{kind}"
path = "{data}/*.{kind}"
[sources.events]
event_id = "tx_id"
timestamp = "ts"
name = {{ value = "card_payment" }}
amount = "amount"
identifiers = {{ card_token = "card_token" }}
properties = {{ mcc = "mcc", merchant = "merchant", district = "district" }}
"""


def make_data(folder: Path, events: int, seed: int = 1) -> None:
    stamp = folder / f".complete-{events}-{seed}-csv-jsonl"
    if stamp.exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    start = np.datetime64("2025-01-01T00:00:00", "us")
    for part, first in enumerate(range(0, events, FILE_ROWS)):
        n = min(FILE_ROWS, events - first)
        ids = np.arange(first, first + n)
        table = pa.table(
            {
                "tx_id": pa.array([f"tx-{i:010d}" for i in ids]),
                "card_token": pa.array([f"TK{c:08X}" for c in rng.integers(0, 200_000, n)]),
                "ts": pa.array(start + rng.integers(0, 365 * 86400 * 10**6, n).astype("timedelta64[us]")),
                "amount": pa.array(np.round(rng.lognormal(6, 1, n), 2)),
                "mcc": pa.array(rng.choice([5411, 5812, 5541, 5732, 4511], n)),
                "merchant": pa.array([f"m{m}" for m in rng.integers(0, 5000, n)]),
                "district": pa.array(rng.choice(["Arbat", "Mitino", "Butovo", "Lublino"], n)),
            }
        )
        pq.write_table(table, folder / f"part-{part:03d}.parquet")
        ts = pa.compute.strftime(table["ts"], "%Y-%m-%d %H:%M:%S")
        pacsv.write_csv(  # quotes only where needed, as most exports write
            table.set_column(2, "ts", ts), folder / f"part-{part:03d}.csv", pacsv.WriteOptions(quoting_style="needed")
        )
        with open(folder / f"part-{part:03d}.jsonl", "w", encoding="utf-8") as f:
            for row in table.set_column(2, "ts", ts).to_pylist():
                f.write(json.dumps(row) + "\n")
    stamp.touch()


READ = {
    "parquet": "read_parquet('{data}/*.parquet')",
    "csv": "read_csv('{data}/*.csv', all_varchar = true)",
    "jsonl": "read_json('{data}/*.jsonl', format = 'newline_delimited')",
}


def floor(data: Path, kind: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "floor.duckdb"))
        began = time.perf_counter()
        con.execute(f"CREATE TABLE t AS SELECT * FROM {READ[kind].format(data=data)}")
        elapsed = time.perf_counter() - began
        con.close()
    return elapsed


def cx360_ingest(data: Path, kind: str, vault: bool = False) -> tuple[float, float, int]:
    from cx360.sources.ingest import ingest
    from cx360.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        config = SOURCE.format(data=data, kind=kind) + ("[privacy]\nvault = true\n" if vault else "")
        (Path(tmp) / "cx360.toml").write_text(config, encoding="utf-8")
        with Workspace(tmp) as ws:
            began = time.perf_counter()
            [report] = ingest(ws)
            first = time.perf_counter() - began
            assert report.ok, report.error
            began = time.perf_counter()
            [again] = ingest(ws)
            second = time.perf_counter() - began
            assert again.loaded == 0
    return first, second, report.loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--format", choices=sorted(READ), default="parquet")
    parser.add_argument("--data", type=Path, default=Path(__file__).parent / ".data" / "ingest")
    parser.add_argument("--vault", action="store_true", help="also ingest with the PII vault on, alternating")
    args = parser.parse_args()
    make_data(args.data, args.events)
    floors, firsts, reruns, vaulted = [], [], [], []
    for _ in range(args.repeat):
        floors.append(floor(args.data, args.format))
        first, rerun, loaded = cx360_ingest(args.data, args.format)
        assert loaded == args.events, loaded
        firsts.append(first)
        reruns.append(rerun)
        if args.vault:  # tokens in SQL, one sealed vault item per distinct card token
            first, _, loaded = cx360_ingest(args.data, args.format, vault=True)
            assert loaded == args.events, loaded
            vaulted.append(first)
    f, c, r = (statistics.median(x) for x in (floors, firsts, reruns))
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, DuckDB {duckdb.__version__}")
    print(
        f"events: {args.events:,} in {len(list(args.data.glob('*.' + args.format)))} {args.format} files; "
        f"median of {args.repeat} runs"
    )
    print(f"{'':28}{'seconds':>10}{'events/s':>14}")
    print(f"{'DuckDB CREATE TABLE (floor)':28}{f:>10.2f}{args.events / f:>14,.0f}")
    print(f"{'cx360 ingest':28}{c:>10.2f}{args.events / c:>14,.0f}")
    print(f"{'cx360 re-ingest (unchanged)':28}{r:>10.2f}")
    print(f"ratio cx360 / floor: {c / f:.2f}")
    if vaulted:
        v = statistics.median(vaulted)
        print(f"{'cx360 ingest, vault on':28}{v:>10.2f}{args.events / v:>14,.0f}")
        print(f"ratio vault on / off: {v / c:.2f}")


if __name__ == "__main__":
    main()

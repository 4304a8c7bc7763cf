"""Churn scoring of a workspace in batches (engine.map_batches) next to one pass over the whole table
pulled into pandas, as cx360 scored before: wall time and peak memory of the scoring process (median of
--repeat runs, each in a fresh process). On DuckDB the engine runs in the same process, so the peak
includes DuckDB's own memory.

    python benchmarks/bench_batched_scoring.py --profiles 300000 --repeat 3

The workspace (N synthetic profile_traits rows, one payment each in the horizon, a churn model trained
on 5,000 of them) is written once to benchmarks/.data/batched-scoring-N/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).parent / ".data"
AS_OF = dt.datetime(2025, 10, 1)


def prepare(root: Path, n: int) -> None:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from cx360 import schema
    from cx360.models.churn import ChurnModel
    from cx360.scoring import churn as cw
    from cx360.workspace import Workspace, init_workspace

    if (root / "models" / "churn").is_dir():
        return
    init_workspace(root, name="bench", force=True)
    rng = np.random.default_rng(0)
    target = schema.ibis_schema("profile_traits").to_pyarrow()
    columns = {}
    for field in target:
        if field.name == "profile_id":
            columns[field.name] = pa.array([f"P{i:09d}" for i in range(n)])
        elif field.name == "as_of":
            columns[field.name] = pa.array([AS_OF] * n, field.type)
        elif pa.types.is_timestamp(field.type):
            columns[field.name] = pa.array(AS_OF - pd.to_timedelta(rng.integers(0, 365, n), unit="D"), field.type)
        elif pa.types.is_floating(field.type) or pa.types.is_integer(field.type):
            columns[field.name] = pa.array(rng.gamma(2.0, 10.0, n).astype(field.type.to_pandas_dtype()), field.type)
        elif pa.types.is_boolean(field.type):
            columns[field.name] = pa.array(rng.random(n) < 0.3)
        else:
            columns[field.name] = pa.array(rng.choice(["a", "b", "c", None], n), field.type)
    traits = pa.table(columns, schema=target)
    events = schema.ibis_schema("profile_events").to_pyarrow()
    ts = pd.Series(AS_OF - pd.to_timedelta(rng.integers(1, 80, n), unit="D"))
    pay = pa.table(
        {
            "profile_id": columns["profile_id"],
            "event_id": pa.array([f"e{i}" for i in range(n)]),
            "ts": pa.array(ts, events.field("ts").type),
            "source": ["cards"] * n,
            "name": ["card_payment"] * n,
            "channel": ["pos"] * n,
            "amount": rng.uniform(5, 50, n),
            "properties": ["{}"] * n,
        },
        schema=events,
    )
    with Workspace(root) as ws:
        ws.engine.replace("profile_traits", traits)
        ws.engine.replace("profile_events", pay)
    frame = traits.slice(0, 5000).to_pandas()
    X = cw.features(frame)
    X["snapshot"] = pd.Timestamp(AS_OF)
    y = (frame["days_since_txn"].fillna(0).to_numpy() + rng.normal(0, 10, len(frame)) > 25).astype(int)
    model = ChurnModel(id_column="profile_id", time_column="snapshot", random_state=0).fit(X, y)
    model.save(root / "models" / "churn", extra={"horizon_days": 90, "label": "churned", "positive": "1"})


def run_once(root: Path, how: str) -> dict:
    import pyarrow as pa

    from cx360 import schema
    from cx360.models.churn import ChurnModel
    from cx360.scoring import churn as cw
    from cx360.workspace import Workspace

    now = dt.datetime(2026, 1, 1)
    with Workspace(root) as ws:
        started = time.perf_counter()
        if how == "batched":
            rows = cw.score(ws, root / "models" / "churn", now=now).profiles
        else:  # one pass over the whole table, as churn scoring ran before engine.map_batches
            engine = ws.engine
            traits = engine.table("profile_traits")
            counts = cw.activity_counts(engine, AS_OF, 90)
            j = traits.left_join(counts.select("profile_id", "before"), "profile_id").drop("profile_id_right")
            scorer = cw._Scorer(ChurnModel.load(root / "models" / "churn"), 90, AS_OF, now)
            out = scorer(engine.to_arrow(j.order_by("profile_id"), step="whole"))
            target = schema.ibis_schema("churn_scores").to_pyarrow()
            engine.replace("churn_scores", pa.Table.from_pandas(out[target.names], schema=target, preserve_index=False))
            rows = len(out)
        seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("ROOT", "HOW"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_once(Path(args.child[0]), args.child[1])))
        return
    root = DATA / f"batched-scoring-{args.profiles}"
    prepare(root, args.profiles)
    results: dict[str, list[dict]] = {"whole table": [], "batched": []}
    for _ in range(args.repeat):
        for label, how in (("whole table", "whole"), ("batched", "batched")):
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(root), how], check=True, capture_output=True, text=True
            )
            results[label].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"churn scoring of {args.profiles:,} profile_traits rows on DuckDB, median of {args.repeat} fresh processes")
    print(f"{'':12} {'seconds':>9} {'peak MiB':>9} {'rows':>9}")
    for label, runs in results.items():
        print(
            f"{label:12} {statistics.median(r['seconds'] for r in runs):9.1f} "
            f"{statistics.median(r['peak_mib'] for r in runs):9.0f} {runs[0]['rows']:9,}"
        )


if __name__ == "__main__":
    main()

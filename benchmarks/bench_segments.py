"""Segments, archetypes and churn in a workspace: speed at scale and quality against the synthetic truth.

1. Segment evaluation on N profiles (DuckDB): profile_traits synthesised directly at that size (with one
   offer event per third of the profiles), `cx360 segments evaluate` timed end to end (archetypes, RFM,
   k-means clusters, declared segments, membership history), and one declared segment's query next to
   the same filter hand-written in SQL on the same DuckDB file (the floor).
2. Digital archetypes on the demo world against its ground truth: accuracy and per-class confusion next
   to the majority-class baseline; correlation of both scores with the true ones.
3. Churn on the demo world: held-out quality of the point-in-time model next to the recency baseline,
   and both against the ground-truth churn dates.

    python benchmarks/bench_segments.py --profiles 1000000 --customers 3000 --repeat 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from cx360 import schema
from cx360.workspace import Workspace

DATA = Path(__file__).parent / ".data"
AS_OF = dt.datetime(2026, 1, 1)
SEGMENTS = """
[segmentation]
clusters = 6

[[segments]]
name = "valuable_and_recent"
where = "spend_total > 5000 and days_since_txn < 30"

[[segments]]
name = "digital_paranoids"
where = "archetype = 'paranoid' and app_events_90d > 10"

[[segments]]
name = "rejected_auto_loan_big_spenders"
where = "spend_90d > 2000"
events = { name = "offer_rejected", where = "properties.offer = 'auto_loan'", within_days = 180 }

[[segments]]
name = "champions_not_in_app"
where = "rfm_segment = 'champions' and (app_events_90d = 0 or app_events_90d is null)"
"""
FLOOR_SQL = "SELECT profile_id FROM profile_traits WHERE spend_total > 5000 AND days_since_txn < 30"


def synth_traits(n: int, rng: np.random.Generator) -> pa.Table:
    cols: dict[str, object] = {
        "profile_id": [f"P{i:012d}" for i in range(n)],
        "as_of": np.full(n, np.datetime64(AS_OF, "us")),
    }
    for c in schema.PROFILE_TRAITS[2:]:
        if c.dtype == "int64":
            cols[c.name] = rng.poisson(rng.gamma(1.0, 8.0, n)).astype("int64")
        elif c.dtype == "float64":
            cols[c.name] = rng.lognormal(6, 1.5, n).round(2)
        elif c.dtype == "timestamp":
            cols[c.name] = np.datetime64(AS_OF, "us") - rng.integers(0, 365 * 86400, n).astype("timedelta64[s]")
        else:
            cols[c.name] = rng.choice(np.array(["a", "b", "c", None], dtype=object), n)
    cols["survey_preferred_device"] = rng.choice(np.array(["smartphone", "laptop", "none", None], dtype=object), n)
    cols["survey_ok_to_share_data"] = rng.integers(1, 6, n)
    return pa.Table.from_pandas(
        pd.DataFrame(cols), schema=schema.ibis_schema("profile_traits").to_pyarrow(), preserve_index=False
    )


def synth_events(n: int, rng: np.random.Generator) -> pa.Table:
    who = rng.choice(n, n // 3, replace=False)
    ts = np.datetime64(AS_OF, "us") - rng.integers(1, 365 * 86400, len(who)).astype("timedelta64[s]")
    offers = rng.choice(["auto_loan", "mortgage", "deposit"], len(who))
    frame = pd.DataFrame(
        {
            "profile_id": [f"P{i:012d}" for i in who],
            "event_id": [f"e{i}" for i in range(len(who))],
            "ts": ts,
            "source": "marketing",
            "name": "offer_rejected",
            "channel": "sms",
            "amount": None,
            "properties": [f'{{"offer": "{o}"}}' for o in offers],
        }
    )
    return pa.Table.from_pandas(frame, schema=schema.ibis_schema("profile_events").to_pyarrow(), preserve_index=False)


def bench_scale(n: int, repeat: int) -> None:
    from cx360.segments.evaluate import Fields, evaluate, members, specs_from_config

    root = DATA / f"segments-{n}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "cx360.toml").write_text('[engine]\nkind = "duckdb"\n' + SEGMENTS, encoding="utf-8")
    rng = np.random.default_rng(0)
    with Workspace(root) as ws:
        ws.engine.replace("profile_traits", synth_traits(n, rng))
        ws.engine.replace("profile_events", synth_events(n, rng))
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            results = evaluate(ws)
            runs.append(time.perf_counter() - started)
        assert all(r.status == "ok" for r in results), [r.error for r in results if r.error]
        spec = specs_from_config(ws.config.segments)[0]
        fields = Fields(ws.engine)
        ours, floor = [], []
        for _ in range(max(repeat, 3)):
            started = time.perf_counter()
            size = ws.engine.to_arrow(members(ws.engine, fields, spec, AS_OF), step="bench").num_rows
            ours.append(time.perf_counter() - started)
            started = time.perf_counter()
            floor_size = ws.engine.con.con.execute(FLOOR_SQL).to_arrow_table().num_rows
            floor.append(time.perf_counter() - started)
        assert size == floor_size
    print(f"\n== Segment evaluation on {n:,} synthetic profiles (DuckDB), {repeat} runs ==")
    print(
        f"segments: {len(results)} ({sum(r.kind == 'custom' for r in results)} declared, "
        f"{sum(r.kind == 'rfm' for r in results)} RFM, {sum(r.kind == 'cluster' for r in results)} clusters)"
    )
    print(
        f"full evaluation (archetypes, RFM, k-means, segments, history): median {statistics.median(runs):.1f} s "
        f"(first {runs[0]:.1f} s, runs {', '.join(f'{r:.1f}' for r in runs)})"
    )
    print(
        f"one declared segment ({spec.where}; {size:,} members): median {statistics.median(ours) * 1000:.0f} ms, "
        f"hand-written SQL on the same file {statistics.median(floor) * 1000:.0f} ms "
        f"(ratio {statistics.median(ours) / statistics.median(floor):.1f}x)"
    )


def demo_world(customers: int) -> Path:
    from cx360.demo import generate_world
    from cx360.identity.resolve import resolve
    from cx360.profiles.build import build
    from cx360.sources.ingest import ingest

    root = DATA / f"segments-demo-{customers}"
    if not (root / "warehouse.duckdb").is_file():
        shutil.rmtree(root, ignore_errors=True)
        generate_world(root, customers=customers, seed=7)
        with Workspace(root) as ws:
            ingest(ws)
            resolve(ws)
            build(ws)
    return root


def bench_archetypes(root: Path) -> None:
    from cx360.demo.scoring import archetype_frame
    from cx360.models.archetypes import ARCHETYPES
    from cx360.segments.evaluate import evaluate

    with Workspace(root) as ws:
        evaluate(ws)
        f = archetype_frame(ws, root / "truth")
    acc = float((f.archetype == f.true_archetype).mean())
    majority = f.true_archetype.value_counts()
    print(f"\n== Digital archetypes against the demo truth ({len(f):,} profiles) ==")
    print(f"accuracy {acc:.3f}; majority-class baseline ('{majority.index[0]}') {majority.iloc[0] / len(f):.3f}")
    print(
        f"score correlation with the truth (Spearman): sophistication "
        f"{f.digital_sophistication.corr(f.true_sophistication, method='spearman'):.3f}, data sharing "
        f"{f.data_sharing.corr(f.true_sharing, method='spearman'):.3f}"
    )
    table = pd.crosstab(f.true_archetype, f.archetype).reindex(index=ARCHETYPES, columns=ARCHETYPES, fill_value=0)
    print("confusion (rows: truth, columns: cx360):")
    print(table.to_string())
    recall = np.diag(table) / table.sum(axis=1).replace(0, np.nan)
    precision = np.diag(table) / table.sum(axis=0).replace(0, np.nan)
    print(
        "per class: "
        + "; ".join(
            f"{a} recall {r:.2f} precision {p:.2f}" for a, r, p in zip(ARCHETYPES, recall, precision, strict=True)
        )
    )


def bench_churn(root: Path, as_of: dt.datetime, horizon: int) -> None:
    from cx360.demo.scoring import profile_persons
    from cx360.models.evaluation import metrics
    from cx360.scoring import churn as cw

    with Workspace(root) as ws:
        started = time.perf_counter()
        result = cw.train(ws, as_of=as_of, horizon_days=horizon)
        seconds = time.perf_counter() - started
        test = cw.snapshot(ws, as_of, horizon)
        owners = profile_persons(ws, root / "truth")
    h = result.card["held_out"]
    print(
        f"\n== Churn on the demo world: snapshot {as_of.date()}, horizon {horizon} days "
        f"(train {result.card['split']['train_rows']:,} rows on {', '.join(result.card['split']['train_snapshots'])}; "
        f"test {result.card['split']['test_rows']:,}; {seconds:.0f} s) =="
    )
    print(f"behavioural label rate on the test snapshot: {test.churned.mean():.3f}")
    print(
        "held-out, behavioural label: "
        + "; ".join(
            f"{m} model {h['model'][m]:.3f} / recency baseline {h['baseline'][m]:.3f}"
            for m in ("roc_auc", "pr_auc", "brier", "top_decile_lift")
        )
    )
    persons = pd.read_parquet(root / "truth" / "persons.parquet", columns=["person_id", "churn_date"])
    t = test.merge(owners, on="profile_id").merge(persons, on="person_id")
    end = pd.Timestamp(as_of + dt.timedelta(days=horizon))
    truth = (t.churn_date.notna() & (t.churn_date >= pd.Timestamp(as_of)) & (t.churn_date < end)).to_numpy().astype(int)
    label = t.churned.to_numpy()
    model = result.model
    x = t.drop(columns=["churned", "person_id", "churn_date"])
    p, b = model.churn_probability(x), model.baseline_probability(x)
    tp = int(((label == 1) & (truth == 1)).sum())
    print(
        f"ground truth (churn date within the horizon): rate {truth.mean():.3f}; behavioural label precision "
        f"{tp / max(label.sum(), 1):.3f}, recall {tp / max(truth.sum(), 1):.3f}"
    )
    mt, bt = metrics(truth, p), metrics(truth, b)
    print(
        "against the truth: "
        + "; ".join(
            f"{m} model {mt[m]:.3f} / recency baseline {bt[m]:.3f}" for m in ("roc_auc", "pr_auc", "top_decile_lift")
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", type=int, default=1_000_000)
    ap.add_argument("--customers", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--as-of", default="2025-09-01")
    ap.add_argument("--horizon-days", type=int, default=90)
    ap.add_argument("--skip", nargs="*", default=[], choices=["scale", "archetypes", "churn"])
    args = ap.parse_args()
    if "scale" not in args.skip:
        bench_scale(args.profiles, args.repeat)
    if {"archetypes", "churn"} - set(args.skip):
        root = demo_world(args.customers)
        if "archetypes" not in args.skip:
            bench_archetypes(root)
        if "churn" not in args.skip:
            bench_churn(root, dt.datetime.fromisoformat(args.as_of), args.horizon_days)


if __name__ == "__main__":
    main()

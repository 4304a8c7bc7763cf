"""Identity resolution on the synthetic bank, scored against its ground truth, and timed.

    python benchmarks/bench_identity.py --customers 20000        # whole world: quality by source pair
    python benchmarks/bench_identity.py --crm-only --customers 650000   # ~1M CRM records: time to resolve
    python benchmarks/bench_identity.py --crm-only --customers 20000 --engine spark   # the same on Spark (local)

Quality is pairwise and B-cubed precision / recall / F1 over CRM records, and pairwise per pair of
sources. The anchor for speed: Splink's documentation cites about a minute for a million records
on a laptop (its own matching only; cx360 also builds the identifier graph and golden records), so
the probabilistic part (Splink training and scoring) is timed on its own too. Peak memory is the
resident set of this process (Splink's embedded DuckDB included; on Spark the JVM is not counted).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import cx360.identity.resolve as resolve_module
from cx360.demo import generate_world
from cx360.demo.scoring import identity_scores
from cx360.identity.resolve import resolve
from cx360.sources.ingest import ingest
from cx360.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--crm-only", action="store_true", help="ingest and resolve only the two CRMs")
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    args = parser.parse_args()
    matching = _time(resolve_module, "_probabilistic")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "world"
        began = time.perf_counter()
        generate_world(root, customers=args.customers, seed=args.seed, crm_only=args.crm_only)
        generated = time.perf_counter() - began
        if args.engine == "spark":
            toml = root / "cx360.toml"
            toml.write_text(
                toml.read_text(encoding="utf-8").replace(
                    'kind = "duckdb"\npath = "warehouse.duckdb"', 'kind = "spark"\nmaster = "local[2]"'
                ),
                encoding="utf-8",
            )
        with Workspace(root) as ws:
            began = time.perf_counter()
            reports = ingest(ws)
            ingested = time.perf_counter() - began
            assert all(r.ok for r in reports), [r.error for r in reports if not r.ok]
            report = resolve(ws)
            scores = identity_scores(ws, root / "truth")
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}; engine {args.engine}")
    print(
        f"customers: {args.customers:,}; CRM records: {report.records:,}; "
        f"generate {generated:.1f} s; ingest {ingested:.1f} s"
    )
    print(
        f"resolve: {report.seconds:.1f} s ({report.records / report.seconds:,.0f} records/s); "
        f"links active {report.links_active:,}, "
        f"blocked {report.links_blocked:,}, probabilistic {report.probabilistic_links:,}; profiles {report.profiles:,}"
    )
    print(
        f"of which probabilistic matching (features, training, scoring): {sum(matching):.1f} s; "
        f"peak memory {peak_gb:.1f} GB"
    )
    for w in report.warnings:
        print("warning:", w)
    print(f"{'measure':12}{'precision':>10}{'recall':>8}{'F1':>8}")
    for name in ("pairwise", "bcubed"):
        s = scores[name]
        print(f"{name:12}{s.precision:>10.4f}{s.recall:>8.4f}{s.f1:>8.4f}")
    print(scores["by_source_pair"].to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def _time(module, name: str) -> list[float]:
    """Wrap module.name so that each call's duration is appended to the returned list."""
    spent: list[float] = []
    original = getattr(module, name)

    def timed(*args, **kwargs):
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - began)

    setattr(module, name, timed)
    return spent


if __name__ == "__main__":
    main()

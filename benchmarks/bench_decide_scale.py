"""Batch decision time and peak memory at 1M profiles.

The inputs of 1M profiles are made by replicating the synthetic bank's real profiles with new ids:
the demo world of bench_decisions.py (N customers, seed 7, its catalogue of four offers on four
channels, profiles as of 2025-10-01) is read once (`cx360.decisions.inputs.load`), then every
profile, with its traits, offer history, activity hours, consents and open complaints, is copied
under new ids (`P...~k`) until --profiles are reached. So the people are real demo people, repeated;
nothing is drawn anew.

Then the batch decision runs on them as `cx360 decide` does after loading: the response models are
fitted on the whole history, and the people are scored and logged in chunks of --chunk profiles
(`cx360.decisions.decide.plan`), so that memory stays bounded. Prints the time of each step and the
process's peak resident memory. Writing the 1M decisions to the warehouse is measured too, into the
benchmark's own copy of the workspace.

    python benchmarks/bench_decide_scale.py                         # 1,000,000 profiles
    python benchmarks/bench_decide_scale.py --profiles 100000 --chunk 50000
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))


def replicate(data, n: int):
    """`data` (cx360.decisions.inputs.Inputs) with its people copied under new ids up to n profiles."""
    from dataclasses import replace

    ids = data.people.index.to_numpy()
    copies = -(-n // len(ids))
    suffix = lambda k: "" if k == 0 else f"~{k}"  # noqa: E731 - copy 0 keeps the real ids

    def per_copy(frame: pd.DataFrame) -> pd.DataFrame:
        parts = [frame.assign(profile_id=frame.profile_id + suffix(k)) for k in range(copies)]
        return pd.concat(parts, ignore_index=True)

    people = pd.concat([data.people.rename(index=lambda p, k=k: p + suffix(k)) for k in range(copies)])
    people = people.iloc[:n]
    keep = set(people.index)
    history = per_copy(data.history)
    history = history[history.profile_id.isin(keep)].sort_values(["profile_id", "ts"], kind="stable")
    activity = per_copy(data.activity)
    activity = activity[activity.profile_id.isin(keep)]

    def ids_of(group: set[str]) -> set[str]:
        return {p + suffix(k) for p in group for k in range(copies)} & keep

    return replace(
        data,
        people=people,
        history=history.reset_index(drop=True),
        sent=data.sent.iloc[:0],
        open_complaints=ids_of(data.open_complaints),
        activity=activity.reset_index(drop=True),
        consent={ch: ids_of(group) for ch, group in data.consent.items()},
        profiling=None if data.profiling is None else ids_of(data.profiling),
    )


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", type=int, default=1_000_000)
    ap.add_argument("--customers", type=int, default=1000, help="the demo world replicated")
    ap.add_argument("--chunk", type=int, default=100_000, help="profiles scored at a time")
    ap.add_argument("--as-of", default="2025-10-01")
    args = ap.parse_args()

    from bench_decisions import build

    from cx360.decisions import decide, inputs
    from cx360.workspace import Workspace

    as_of = dt.datetime.fromisoformat(args.as_of)
    root = HERE / ".data" / f"decisions-{args.customers}"
    build(root, args.customers, as_of)
    with Workspace(root) as ws:
        started = time.perf_counter()
        base = inputs.load(ws.engine, ws.config, as_of)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        data = replicate(base, args.profiles)
        copy_s = time.perf_counter() - started
        print(
            f"{len(base.people):,} demo profiles read in {load_s:.1f} s; replicated to {len(data.people):,} profiles "
            f"({len(data.history):,} offer events, {len(data.activity):,} activity rows) in {copy_s:.1f} s",
            flush=True,
        )
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        started = time.perf_counter()
        report, frame, _ = decide.plan(ws, data, now, chunk=args.chunk, progress=True)
        plan_s = time.perf_counter() - started
        print(f"decided {report.profiles:,} profiles in {plan_s:.1f} s ({report.profiles / plan_s:,.0f}/s), "
              f"{report.decided:,} with an offer; peak memory so far {peak_gib():.1f} GiB", flush=True)  # fmt: skip
        started = time.perf_counter()
        decide.write(ws, frame)
        write_s = time.perf_counter() - started
    print(f"wrote the decisions table ({len(frame):,} rows) in {write_s:.1f} s")
    print(f"total after the read: {copy_s + plan_s + write_s:.1f} s; peak resident memory {peak_gib():.1f} GiB")


if __name__ == "__main__":
    main()

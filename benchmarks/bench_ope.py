"""Off-policy evaluation (cx360.decisions.ope: IPW and DR with bootstrap intervals) on the Open Bandit
Dataset sample: 10,000 impressions of ZOZOTOWN's fashion recommendations logged by a uniform random
policy over 80 items (probability 1/80, as cx360's decision log records each choice's probability).

The first half fits a reward model (each item's click rate, shrunk towards the overall rate); on the
second half the estimates of three target policies: the uniform policy itself (its IPW must equal the
logged click rate), the greedy policy (always the item with the best fitted click rate) and the same
with cx360's 5% exploration. Next to them, the click rates the random and the Bernoulli Thompson
Sampling policies reached on-policy, from the sample's two logs. With about 20 clicks in the
evaluation half, the intervals are far wider than the differences between policies: the sample shows
that the log works with standard estimators; it is too small to rank policies.

The sample ships in the obp wheel (obp/dataset/obd/); fetch it once with pip (no install needed):

    pip download --no-deps --python-version 3.10 --only-binary :all: obp -d /tmp/obp
    python benchmarks/bench_ope.py --wheel /tmp/obp/obp-0.4.1-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import glob
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd


def read(wheel: Path, policy: str) -> pd.DataFrame:
    with zipfile.ZipFile(wheel) as z:
        return pd.read_csv(io.BytesIO(z.read(f"obp/dataset/obd/{policy}/all/all.csv")), index_col=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    found = sorted(glob.glob("/tmp/obp/obp-*.whl"))
    ap.add_argument("--wheel", type=Path, default=Path(found[-1]) if found else None)
    ap.add_argument("--exploration", type=float, default=0.05)
    args = ap.parse_args()
    if args.wheel is None or not args.wheel.is_file():
        sys.exit(f"no obp wheel; see how to fetch it at the top of {__file__}")
    from cx360.decisions.ope import dr, ipw

    log, bts = read(args.wheel, "random"), read(args.wheel, "bts")
    items = np.sort(log.item_id.unique())
    half = len(log) // 2
    train, test = log.iloc[:half], log.iloc[half:]
    overall = train.click.mean()
    clicks = train.groupby("item_id").click.agg(["sum", "count"]).reindex(items, fill_value=0)
    rate = ((clicks["sum"] + 20 * overall) / (clicks["count"] + 20)).to_numpy()  # shrunk with 20 views' weight
    best = int(np.argmax(rate))
    n = len(items)
    policies = {
        "uniform (the logger)": np.full(n, 1 / n),
        "greedy on click rate": np.eye(n)[best],
        f"greedy, {args.exploration:.0%} explored": (1 - args.exploration) * np.eye(n)[best] + args.exploration / n,
    }
    a = np.searchsorted(items, test.item_id.to_numpy())
    r, p = test.click.to_numpy(), test.propensity_score.to_numpy()
    print(
        f"Open Bandit Dataset sample: {len(log):,} random-policy impressions ({int(log.click.sum())} clicks), "
        f"{n} items; reward model on the first {half:,}, estimates on the other {len(test):,} "
        f"({int(r.sum())} clicks)"
    )
    print(f"  {'target policy':28} {'IPW (95% CI)':>28} {'DR (95% CI)':>28}")
    intervals = []
    for name, pi in policies.items():
        w = pi[a]
        e_ipw = ipw(r, p, w)
        e_dr = dr(r, p, w, rate[a], np.full(len(a), float(pi @ rate)))
        intervals.append((e_dr.low, e_dr.high))
        print(
            f"  {name:28} {e_ipw.value:.4f} [{e_ipw.low:.4f}, {e_ipw.high:.4f}]      "
            f"{e_dr.value:.4f} [{e_dr.low:.4f}, {e_dr.high:.4f}]"
        )
    print(f"  on-policy click rates: random {log.click.mean():.4f}, Bernoulli TS {bts.click.mean():.4f}")
    overlap = max(low for low, _ in intervals) <= min(high for _, high in intervals)
    verdict = "overlap: too small to rank these policies" if overlap else "do not all overlap"
    print(
        f"  the DR intervals {verdict}; the two loggers differ on-policy by {bts.click.mean() - log.click.mean():+.4f}"
    )


if __name__ == "__main__":
    main()

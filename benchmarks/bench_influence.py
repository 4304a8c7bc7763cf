"""Two-hop reach on a graph with a hub: cx360's blocked count next to the whole square it replaced.

    python benchmarks/bench_influence.py --followers 20000 100000 --replies-share 0.2 --people 200000

A hub with F followers replies to 0.2·F people, inside a background of N people with 4 random
follows, mentions or replies each. Each of those replied-to people reaches the hub's F followers in
two hops, so the square of the attention graph holds about 0.2·F² entries (2e9 at F = 100k, about
24 GB). For each F, in a fresh process each (peak memory is the process's maximum resident size):
`influence()` with two_hop_reach (blocks of rows), and, where its square fits in --square-limit
entries, the square formed whole (`(A + A @ A) != 0`, as cx360 counted before); the two reach
columns are compared. Prints seconds, peak MB and the entries of the square.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np, pandas as pd, scipy.sparse as sp
from cx360.models import influence as inf

followers, share, people, method = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
replies = int(followers * share)
src = [f"f{i}" for i in range(followers)] + ["hub"] * replies
dst = ["hub"] * followers + [f"r{i}" for i in range(replies)]
kind = ["follow"] * followers + ["reply"] * replies
m = people * 4
a, b = rng.integers(0, people, m), rng.integers(0, people, m)
src += [f"p{i}" for i in a]; dst += [f"p{i}" for i in b]
kind += list(rng.choice(["follow", "mention", "reply"], m))
edges = pd.DataFrame({"source_id": src, "target_id": dst, "kind": kind})
t = time.perf_counter()
if method == "blocks":
    reach = inf.influence(edges)["reach"].to_numpy()
else:
    nodes, w = inf._graph(inf.attention_edges(edges))
    hop1 = (w.T != 0).astype(np.float64).tocsr()
    square = ((hop1 + hop1 @ hop1) != 0).tolil()
    square.setdiag(False)
    reach = np.asarray(square.tocsr().sum(axis=1)).ravel()
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "sum": int(reach.sum()), "max": int(reach.max())}))
"""


def run(followers: int, share: float, people: int, method: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(followers), str(share), str(people), method],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]}
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--followers", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--replies-share", type=float, default=0.2)
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--square-limit", type=float, default=5e8, help="form the whole square up to this many entries")
    args = parser.parse_args()
    print(
        f"background: {args.people:,} people, 4 edges each; "
        f"the hub replies to {args.replies_share:.0%} of its followers"
    )
    print(f"{'followers':>10} {'square entries':>15} {'method':>7} {'seconds':>8} {'peak MB':>8}  reach sum / max")
    for f in args.followers:
        entries = f * f * args.replies_share
        methods = ["blocks", "square"] if entries <= args.square_limit else ["blocks"]
        sums = set()
        for method in methods:
            r = run(f, args.replies_share, args.people, method)
            if "error" in r:
                print(f"{f:>10,} {entries:>15,.0f} {method:>7}  failed: {r['error']}")
                continue
            sums.add((r["sum"], r["max"]))
            print(
                f"{f:>10,} {entries:>15,.0f} {method:>7} {r['seconds']:>8.2f} {r['peak_mb']:>8.0f}  "
                f"{r['sum']:,} / {r['max']:,}"
            )
        if len(methods) == 2:
            print(f"{'':>10} both methods count the same reach: {len(sums) == 1}")
        else:
            print(
                f"{'':>10} square not formed: {entries:,.0f} entries is past --square-limit ({args.square_limit:,.0f})"
            )


if __name__ == "__main__":
    main()

"""Connected components at identity's scale: SQL label propagation on DuckDB next to scipy.

A synthetic graph shaped like identity's links: --nodes nodes in clusters of
1-4 records joined by chains, plus a few long chains (long diameter).
Runs both, alternating, --repeat times; prints medians, the ratio and the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import ibis
import numpy as np
import pyarrow as pa

from cx360.identity.components import components
from cx360.identity.label_propagation import label_components


def graph(n: int, seed: int = 1) -> tuple[pa.Array, pa.Array, pa.Array]:
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    sizes = rng.integers(1, 5, n // 2)
    ends = np.cumsum(sizes)
    ends = ends[ends < n]
    starts = np.concatenate([[0], ends])
    # consecutive members of a cluster are linked (a chain inside each cluster)
    idx = np.arange(n)
    cluster_start = starts[np.searchsorted(starts, idx, side="right") - 1]
    linked = idx[idx > cluster_start]
    left, right = perm[linked - 1], perm[linked]
    chain = perm[:2000]  # one long chain across 2000 nodes
    left = np.concatenate([left, chain[:-1]])
    right = np.concatenate([right, chain[1:]])
    key = np.char.add("n", np.arange(n).astype(str))
    return pa.array(key), pa.array(key[left]), pa.array(key[right])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    nodes, left, right = graph(args.nodes)
    con = ibis.duckdb.connect()
    tn = con.create_table("nodes", pa.table({"node": nodes}))
    tl = con.create_table("links", pa.table({"left": left, "right": right}))
    sql_t, scipy_t, rounds = [], [], 0
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ref = components(nodes, left, right)
        scipy_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out, rounds = label_components(tn, tl)
        got = out.to_pyarrow()
        sql_t.append(time.perf_counter() - t0)
    same = got.sort_by("node").equals(ref.sort_by("node"))
    s, q = statistics.median(scipy_t), statistics.median(sql_t)
    print(f"nodes={args.nodes} links={len(left)} rounds={rounds} same_partition={same}")
    print(f"scipy median {s:.2f}s  sql/duckdb median {q:.2f}s  ratio sql/scipy {q / s:.1f}x")


if __name__ == "__main__":
    main()

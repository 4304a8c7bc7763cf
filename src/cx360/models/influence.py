"""Social influence and customer value from a directed interaction graph.

Edges are ``source_id -> target_id`` with a ``kind``. Every kind is turned into an *attention* edge
``u -> v`` ("u pays attention to v", so v can influence u):

- ``follow``, ``mention``, ``reply``: source pays attention to target (kept as is);
- ``referral``: source brought target in, so target paid attention to source (reversed).

PageRank runs on the attention graph (rank flows to whom people listen to); reach counts the people an
influencer reaches along reversed attention edges. See docs/clv.md for the formulas.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cx360.errors import SourceError

KINDS = ("mention", "reply", "referral", "follow")
# A referral moved money; a reply is a conversation; a mention is a nod; a follow is cheap.
KIND_WEIGHTS = {"referral": 3.0, "reply": 2.0, "mention": 1.0, "follow": 0.5}
TIERS = ("bronze", "silver", "gold", "platinum")
TIER_QUANTILES = (0.5, 0.8, 0.95)


def _frame(table) -> pd.DataFrame:
    """pandas as is; anything with ``to_pandas`` (Arrow tables, Ibis results) converted."""
    return table if isinstance(table, pd.DataFrame) else table.to_pandas()


def attention_edges(edges, kind_weights: dict[str, float] | None = None) -> pd.DataFrame:
    """Validated edges as ``src -> dst`` attention with a weight, parallel edges summed, self-loops dropped."""
    df = _frame(edges)
    missing = [c for c in ("source_id", "target_id", "kind") if c not in df.columns]
    if missing:
        raise SourceError(
            f"influence edges: missing column(s) {missing}; expected source_id, target_id, kind[, weight]"
        )
    kinds = df["kind"].astype("string").str.strip().str.lower()
    unknown = sorted(set(kinds.dropna()) - set(KINDS)) + (["<empty>"] if kinds.isna().any() else [])
    if unknown:
        raise SourceError(f"influence edges: unknown kind(s) {unknown[:5]}; accepted: {', '.join(KINDS)}")
    kw = {**KIND_WEIGHTS, **(kind_weights or {})}
    weight = pd.to_numeric(df["weight"], errors="coerce") if "weight" in df.columns else pd.Series(1.0, index=df.index)
    if weight.isna().any() or (weight < 0).any():
        raise SourceError("influence edges: column 'weight' must be a number >= 0 on every row")
    if df["source_id"].isna().any() or df["target_id"].isna().any():
        raise SourceError("influence edges: source_id and target_id must be set on every row")
    src, dst = df["source_id"].astype(str), df["target_id"].astype(str)
    referral = (kinds == "referral").to_numpy()
    out = pd.DataFrame(
        {
            "src": np.where(referral, dst, src),
            "dst": np.where(referral, src, dst),
            "weight": weight.to_numpy(dtype=float) * kinds.map(kw).to_numpy(dtype=float),
        }
    )
    out = out[(out["src"] != out["dst"]) & (out["weight"] > 0)]
    return out.groupby(["src", "dst"], as_index=False, sort=True)["weight"].sum()


def _graph(att: pd.DataFrame, extra_nodes=()) -> tuple[pd.Index, sp.csr_matrix]:
    nodes = pd.Index(sorted(set(att["src"]) | set(att["dst"]) | {str(n) for n in extra_nodes}))
    i, j = nodes.get_indexer(att["src"]), nodes.get_indexer(att["dst"])
    w = sp.csr_matrix((att["weight"].to_numpy(), (i, j)), shape=(len(nodes), len(nodes)))
    return nodes, w


def pagerank(
    edges,
    *,
    damping: float = 0.85,
    tol: float = 1e-10,
    max_iter: int = 200,
    kind_weights: dict[str, float] | None = None,
) -> pd.Series:
    """Weighted PageRank on the attention graph by power iteration; sums to 1.

    Dangling nodes (who attend to no one) spread their rank evenly, as in networkx's default.
    """
    nodes, w = _graph(attention_edges(edges, kind_weights))
    return pd.Series(_pagerank(w, damping, tol, max_iter), index=nodes, name="pagerank")


def _pagerank(w: sp.csr_matrix, damping: float, tol: float, max_iter: int) -> np.ndarray:
    n = w.shape[0]
    if n == 0:
        return np.zeros(0)
    out_weight = np.asarray(w.sum(axis=1)).ravel()
    dangling = out_weight == 0
    inv = np.divide(1.0, out_weight, out=np.zeros(n), where=~dangling)
    transition_t = (sp.diags(inv) @ w).T.tocsr()  # column-stochastic on non-dangling columns
    x = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        prev = x
        x = damping * (transition_t @ x + x[dangling].sum() / n) + (1 - damping) / n
        if np.abs(x - prev).sum() < n * tol:
            break
    return x / x.sum()


def _followers(followers, nodes: pd.Index) -> np.ndarray:
    if followers is None:
        return np.zeros(len(nodes))
    if isinstance(followers, pd.DataFrame) or hasattr(followers, "to_pandas"):
        df = _frame(followers)
        if not {"node_id", "followers"} <= set(df.columns):
            raise SourceError(f"follower counts: expected columns node_id, followers; got {list(df.columns)}")
        followers = pd.Series(df["followers"].to_numpy(), index=df["node_id"].astype(str))
    counts = pd.to_numeric(pd.Series(followers), errors="coerce")
    counts.index = counts.index.astype(str)
    if counts.isna().any() or (counts < 0).any():
        raise SourceError("follower counts must be numbers >= 0")
    return counts.groupby(level=0).max().reindex(nodes, fill_value=0).to_numpy(dtype=float)


def influence(
    edges,
    followers=None,
    *,
    pagerank_share: float = 0.5,
    damping: float = 0.85,
    kind_weights: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Per node: ``pagerank``, ``reach`` (distinct people within 2 hops), ``weighted_reach`` and
    ``influence_score`` in [0, 1].

    ``weighted_reach = reach + followers(v) + Σ followers(u) over first-hop people u``: follower counts
    stand for audience outside the edge table (first hop through v's own followers, second through
    theirs). ``influence_score = s·log1p(N·pagerank)/max + (1−s)·log1p(weighted_reach)/max``.
    """
    if not 0 <= pagerank_share <= 1:
        raise SourceError(f"pagerank_share must be in [0, 1], got {pagerank_share}")
    fol_nodes = () if followers is None else _follower_ids(followers)
    nodes, w = _graph(attention_edges(edges, kind_weights), fol_nodes)
    n = len(nodes)
    pr = _pagerank(w, damping, 1e-10, 200)
    # Influence travels against attention: v reaches u when u -> v.
    hop1 = (w.T != 0).astype(np.float32).tocsr()
    reach = two_hop_reach(hop1)
    fol = _followers(followers, nodes)
    weighted = reach + fol + hop1 @ fol
    pr_n, reach_n = _unit(np.log1p(n * pr)), _unit(np.log1p(weighted))
    return pd.DataFrame(
        {
            "node_id": nodes,
            "pagerank": pr,
            "reach": reach.astype(int),
            "followers": fol,
            "weighted_reach": weighted,
            "influence_score": pagerank_share * pr_n + (1 - pagerank_share) * reach_n,
        }
    )


REACH_BLOCK_ENTRIES = 1 << 24  # the most 2-hop entries one block of rows may hold (about 200 MB at its peak)


def two_hop_reach(hop1: sp.csr_matrix, *, block_entries: int = REACH_BLOCK_ENTRIES) -> np.ndarray:
    """Per row v: the distinct others within two hops (hop1[v, u] != 0 is one hop from v to u).

    The square hop1 @ hop1 is never formed whole: a hub with 100k followers that replies to 20k people
    puts 2e9 entries in it (about 24 GB). Rows are taken in blocks whose bound on their 2-hop entries
    (own degree plus their neighbours' degrees) stays within `block_entries`, so memory is one block's;
    a row whose bound alone passes it is a block by itself."""
    a = hop1.tocsr().astype(np.float32)
    a.data[:] = 1.0
    n = a.shape[0]
    degree = np.diff(a.indptr).astype(np.int64)
    bound = np.cumsum(degree + a @ degree.astype(np.float64), dtype=np.float64)
    reach = np.zeros(n, dtype=np.int64)
    start = 0
    while start < n:
        below = bound[start - 1] if start else 0.0
        stop = max(start + 1, int(np.searchsorted(bound, below + block_entries, side="right")))
        block = a[start:stop]
        within = (block + block @ a).tocsr()
        rows = np.arange(stop - start)
        itself = np.asarray(within[rows, rows + start]).ravel() != 0  # back to oneself in two hops
        reach[start:stop] = np.diff(within.indptr) - itself
        start = stop
    return reach


def _follower_ids(followers) -> list[str]:
    if isinstance(followers, pd.DataFrame) or hasattr(followers, "to_pandas"):
        df = _frame(followers)
        return df["node_id"].astype(str).tolist() if "node_id" in df.columns else []
    return [str(i) for i in pd.Series(followers).index]


def _unit(v: np.ndarray) -> np.ndarray:
    top = v.max() if v.size else 0.0
    return v / top if top > 0 else np.zeros_like(v)


def customer_value(
    clv,
    influence_edges,
    *,
    id_col: str = "customer",
    clv_col: str = "clv",
    influence_share: float = 0.1,
    hops: int = 2,
    kind_weights: dict[str, float] | None = None,
) -> pd.DataFrame:
    """``value = clv + λ·S·clv + λ²·S²·clv`` (``hops`` terms), with ``S[i, j]`` the share of j's attention
    that goes to i and λ = ``influence_share``: the part of each customer's CLV credited to those who
    influence them. Credit is conserved (no one's CLV is counted more than λ + λ² times over)."""
    if hops not in (0, 1, 2):
        raise SourceError(f"hops must be 0, 1 or 2, got {hops}")
    if not 0 <= influence_share < 1:
        raise SourceError(f"influence_share must be in [0, 1), got {influence_share}")
    c = _frame(clv)
    if id_col not in c.columns or clv_col not in c.columns:
        raise SourceError(f"clv table: expected columns {id_col!r} and {clv_col!r}; got {list(c.columns)}")
    own = pd.to_numeric(c[clv_col], errors="coerce")
    if own.isna().any():
        raise SourceError(f"clv table: column {clv_col!r} must be a number on every row")
    own = pd.Series(own.to_numpy(dtype=float), index=c[id_col].astype(str)).groupby(level=0).sum()
    nodes, w = _graph(attention_edges(influence_edges, kind_weights), own.index)
    own_v = own.reindex(nodes, fill_value=0.0).to_numpy()
    out_weight = np.asarray(w.sum(axis=1)).ravel()
    inv = np.divide(1.0, out_weight, out=np.zeros(len(nodes)), where=out_weight > 0)
    share = (sp.diags(inv) @ w).T.tocsr()  # share[i, j]: fraction of j's attention on i
    network, term = np.zeros(len(nodes)), own_v
    for k in range(1, hops + 1):
        term = share @ term
        network += influence_share**k * term
    return pd.DataFrame({id_col: nodes, "own_clv": own_v, "network_clv": network, "value": own_v + network})


def value_tiers(values, quantiles: tuple[float, float, float] = TIER_QUANTILES) -> pd.Series:
    """platinum (top 5%), gold (next 15%), silver (next 30%), bronze (bottom half) by default.

    Cut points are quantiles of ``values``; a tier needs a value strictly above its cut point, so
    ties (many zeros) stay in the lower tier.
    """
    q = tuple(quantiles)
    if len(q) != 3 or not all(0 < a < b < 1 for a, b in pairwise(q)) or not q[0] > 0:
        raise SourceError(f"quantiles must be three increasing numbers in (0, 1), got {quantiles}")
    v = pd.Series(values, dtype=float) if not isinstance(values, pd.Series) else values.astype(float)
    if v.isna().any():
        raise SourceError("value_tiers: every value must be a number")
    cuts = np.quantile(v.to_numpy(), q) if len(v) else np.zeros(3)
    level = np.searchsorted(cuts, v.to_numpy(), side="left")
    return pd.Series(pd.Categorical.from_codes(level, categories=list(TIERS), ordered=True), index=v.index, name="tier")

"""The built-in segments: RFM cells (engine-side, Ibis) and behavioural clusters (k-means in Python on
traits pulled as Arrow), each with a readable description.

RFM scores are quintiles by cumulative distribution, so customers with equal values get equal scores
on every engine (no arbitrary tie-breaking): R from days_since_txn (5 = most recent), F from txn_count,
M from spend_total, among profiles with at least one transaction. The named cell reads R against FM,
the mean of F and M.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from cx360.engine import Engine

# (segment, test on r and fm, description): the first that matches names the cell
RFM_SEGMENTS: tuple[tuple[str, str, str], ...] = (
    ("champions", "r_score >= 4 and (f_score + m_score) / 2 >= 4", "bought recently, buy often and spend the most"),
    ("new", "r_score >= 4 and f_score = 1", "bought recently for the first times"),
    ("loyal", "r_score >= 3 and (f_score + m_score) / 2 >= 3", "buy regularly and spend well; not the very latest"),
    ("potential", "r_score >= 3", "recent buyers with average frequency and spend: could become loyal"),
    ("at_risk", "(f_score + m_score) / 2 >= 3", "used to buy often and spend well, but not for a while"),
    ("hibernating", "r_score <= 2", "last bought long ago, rarely and little"),
)
NO_TRANSACTIONS = ("no_transactions", "no card payment or withdrawal before as_of")

DEFAULT_CLUSTER_TRAITS = (
    "age_years",
    "tenure_days",
    "n_products",
    "calls_90d",
    "complaints_total",
    "offers_accepted",
    "offers_rejected",
    "web_events_90d",
    "app_events_90d",
    "logins_90d",
    "txn_count_90d",
    "spend_90d",
    "avg_ticket",
    "days_since_txn",
    "visits_90d",
    "posts_total",
)


FIT_SAMPLE = 50_000


def _quintile(order: ir.Value) -> ir.IntegerValue:
    # ceil(5 * cume_dist): ties share a score; the top 20% get 5
    return (ibis.cume_dist().over(order_by=order) * 5).ceil().clip(1, 5).cast("int64")


def rfm(traits: ir.Table) -> ir.Table:
    """`profile_rfm`: R, F, M quintile scores and the named cell, for every profile."""
    buyers = traits.filter(traits.txn_count > 0)
    scored = buyers.select(
        "profile_id",
        "as_of",
        r_score=_quintile(ibis.desc(buyers.days_since_txn)),
        f_score=_quintile(buyers.txn_count),
        m_score=_quintile(buyers.spend_total.fill_null(0.0)),
    )
    from cx360.conditions import compile_condition, parse

    cells = [(compile_condition(parse(test), lambda f: scored[f]), name) for name, test, _ in RFM_SEGMENTS]
    scored = scored.mutate(rfm_segment=ibis.cases(*cells, else_="hibernating"))
    others = traits.filter(traits.txn_count.fill_null(0) == 0).select(
        "profile_id",
        "as_of",
        r_score=ibis.null("int64"),
        f_score=ibis.null("int64"),
        m_score=ibis.null("int64"),
        rfm_segment=ibis.literal(NO_TRANSACTIONS[0]),
    )
    return ibis.union(scored, others, distinct=False)


@dataclass
class Cluster:
    number: int
    size: int
    name: str
    description: str


def clusters(
    engine: Engine, traits: ir.Table, *, k: int, columns: tuple[str, ...] = DEFAULT_CLUSTER_TRAITS, seed: int = 0
) -> tuple[pd.DataFrame, list[Cluster]]:
    """k-means on standardised traits: (profile_id, as_of, cluster, cluster_name) and each cluster described
    by the traits that set it apart most from everyone else."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    frame = engine.to_arrow(
        traits.select("profile_id", "as_of", *columns), step="segments: traits for clusters"
    ).to_pandas()
    empty = pd.DataFrame(
        {
            "profile_id": pd.Series(dtype=str),
            "as_of": pd.Series(dtype="datetime64[us]"),
            "cluster": pd.Series(dtype="int64"),
            "cluster_name": pd.Series(dtype=str),
        }
    )
    if len(frame) < max(k, 2) * 5:
        return empty, []
    raw = frame[list(columns)].astype("float64")
    raw = raw.fillna(raw.median()).fillna(0.0)
    x = raw.to_numpy().copy()
    for j in range(x.shape[1]):
        col = x[:, j]
        # heavy-tailed counts and amounts: log first, so a few heavy users do not make a cluster each
        if col.min() >= 0 and np.percentile(col, 99) > 5 * max(np.median(col), 1.0):
            x[:, j] = np.log1p(col)
    std = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    # Centres from a sample (enough to place k centres), then every profile goes to its nearest one.
    # One thread: on a shared machine OpenMP threads spin-wait and run k-means many times slower.
    rng = np.random.default_rng(seed)
    fit_rows = np.sort(rng.choice(len(z), FIT_SAMPLE, replace=False)) if len(z) > FIT_SAMPLE else slice(None)
    with threadpool_limits(1):
        km = KMeans(n_clusters=k, random_state=seed, n_init=3).fit(z[fit_rows])
        labels = km.predict(z)
    order = np.argsort(-np.bincount(labels, minlength=k), kind="stable")  # cluster 1 = the largest
    renumber = np.empty(k, dtype=int)
    renumber[order] = np.arange(1, k + 1)
    numbers = renumber[labels]
    overall = raw.median()
    found = []
    for c in range(1, k + 1):
        mask = numbers == c
        if not mask.any():
            continue
        centre = z[mask].mean(axis=0)
        top = np.argsort(-np.abs(centre), kind="stable")[:3]
        words = [f"{'high' if centre[j] > 0 else 'low'} {columns[j]}" for j in top]
        medians = raw[mask].median()
        detail = [f"{columns[j]} {_num(medians.iloc[j])} (median; {_num(overall.iloc[j])} overall)" for j in top]
        found.append(
            Cluster(c, int(mask.sum()), ", ".join(words), f"{mask.mean():.0%} of profiles; " + "; ".join(detail))
        )
    names = {c.number: c.name for c in found}
    out = pd.DataFrame(
        {
            "profile_id": frame.profile_id,
            "as_of": frame.as_of,
            "cluster": numbers.astype("int64"),
            "cluster_name": [names[n] for n in numbers],
        }
    )
    return out, found


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}"


def builtin_specs(rfm_on: bool, found: list[Cluster]) -> list[tuple[str, str, str, str]]:
    """(name, kind, description, condition) of every built-in segment."""
    specs = []
    if rfm_on:
        for name, _, doc in (*RFM_SEGMENTS, (*NO_TRANSACTIONS[:1], "", NO_TRANSACTIONS[1])):
            specs.append((f"rfm_{name}", "rfm", doc, f"rfm_segment = '{name}'"))
    for c in found:
        specs.append((f"cluster_{c.number}", "cluster", f"{c.name}: {c.description}", f"cluster = {c.number}"))
    return specs


def as_of_of(engine: Engine) -> dt.datetime | None:
    t = engine.table("profile_traits")
    return engine.scalar(t.as_of.max(), step="segments: profile as_of")

"""Scores of the profile as of a point in time: lifetime value (BG/NBD x Gamma-Gamma over card
payments), social influence (PageRank and reach over who mentions whom), and customer value (own
lifetime value plus the influence-weighted value of the people a customer reaches), cut into tiers.

The per-person purchase summary is computed in the engine; only one row per person reaches Python,
where the models are fitted.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa

from cx360 import schema
from cx360.engine import Engine
from cx360.models.clv import BetaGeoFitter, FitError, GammaGammaFitter, customer_lifetime_value
from cx360.models.influence import customer_value, influence, value_tiers

HORIZON_MONTHS = 12
MONTHLY_DISCOUNT = 0.01
MIN_REPEAT_CUSTOMERS = 5
MAX_FIT_CUSTOMERS = 100_000
MENTION = re.compile(r"@([\w.]+)")


@dataclass
class ScoreReport:
    customers_with_purchases: int = 0
    repeat_customers: int = 0
    clv_params: dict[str, float] = field(default_factory=dict)
    influence_edges: int = 0
    warnings: list[str] = field(default_factory=list)


def purchase_summary(engine: Engine, as_of: dt.datetime) -> pd.DataFrame:
    """Per person, in weeks as the BG/NBD papers count: frequency (repeat purchase days), recency
    (first to last purchase day), T (first purchase day to as_of) and the mean spend of repeat days."""
    pe = engine.table("profile_events")
    pay = pe.filter((pe.name == "card_payment") & (pe.ts < ibis.literal(as_of, "timestamp")) & (pe.amount > 0))
    daily = pay.group_by(["profile_id", pay.ts.date().name("day")]).aggregate(spend=pay.amount.sum())
    epoch_day = daily.day.cast("timestamp").epoch_seconds() // 86_400
    per = daily.mutate(d=epoch_day).group_by("profile_id").aggregate(
        days=ibis._.d.count(), first=ibis._.d.min(), last=ibis._.d.max(),
        total=ibis._.spend.sum(), first_spend=ibis._.spend.argmin(ibis._.d),
    )
    frame = engine.to_arrow(per.order_by("profile_id"), step="scores: purchase summary").to_pandas()  # ordered: a seeded sample is reproducible
    as_of_day = (as_of - dt.datetime(1970, 1, 1)).days
    frame["frequency"] = (frame["days"] - 1).astype(float)
    frame["recency"] = (frame["last"] - frame["first"]) / 7.0
    frame["T"] = (as_of_day - frame["first"]) / 7.0
    repeat_spend = frame["total"] - frame["first_spend"]
    frame["monetary_value"] = np.where(frame["frequency"] > 0, repeat_spend / frame["frequency"].clip(lower=1), 0.0)
    return frame[["profile_id", "frequency", "recency", "T", "monetary_value"]]


def lifetime_value(summary: pd.DataFrame, report: ScoreReport) -> pd.DataFrame:
    out = summary.copy()
    report.customers_with_purchases = len(summary)
    report.repeat_customers = int((summary["frequency"] > 0).sum())
    for c in ("expected_purchases_12m", "p_alive", "expected_spend", "clv_12m"):
        out[c] = np.nan
    if report.repeat_customers < MIN_REPEAT_CUSTOMERS:
        report.warnings.append(f"lifetime value not fitted: {report.repeat_customers} repeat customers, "
                               f"at least {MIN_REPEAT_CUSTOMERS} are needed")
        return out
    x, tx, T, m = summary["frequency"], summary["recency"], summary["T"], summary["monetary_value"]
    # The parameters describe the population: a large seeded sample fits them as well as everyone does.
    fit = summary.sample(n=min(len(summary), MAX_FIT_CUSTOMERS), random_state=0)
    try:
        bgf = BetaGeoFitter().fit(fit["frequency"], fit["recency"], fit["T"])
        ggf = GammaGammaFitter().fit(fit["frequency"], fit["monetary_value"])
    except FitError as exc:
        report.warnings.append(f"lifetime value not fitted: {exc}")
        return out
    report.clv_params = {**{f"bgnbd_{k}": v for k, v in bgf.params_.items()},
                         **{f"gamma_gamma_{k}": v for k, v in ggf.params_.items()}}
    weeks = HORIZON_MONTHS * 365.25 / 12 / 7
    out["expected_purchases_12m"] = bgf.conditional_expected_purchases(weeks, x, tx, T)
    out["p_alive"] = bgf.p_alive(x, tx, T)
    out["expected_spend"] = ggf.conditional_expected_average_spend(x, m)
    out["clv_12m"] = customer_lifetime_value(bgf, x, tx, T, out["expected_spend"], horizon_months=HORIZON_MONTHS,
                                             discount_rate=MONTHLY_DISCOUNT, freq="W")
    return out


def mention_edges(engine: Engine, as_of: dt.datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(edges author -> mentioned person, followers per person) from posts and reviews before as_of.
    Mentions are read from the text (@handle) and from a `mentions` property when a source maps one."""
    pe = engine.table("profile_events")
    posts = pe.filter(pe.name.isin(("social_post", "review_posted")) & (pe.ts < ibis.literal(as_of, "timestamp")))
    posts = posts.select("profile_id", text=engine.json_get(posts.properties, "text"),
                         mentions=engine.json_get(posts.properties, "mentions"),
                         followers=engine.json_get(posts.properties, "followers"))
    frame = engine.to_arrow(posts, step="scores: posts").to_pandas()
    m = engine.table("identity_map")
    handles = engine.to_arrow(m.filter(m.kind == "social_handle").select("node", "profile_id"), step="scores: handles").to_pandas()
    owner = dict(zip(handles["node"].str.removeprefix("social_handle:"), handles["profile_id"]))
    rows = []
    for pid, text, mentions in zip(frame["profile_id"], frame["text"].fillna(""), frame["mentions"].fillna("")):
        for handle in set(MENTION.findall(text)) | {h.strip().lstrip("@") for h in mentions.split(",") if h.strip()}:
            target = owner.get(handle.lower().rstrip("."))
            if target is not None and target != pid:
                rows.append((pid, target))
    edges = pd.DataFrame(rows, columns=["source_id", "target_id"]).assign(kind="mention")
    followers = pd.to_numeric(frame["followers"], errors="coerce")
    per_person = (pd.DataFrame({"node_id": frame["profile_id"], "followers": followers}).dropna()
                  .groupby("node_id", as_index=False)["followers"].max())
    return edges, per_person


def build(engine: Engine, as_of: dt.datetime, profile_ids: pd.Series) -> tuple[pa.Table, ScoreReport]:
    report = ScoreReport()
    scores = pd.DataFrame({"profile_id": profile_ids}).merge(
        lifetime_value(purchase_summary(engine, as_of), report), on="profile_id", how="left")
    edges, followers = mention_edges(engine, as_of)
    report.influence_edges = len(edges)
    if len(edges) or len(followers):
        infl = influence(edges, followers).rename(columns={"node_id": "profile_id"})
        scores = scores.merge(infl[["profile_id", "pagerank", "reach", "influence_score"]], on="profile_id", how="left")
    else:
        scores = scores.assign(pagerank=np.nan, reach=np.nan, influence_score=np.nan)
    scores["reach"] = scores["reach"].fillna(0).astype("int64")
    scores["influence_score"] = scores["influence_score"].fillna(0.0)
    own = pd.DataFrame({"customer": scores["profile_id"], "clv": scores["clv_12m"].fillna(0.0)})
    value = customer_value(own, edges if len(edges) else pd.DataFrame(columns=["source_id", "target_id", "kind"]))
    scores = scores.merge(value.rename(columns={"customer": "profile_id"})[["profile_id", "network_clv", "value"]],
                          on="profile_id", how="left")
    scores["value_tier"] = value_tiers(scores["value"].fillna(0.0)).astype(str).to_numpy()
    scores["as_of"] = as_of
    target = schema.ibis_schema("profile_scores").to_pyarrow()
    frame = scores.rename(columns={"recency": "recency_weeks", "T": "age_weeks", "monetary_value": "avg_repeat_spend",
                                   "frequency": "repeat_purchase_days"})
    return pa.Table.from_pandas(frame[list(target.names)], schema=target, preserve_index=False), report

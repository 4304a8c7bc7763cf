"""Scores of the profile as of a point in time: lifetime value (BG/NBD x Gamma-Gamma over card
payments), social influence (PageRank and reach over who mentions whom), and customer value (own
lifetime value plus the influence-weighted value of the people a customer reaches), cut into tiers.

The per-person purchase summary is computed in the engine. The lifetime-value models are fitted on a
sample pulled to the driver, and predict for everyone in batches where the data is (chunks on DuckDB,
executors on Spark); the predictions, one row per person, come back to the driver, where influence,
customer value and tiers need every person at once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from cx360 import node_keys, schema
from cx360.engine import BATCH_ROWS, Engine
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


def _purchase_days(engine: Engine, as_of: dt.datetime) -> ir.Table:
    """Per person: purchase days, first and last day (days since the epoch), total and first day's spend."""
    pe = engine.table("profile_events")
    pay = pe.filter((pe.name == "card_payment") & (pe.ts < ibis.literal(as_of, "timestamp")) & (pe.amount > 0))
    daily = pay.group_by(["profile_id", pay.ts.date().name("day")]).aggregate(spend=pay.amount.sum())
    epoch_day = daily.day.cast("timestamp").epoch_seconds() // 86_400
    return (
        daily.mutate(d=epoch_day)
        .group_by("profile_id")
        .aggregate(
            days=ibis._.d.count(),
            first=ibis._.d.min(),
            last=ibis._.d.max(),
            total=ibis._.spend.sum(),
            first_spend=ibis._.spend.argmin(ibis._.d),
        )
    )


def purchase_summary(frame: pd.DataFrame, as_of: dt.datetime) -> pd.DataFrame:
    """In weeks as the BG/NBD papers count: frequency (repeat purchase days), recency (first to last
    purchase day), T (first purchase day to as_of) and the mean spend of repeat days; row by row."""
    as_of_day = (as_of - dt.datetime(1970, 1, 1)).days
    out = pd.DataFrame({"profile_id": frame["profile_id"], "frequency": (frame["days"] - 1).astype(float)})
    out["recency"] = (frame["last"] - frame["first"]) / 7.0
    out["T"] = (as_of_day - frame["first"]) / 7.0
    repeat_spend = frame["total"] - frame["first_spend"]
    out["monetary_value"] = np.where(out["frequency"] > 0, repeat_spend / out["frequency"].clip(lower=1), 0.0)
    return out


def _fit_sample(engine: Engine, as_of: dt.datetime, report: ScoreReport) -> pd.DataFrame:
    """The people the models are fitted on. The parameters describe the population: a large seeded sample
    fits them as well as everyone does. Up to MAX_FIT_CUSTOMERS everyone is pulled (ordered, so the sample
    is reproducible); beyond, the first MAX_FIT_CUSTOMERS by an MD5 of the id, the same on every engine."""
    per = _purchase_days(engine, as_of)
    stats = engine.to_arrow(per.aggregate(n=per.count(), repeat=(per.days > 1).sum()), step="scores: customers")
    report.customers_with_purchases = int(stats["n"][0].as_py() or 0)
    report.repeat_customers = int(stats["repeat"][0].as_py() or 0)
    if report.customers_with_purchases > MAX_FIT_CUSTOMERS:
        per = per.order_by(per.profile_id.hexdigest("md5")).limit(MAX_FIT_CUSTOMERS)
    summary = purchase_summary(
        engine.to_arrow(per.order_by("profile_id"), step="scores: fit sample").to_pandas(), as_of
    )
    return summary.sample(n=min(len(summary), MAX_FIT_CUSTOMERS), random_state=0)


@dataclass(frozen=True)
class _LifetimeValue:
    """Summary and predictions for one batch of people, row by row (picklable: shipped to executors)."""

    as_of: dt.datetime
    bgf: BetaGeoFitter | None
    ggf: GammaGammaFitter | None

    def __call__(self, batch: pa.Table) -> pd.DataFrame:
        out = purchase_summary(batch.to_pandas(), self.as_of)
        for c in ("expected_purchases_12m", "p_alive", "expected_spend", "clv_12m"):
            out[c] = np.nan
        if self.bgf is None or self.ggf is None:
            return out
        x, tx, T, m = out["frequency"], out["recency"], out["T"], out["monetary_value"]
        weeks = HORIZON_MONTHS * 365.25 / 12 / 7
        out["expected_purchases_12m"] = self.bgf.conditional_expected_purchases(weeks, x, tx, T)
        out["p_alive"] = self.bgf.p_alive(x, tx, T)
        out["expected_spend"] = self.ggf.conditional_expected_average_spend(x, m)
        out["clv_12m"] = customer_lifetime_value(
            self.bgf,
            x,
            tx,
            T,
            out["expected_spend"],
            horizon_months=HORIZON_MONTHS,
            discount_rate=MONTHLY_DISCOUNT,
            freq="W",
        )
        return out


LIFETIME_VALUE = pa.schema(
    [
        ("profile_id", pa.string()),
        *(
            (c, pa.float64())
            for c in (
                "frequency",
                "recency",
                "T",
                "monetary_value",
                "expected_purchases_12m",
                "p_alive",
                "expected_spend",
                "clv_12m",
            )
        ),
    ]
)


def lifetime_value(
    engine: Engine, as_of: dt.datetime, report: ScoreReport, *, batch_rows: int = BATCH_ROWS
) -> pd.DataFrame:
    """Fit BG/NBD and Gamma-Gamma on a sample on the driver, then predict for everyone in batches where the
    purchases are (DuckDB chunks, Spark executors). The rows come back: customer value and tiers need them all."""
    fit = _fit_sample(engine, as_of, report)
    bgf = ggf = None
    if report.repeat_customers < MIN_REPEAT_CUSTOMERS:
        report.warnings.append(
            f"lifetime value not fitted: {report.repeat_customers} repeat customers, "
            f"at least {MIN_REPEAT_CUSTOMERS} are needed"
        )
    else:
        try:
            bgf = BetaGeoFitter().fit(fit["frequency"], fit["recency"], fit["T"])
            ggf = GammaGammaFitter().fit(fit["frequency"], fit["monetary_value"])
        except FitError as exc:
            report.warnings.append(f"lifetime value not fitted: {exc}")
            bgf = ggf = None
    if bgf is not None:
        report.clv_params = {
            **{f"bgnbd_{k}": v for k, v in bgf.params_.items()},
            **{f"gamma_gamma_{k}": v for k, v in ggf.params_.items()},
        }
    scored = engine.map_batches(
        _purchase_days(engine, as_of).order_by("profile_id"),
        _LifetimeValue(as_of, bgf, ggf),
        LIFETIME_VALUE,
        batch_rows=batch_rows,
        step="scores: lifetime value",
    )
    return scored.to_pandas().sort_values("profile_id", ignore_index=True)


def mention_edges(
    engine: Engine, as_of: dt.datetime, token: Callable[[str, str], str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(edges author -> mentioned person, followers per person) from posts and reviews before as_of.
    Mentions are read from the text (@handle) and from a `mentions` property when a source maps one.
    With the PII vault on, handle nodes hold tokens: `token(kind, value)` gives that of a mention."""
    pe = engine.table("profile_events")
    posts = pe.filter(pe.name.isin(("social_post", "review_posted")) & (pe.ts < ibis.literal(as_of, "timestamp")))
    posts = posts.select(
        "profile_id",
        text=engine.json_get(posts.properties, "text"),
        mentions=engine.json_get(posts.properties, "mentions"),
        followers=engine.json_get(posts.properties, "followers"),
    )
    frame = engine.to_arrow(posts, step="scores: posts").to_pandas()
    m = engine.table("identity_map")
    handles = engine.to_arrow(
        m.filter(m.kind == "social_handle").select("node", "profile_id"), step="scores: handles"
    ).to_pandas()
    owner = dict(zip(node_keys.value_series(handles["node"]), handles["profile_id"], strict=True))
    rows = []
    for pid, text, mentions in zip(
        frame["profile_id"], frame["text"].fillna(""), frame["mentions"].fillna(""), strict=True
    ):
        for handle in set(MENTION.findall(text)) | {h.strip().lstrip("@") for h in mentions.split(",") if h.strip()}:
            handle = handle.lower().rstrip(".")
            target = owner.get(token("social_handle", handle) if token else handle)
            if target is not None and target != pid:
                rows.append((pid, target))
    edges = pd.DataFrame(rows, columns=["source_id", "target_id"]).assign(kind="mention")
    followers = pd.to_numeric(frame["followers"], errors="coerce")
    per_person = (
        pd.DataFrame({"node_id": frame["profile_id"], "followers": followers})
        .dropna()
        .groupby("node_id", as_index=False)["followers"]
        .max()
    )
    return edges, per_person


def build(
    engine: Engine,
    as_of: dt.datetime,
    profile_ids: pd.Series,
    *,
    batch_rows: int = BATCH_ROWS,
    token: Callable[[str, str], str] | None = None,
) -> tuple[pa.Table, ScoreReport]:
    report = ScoreReport()
    scores = pd.DataFrame({"profile_id": profile_ids}).merge(
        lifetime_value(engine, as_of, report, batch_rows=batch_rows), on="profile_id", how="left"
    )
    edges, followers = mention_edges(engine, as_of, token)
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
    scores = scores.merge(
        value.rename(columns={"customer": "profile_id"})[["profile_id", "network_clv", "value"]],
        on="profile_id",
        how="left",
    )
    scores["value_tier"] = value_tiers(scores["value"].fillna(0.0)).astype(str).to_numpy()
    scores["as_of"] = as_of
    target = schema.ibis_schema("profile_scores").to_pyarrow()
    frame = scores.rename(
        columns={
            "recency": "recency_weeks",
            "T": "age_weeks",
            "monetary_value": "avg_repeat_spend",
            "frequency": "repeat_purchase_days",
        }
    )
    return pa.Table.from_pandas(frame[list(target.names)], schema=target, preserve_index=False), report

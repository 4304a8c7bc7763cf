"""Per-customer text aggregates, for the customer profile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from cx360.errors import ConfigError
from cx360.text.sentiment import SIGN

SCORED = ("sentiment", "complaint", "topics", "intent", "intent_product")


def customer_aggregates(
    table,
    *,
    recent_days: int = 90,
    now: pd.Timestamp | str | None = None,
    backend: str = "trained",
    extra_topics: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """One row per profile_id from a table of (profile_id, ts, text) or already-scored rows.

    ``table`` is a pandas DataFrame or an Arrow table. When the scored columns (sentiment, complaint,
    topics, intent, intent_product) are missing, the text column is scored first. Output columns:
    n_texts, share_negative, last_negative_at, sentiment_recent, sentiment_before, sentiment_trend
    (mean tone of the last ``recent_days`` before ``now`` minus the mean tone before; NaN when either
    side has no scored text), complaints (total), complaints_<topic> (counts, one column per topic seen
    in a complaint), intent_product and intent_score (the latest text with intent > 0).
    """
    df = table.to_pandas() if hasattr(table, "to_pandas") and not isinstance(table, pd.DataFrame) else table.copy()
    missing = [c for c in ("profile_id", "ts") if c not in df.columns]
    if missing:
        raise ConfigError(
            f"customer texts: missing column(s) {', '.join(missing)}; the columns are: "
            f"{', '.join(map(str, df.columns))}"
        )
    if not all(c in df.columns for c in SCORED):
        if "text" not in df.columns:
            raise ConfigError(
                "customer texts: need a 'text' column, or the scored columns "
                f"{', '.join(SCORED)}; the columns are: {', '.join(map(str, df.columns))}"
            )
        from cx360.text.analyze import analyze_texts

        scored = analyze_texts(df["text"].tolist(), backend=backend, extra_topics=extra_topics)
        for c in SCORED:
            df[c] = scored[c].to_numpy()
    df["ts"] = pd.to_datetime(df["ts"], errors="coerce", utc=True).dt.tz_localize(None)
    now = pd.Timestamp(now) if now is not None else df["ts"].max()
    cut = now - pd.Timedelta(days=recent_days)
    df["tone"] = df["sentiment"].map(SIGN)
    df["negative"] = df["sentiment"].eq("negative")
    df["recent"] = df["ts"] > cut
    df["complaint"] = df["complaint"].fillna(False).astype(bool)
    g = df.groupby("profile_id", sort=True)
    out = pd.DataFrame(
        {
            "n_texts": g.size(),
            # of the texts with a tone (a language without a model has none)
            "share_negative": (df["negative"] & df["tone"].notna()).groupby(df["profile_id"]).sum()
            / df["tone"].notna().groupby(df["profile_id"]).sum().replace(0, float("nan")),
            "last_negative_at": df[df["negative"]].groupby("profile_id")["ts"].max(),
            "sentiment_recent": df[df["recent"]].groupby("profile_id")["tone"].mean(),
            "sentiment_before": df[~df["recent"]].groupby("profile_id")["tone"].mean(),
            "complaints": g["complaint"].sum(),
        }
    )
    out["sentiment_trend"] = out["sentiment_recent"] - out["sentiment_before"]
    out = out.join(_complaint_topics(df))
    out = out.join(_latest_intent(df))
    out.index.name = "profile_id"
    topic_cols = [c for c in out.columns if c.startswith("complaints_")]
    out[topic_cols] = out[topic_cols].fillna(0).astype(int)
    out["complaints"] = out["complaints"].astype(int)
    return out.reset_index()


def _complaint_topics(df: pd.DataFrame) -> pd.DataFrame:
    c = df[df["complaint"]][["profile_id", "topics"]].copy()
    c["topic"] = c["topics"].fillna("").map(lambda s: [t for t in str(s).split(";") if t])
    c = c.explode("topic").dropna(subset=["topic"])
    if c.empty:
        return pd.DataFrame(index=pd.Index([], name="profile_id"))
    counts = c.groupby(["profile_id", "topic"]).size().unstack(fill_value=0)
    counts.columns = [f"complaints_{t}" for t in counts.columns]
    return counts


def _latest_intent(df: pd.DataFrame) -> pd.DataFrame:
    i = df[pd.to_numeric(df["intent"], errors="coerce").fillna(0) > 0].sort_values("ts")
    latest = i.groupby("profile_id").tail(1).set_index("profile_id")
    return pd.DataFrame(
        {
            "intent_product": latest["intent_product"],
            "intent_score": latest["intent"].astype(float),
            "intent_at": latest["ts"],
        }
    )

"""What people write, in the profile: texts of calls, complaints, reviews and posts are scored once
(language, tone, complaint topics, purchase intent) into `text_scores`, then summarised per person as
of a point in time.

Scoring is incremental: only events with no row in `text_scores` are scored, and each distinct text
once per run, so a re-run costs nothing and templated texts (a call-centre's reason lines) are cheap.
"""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
import pyarrow as pa

from cx360 import schema
from cx360.config import TextSettings
from cx360.engine import Engine
from cx360.trait_catalog import RECENT_DAYS

TEXT_EVENTS = ("call", "complaint", "review_posted", "social_post")
VOICE = ("texts_total", "share_negative", "last_negative_at", "sentiment_trend", "text_complaints",
         "intent_product", "intent_score", "intent_at")


def score_new(engine: Engine, settings: TextSettings) -> int:
    """Score the texts of events not scored yet; returns how many were scored."""
    from cx360.text.analyze import analyze_texts

    events = engine.table("events")
    texts = events.filter(events.name.isin(TEXT_EVENTS)).select("event_id", text=engine.json_get(events.properties, "text"))
    texts = texts.filter(texts.text.notnull())
    done = engine.table("text_scores").select("event_id")
    new = engine.to_arrow(texts.anti_join(done, "event_id"), step="texts: unscored").to_pandas()
    if new.empty:
        return 0
    distinct = new["text"].drop_duplicates().reset_index(drop=True)
    scored = analyze_texts(distinct.tolist(), backend=settings.backend, extra_topics=settings.topics or None)
    scored["text"] = distinct
    frame = new.merge(scored, on="text", how="left").drop(columns="text")
    frame["scored_at"] = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    target = schema.ibis_schema("text_scores").to_pyarrow()
    engine.append("text_scores", pa.Table.from_pandas(frame[list(target.names)], schema=target, preserve_index=False),
                  step="texts: store scores")
    return len(frame)


def summarise(engine: Engine, as_of: dt.datetime) -> tuple[pa.Table, pa.Table]:
    """(voice traits per profile, complaints_by_topic breakdown rows) from texts before as_of."""
    from cx360.text.aggregates import customer_aggregates

    pe = engine.table("profile_events")
    pe = pe.filter(pe.name.isin(TEXT_EVENTS) & (pe.ts < ibis.literal(as_of, "timestamp")))
    scores = engine.table("text_scores")
    rows = pe.join(scores, "event_id").select("profile_id", "ts", "sentiment", "complaint", "topics", "intent", "intent_product")
    frame = engine.to_arrow(rows, step="texts: scored texts").to_pandas()
    if frame.empty:
        return voice_schema().empty_table(), _breakdown_schema().empty_table()
    agg = customer_aggregates(frame, recent_days=RECENT_DAYS, now=pd.Timestamp(as_of))
    agg = agg.rename(columns={"n_texts": "texts_total", "complaints": "text_complaints"})
    for c in VOICE:
        if c not in agg.columns:
            agg[c] = None
    voice = pa.Table.from_pandas(agg[["profile_id", *VOICE]], schema=voice_schema(), preserve_index=False)
    topics = [c for c in agg.columns if c.startswith("complaints_")]
    long = agg.melt(id_vars="profile_id", value_vars=topics, var_name="key", value_name="value")
    long = long[long["value"] > 0].assign(breakdown="complaints_by_topic", key=lambda d: d["key"].str.removeprefix("complaints_"))
    breakdowns = pa.Table.from_pandas(long[["profile_id", "breakdown", "key", "value"]].astype({"value": float}),
                                      schema=_breakdown_schema(), preserve_index=False)
    return voice, breakdowns


def voice_schema() -> pa.Schema:
    traits = schema.ibis_schema("profile_traits")
    return pa.schema([("profile_id", pa.string())] + [(c, traits[c].to_pyarrow()) for c in VOICE])


def _breakdown_schema() -> pa.Schema:
    return schema.ibis_schema("profile_breakdowns").to_pyarrow()

"""What people write, in the profile: texts of calls, complaints, reviews and posts are scored once
(language, tone, complaint topics, purchase intent) into `text_scores`, then summarised per person as
of a point in time.

Scoring is incremental: only events with no row in `text_scores` are scored, so a re-run costs nothing.
It runs in batches where the events are (chunks on DuckDB, Spark's executors), ordered by text, and each
distinct text of a batch is scored once, so templated texts (a call-centre's reason lines) are cheap.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import pandas as pd
import pyarrow as pa

from cx360 import schema
from cx360.config import TextSettings
from cx360.engine import BATCH_ROWS, Engine
from cx360.trait_catalog import RECENT_DAYS

TEXT_EVENTS = ("call", "complaint", "review_posted", "social_post")
VOICE = (
    "texts_total",
    "share_negative",
    "last_negative_at",
    "sentiment_trend",
    "text_complaints",
    "intent_product",
    "intent_score",
    "intent_at",
)


@dataclass(frozen=True)
class _TextScorer:
    """Scores one batch of (event_id, text), each distinct text once; runs where the batch is (picklable:
    the backend goes by name and each executor loads it once)."""

    backend: str
    topics: dict[str, list[str]] | None
    scored_at: dt.datetime

    def __call__(self, batch: pa.Table) -> pd.DataFrame:
        from cx360.text.analyze import analyze_texts

        new = batch.to_pandas()
        distinct = new["text"].drop_duplicates().reset_index(drop=True)
        scored = analyze_texts(distinct.tolist(), backend=self.backend, extra_topics=self.topics)
        scored["text"] = distinct
        frame = new.merge(scored, on="text", how="left").drop(columns="text")
        frame["scored_at"] = self.scored_at
        return frame


def score_new(engine: Engine, settings: TextSettings, *, batch_rows: int = BATCH_ROWS) -> int:
    """Score the texts of events not scored yet, in batches where the events are; returns how many were
    scored. Ordered by text, so that repeated texts share a batch and are scored once."""
    events = engine.table("events")
    texts = events.filter(events.name.isin(TEXT_EVENTS)).select(
        "event_id", text=engine.json_get(events.properties, "text")
    )
    texts = texts.filter(texts.text.notnull())
    new = texts.anti_join(engine.table("text_scores").select("event_id"), "event_id")
    scorer = _TextScorer(
        settings.backend,
        dict(settings.topics) if settings.topics else None,
        dt.datetime.now(dt.UTC).replace(tzinfo=None),
    )
    return engine.map_batches(
        new.order_by(["text", "event_id"]),
        scorer,
        schema.ibis_schema("text_scores").to_pyarrow(),
        into="text_scores",
        mode="append",
        batch_rows=batch_rows,
        step="texts: score",
    )


def summarise(engine: Engine, as_of: dt.datetime) -> tuple[pa.Table, pa.Table]:
    """(voice traits per profile, complaints_by_topic breakdown rows) from texts before as_of."""
    from cx360.text.aggregates import customer_aggregates

    pe = engine.table("profile_events")
    pe = pe.filter(pe.name.isin(TEXT_EVENTS) & (pe.ts < ibis.literal(as_of, "timestamp")))
    scores = engine.table("text_scores")
    rows = pe.join(scores, "event_id").select(
        "profile_id", "ts", "sentiment", "complaint", "topics", "intent", "intent_product"
    )
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
    long = long[long["value"] > 0].assign(
        breakdown="complaints_by_topic", key=lambda d: d["key"].str.removeprefix("complaints_")
    )
    breakdowns = pa.Table.from_pandas(
        long[["profile_id", "breakdown", "key", "value"]].astype({"value": float}),
        schema=_breakdown_schema(),
        preserve_index=False,
    )
    return voice, breakdowns


def voice_schema() -> pa.Schema:
    traits = schema.ibis_schema("profile_traits")
    return pa.schema([("profile_id", pa.string())] + [(c, traits[c].to_pyarrow()) for c in VOICE])


def _breakdown_schema() -> pa.Schema:
    return schema.ibis_schema("profile_breakdowns").to_pyarrow()

"""Social listening of a workspace: mentions of the watch-list over time with their tone, the prospects,
and the high-intent mentions that leave for the CRM (consent checked, like an audience export)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa

from cx360.errors import ConfigError, NotFoundError, StageNotRunError
from cx360.privacy import reveal
from cx360.privacy.consent import Policy

if TYPE_CHECKING:
    from cx360.workspace import Workspace

# The tone over time counts people's posts in aggregate: only those whom analytics may count.
PURPOSE = "analytics"
EVERY = {"day": "D", "week": "W", "month": "M"}


@dataclass
class Trend:
    every: str
    terms: list[str]
    periods: list[dict]  # period, term, mentions, positive, neutral, negative, net_tone, customers, prospects, intent
    totals: list[dict]  # per term, over the whole time

    def as_dict(self) -> dict:
        return asdict(self)


def _built(ws: Workspace) -> None:
    from cx360 import provenance

    if "mentions" not in provenance.versions(ws.engine):
        raise StageNotRunError("mentions have not been built", stage="listening", workspace=ws.root)


def trend(
    ws: Workspace,
    term: str | None = None,
    every: str = "month",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Trend:
    """Mentions per period and term with their tone: net tone is (positive - negative) / mentions."""
    settings = ws.config.listening
    known = [t for t, _ in settings.terms]
    if term is not None and term not in known:
        raise NotFoundError(
            f"{term!r} is not on the watch-list ([listening] in cx360.toml): {', '.join(known) or 'empty'}"
        )
    if every not in EVERY:
        raise ConfigError(f"every {every!r}: choose one of {', '.join(EVERY)}")
    if since is not None and until is not None and since >= until:
        raise ConfigError(f"empty period: --since {since:%Y-%m-%d} is not before --until {until:%Y-%m-%d}")
    _built(ws)
    engine = ws.engine
    m = engine.table("mentions")
    if term is not None:
        m = m.filter(m.term == term)
    if since is not None:
        m = m.filter(m.ts >= ibis.literal(since, "timestamp"))
    if until is not None:
        m = m.filter(m.ts < ibis.literal(until, "timestamp"))
    allowed = Policy(ws.config.privacy).allowed(engine, PURPOSE, None, _now())
    m = m.filter(m.profile_id.isnull() | m.profile_id.isin(allowed.profile_id))  # prospects: no objection recorded

    def tone(t, keys):
        agg = t.group_by(keys).aggregate(
            mentions=t.count(),
            positive=(t.sentiment == "positive").sum(),
            neutral=(t.sentiment == "neutral").sum(),
            negative=(t.sentiment == "negative").sum(),
            customers=t.customer.sum(),
            intent=t.intent.mean(),
        )
        return engine.to_arrow(agg.order_by(keys), step="listening: tone").to_pylist()

    periods = tone(m.mutate(period=m.ts.truncate(EVERY[every]).date()), ["period", "term"])
    totals = tone(m, ["term"])
    return Trend(every, [term] if term else known, [_row(r) for r in periods], [_row(r) for r in totals])


def _row(r: dict) -> dict:
    n = int(r["mentions"])
    out = {k: r[k] for k in ("period", "term") if k in r}
    pos, neu, neg, cust = (int(r[k] or 0) for k in ("positive", "neutral", "negative", "customers"))
    return {
        **out,
        "mentions": n,
        "positive": pos,
        "neutral": neu,
        "negative": neg,
        "net_tone": round((pos - neg) / n, 4) if n else None,
        "customers": cust,
        "prospects": n - cust,
        "intent": None if r["intent"] is None else round(float(r["intent"]), 4),
    }


def prospects(ws: Workspace, limit: int = 20) -> tuple[int, list[dict]]:
    """(how many prospects, the `limit` with the highest intent, then the most posts)."""
    _built(ws)
    engine = ws.engine
    p = engine.table("prospects")
    total = int(engine.scalar(p.count(), step="listening: prospects"))
    rows = engine.to_arrow(
        p.order_by([ibis.desc(p.intent.fill_null(0)), ibis.desc("posts"), "social_handle"]).limit(limit),
        step="listening: top prospects",
    ).to_pylist()
    return total, rows


@dataclass
class Leads:
    purpose: str
    min_intent: float
    rows: pa.Table
    withheld: int  # leads the consent check left out
    identifiers: list[str]


def leads(
    ws: Workspace, *, min_intent: float | None = None, purpose: str | None = None, channel: str | None = None
) -> Leads:
    """The mentions whose purchase intent reaches `min_intent` ([listening].high_intent by default), for
    the CRM: customers whose consent allows the purpose now, and prospects when the purpose is opt-out
    (no consent is ever recorded for a handle alone). The author's handle goes out only when the
    purpose's `identifiers` include social_handle."""
    settings = ws.config.listening
    purpose = purpose or settings.export_purpose
    ws.config.privacy.check_channel(purpose, channel)
    spec = ws.config.privacy.purpose(purpose)
    threshold = settings.high_intent if min_intent is None else min_intent
    if not 0 < threshold <= 1:
        raise ConfigError(f"--min-intent {threshold}: give a purchase intent above 0 and at most 1")
    _built(ws)
    engine = ws.engine
    m = engine.table("mentions")
    m = m.filter(m.intent >= threshold)
    allowed = Policy(ws.config.privacy).allowed(engine, purpose, channel, _now())
    consented = m.profile_id.isin(allowed.profile_id)
    ok = (m.profile_id.notnull() & consented) if spec.default == "opt-in" else (m.profile_id.isnull() | consented)
    kinds = ["social_handle"] if "social_handle" in spec.identifiers else []
    # one row per post, with every term it mentions
    keys = ["event_id", "ts", "platform", "profile_id", "customer", *kinds, "sentiment", "intent", "intent_product"]
    keep = m.filter(ok)
    keep = keep.group_by(keys).aggregate(terms=keep.term.group_concat(", "))
    keep = keep.select("event_id", "ts", "terms", *keys[2:]).order_by([ibis.desc("intent"), "event_id"])
    table = reveal.clear_columns(ws, engine.to_arrow(keep, step="listening: leads"), kinds)
    total = int(engine.scalar(m.event_id.nunique(), step="listening: all leads"))
    return Leads(purpose, threshold, table, total - table.num_rows, kinds)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)

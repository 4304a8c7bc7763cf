"""The listening stage: `mentions` (posts and reviews that name a watch-list term, with their tone and
purchase intent) and `prospects` (post authors who are not customers).

A post reaches a profile only through its author's handle. Identity places an identifier in a profile
when a record holds it, or when an event shows it with another identifier; a post carries the handle
alone, so the handle of an author no CRM record knows links nothing, makes no profile, and the post
never reaches `profile_events` (in the demo, two posts in three). Such authors, and those whose
profile no CRM record backs, are the prospects: kept here by handle, with what they wrote about.

A term matches a post whose text contains it, case aside (`demobank` matches `@demobank`). Tone and
intent come from `text_scores` (the texts stage), so a post is scored once whatever the watch-list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir

from cx360 import schema
from cx360.config import ListeningSettings
from cx360.engine import Engine


@dataclass
class Built:
    posts: int
    mentions: int
    prospects: int
    unmatched_terms: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def posts(engine: Engine, settings: ListeningSettings) -> ir.Table:
    """Every post: event_id, ts, text, platform, followers, social_handle, profile_id, customer, and
    sentiment, intent and intent_product from text_scores."""
    e = engine.table("events")
    e = e.filter(e.name.isin(settings.events))
    get = lambda key: engine.json_get(e.properties, key)  # noqa: E731
    p = e.select(
        "event_id",
        "ts",
        "social_handle",
        text=get("text"),
        platform=get("platform"),
        followers=get("followers").cast("int64"),
    )
    scores = engine.table("text_scores").select("event_id", "sentiment", "intent", "intent_product")
    p = p.left_join(scores, "event_id").drop("event_id_right")
    pe = engine.table("profile_events")
    reached = pe.filter(pe.name.isin(settings.events)).select("event_id", "profile_id")
    p = p.left_join(reached, "event_id").drop("event_id_right")
    prof = engine.table("profiles")
    backed = prof.select("profile_id", customer=prof.records.fill_null(0) > 0)
    p = p.left_join(backed, "profile_id").drop("profile_id_right")
    return p.mutate(customer=p.customer.fill_null(False))


def mentions(p: ir.Table, settings: ListeningSettings) -> ir.Table:
    columns = [c.name for c in schema.MENTIONS]
    low = p.text.lower()
    parts = [
        p.filter(low.contains(term.lower())).mutate(term=ibis.literal(term), term_kind=ibis.literal(kind))
        for term, kind in settings.terms
    ]
    if not parts:
        return p.limit(0).mutate(term=ibis.null("string"), term_kind=ibis.null("string")).select(columns)
    return ibis.union(*parts, distinct=False).select(columns)


def prospects(p: ir.Table, m: ir.Table) -> ir.Table:
    """One row per handle whose posts reach no customer."""
    theirs = p.filter(p.social_handle.notnull() & ~p.customer)
    named = m.select("event_id").distinct()
    theirs = theirs.left_join(named.mutate(_m=ibis.literal(1)), "event_id").drop("event_id_right")
    scored = theirs.sentiment.notnull()
    agg = theirs.group_by("social_handle").aggregate(
        profile_id=theirs.profile_id.max(),
        platform=theirs.platform.argmax(theirs.ts),
        posts=theirs.count(),
        mentions=theirs._m.fill_null(0).sum().cast("int64"),
        first_at=theirs.ts.min(),
        last_at=theirs.ts.max(),
        share_negative=(
            (theirs.sentiment == "negative").cast("float64").sum() / scored.cast("float64").sum().nullif(0)
        ),
        intent=theirs.intent.max(),
        intent_product=theirs.intent_product.argmax(theirs.intent),
        followers=theirs.followers.argmax(theirs.ts),
    )
    return agg.select([c.name for c in schema.PROSPECTS])


def build(engine: Engine, settings: ListeningSettings) -> Built:
    """Rebuild mentions and prospects from the events, text scores and profiles."""
    p = posts(engine, settings)
    m = mentions(p, settings)
    with engine.materialised(m, step="listening: mentions") as staged:
        engine.replace("mentions", staged)
    engine.replace("prospects", prospects(p, engine.table("mentions")))
    count = lambda t, what: int(engine.scalar(t.count(), step=f"listening: {what}"))  # noqa: E731
    stored = engine.table("mentions")
    found = set(engine.to_arrow(stored.select("term").distinct(), step="listening: terms").column(0).to_pylist())
    unmatched = [t for t, _ in settings.terms if t not in found]
    n_posts = count(p, "posts")
    warnings = [f"watch-list term {t!r} matched none of the {n_posts:,} posts" for t in unmatched]
    return Built(n_posts, count(stored, "mentions"), count(engine.table("prospects"), "prospects"), unmatched, warnings)

"""Traits from every source as of a point in time: one aggregate per family of events, joined on the
profile. Everything is an Ibis expression over `profile_events`, `records` and `profiles`, so the same
code runs on DuckDB and Spark; nothing at or after `as_of` is read.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from cx360 import node_keys, schema
from cx360.engine import Engine
from cx360.identifiers import strip
from cx360.identity.graph import latest_records
from cx360.profiles import texts
from cx360.trait_catalog import RECENT_DAYS, RECURRING_MIN_WEEKS, RECURRING_WEEKS, TRAITS

DAY = 86_400
TX = ("card_payment", "atm_withdrawal")
CALLS = ("call", "complaint")
OFFERS = ("offer_made", "offer_accepted", "offer_rejected", "offer_ignored", "application_declined")
DIGITAL = ("web", "mobile_app")
DEVICE_KINDS = ("device_id", "cookie_id")
SOCIAL = ("social_post", "review_posted")


class Window:
    """The point in time that every trait is computed at, with the helpers that depend on it."""

    def __init__(self, engine: Engine, as_of: dt.datetime, timezone: str = "UTC"):
        self.engine = engine
        self.timezone = timezone  # the workspace's: hours and weekdays are on its clock
        self.as_of = as_of
        self.as_of_lit = ibis.literal(as_of, "timestamp")
        self.as_of_s = int(as_of.replace(tzinfo=dt.UTC).timestamp())

    def days_since(self, ts: ir.TimestampValue) -> ir.IntegerValue:
        return ((self.as_of_s - ts.epoch_seconds()) // DAY).cast("int64")

    def recent(self, ts: ir.TimestampValue, days: int = RECENT_DAYS) -> ir.BooleanValue:
        return ts.epoch_seconds() >= self.as_of_s - days * DAY

    def prop(self, t: ir.Table, key: str) -> ir.StringValue:
        return self.engine.json_get(t.properties, key)

    def local(self, ts: ir.TimestampValue) -> ir.TimestampValue:
        """A stored (UTC) time on the workspace's clock."""
        return self.engine.utc_to_local(ts, self.timezone)


def _mode(t: ir.Table, key: ir.Value, name: str, *, weight: ir.NumericValue | None = None) -> ir.Table:
    """The most frequent (or heaviest) value of `key` per profile; ties go to the smallest value."""
    g = t.mutate(_k=key, _w=ibis.literal(1.0) if weight is None else weight.cast("float64"))
    g = g.filter(g._k.notnull()).group_by(["profile_id", "_k"]).aggregate(_n=ibis._._w.sum())
    g = g.mutate(_r=ibis.row_number().over(group_by="profile_id", order_by=[ibis.desc("_n"), "_k"]))
    return g.filter(g._r == 0).select("profile_id", **{name: g._k})


def relationship(w: Window, pe: ir.Table, records: ir.Table, mapping: ir.Table, profiles: ir.Table) -> ir.Table:
    # Each record as its source held it at as_of: the newest version before then, so that a record
    # updated later falls back to its earlier version instead of vanishing from the past.
    recs = latest_records(records.filter(records.updated_at.isnull() | (records.updated_at < w.as_of_lit)))
    recs = recs.join(mapping.select("node", "profile_id"), "node")
    products = recs.mutate(
        p=w.engine.json_get(recs.extra, "products").re_split(r"\|").unnest()
    )  # split() is a regex on Spark
    products = products.mutate(p=strip(products.p))
    products = products.filter(products.p.notnull() & (products.p != ""))
    held = products.group_by("profile_id").aggregate(
        n_products=products.p.nunique(),
        products=products.p.collect(distinct=True).sort().join("|"),
    )
    seen = ibis.union(
        recs.select("profile_id", "source", at=ibis.coalesce(recs.registered_at, recs.updated_at)),
        pe.group_by(["profile_id", "source"]).aggregate(at=pe.ts.min()),
        distinct=False,
    )
    first = seen.group_by("profile_id").aggregate(first_seen_at=seen.at.min(), n_sources=seen.source.nunique())
    base = profiles.select("profile_id", "birth_date")
    age = base.select(
        "profile_id",
        age_years=((w.as_of_s - base.birth_date.cast("timestamp").epoch_seconds()) // int(365.25 * DAY)).cast("int64"),
    )
    out = age.left_join(held, "profile_id").left_join(first, "profile_id")
    return out.select(
        "profile_id",
        "age_years",
        "products",
        "n_products",
        "first_seen_at",
        "n_sources",
        tenure_days=w.days_since(out.first_seen_at),
    )


def activity(w: Window, pe: ir.Table) -> ir.Table:
    return pe.group_by("profile_id").aggregate(
        events_total=pe.count(), events_90d=pe.count(where=w.recent(pe.ts)), last_seen_at=pe.ts.max()
    )


def contact(w: Window, pe: ir.Table) -> ir.Table:
    c = pe.filter(pe.name.isin(CALLS)).mutate(reason=lambda t: w.prop(t, "reason"))
    complaint = (c.name == "complaint") | c.reason.lower().contains("complaint")
    agg = c.group_by("profile_id").aggregate(
        calls_total=c.count(where=c.name == "call"),
        calls_90d=c.count(where=(c.name == "call") & w.recent(c.ts)),
        complaints_total=c.count(where=complaint),
        last_contact_at=c.ts.max(),
        last_call_reason=c.reason.argmax(c.ts, where=c.name == "call"),
    )
    return agg


def campaigns(w: Window, pe: ir.Table) -> ir.Table:
    o = pe.filter(pe.name.isin(OFFERS)).mutate(offer=lambda t: w.prop(t, "offer"))
    rejected = o.name == "offer_rejected"
    agg = o.group_by("profile_id").aggregate(
        offers_seen=o.count(where=o.name != "application_declined"),
        offers_accepted=o.count(where=o.name == "offer_accepted"),
        offers_rejected=o.count(where=rejected),
        offers_ignored=o.count(where=o.name == "offer_ignored"),
        applications_declined=o.count(where=o.name == "application_declined"),
        last_offer_at=o.ts.max(),
        last_rejected_at=o.ts.max(where=rejected),
        last_rejected_offer=o.offer.argmax(o.ts, where=rejected),
        last_declined_at=o.ts.max(where=o.name == "application_declined"),
    )
    return agg.mutate(
        acceptance_rate=ibis.ifelse(agg.offers_seen > 0, agg.offers_accepted / agg.offers_seen.nullif(0), None)
    )


def digital(w: Window, pe: ir.Table, mapping: ir.Table) -> ir.Table:
    d = pe.filter(pe.channel.isin(DIGITAL))
    recent = w.recent(d.ts)
    abandoned = d.name == "form_abandoned"
    agg = d.group_by("profile_id").aggregate(
        web_events_90d=d.count(where=(d.channel == "web") & recent),
        app_events_90d=d.count(where=(d.channel == "mobile_app") & recent),
        logins_90d=d.count(where=(d.name == "login") & recent),
        active_days_90d=d.ts.date().nunique(where=recent),
        digital_channels=d.channel.nunique(),
        last_digital_at=d.ts.max(),
        forms_started=d.count(where=d.name == "form_started"),
        forms_abandoned=d.count(where=abandoned),
        forms_submitted=d.count(where=d.name == "form_submitted"),
        last_abandoned_at=d.ts.max(where=abandoned),
        last_abandoned_form=w.prop(d, "form").argmax(d.ts, where=abandoned),
        last_abandoned_field=w.prop(d, "field").argmax(d.ts, where=abandoned),
    )
    agg = agg.left_join(_devices(w, mapping), "profile_id").drop("profile_id_right")
    return agg.mutate(days_since_digital=w.days_since(agg.last_digital_at))


def _devices(w: Window, mapping: ir.Table) -> ir.Table:
    """Distinct devices and cookies of each profile seen before as_of, in an event or a record. They are
    identifiers, not columns of profile_events: found in the identity map, dated by their evidence."""
    seen = []
    for table, at in (("events", "ts"), ("records", "updated_at")):
        t = w.engine.table(table)
        before = t[at] < w.as_of_lit if table == "events" else t[at].isnull() | (t[at] < w.as_of_lit)
        for kind in DEVICE_KINDS:
            held = t.filter(t[kind].notnull() & before)
            seen.append(held.select(node=node_keys.identifier_expr(kind, held[kind])))
    seen = ibis.union(*seen, distinct=True)
    held = mapping.filter(mapping.kind.isin(DEVICE_KINDS))
    held = held.filter(held.node.isin(seen.node))
    return held.group_by("profile_id").aggregate(devices=held.node.nunique())


def transactions(w: Window, pe: ir.Table) -> tuple[ir.Table, ir.Table]:
    t = pe.filter(pe.name.isin(TX))
    pay = t.name == "card_payment"
    recent = w.recent(t.ts)
    agg = t.group_by("profile_id").aggregate(
        txn_count=t.count(),
        txn_count_90d=t.count(where=recent),
        spend_total=t.amount.sum(where=pay),
        spend_90d=t.amount.sum(where=pay & recent),
        avg_ticket=t.amount.mean(where=pay),
        cash_90d=t.amount.sum(where=~pay & recent),
        first_txn=t.ts.min(),
        last_txn_at=t.ts.max(),
        weekend_share=(w.local(t.ts).day_of_week.index() >= 5).cast("float64").mean(),
    )
    months = ((w.as_of_s - agg.first_txn.epoch_seconds()) / (30 * DAY)).clip(lower=1.0)
    agg = agg.mutate(
        spend_total=agg.spend_total.fill_null(0.0),
        spend_90d=agg.spend_90d.fill_null(0.0),
        cash_90d=agg.cash_90d.fill_null(0.0),
        monthly_outflow=(agg.spend_90d.fill_null(0.0) + agg.cash_90d.fill_null(0.0)) / 3.0,
        days_since_txn=w.days_since(agg.last_txn_at),
        txn_per_month=agg.txn_count / months,
    ).drop("first_txn")
    p = t.filter(pay).mutate(category=lambda x: w.prop(x, "category"), district=lambda x: w.prop(x, "district"))
    weeks = p.filter(w.recent(p.ts, 7 * RECURRING_WEEKS) & p.category.notnull())
    weeks = weeks.mutate(week=(w.as_of_s - weeks.ts.epoch_seconds()) // (7 * DAY))
    recurring = weeks.group_by(["profile_id", "category"]).aggregate(value=weeks.week.nunique())
    recurring = recurring.filter(recurring.value >= RECURRING_MIN_WEEKS)
    n_recurring = recurring.group_by("profile_id").aggregate(recurring_interests=ibis._.category.count())
    spend = p.filter(p.category.notnull()).group_by(["profile_id", "category"]).aggregate(value=ibis._.amount.sum())
    top_cat = _mode(p, p.category, "top_category", weight=p.amount.fill_null(0))
    districts = p.filter(p.district.notnull()).group_by(["profile_id", "district"]).aggregate(value=ibis._.count())
    districts = districts.mutate(
        _r=ibis.row_number().over(group_by="profile_id", order_by=[ibis.desc("value"), "district"])
    )
    top_district = districts.filter(districts._r == 0).select("profile_id", top_district="district")
    peak = _mode(t, w.local(t.ts).hour(), "peak_hour")
    out = (
        agg.left_join(n_recurring, "profile_id")
        .drop("profile_id_right")
        .left_join(top_cat, "profile_id")
        .drop("profile_id_right")
        .left_join(top_district, "profile_id")
        .drop("profile_id_right")
        .left_join(peak, "profile_id")
        .drop("profile_id_right")
    )
    breakdowns = ibis.union(
        _breakdown(spend, "spend_by_category", "category"),
        _breakdown(recurring, "recurring_interest", "category"),
        _breakdown(districts.filter(districts._r < 3), "top_districts", "district"),
        distinct=False,
    )
    return out, breakdowns


def visits(w: Window, pe: ir.Table) -> tuple[ir.Table, ir.Table]:
    v = pe.filter(pe.name == "store_visit").mutate(
        place=lambda t: ibis.coalesce(w.prop(t, "mall"), w.prop(t, "place"), w.prop(t, "store")),
        home=lambda t: w.prop(t, "home_district"),
        dwell=lambda t: w.prop(t, "dwell_minutes").cast("float64"),
    )
    agg = v.group_by("profile_id").aggregate(
        visits_total=v.count(),
        visits_90d=v.count(where=w.recent(v.ts)),
        avg_dwell_minutes=v.dwell.mean(),
    )
    agg = agg.mutate(
        visitor_type=ibis.cases(
            (agg.visits_90d >= 2 * RECENT_DAYS / 30, "regular"), (agg.visits_90d > 0, "occasional"), else_="none"
        )
    )
    by_place = v.filter(v.place.notnull()).group_by(["profile_id", "place"]).aggregate(value=ibis._.count())
    out = (
        agg.left_join(_mode(v, v.place, "top_place"), "profile_id")
        .drop("profile_id_right")
        .left_join(_mode(v, v.home, "home_district"), "profile_id")
        .drop("profile_id_right")
    )
    return out, _breakdown(by_place, "visits_by_place", "place")


def surveys(w: Window, pe: ir.Table) -> ir.Table:
    s = pe.filter(pe.name == "survey_answered")
    latest = lambda key: w.prop(s, key).argmax(s.ts)  # noqa: E731
    return s.group_by("profile_id").aggregate(
        survey_preferred_device=latest("preferred_device"),
        survey_preferred_channel=latest("preferred_channel"),
        survey_ok_to_share_data=latest("ok_to_share_data").cast("int64"),
        survey_uses_mobile_payments=latest("uses_mobile_payments"),
    )


def social(w: Window, pe: ir.Table) -> ir.Table:
    s = pe.filter(pe.name.isin(SOCIAL))
    review = s.name == "review_posted"
    return s.group_by("profile_id").aggregate(
        posts_total=s.count(),
        reviews_total=s.count(where=review),
        avg_rating=w.prop(s, "rating").cast("float64").mean(where=review),
        followers=w.prop(s, "followers").cast("int64").max(),
        last_post_at=s.ts.max(),
    )


def contact_breakdowns(w: Window, pe: ir.Table) -> ir.Table:
    c = pe.filter(pe.name == "call").mutate(reason=lambda t: w.prop(t, "reason"))
    by_reason = c.filter(c.reason.notnull()).group_by(["profile_id", "reason"]).aggregate(value=ibis._.count())
    o = pe.filter(pe.name == "offer_rejected").mutate(offer=lambda t: w.prop(t, "offer"))
    by_offer = o.filter(o.offer.notnull()).group_by(["profile_id", "offer"]).aggregate(value=ibis._.count())
    d = pe.filter(pe.channel.isin(DIGITAL) & w.recent(pe.ts))
    by_channel = d.group_by(["profile_id", "channel"]).aggregate(value=ibis._.count())
    return ibis.union(
        _breakdown(by_reason, "calls_by_reason", "reason"),
        _breakdown(by_offer, "offers_rejected_by_offer", "offer"),
        _breakdown(by_channel, "events_by_channel", "channel"),
        distinct=False,
    )


def _breakdown(t: ir.Table, name: str, key: str) -> ir.Table:
    return t.select(
        "profile_id", breakdown=ibis.literal(name), key=t[key].cast("string"), value=t.value.cast("float64")
    )


def build(
    engine: Engine,
    as_of: dt.datetime,
    voice: ir.Table | None = None,
    voice_breakdowns: ir.Table | None = None,
    consents: ir.Table | None = None,
    *,
    timezone: str = "UTC",
    born: ir.Table | None = None,
) -> tuple[ir.Table, ir.Table]:
    """(profile_traits, profile_breakdowns) as of `as_of`, as expressions over the stored tables, the
    per-person text summary (see cx360.profiles.texts; without one the voice traits are empty) and the
    consent check's answer per person (profile_id, consents; see cx360.privacy.consent); hours and
    weekdays are those of `timezone`, the workspace's. `born` (profile_id, birth_date) stands for the
    golden birth dates of `profiles` when the PII vault holds them."""
    if voice is None:
        voice = ibis.memtable(texts.voice_schema().empty_table())
    if voice_breakdowns is None:
        voice_breakdowns = ibis.memtable(schema.ibis_schema("profile_breakdowns").to_pyarrow().empty_table())
    w = Window(engine, as_of, timezone)
    pe = engine.table("profile_events")
    pe = pe.filter(pe.ts < w.as_of_lit)
    mapping = engine.table("identity_map")
    profiles = engine.table("profiles") if born is None else born
    tx, tx_breakdowns = transactions(w, pe)
    visit, visit_breakdowns = visits(w, pe)
    parts = [
        activity(w, pe),
        contact(w, pe),
        campaigns(w, pe),
        digital(w, pe, mapping),
        tx,
        visit,
        surveys(w, pe),
        social(w, pe),
        voice,
    ]
    if consents is not None:
        parts.append(consents)
    out = relationship(w, pe, engine.table("records"), mapping, profiles)
    for part in parts:
        out = out.left_join(part, "profile_id").drop("profile_id_right")
    zeros = {t.name: out[t.name].fill_null(0) for t in TRAITS if _is_count(t)}
    out = out.mutate(**zeros, visitor_type=out.visitor_type.fill_null("none"))
    if consents is None:
        out = out.mutate(consents=ibis.null("string"))
    traits = out.select("profile_id", as_of=w.as_of_lit, **{t.name: out[t.name].cast(t.dtype) for t in TRAITS})
    breakdowns = ibis.union(
        contact_breakdowns(w, pe), tx_breakdowns, visit_breakdowns, voice_breakdowns, distinct=False
    )
    return traits, breakdowns


def _is_count(t) -> bool:
    """Counts and sums are 0 for a person with no such events; ages, hours and recencies stay unknown."""
    if t.name in ("spend_total", "spend_90d", "cash_90d", "monthly_outflow"):
        return True
    return t.dtype == "int64" and not (
        t.name.startswith(("age_", "days_since", "tenure", "peak_", "survey_")) or t.name == "followers"
    )

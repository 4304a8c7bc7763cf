"""Visits to malls, branches and stores (`store_visit` events), per place and period.

Over the visits in [since, until) at one place (or every place):

- who came how often: one-time (one visit), regular (at least twice, and at least `regular_per_month`
  visits per 30 days of the period) and occasional (the rest);
- where visitors live: the golden record's district, else the district the visit itself carries
  (a wifi sign-in form asks for it), else unknown;
- how long they stayed: `dwell_minutes`, else the time from entry to `left_at`;
- what they bought around their visits: card payments from `window` before entry to `window` after exit;
- who is not a customer: a profile that no CRM record backs (a device and a phone seen at the mall),
  counted apart from the customers.

Everything is an Ibis expression over profile_events and profiles; only the small aggregates come back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

import ibis
import ibis.expr.types as ir

from cx360.engine import Engine

VISIT = "store_visit"
PAYMENT = "card_payment"
PLACE_KEYS = ("mall", "branch", "store", "place")  # the property a source names its place by
UNKNOWN = "(unknown)"
DWELL_BUCKETS = ((15, "under 15 min"), (30, "15-30 min"), (60, "30-60 min"), (120, "1-2 h"), (240, "2-4 h"))
DWELL_LAST = "4 h and more"
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


@dataclass
class Period:
    since: dt.datetime
    until: dt.datetime  # exclusive

    @property
    def days(self) -> float:
        return max((self.until - self.since).total_seconds() / 86_400, 1.0)


@dataclass
class Report:
    place: str | None
    since: dt.datetime
    until: dt.datetime
    visits: int
    visitors: int
    customers: int
    non_customers: int
    non_customer_visits: int
    frequency: dict[str, dict[str, int]]  # class -> {"customers": n, "non_customers": n}
    thresholds: dict[str, float]
    catchment: list[dict]
    dwell: dict
    purchases: dict
    places: list[dict] = field(default_factory=list)
    not_counted: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def place_of(engine: Engine, t: ir.Table) -> ir.StringValue:
    return ibis.coalesce(*(engine.json_get(t.properties, k) for k in PLACE_KEYS))


def visits(engine: Engine, profile_events: ir.Table) -> ir.Table:
    """profile_id, ts, left (exit time), place, home (the visit's district), dwell (minutes) of each visit."""
    v = profile_events.filter(profile_events.name == VISIT)
    get = lambda key: engine.json_get(v.properties, key)  # noqa: E731
    left_at = get("left_at").cast("timestamp")
    stayed = ibis.coalesce(get("dwell_minutes").cast("float64"), (left_at.epoch_seconds() - v.ts.epoch_seconds()) / 60)
    v = v.mutate(place=place_of(engine, v), home=get("home_district"), dwell=stayed.cast("float64"))
    left = ibis.coalesce(left_at, v.ts + (v.dwell.fill_null(0) * 60).cast("int64").as_interval("s"))
    who = ["profile_id"] if "profile_id" in v.columns else []
    return v.select(*who, "event_id", "ts", "place", "home", "dwell", left=left)


def run(
    engine: Engine,
    profile_events: ir.Table,
    allowed: ir.Table,
    period: Period,
    place: str | None,
    *,
    regular_per_month: float,
    window_minutes: int,
    purchases_by: str = "category",
) -> Report:
    """The report over the visits of the period (at `place`, when given) by the profiles in `allowed`."""

    def chosen(t: ir.Table) -> ir.Table:
        v = visits(engine, t)
        when = (v.ts >= ibis.literal(period.since, "timestamp")) & (v.ts < ibis.literal(period.until, "timestamp"))
        return v.filter(when if place is None else when & (v.place == place))

    v = chosen(profile_events)
    v = v.filter(v.profile_id.notnull())
    kept = v.semi_join(allowed, "profile_id")
    # a visit whose identifiers reach no profile (a lone device) is in events but not in profile_events
    unattributed = chosen(engine.table("events")).anti_join(profile_events, "event_id")
    scalar = lambda e, what: int(engine.scalar(e, step=f"visits: {what}") or 0)  # noqa: E731
    not_counted = {
        "visits_without_profile": scalar(unattributed.count(), "visits without a profile"),
        "visitors_without_analytics_consent": scalar(
            v.anti_join(allowed, "profile_id").profile_id.nunique(), "visitors left out"
        ),
    }
    profiles = engine.table("profiles")
    who = profiles.select("profile_id", district=profiles.district, customer=profiles.records.fill_null(0) > 0)
    v = kept.left_join(who, "profile_id").drop("profile_id_right")
    v = v.mutate(customer=v.customer.fill_null(False))
    # every figure reads the chosen visits: their properties are parsed once, into a scratch table
    with (
        engine.materialised(v, step="visits: chosen") as v,
        engine.materialised(_per_visitor(v, period, regular_per_month), step="visits: per visitor") as per,
    ):
        totals = engine.to_arrow(
            per.group_by("customer").aggregate(visitors=per.count(), visits=per.visits.sum()),
            step="visits: totals",
        ).to_pylist()
        by = {r["customer"]: r for r in totals}
        cust, non = by.get(True, {}), by.get(False, {})
        threshold = max(2.0, regular_per_month * period.days / 30)
        return Report(
            place=place,
            since=period.since,
            until=period.until,
            visits=int((cust.get("visits") or 0) + (non.get("visits") or 0)),
            visitors=int((cust.get("visitors") or 0) + (non.get("visitors") or 0)),
            customers=int(cust.get("visitors") or 0),
            non_customers=int(non.get("visitors") or 0),
            non_customer_visits=int(non.get("visits") or 0),
            frequency=_frequency(engine, per),
            thresholds={"regular_per_month": regular_per_month, "regular_min_visits": round(threshold, 2)},
            catchment=_catchment(engine, per),
            dwell=_dwell(engine, v),
            purchases=_purchases(engine, v, profile_events, window_minutes, purchases_by),
            places=_places(engine, v) if place is None else [],
            not_counted=not_counted,
        )


def _per_visitor(v: ir.Table, period: Period, regular_per_month: float) -> ir.Table:
    """One row per visitor: visits, customer, home district (the record's, else their visits' most usual)."""
    homes = v.filter(v.home.notnull()).group_by(["profile_id", "home"]).aggregate(n=ibis._.count())
    homes = homes.mutate(_r=ibis.row_number().over(group_by="profile_id", order_by=[ibis.desc("n"), "home"]))
    homes = homes.filter(homes._r == 0).select("profile_id", "home")
    per = v.group_by("profile_id").aggregate(visits=v.count(), customer=v.customer.max(), district=v.district.max())
    per = per.left_join(homes, "profile_id").drop("profile_id_right")
    threshold = max(2.0, regular_per_month * period.days / 30)
    return per.mutate(
        home=ibis.coalesce(per.district, per.home, ibis.literal(UNKNOWN)),
        visitor=ibis.cases((per.visits == 1, "one_time"), (per.visits >= threshold, "regular"), else_="occasional"),
    )


def _split(rows: list[dict], key: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        cell = out.setdefault(r[key], {"customers": 0, "non_customers": 0})
        cell["customers" if r["customer"] else "non_customers"] += int(r["n"])
    return out


def _frequency(engine: Engine, per: ir.Table) -> dict[str, dict[str, int]]:
    rows = engine.to_arrow(
        per.group_by(["visitor", "customer"]).aggregate(n=per.count()), step="visits: frequency"
    ).to_pylist()
    split = _split(rows, "visitor")
    return {k: split.get(k, {"customers": 0, "non_customers": 0}) for k in ("regular", "occasional", "one_time")}


def _catchment(engine: Engine, per: ir.Table) -> list[dict]:
    rows = engine.to_arrow(
        per.group_by(["home", "customer"]).aggregate(n=per.count()), step="visits: catchment"
    ).to_pylist()
    split = _split(rows, "home")
    total = sum(c["customers"] + c["non_customers"] for c in split.values()) or 1
    out = [
        {"district": d, "visitors": c["customers"] + c["non_customers"], **c, "share": 0.0} for d, c in split.items()
    ]
    for r in out:
        r["share"] = round(r["visitors"] / total, 4)
    return sorted(out, key=lambda r: (-r["visitors"], r["district"]))


def _dwell(engine: Engine, v: ir.Table) -> dict:
    d = v.filter(v.dwell.notnull() & (v.dwell >= 0))
    stats = engine.to_arrow(
        d.aggregate(
            visits=d.count(),
            mean=d.dwell.mean(),
            **{f"p{int(q * 100)}": d.dwell.quantile(q) for q in QUANTILES},
        ),
        step="visits: dwell",
    ).to_pylist()[0]
    bucket = ibis.cases(*((d.dwell < upper, label) for upper, label in DWELL_BUCKETS), else_=DWELL_LAST)
    hist = engine.to_arrow(
        d.mutate(bucket=bucket).group_by("bucket").aggregate(visits=ibis._.count()), step="visits: dwell buckets"
    ).to_pylist()
    counts = {r["bucket"]: int(r["visits"]) for r in hist}
    labels = [label for _, label in DWELL_BUCKETS] + [DWELL_LAST]
    minutes = {k: (None if stats[k] is None else round(float(stats[k]), 1)) for k in stats if k != "visits"}
    return {
        "visits_with_dwell": int(stats["visits"] or 0),
        "minutes": minutes,
        "histogram": [{"bucket": b, "visits": counts.get(b, 0)} for b in labels],
    }


def _purchases(engine: Engine, v: ir.Table, profile_events: ir.Table, window_minutes: int, by: str) -> dict:
    """Card payments by the visitors from `window_minutes` before entry to as long after exit, by category
    or merchant. A payment near two visits counts once."""
    pay = profile_events.filter((profile_events.name == PAYMENT) & profile_events.profile_id.notnull())
    pay = pay.select(
        "profile_id",
        "event_id",
        pay_ts=pay.ts,
        amount=pay.amount,
        key=ibis.coalesce(engine.json_get(pay.properties, by), ibis.literal(UNKNOWN)),
    )
    w = ibis.interval(minutes=window_minutes)
    stays = v.select("profile_id", _from=v.ts - w, _to=v.left + w)
    near = pay.join(
        stays, [pay.profile_id == stays.profile_id, pay.pay_ts >= stays._from, pay.pay_ts <= stays._to]
    ).select("profile_id", "event_id", "amount", "key")
    with engine.materialised(near.distinct(), step="visits: payments near visits") as near:
        rows = engine.to_arrow(
            near.group_by("key")
            .aggregate(payments=near.count(), amount=near.amount.sum(), buyers=near.profile_id.nunique())
            .order_by([ibis.desc("amount"), "key"]),
            step="visits: purchases",
        ).to_pylist()
        buyers = int(engine.scalar(near.profile_id.nunique(), step="visits: buyers") or 0)
    return {
        "by": by,
        "window_minutes": window_minutes,
        "buyers": buyers,
        "payments": sum(int(r["payments"]) for r in rows),
        "amount": round(sum(float(r["amount"] or 0) for r in rows), 2),
        "rows": [
            {
                by: r["key"],
                "payments": int(r["payments"]),
                "amount": round(float(r["amount"] or 0), 2),
                "buyers": int(r["buyers"]),
            }
            for r in rows
        ],
    }


def _places(engine: Engine, v: ir.Table) -> list[dict]:
    p = v.mutate(place=v.place.fill_null(UNKNOWN))
    rows = engine.to_arrow(
        p.group_by("place")
        .aggregate(
            visits=p.count(),
            visitors=p.profile_id.nunique(),
            non_customers=p.profile_id.nunique(where=~p.customer),
            median_dwell_minutes=p.dwell.median(),
        )
        .order_by([ibis.desc("visits"), "place"]),
        step="visits: places",
    ).to_pylist()
    for r in rows:
        r["median_dwell_minutes"] = None if r["median_dwell_minutes"] is None else round(r["median_dwell_minutes"], 1)
    return rows


def known_places(engine: Engine, profile_events: ir.Table) -> list[str]:
    v = profile_events.filter(profile_events.name == VISIT)
    v = v.select(place=place_of(engine, v))
    rows = engine.to_arrow(v.filter(v.place.notnull()).distinct().order_by("place"), step="visits: places known")
    return rows.column("place").to_pylist()


def bounds(engine: Engine, profile_events: ir.Table) -> tuple[dt.datetime, dt.datetime] | None:
    """The first visit's day and the day after the last one: the default period."""
    v = profile_events.filter(profile_events.name == VISIT)
    row = engine.to_arrow(v.aggregate(lo=v.ts.min(), hi=v.ts.max()), step="visits: period").to_pylist()[0]
    if row["lo"] is None:
        return None
    lo = dt.datetime.combine(row["lo"].date(), dt.time())
    return lo, dt.datetime.combine(row["hi"].date(), dt.time()) + dt.timedelta(days=1)

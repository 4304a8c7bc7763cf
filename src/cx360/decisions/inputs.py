"""What a decision reads, pulled from the warehouse once: the people (traits, scores, segments,
consents) and their contact history (offer events, complaints), all before the decision's as_of."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import pandas as pd
import pyarrow as pa

from cx360.decisions import expressions, portrait
from cx360.errors import ConfigError, StageNotRunError
from cx360.privacy.consent import Policy
from cx360.schema import ATTRIBUTE_NAMES
from cx360.segments.evaluate import FIELD_TABLES, NOT_FIELDS

if TYPE_CHECKING:
    from cx360.config import Config
    from cx360.decisions.settings import ContactPolicy, UpliftSettings
    from cx360.engine import Engine

# The marketing automation's answers: each one is a contact on its channel.
CONTACT_EVENTS = ("offer_made", "offer_accepted", "offer_rejected", "offer_ignored", "application_declined")
HISTORY_COLUMNS = ["profile_id", "ts", "name", "channel", "offer"]
CONTROL_COLUMNS = ["profile_id", "ts", "offer", "converted"]
TRUE = ("true", "1", "yes")  # a control's `converted` property, as sources write it


@dataclass
class Inputs:
    people: pd.DataFrame  # one row per profile, index profile_id: the fields offers name, in nullable types
    history: pd.DataFrame  # HISTORY_COLUMNS: every offer event before as_of
    sent: pd.DataFrame  # HISTORY_COLUMNS: what cx360 sent before as_of, counted by the caps
    open_complaints: set[str]  # profile ids with a complaint open at as_of
    activity: pd.DataFrame  # profile_id, hour (the person's local), n: events other than offers in the year before
    consent: dict[str, set[str]]  # consent channel -> profile ids the policy allows to be contacted on it
    traits_as_of: dt.datetime
    as_of: dt.datetime
    profiling: set[str] | None = None  # profile ids whose consent allows profiling; None: everyone's does
    controls: pd.DataFrame | None = None  # CONTROL_COLUMNS: people held out of a campaign before as_of
    unreadable_controls: int = 0  # control events without an offer or a true/false `converted`: left out
    zones: pd.Series | None = None  # profile_id -> the person's IANA zone; None: everyone on the policy's
    unzoned: int = 0  # people whose person_time_zone value is no zone: on the policy's zone
    portrait: pd.DataFrame | None = None  # profile_id -> cx360.decisions.portrait's features; None: none known

    def zone(self, profile_id: str, default: str) -> str:
        return default if self.zones is None else self.zones.get(profile_id, default)


def consent_field(purpose: str, channel: str | None) -> str:
    return f"consent.{purpose}" if channel is None else f"consent.{purpose}_{channel}"


def known_fields(engine: Engine, config: Config) -> dict[str, str]:
    """Every field an offer may name, and where it comes from."""
    owner = {c: "profile_traits" for c in engine.table("profile_traits").columns if c not in NOT_FIELDS}
    for table in FIELD_TABLES:
        if engine.has_table(table):
            for c in engine.table(table).columns:
                if c not in NOT_FIELDS:
                    owner.setdefault(c, table)
    for name in _segment_names(engine, config):
        owner[f"segment.{name}"] = "segment_members"
    for purpose, channel in Policy(config.privacy).pairs():
        owner[consent_field(purpose, channel)] = "consents"
    return owner


def _segment_names(engine: Engine, config: Config) -> list[str]:
    names = {s.name for s in config.segments}
    if engine.has_table("segments"):
        names |= set(
            engine.to_arrow(engine.table("segments").select("name"), step="decisions: segments")["name"].to_pylist()
        )
    return sorted(names)


def load(engine: Engine, config: Config, as_of: dt.datetime | None, *, now: dt.datetime | None = None) -> Inputs:
    traits = engine.table("profile_traits")
    stamp = engine.scalar(traits.as_of.max(), step="decisions: traits as_of")
    if stamp is None or pd.isna(stamp):
        raise StageNotRunError("no profile traits to decide on", stage="profiles")
    traits_as_of = pd.Timestamp(stamp).to_pydatetime()
    as_of = as_of or traits_as_of
    owner = known_fields(engine, config)
    needed: list[str] = []
    for o in config.offers:
        for what, text in (("where", o.where), ("value", o.value)):
            names = expressions.fields(text)
            expressions.check_fields(names, set(owner), o.name, what)
            needed += [n for n in names if n not in needed]
    people = _people(engine, config, owner, needed, now or as_of)
    policy = Policy(config.privacy)
    ids = engine.to_arrow(policy.allowed(engine, "profiling", None, now or as_of), step="decisions: profiling")
    profiling = set(ids["profile_id"].to_pylist())
    people.loc[~people.index.isin(profiling)] = pd.NA  # withheld, as the API withholds them: unknown
    cp = config.contact_policy
    consent = {}
    for ch in dict.fromkeys(cp.consent_channel(c) for c in cp.channels):
        allowed = policy.allowed(engine, cp.purpose, ch, now or as_of)
        consent[ch] = set(engine.to_arrow(allowed, step=f"decisions: consent {ch}")["profile_id"].to_pylist())
    held_out, unreadable = controls(engine, as_of, config.uplift)
    zones, unzoned = person_zones(engine, cp, people.index)
    return Inputs(
        people,
        history(engine, as_of),
        sent(engine, as_of),
        open_complaints(engine, as_of),
        activity(engine, as_of, config.uplift.control_event, zones, cp.time_zone),
        consent,
        traits_as_of,
        as_of,
        profiling,
        held_out,
        unreadable,
        zones,
        unzoned,
        spend_portrait(engine, profiling),
    )


def _people(engine: Engine, config: Config, owner: dict[str, str], needed: list[str], at: dt.datetime) -> pd.DataFrame:
    t = engine.table("profile_traits")
    plain = [n for n in needed if owner[n] == "profile_traits"]
    frame = t.select("profile_id", *plain)
    for table in dict.fromkeys(owner[n] for n in needed if owner[n] in FIELD_TABLES):
        cols = [n for n in needed if owner[n] == table]
        other = engine.table(table).select("profile_id", *cols)
        frame = frame.left_join(other, "profile_id").drop("profile_id_right")
    people = engine.to_arrow(frame, step="decisions: people").to_pandas().set_index("profile_id")
    members = engine.table("segment_members")
    for n in (n for n in needed if owner[n] == "segment_members"):
        name = n.split(".", 1)[1]
        m = members.filter((members.segment == name) & members.exited_at.isnull()).select("profile_id")
        people[n] = people.index.isin(engine.to_arrow(m, step=f"decisions: segment {name}")["profile_id"].to_pylist())
    policy = Policy(config.privacy)
    for purpose, channel in policy.pairs():
        n = consent_field(purpose, channel)
        if n in needed:
            ids = engine.to_arrow(policy.allowed(engine, purpose, channel, at), step=f"decisions: {n}")
            people[n] = people.index.isin(ids["profile_id"].to_pylist())
    return expressions.nullable(people)


def spend_portrait(engine: Engine, profiling: set[str]) -> pd.DataFrame:
    """profile_id -> how their card spend splits over categories (cx360.decisions.portrait), of the people
    whose consent allows profiling."""
    if not engine.has_table("profile_breakdowns"):
        return portrait.frame(pd.DataFrame(columns=["profile_id", "key", "value"]))
    b = engine.table("profile_breakdowns")
    b = b.filter(b.breakdown == portrait.SPEND).select("profile_id", "key", "value")
    spend = engine.to_arrow(b, step="decisions: spend by category").to_pandas()
    return portrait.frame(spend[spend.profile_id.isin(profiling)])


def history(engine: Engine, as_of: dt.datetime) -> pd.DataFrame:
    pe = engine.table("profile_events")
    o = pe.filter(pe.name.isin(CONTACT_EVENTS) & (pe.ts < ibis.literal(as_of, "timestamp")))
    o = o.select("profile_id", "ts", "name", "channel", offer=engine.json_get(o.properties, "offer"))
    frame = engine.to_arrow(o, step="decisions: offer history").to_pandas()
    return frame[HISTORY_COLUMNS].sort_values(["profile_id", "ts"], kind="stable").reset_index(drop=True)


def person_zones(engine: Engine, policy: ContactPolicy, ids: pd.Index) -> tuple[pd.Series | None, int]:
    """(profile_id -> each person's zone, from the golden record's policy.person_time_zone, the policy's own
    for a person without one; how many people's value is no zone). None: the policy names no such field."""
    field = policy.person_time_zone
    if field is None:
        return None, 0
    profiles = engine.table("profiles")
    if field not in profiles.columns:
        known = ", ".join(c for c in profiles.columns if c in ATTRIBUTE_NAMES)
        raise ConfigError(
            f"contact_policy.person_time_zone: the golden record has no attribute {field!r} (it has: {known})"
        )
    frame = engine.to_arrow(
        profiles.select("profile_id", value=profiles[field].cast("string")), step="decisions: zones"
    )
    value = frame.to_pandas().set_index("profile_id").value.reindex(ids)
    zone = value.map(lambda v: policy.zone_of(v) if isinstance(v, str) else None)
    unzoned = int((value.notna() & value.astype(str).str.strip().ne("") & zone.isna()).sum())
    return zone.fillna(policy.time_zone).astype(object), unzoned


def controls(engine: Engine, as_of: dt.datetime, settings: UpliftSettings) -> tuple[pd.DataFrame, int]:
    """(the control events before as_of, CONTROL_COLUMNS; how many could not be read: no offer, or a
    `converted` that is not true or false)."""
    pe = engine.table("profile_events")
    c = pe.filter((pe.name == settings.control_event) & (pe.ts < ibis.literal(as_of, "timestamp")))
    c = c.select(
        "profile_id",
        "ts",
        offer=engine.json_get(c.properties, "offer"),
        converted=engine.json_get(c.properties, settings.converted),
    )
    frame = engine.to_arrow(c, step="decisions: control groups").to_pandas()
    flag = frame.converted.astype(str).str.strip().str.lower()
    readable = frame.offer.notna() & flag.isin((*TRUE, "false", "0", "no"))
    frame = frame[readable].assign(converted=flag[readable].isin(TRUE))
    return frame[CONTROL_COLUMNS].sort_values(["profile_id", "ts"], kind="stable").reset_index(drop=True), int(
        (~readable).sum()
    )


def open_complaints(engine: Engine, as_of: dt.datetime) -> set[str]:
    """People with a complaint opened before as_of and not closed by then."""
    pe = engine.table("profile_events")
    c = pe.filter((pe.name == "complaint") & (pe.ts < ibis.literal(as_of, "timestamp")))
    c = c.select(
        "profile_id", status=engine.json_get(c.properties, "status"), closed=engine.json_get(c.properties, "closed_at")
    )
    frame = engine.to_arrow(c, step="decisions: complaints").to_pandas()
    closed_at = pd.to_datetime(frame.closed, errors="coerce")
    still_open = closed_at.isna() & (frame.status.fillna("open") != "closed") | (closed_at >= pd.Timestamp(as_of))
    return set(frame.profile_id[still_open])


def sent(engine: Engine, as_of: dt.datetime) -> pd.DataFrame:
    """Sends cx360 released before as_of, as contacts: caps count them before the campaign tool's answers
    come back as events (and count both once they have: a cap is never exceeded for it)."""
    d = engine.table("decisions")
    d = d.filter((d.status == "sent") & (d.send_at < ibis.literal(as_of, "timestamp")))
    d = d.select("profile_id", ts=d.send_at, name=ibis.literal("decision_sent"), channel=d.channel, offer=d.offer)
    return engine.to_arrow(d, step="decisions: sent").to_pandas()[HISTORY_COLUMNS]


def activity(
    engine: Engine, as_of: dt.datetime, control_event: str, zones: pd.Series | None, default_zone: str
) -> pd.DataFrame:
    """When each person is active: their events (payments, logins, calls...) per hour of the day on their
    own clock (daylight saving time included), in the year before as_of; offers and control groups are
    left out, as the marketing system chose their time."""
    pe = engine.table("profile_events")
    since = as_of - dt.timedelta(days=365)
    a = pe.filter(
        ~pe.name.isin((*CONTACT_EVENTS, control_event))
        & (pe.ts >= ibis.literal(since, "timestamp"))
        & (pe.ts < ibis.literal(as_of, "timestamp"))
    )
    shared = default_zone if zones is None or zones.nunique() <= 1 else None
    if shared is None:  # each event on its person's clock: a column of zones joined in
        table = pa.table({"profile_id": zones.index.to_numpy(dtype=object), "zone": zones.to_numpy(dtype=object)})
        a = a.inner_join(engine.stage(table), "profile_id")
        local = engine.utc_to_local(a.ts, a.zone)
    else:
        local = engine.utc_to_local(a.ts, zones.iloc[0] if zones is not None and len(zones) else shared)
    a = a.group_by(["profile_id", local.hour().name("hour")]).aggregate(n=a.count())
    return engine.to_arrow(a, step="decisions: activity hours").to_pandas()

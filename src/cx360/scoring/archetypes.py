"""`profile_archetypes`: the archetype model of `cx360.models.archetypes` applied to a workspace's
`profile_traits` and consent events, as of a point in time."""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from cx360.engine import Engine
from cx360.models.archetypes import GRANTED, WITHDRAWN, archetype, data_sharing, sophistication


def consent_shares(engine: Engine, profile_events: ir.Table, as_of: ir.TimestampValue) -> ir.Table:
    """Per profile, the share of consent events before as_of that granted rather than withdrew consent."""
    c = profile_events.filter((profile_events.name == "consent_changed") & (profile_events.ts < as_of))
    status = engine.json_get(c.properties, "status").lower().strip()
    c = c.mutate(_g=status.isin(GRANTED), _w=status.isin(WITHDRAWN))
    agg = c.group_by("profile_id").aggregate(_granted=c._g.sum(), _known=(c._g | c._w).sum())
    return agg.select("profile_id", consent_share=(agg._granted / agg._known.nullif(0)).cast("float64"))


def build(engine: Engine, as_of: dt.datetime, traits: ir.Table | None = None) -> ir.Table:
    """`profile_archetypes` from `profile_traits` (and consent events before `as_of`), as an expression."""
    t = traits if traits is not None else engine.table("profile_traits")
    consents = consent_shares(engine, engine.table("profile_events"), ibis.literal(as_of, "timestamp"))
    j = t.left_join(consents, "profile_id")
    soph = sophistication(j).round(4)
    share = data_sharing(j, j.consent_share).round(4)
    scored = j.select("profile_id", as_of=j.as_of, digital_sophistication=soph, data_sharing=share)
    return scored.mutate(archetype=archetype(scored.digital_sophistication, scored.data_sharing))

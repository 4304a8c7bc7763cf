"""`profile_archetypes`: each profile's archetype as of a point in time, learned from the people whose
survey answers label them (`survey_answered` events with `properties.archetype`) by
`cx360.models.archetype_classifier` where there are enough of them, else placed on the grid by the
rules of `cx360.models.archetypes`; `archetype_from` says which."""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from cx360 import schema
from cx360.engine import Engine
from cx360.errors import DataError
from cx360.models.archetype_classifier import FEATURES, ArchetypeClassifier
from cx360.models.archetypes import ARCHETYPES, GRANTED, WITHDRAWN, archetype, data_sharing, sophistication

LEARNED, RULES = "survey_model", "rules"


def consent_shares(engine: Engine, profile_events: ir.Table, as_of: ir.TimestampValue) -> ir.Table:
    """Per profile, the share of consent events before as_of that granted rather than withdrew consent."""
    c = profile_events.filter((profile_events.name == "consent_changed") & (profile_events.ts < as_of))
    status = engine.json_get(c.properties, "status").lower().strip()
    c = c.mutate(_g=status.isin(GRANTED), _w=status.isin(WITHDRAWN))
    agg = c.group_by("profile_id").aggregate(_granted=c._g.sum(), _known=(c._g | c._w).sum())
    return agg.select("profile_id", consent_share=(agg._granted / agg._known.nullif(0)).cast("float64"))


def survey_labels(engine: Engine, profile_events: ir.Table, as_of: ir.TimestampValue) -> ir.Table:
    """Per profile, the archetype its latest survey answer before as_of labels it with, if any."""
    s = profile_events.filter((profile_events.name == "survey_answered") & (profile_events.ts < as_of))
    s = s.mutate(label=engine.json_get(s.properties, "archetype").lower().strip())
    s = s.filter(s.label.isin(ARCHETYPES))
    s = s.mutate(_r=ibis.row_number().over(group_by="profile_id", order_by=[ibis.desc("ts"), ibis.desc("event_id")]))
    return s.filter(s._r == 0).select("profile_id", "label")


def scored(engine: Engine, as_of: dt.datetime, traits: ir.Table | None = None) -> ir.Table:
    """Traits with the consent share, the rules' two scores, their archetype and the survey label."""
    t = traits if traits is not None else engine.table("profile_traits")
    when = ibis.literal(as_of, "timestamp")
    events = engine.table("profile_events")
    j = t.left_join(consent_shares(engine, events, when), "profile_id").drop("profile_id_right")
    j = j.left_join(survey_labels(engine, events, when), "profile_id").drop("profile_id_right")
    j = j.mutate(
        digital_sophistication=sophistication(j).round(4), data_sharing=data_sharing(j, j.consent_share).round(4)
    )
    return j.mutate(archetype=archetype(j.digital_sophistication, j.data_sharing))


def build(engine: Engine, as_of: dt.datetime, traits: ir.Table | None = None) -> tuple[ir.Table | pa.Table, str]:
    """(`profile_archetypes`, how its archetypes were found: LEARNED or RULES, with the reason)."""
    j = scored(engine, as_of, traits)
    columns = [c.name for c in schema.PROFILE_ARCHETYPES]
    rules = j.mutate(archetype_from=ibis.literal(RULES)).select(columns)
    inputs = j.select(*columns[:-2], "label", *FEATURES)
    labelled = engine.to_arrow(inputs.filter(inputs.label.notnull()), step="archetypes: survey labels").to_pandas()
    if labelled.empty:
        return rules, f"{RULES}: no survey answer labels an archetype"
    try:
        model = ArchetypeClassifier().fit(labelled, labelled.label)
    except DataError as exc:
        return rules, f"{RULES}: {exc}"
    out_schema = schema.ibis_schema("profile_archetypes").to_pyarrow()

    def predict(batch: pa.Table) -> pa.Table:  # where the data lives: DuckDB chunks, Spark executors
        frame = batch.to_pandas()
        frame["archetype"] = model.predict(frame)
        frame["archetype_from"] = LEARNED
        return pa.Table.from_pandas(frame[columns], schema=out_schema, preserve_index=False)

    table = engine.map_batches(inputs, predict, out_schema, step="archetypes: predict")
    return table, f"{LEARNED}: learned from {model.labels_} people's survey answers"

"""The golden record: for each attribute of a person, the value that survives, and where it came from.

Rules, per attribute ([identity].survivorship): `source_priority` (the most trusted source in
[identity].source_priority that has a value, newest first within it), `most_recent`, and
`most_frequent` (the value most records agree on, newest on a tie). Without a rule an attribute
uses source_priority when a priority is configured, else most_recent.
"""

from __future__ import annotations

import json

import ibis
import pandas as pd
import pyarrow as pa

from cx360 import schema
from cx360.config import IdentitySettings
from cx360.engine import Engine
from cx360.identity.graph import latest_records


def rule_for(attribute: str, settings: IdentitySettings) -> str:
    return settings.survivorship.get(attribute, "source_priority" if settings.source_priority else "most_recent")


def build(engine: Engine, settings: IdentitySettings) -> pa.Table:
    mapping = engine.table("identity_map")
    records = latest_records(engine.table("records"))
    members = records.join(mapping.select("node", "profile_id"), "node")
    when = ibis.coalesce(members.updated_at, members.ingested_at)
    priority = ibis.literal(len(settings.source_priority))
    for i, name in enumerate(settings.source_priority):
        priority = ibis.ifelse(members.source == name, i, priority)
    members = members.mutate(_when=when, _priority=priority)

    profiles = engine.to_arrow(mapping.select("profile_id").distinct(), step="golden: profiles").to_pandas()
    sources: dict[str, dict] = {pid: {} for pid in profiles.profile_id}
    for column in schema.ATTRIBUTES:
        name = column.name
        rule = rule_for(name, settings)
        cand = members.filter(members[name].notnull())
        if rule == "most_frequent":
            cand = cand.mutate(_votes=cand.count().over(group_by=["profile_id", name]))
            order = [ibis.desc("_votes"), ibis.desc("_when"), "node"]
        elif rule == "source_priority":
            order = ["_priority", ibis.desc("_when"), "node"]
        else:
            order = [ibis.desc("_when"), "_priority", "node"]
        best = cand.mutate(_r=ibis.row_number().over(group_by="profile_id", order_by=order)).filter(ibis._._r == 0)
        picked = engine.to_arrow(best.select("profile_id", name, "node"), step=f"golden: {name}").to_pandas()
        profiles = profiles.merge(picked[["profile_id", name]], on="profile_id", how="left")
        for pid, node in zip(picked.profile_id, picked.node):
            sources[pid][name] = {"record": node.removeprefix("record:"), "rule": rule}

    member_stats = engine.to_arrow(
        members.group_by("profile_id").aggregate(records=members.count(), sources=members.source.collect(distinct=True)),
        step="golden: record counts",
    ).to_pandas()
    ids = mapping.filter(mapping.kind != "record")
    id_lists = engine.to_arrow(ids.group_by(["profile_id", "kind"]).aggregate(values=ids.node.collect()), step="golden: identifiers").to_pandas()
    identifiers: dict[str, dict] = {}
    for pid, kind, values in zip(id_lists.profile_id, id_lists.kind, id_lists["values"]):
        identifiers.setdefault(pid, {})[kind] = sorted(v.split(":", 1)[1] for v in values)

    profiles = profiles.merge(member_stats, on="profile_id", how="left")
    profiles["records"] = profiles["records"].fillna(0).astype("int64")
    profiles["sources"] = [", ".join(sorted(s)) if s is not None and not isinstance(s, float) else "" for s in profiles["sources"]]
    profiles["attribute_sources"] = [json.dumps(sources[p], ensure_ascii=False, sort_keys=True) for p in profiles.profile_id]
    profiles["identifiers"] = [json.dumps(identifiers.get(p, {}), ensure_ascii=False, sort_keys=True) for p in profiles.profile_id]
    target = schema.ibis_schema("profiles").to_pyarrow()
    return pa.Table.from_pandas(profiles[list(target.names)], schema=target, preserve_index=False)

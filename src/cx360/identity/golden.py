"""The golden record: for each attribute of a person, the value that survives, and where it came from.

Rules, per attribute ([identity].survivorship): `source_priority` (the most trusted source in
[identity].source_priority that has a value, newest first within it), `most_recent`, and
`most_frequent` (the value most records agree on, newest on a tie). Without a rule an attribute
uses source_priority when a priority is configured, else most_recent.

The members of every profile are read once; choosing among a person's few records is done in
memory, which keeps this to one query on any engine.
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa

from cx360 import schema
from cx360.config import IdentitySettings
from cx360.engine import Engine
from cx360.identity.graph import latest_records

ATTRIBUTES = [c.name for c in schema.ATTRIBUTES]


def rule_for(attribute: str, settings: IdentitySettings) -> str:
    return settings.survivorship.get(attribute, "source_priority" if settings.source_priority else "most_recent")


def build(engine: Engine, settings: IdentitySettings) -> pa.Table:
    mapping = engine.table("identity_map")
    records = latest_records(engine.table("records"))
    members_expr = records.join(mapping.select("node", "profile_id"), "node").select(
        "profile_id", "node", "source", "updated_at", "ingested_at", *ATTRIBUTES
    )
    members = engine.to_arrow(members_expr, step="golden: members").to_pandas(types_mapper=None)
    ids = engine.to_arrow(mapping.select("profile_id", "node", "kind"), step="golden: identifiers").to_pandas()
    return choose(members, ids, settings)


def choose(members: pd.DataFrame, ids: pd.DataFrame, settings: IdentitySettings) -> pa.Table:
    rank = {name: i for i, name in enumerate(settings.source_priority)}
    members = members.assign(
        _when=members.updated_at.fillna(members.ingested_at),
        _priority=members.source.map(rank).fillna(len(rank)),
    )
    # One sort per rule: an attribute's survivor is then the first of the profile's rows that has it.
    ordered = {
        "source_priority": members.sort_values(["profile_id", "_priority", "_when", "node"], ascending=[True, True, False, True]),
        "most_recent": members.sort_values(["profile_id", "_when", "_priority", "node"], ascending=[True, False, True, True]),
    }
    profiles = pd.DataFrame({"profile_id": sorted(ids.profile_id.unique())})
    sources: dict[str, dict] = {}
    for name in ATTRIBUTES:
        rule = rule_for(name, settings)
        if rule == "most_frequent":
            cand = members[members[name].notna()]
            cand = cand.assign(_votes=cand.groupby(["profile_id", name])[name].transform("size"))
            cand = cand.sort_values(["profile_id", "_votes", "_when", "node"], ascending=[True, False, False, True])
        else:
            cand = ordered[rule][ordered[rule][name].notna()]
        best = cand.drop_duplicates("profile_id")
        profiles = profiles.merge(best[["profile_id", name]], on="profile_id", how="left")
        for pid, node in zip(best.profile_id, best.node):
            sources.setdefault(pid, {})[name] = {"record": node.removeprefix("record:"), "rule": rule}

    stats = members.groupby("profile_id").agg(records=("node", "size"))
    stats["sources"] = members[["profile_id", "source"]].drop_duplicates().sort_values("source").groupby("profile_id").source.agg(", ".join)
    profiles = profiles.merge(stats, on="profile_id", how="left")
    profiles["records"] = profiles["records"].fillna(0).astype("int64")
    profiles["sources"] = profiles["sources"].fillna("")

    values = ids[ids.kind != "record"].sort_values(["profile_id", "kind", "node"])
    identifiers: dict[str, dict] = {}
    for pid, kind, node in zip(values.profile_id, values.kind, values.node):
        identifiers.setdefault(pid, {}).setdefault(kind, []).append(node.split(":", 1)[1])
    profiles["attribute_sources"] = [json.dumps(sources.get(p, {}), ensure_ascii=False, sort_keys=True) for p in profiles.profile_id]
    profiles["identifiers"] = [json.dumps(identifiers.get(p, {}), ensure_ascii=False, sort_keys=True) for p in profiles.profile_id]
    target = schema.ibis_schema("profiles").to_pyarrow()
    return pa.Table.from_pandas(profiles[list(target.names)], schema=target, preserve_index=False)

"""The golden record: for each attribute of a person, the value that survives, and where it came from.

Rules, per attribute ([identity].survivorship): `source_priority` (the most trusted source in
[identity].source_priority that has a value, newest first within it), `most_recent`, and
`most_frequent` (the value most records agree on, newest on a tie). Without a rule an attribute
uses source_priority when a priority is configured, else most_recent.

The members of every profile are read once from the engine; the choice is one aggregate query run
by an embedded DuckDB over those Arrow tables, on any engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from cx360 import node_keys, schema
from cx360.config import IdentitySettings
from cx360.engine import Engine, local_duckdb
from cx360.identity import revealed
from cx360.identity.graph import latest_records
from cx360.privacy.reveal import GOLDEN, PROFILE, profile_subject
from cx360.sources.vaulting import payload

if TYPE_CHECKING:
    from cx360.privacy.vault import Vault

ATTRIBUTES = [c.name for c in schema.ATTRIBUTES]


def rule_for(attribute: str, settings: IdentitySettings) -> str:
    return settings.survivorship.get(attribute, "source_priority" if settings.source_priority else "most_recent")


def build(engine: Engine, settings: IdentitySettings, vault: Vault | None = None) -> pa.Table:
    """The profiles table. With the PII vault on, survivorship reads the records' personal attributes
    from the vault, and the golden ones go back to it (`profile:ID`, item `golden`), NULL in the table;
    the subjects of profiles that no longer exist are shredded."""
    mapping = engine.table("identity_map")
    records = latest_records(engine.table("records"))
    members_expr = records.join(mapping.select("node", "profile_id"), "node").select(
        "profile_id", "node", "source", "updated_at", "ingested_at", "record_hash", *ATTRIBUTES
    )
    members = engine.to_arrow(members_expr, step="golden: members")
    if vault is not None:
        members = revealed.with_attributes(vault, members)
    ids = engine.to_arrow(mapping.select("profile_id", "node", "kind"), step="golden: identifiers")
    profiles = choose(members.drop_columns(["record_hash"]), ids, settings)
    return profiles if vault is None else _to_vault(vault, profiles)


def _to_vault(vault: Vault, profiles: pa.Table) -> pa.Table:
    """Put the golden personal attributes in the vault and NULL them in the table; shred the subjects of
    profiles that are gone (merged, or erased)."""
    pii = list(schema.PII_ATTRIBUTE_NAMES)
    rows = profiles.select(["profile_id", *pii]).to_pylist()
    vault.put((profile_subject(r.pop("profile_id")), GOLDEN, payload(r)) for r in rows)
    current = {profile_subject(p) for p in profiles["profile_id"].to_pylist()}
    vault.shred([s for s in vault.subjects(PROFILE + node_keys.SEP) if s not in current])
    for name in pii:
        i = profiles.schema.get_field_index(name)
        profiles = profiles.set_column(i, name, pa.nulls(profiles.num_rows, profiles.schema.field(i).type))
    return profiles


# The sort key of each rule (smallest first): a profile's survivor is its record with the smallest key
# among those that have a value. `_newest` sorts the most recent first and a missing date last.
KEY = {
    "source_priority": "{{'p': _priority, 'w': _newest, 'n': node}}",
    "most_recent": "{{'w': _newest, 'p': _priority, 'n': node}}",
    "most_frequent": "{{'v': -\"_votes_{name}\", 'w': _newest, 'n': node}}",
}


def choose(members: pa.Table, ids: pa.Table, settings: IdentitySettings) -> pa.Table:
    """Per attribute, the value of the record with the smallest sort key of its rule; `attribute_sources`
    and `identifiers` are JSON objects with sorted keys."""
    rules = {name: rule_for(name, settings) for name in ATTRIBUTES}
    priority = pa.table(
        {"source": settings.source_priority, "_priority": list(range(len(settings.source_priority)))},
        schema=pa.schema([("source", pa.string()), ("_priority", pa.int64())]),
    )
    votes = "".join(
        f', count(*) OVER (PARTITION BY profile_id, "{n}") AS "_votes_{n}"'
        for n, r in rules.items()
        if r == "most_frequent"
    )
    # arg_min keeps one row per profile and aggregate: memory grows with profiles, not with records.
    chosen = ",\n".join(
        f'arg_min("{n}", {KEY[r].format(name=n)}) FILTER ("{n}" IS NOT NULL) AS "{n}", '
        f"arg_min({{'record': substr(node, 8), 'rule': '{r}'}}, {KEY[r].format(name=n)})"
        f' FILTER ("{n}" IS NOT NULL) AS "_src_{n}"'
        for n, r in rules.items()
    )
    # Sorted keys, absent values left out: the same object whatever the attribute order.
    sources = (
        "to_json(map_from_entries(list_filter(["
        + ", ".join(f"{{'k': '{n}', 'v': \"_src_{n}\"}}" for n in sorted(ATTRIBUTES))
        + "], e -> e.v IS NOT NULL)))"
    )
    con = local_duckdb()
    con.register("members", members)
    con.register("ids", ids)
    con.register("priority", priority)
    table = con.sql(f"""
        WITH m AS (
            SELECT members.*, coalesce(-epoch_us(coalesce(updated_at, ingested_at)), 9223372036854775807) AS _newest,
                   coalesce(priority._priority, {len(settings.source_priority)}) AS _priority{votes}
            FROM members LEFT JOIN priority USING (source)
        ),
        best AS (
            SELECT profile_id, count(*) AS records,
                string_agg(DISTINCT source, ', ' ORDER BY source) AS sources, {chosen}
            FROM m GROUP BY profile_id
        ),
        values AS (
            SELECT profile_id, kind, list({node_keys.value_sql("node")} ORDER BY node) AS v
            FROM ids WHERE kind <> 'record' GROUP BY profile_id, kind
        ),
        identifiers AS (
            SELECT profile_id, to_json(map_from_entries(list({{'k': kind, 'v': v}} ORDER BY kind))) AS identifiers
            FROM values GROUP BY profile_id
        )
        SELECT p.profile_id, best.* EXCLUDE (profile_id, records, sources),
               coalesce(best.records, 0) AS records, coalesce(best.sources, '') AS sources,
               coalesce({sources}, '{{}}') AS attribute_sources,
                   coalesce(identifiers.identifiers, '{{}}') AS identifiers
        FROM (SELECT DISTINCT profile_id FROM ids) p
        LEFT JOIN best USING (profile_id) LEFT JOIN identifiers USING (profile_id)
        ORDER BY p.profile_id
    """).to_arrow_table()
    target = schema.ibis_schema("profiles").to_pyarrow()
    return table.select(target.names).cast(target)

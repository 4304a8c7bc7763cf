"""Ingest with the PII vault on (`[privacy] vault = true`, see cx360.privacy.vault and docs/privacy.md).

The warehouse keeps every identifier as its keyed token (`tk_…`), and a record's personal
attributes (names, birth date, address, postcode) as NULL. The clear values go to the vault before
the rows load: one item per identifier node (`email:tk_…` -> its value) and one per record version
(`record:SRC:ID`, item its record_hash -> its personal attributes). Rows are checked, hashed and
suppressed on their clear values first, so record hashes, event ids and suppression are the same
with the vault on or off, and re-ingesting a source finds the same keys.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir

from cx360 import node_keys, schema
from cx360.engine import Engine
from cx360.errors import ConfigError
from cx360.privacy.vault import FOLDER, KEYS_FILE, Vault

if TYPE_CHECKING:
    from cx360.workspace import Workspace

PII_ATTRIBUTES = schema.PII_ATTRIBUTE_NAMES
_TYPES = {c.name: c.dtype for c in schema.ATTRIBUTES}


def for_ingest(ws: Workspace) -> Vault | None:
    """The vault ingest writes to (None with the vault off); an error when the warehouse already holds
    rows loaded in the other mode, since clear values and tokens of one person would never join."""
    on, used = ws.config.privacy.vault, (ws.root / FOLDER / KEYS_FILE).exists()
    if on != used and any(
        ws.engine.to_arrow(ws.engine.table(t).limit(1), step="ingest: rows held").num_rows
        for t in ("records", "events")
    ):
        if on:
            raise ConfigError(
                f"[privacy] vault is on in {ws.config_path}, but the warehouse already holds rows loaded with "
                "it off, in clear: start a new warehouse (move the old one away) and ingest the sources again"
            )
        raise ConfigError(
            f"[privacy] vault is off in {ws.config_path}, but the warehouse holds tokens whose values are in "
            f"the vault ({FOLDER}/{KEYS_FILE}): turn it back on (vault = true)"
        )
    return Vault.of(ws)


def pseudonymised(rows: ir.Table, vault: Vault, entity: str) -> ir.Table:
    """The canonical rows as the warehouse keeps them: each identifier its token, a record's personal
    attributes NULL."""
    changes: dict[str, ir.Value] = {k: vault.token_expr(k, rows[k]) for k in schema.IDENTIFIER_KINDS}
    if entity == "records":
        changes |= {a: ibis.null(_TYPES[a]) for a in PII_ATTRIBUTES}
    return rows.mutate(**changes)


def put_clear_values(engine: Engine, vault: Vault, clear: ir.Table, new: ir.Table, entity: str, source: str) -> int:
    """Put in the vault the clear values of the rows of `clear` that `new` (their pseudonymised form,
    about to load) keeps; the number of items put."""
    rows = clear.semi_join(new.select("row_number"), "row_number")
    parts = [
        rows.filter(rows[k].notnull()).select(kind=ibis.literal(k), value=rows[k], token=vault.token_expr(k, rows[k]))
        for k in schema.IDENTIFIER_KINDS
    ]
    found = engine.to_arrow(ibis.union(*parts, distinct=True), step=f"{source}: identifiers for the vault")
    items = [
        (node_keys.identifier(k, t), "value", {"value": v})
        for k, v, t in zip(*(found[c].to_pylist() for c in ("kind", "value", "token")), strict=True)
    ]
    if entity == "records":
        versions = engine.to_arrow(
            rows.select("record_id", "record_hash", *PII_ATTRIBUTES), step=f"{source}: record attributes for the vault"
        )
        items += [
            (node_keys.record(source, r.pop("record_id")), r.pop("record_hash"), payload(r))
            for r in versions.to_pylist()
        ]
    return vault.put(items, replace=False)  # a value and a record version never change


def payload(attributes: dict) -> dict:
    """The attributes that have a value, a date as ISO text (JSON has no dates)."""
    return {a: v.isoformat() if isinstance(v, dt.date) else v for a, v in attributes.items() if v is not None}

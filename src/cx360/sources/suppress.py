"""Erased people at ingest: their rows are counted as suppressed and never loaded, and their e-mail,
@handle, phone or full name in the free text of other people's rows is replaced by `[erased]`, as
erasure did to the rows it kept (see cx360.privacy.suppression). Nothing here runs while the
workspace has erased nobody."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from cx360 import node_keys, schema
from cx360.engine import Engine
from cx360.privacy.suppression import Suppression
from cx360.sources.mapping import Context
from cx360.sources.readers import ROW


def redact_table(data: pa.Table, mapping, suppression: Suppression) -> pa.Table:
    """The rows with suppressed values redacted in every text column but those of identifiers and
    keys, which decide whether the row itself is suppressed."""
    keep = {spec.column for spec in mapping.identifiers.values() if spec.column}
    for name in ("record_id", "event_id", "consent_id"):
        key = getattr(mapping, name, None)
        if key is not None and key.column:
            keep.add(key.column)
    for i, name in enumerate(data.column_names):
        if name == ROW or name in keep or not pa.types.is_string(data.schema.field(i).type):
            continue
        values = data.column(i).to_pylist()
        redacted = [suppression.redact(v) for v in values]
        if redacted != values:
            data = data.set_column(i, name, pa.array(redacted, pa.string()))
    return data


def suppressed_rows(engine: Engine, checked: ir.Table, entity: str, ctx: Context, suppression: Suppression) -> set[int]:
    """Row numbers of the checked rows that hold a suppressed identifier (normalised), or that are a
    suppressed source record."""
    kinds = list(schema.IDENTIFIER_KINDS)
    columns = [*kinds, "record_id"] if entity == "records" else kinds
    rows = engine.to_arrow(
        checked.filter(ibis.or_(*[checked[k].notnull() for k in columns])).select("row_number", *columns),
        step=f"{ctx.source}: suppressed identifiers",
    ).to_pylist()
    gone = set()
    for r in rows:
        if any(suppression.holds(k, r[k]) for k in kinds) or (
            entity == "records"
            and r["record_id"]
            and suppression.holds(node_keys.RECORD, f"{ctx.source}{node_keys.SEP}{r['record_id']}")
        ):
            gone.add(r["row_number"])
    return gone

"""Identifiers dropped at ingest: a row with a malformed phone or e-mail is loaded without it, and
the value with its reason is kept here, so that nothing is dropped without a trace.

Droppable: every identifier kind (email, phone, customer_no, card_token, device_id, cookie_id,
social_handle). Required, and so a reason for quarantine: a record's record_id; an event's
timestamp, name, and at least one usable identifier.
"""

from __future__ import annotations

import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from cx360.engine import Engine
from cx360.sources.mapping import Context, dropped_identifiers


def keep_dropped(engine: Engine, valid: ir.Table, entity: str, ctx: Context) -> pa.Table | None:
    """The identifiers dropped from the chunk's valid rows (few), read before the rows load."""
    expr = dropped_identifiers(valid, {"records": "record_id", "events": "event_id", "consents": "consent_id"}[entity])
    if expr is None:
        return None
    found = engine.to_arrow(expr, step=f"{ctx.source}: dropped identifiers")
    return found if found.num_rows else None


def write_dropped(engine: Engine, found: pa.Table | None, entity: str, ctx: Context) -> int:
    """Record the dropped identifiers of the rows that this batch loaded (not of duplicates)."""
    if found is None:
        return 0
    target = engine.table(entity)
    rows = sorted(set(found["row_number"].to_pylist()))
    landed = engine.to_arrow(
        target.filter((target.batch_id == ctx.batch_id) & target.row_number.isin(rows)).select("row_number"),
        step=f"{ctx.source}: rows with dropped identifiers",
    )["row_number"].to_pylist()
    found = found.filter(pc.is_in(found["row_number"], value_set=pa.array(landed, pa.int64())))
    n = found.num_rows
    if not n:
        return 0
    engine.append(
        "dropped_identifiers",
        pa.table(
            {
                "source": [ctx.source] * n,
                "batch_id": [ctx.batch_id] * n,
                "row_number": found["row_number"],
                "entity": [entity] * n,
                "key": found["key"],
                "kind": found["kind"],
                "value": found["value"],
                "reason": found["reason"],
                "dropped_at": pa.array([ctx.ingested_at] * n, pa.timestamp("us")),
            }
        ),
        step=f"{ctx.source}: dropped identifiers",
    )
    return n

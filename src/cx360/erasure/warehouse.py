"""The person's rows out of every warehouse table, then the warehouse rewritten so the bytes are gone.

Which rows are theirs is read from each table's columns, so a table added later is covered too: a
`profile_id` of theirs, a node key of theirs (`node`, `left`, `right`), one of their identifiers in
the column of its kind, one of their source records, or an event of theirs (`event_id`). Quarantine
rows are raw text: a row is theirs when an identifier column of its source's mapping holds one of
their identifiers once normalised, or its record id is theirs. In the rows of everyone else, their
e-mail, @handle, phone or full name in free text is replaced by `[erased]`, exactly as ingest does
to text it loads later (cx360.privacy.suppression).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from cx360 import node_keys, schema
from cx360.engine import STAGE_PREFIX
from cx360.erasure.streams import matcher
from cx360.erasure.subject import Subject, holds_identifier
from cx360.privacy.suppression import Suppression

if TYPE_CHECKING:
    from cx360.engine import Engine
    from cx360.workspace import Workspace

NODE_COLUMNS = ("node", "left", "right")
LOADED = ("records", "events", "consents")  # tables ingest loads, batch by batch
# Free text that may name someone else (a post tagging @handle): redacted, keyed by the row's key.
FREE_TEXT = {
    "events": ("properties", ["source", "event_id"]),
    "profile_events": ("properties", ["source", "event_id"]),
    "quarantine": ("raw", ["source", "batch_id", "row_number"]),
}


def erase_rows(ws: Workspace, subject: Subject, suppression: Suppression) -> tuple[dict[str, int], dict[str, int]]:
    """Delete the person's rows from every table and redact them from the free text of the others.
    Returns (rows removed, rows redacted) per table. Idempotent: a second run removes nothing."""
    engine = ws.engine
    predicates = their_rows(ws, subject)
    batches = _per_batch(engine, predicates)
    removed = {table: engine.delete(table, predicate) for table, predicate in predicates.items()}
    _update_ledger(engine, batches)
    redacted = {table: _redact(engine, table, subject, suppression) for table in FREE_TEXT if engine.has_table(table)}
    return removed, {t: n for t, n in redacted.items() if n}


def _per_batch(engine: Engine, predicates: dict[str, ir.BooleanValue]) -> dict[tuple[str, str], int]:
    """(batch, loaded or quarantined) -> the person's rows the batch wrote, for the ingest ledger."""
    out: dict[tuple[str, str], int] = {}
    for table in (*LOADED, "quarantine"):
        if table in predicates:
            theirs = engine.table(table).filter(predicates[table])
            rows = theirs.group_by("batch_id").aggregate(n=theirs.count())
            for r in engine.to_arrow(rows, step=f"erasure: {table} per batch").to_pylist():
                column = "rows_quarantined" if table == "quarantine" else "rows_loaded"
                out[(r["batch_id"], column)] = out.get((r["batch_id"], column), 0) + r["n"]
    return out


def _update_ledger(engine: Engine, batches: dict[tuple[str, str], int]) -> None:
    """The committed batches' counts move the erased rows from loaded (or quarantined) to suppressed,
    so that read = loaded + quarantined + duplicates + suppressed still holds for each batch."""
    if not batches:
        return
    ids = sorted({b for b, _ in batches})
    ledger = engine.table("ingest_batches")
    rows = engine.to_arrow(
        ledger.filter(ledger.batch_id.isin(ids) & (ledger.status == "committed")), step="erasure: ledger"
    ).to_pylist()
    for r in rows:
        for column in ("rows_loaded", "rows_quarantined"):
            n = batches.get((r["batch_id"], column), 0)
            r[column] = (r[column] or 0) - n
            r["rows_suppressed"] = (r["rows_suppressed"] or 0) + n
    if rows:
        engine.upsert("ingest_batches", pa.Table.from_pylist(rows), key=["batch_id", "status"])


def their_rows(ws: Workspace, subject: Subject) -> dict[str, ir.BooleanValue]:
    """For every warehouse table that can hold the person, the condition that picks their rows."""
    engine = ws.engine
    events = engine.table("events")
    found = engine.to_arrow(
        events.filter(holds_identifier(events, subject)).select("source", "event_id"),
        step="erasure: the person's events",
    )
    sources, ids = found["source"].to_pylist(), found["event_id"].to_pylist()
    event_ids = sorted(set(ids))
    event_keys = sorted({f"{s}\x1f{e}" for s, e in zip(sources, ids, strict=True)})
    out = {}
    for table in sorted(t for t in engine.con.list_tables() if not t.startswith(STAGE_PREFIX)):
        if table == "quarantine":
            predicate = _quarantine_rows(ws, subject)
        else:
            predicate = _predicate(engine.table(table), table, subject, event_ids, event_keys)
        if predicate is not None:
            out[table] = predicate
    return out


def _predicate(
    t: ir.Table, table: str, subject: Subject, event_ids: list[str], event_keys: list[str]
) -> ir.BooleanValue | None:
    cols = set(t.columns)
    conditions = []
    if "profile_id" in cols:
        conditions.append(t.profile_id.isin(subject.profile_ids))
    if "merged_into" in cols:
        conditions.append(t.merged_into.isin(subject.profile_ids))
    conditions += [t[c].isin(subject.nodes) for c in NODE_COLUMNS if c in cols]
    if cols & set(schema.IDENTIFIER_KINDS):
        conditions.append(holds_identifier(t, subject))
    records = [node_keys.record(s, r) for s, r in subject.records]
    if {"source", "record_id"} <= cols and records:
        conditions.append(node_keys.record_expr(t.source, t.record_id).isin(records))
    if table == "dropped_identifiers":  # identifiers dropped from the person's loaded rows
        by_record = (t.entity == "records") & node_keys.record_expr(t.source, t.key).isin(records or [""])
        by_event = (t.entity == "events") & (t.source + "\x1f" + t.key).isin(event_keys or [""])
        conditions.append(by_record | by_event)
    elif "event_id" in cols and event_ids:
        key = (t.source + "\x1f" + t.event_id).isin(event_keys) if "source" in cols else t.event_id.isin(event_ids)
        conditions.append(key)
    return ibis.or_(*conditions) if conditions else None


def _quarantine_rows(ws: Workspace, subject: Subject) -> ir.BooleanValue | None:
    """Quarantined rows that hold one of the person's identifiers (normalised) or record ids in any
    value, or their e-mail, handle, phone or full name in text: the test ingest makes (Suppression.touches)."""
    engine = ws.engine
    q = engine.table("quarantine")
    rows = engine.to_arrow(q.select("source", "batch_id", "row_number", "raw"), step="erasure: quarantine").to_pylist()
    mine = matcher(ws.root, subject, ws.config.workspace.default_region)
    keys = [
        f"{r['source']}\x1f{r['batch_id']}\x1f{r['row_number']}" for r in rows if mine.touches(r["raw"], r["source"])
    ]
    if not keys:
        return None
    return (q.source + "\x1f" + q.batch_id + "\x1f" + q.row_number.cast("string")).isin(keys)


def _redact(engine: Engine, table: str, subject: Subject, suppression: Suppression) -> int:
    """Redact the person from the free text of the rows that remain; returns how many rows changed."""
    column, key = FREE_TEXT[table]
    t = engine.table(table)
    terms = subject.terms()
    if not terms:
        return 0
    pattern = "(?i)" + "|".join(re.escape(term) for term in terms)  # one pass, case-insensitive
    candidates = engine.to_arrow(t.filter(t[column].re_search(pattern)), step=f"erasure: text naming them in {table}")
    if not candidates.num_rows:
        return 0
    values = candidates[column].to_pylist()
    redacted = [suppression.redact(v) for v in values]
    changed = [i for i, (a, b) in enumerate(zip(values, redacted, strict=True)) if a != b]
    if not changed:
        return 0
    rows = candidates.take(changed)
    rows = rows.set_column(
        rows.column_names.index(column), column, pa.array([redacted[i] for i in changed], pa.string())
    )
    return engine.upsert(table, rows, key=key)

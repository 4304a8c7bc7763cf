"""What a workspace holds: table sizes, and per source what was ingested when."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir

from cx360 import schema

if TYPE_CHECKING:
    from cx360.workspace import Workspace


@dataclass
class SourceStatus:
    source: str
    batches: int
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    last_batch_at: str | None


def table_counts(ws: Workspace) -> dict[str, int]:
    engine = ws.engine
    return {name: int(engine.scalar(engine.table(name).count(), step=f"count {name}")) for name in schema.TABLES}


def source_status(ws: Workspace) -> list[SourceStatus]:
    engine = ws.engine
    ledger = engine.table("ingest_batches")
    done = ledger.filter(ledger.status == "committed")
    summary = done.group_by("source").aggregate(
        batches=done.count(),
        rows_read=done.rows_read.sum(),
        rows_loaded=done.rows_loaded.sum(),
        rows_quarantined=done.rows_quarantined.sum(),
        rows_duplicate=done.rows_duplicate.sum(),
        last_batch_at=done.finished_at.max(),
    )
    rows = {r["source"]: r for r in engine.to_arrow(summary, step="source status").to_pylist()}
    out = []
    for source in ws.config.sources:
        r = rows.get(source.name)
        if r is None:
            out.append(SourceStatus(source.name, 0, 0, 0, 0, 0, None))
            continue
        when = r["last_batch_at"].isoformat(sep=" ", timespec="seconds") if r["last_batch_at"] else None
        out.append(
            SourceStatus(
                source.name,
                r["batches"],
                r["rows_read"],
                r["rows_loaded"],
                r["rows_quarantined"],
                r["rows_duplicate"],
                when,
            )
        )
    return out


def current_quarantine(ws: Workspace, source: str | None = None) -> ir.Table:
    """The rows still failing now: those of the latest committed batch of each input (a re-read, a replay
    or a changed file supersedes what an earlier batch of that input rejected), each row once."""
    engine = ws.engine
    ledger = engine.table("ingest_batches")
    done = ledger.filter(ledger.status == "committed")
    if source:
        done = done.filter(done.source == source)
    newest = ibis.row_number().over(
        group_by=["source", "input"], order_by=[ibis.desc("finished_at"), ibis.desc("batch_id")]
    )
    latest = done.mutate(_rank=newest).filter(ibis._._rank == 0).select("batch_id", "input")
    q = engine.table("quarantine")
    q = q.join(latest, "batch_id")
    once = ibis.row_number().over(group_by=["source", "raw"], order_by=[ibis.desc("quarantined_at"), "row_number"])
    return q.mutate(_rank=once).filter(ibis._._rank == 0).drop("_rank")


def quarantine_rows(ws: Workspace, *, source: str | None = None, limit: int | None = 20) -> list[dict]:
    q = current_quarantine(ws, source).order_by([ibis.desc("quarantined_at"), "source", "input", "row_number"])
    if limit is not None:
        q = q.limit(limit)
    columns = ["source", "input", "batch_id", "row_number", "reasons", "raw"]
    return ws.engine.to_arrow(q.select(*columns), step="read quarantine").to_pylist()


def quarantine_counts(ws: Workspace, source: str | None = None) -> dict[str, int]:
    """Rows still failing per source (not summed over runs)."""
    q = current_quarantine(ws, source)
    rows = ws.engine.to_arrow(q.group_by("source").aggregate(rows=q.count()), step="count quarantine").to_pylist()
    return {r["source"]: r["rows"] for r in rows}


def dropped_summary(ws: Workspace) -> list[dict]:
    """Per source and identifier kind: how many malformed values were dropped from loaded rows."""
    d = ws.engine.table("dropped_identifiers")
    summary = (
        d.group_by(["source", "kind"]).aggregate(dropped=d.count(), example=d.reason.min()).order_by(["source", "kind"])
    )
    return ws.engine.to_arrow(summary, step="dropped identifiers").to_pylist()


def dropped_rows(ws: Workspace, *, source: str | None = None, limit: int = 20) -> list[dict]:
    d = ws.engine.table("dropped_identifiers")
    if source:
        d = d.filter(d.source == source)
    d = d.order_by([ibis.desc("dropped_at"), "source", "row_number", "kind"]).limit(limit)
    return ws.engine.to_arrow(
        d.select("source", "row_number", "entity", "key", "kind", "value", "reason"), step="read dropped identifiers"
    ).to_pylist()

"""Ingest sources into the canonical tables, batch by batch, with nothing lost and nothing added twice.

A batch is one input of one source (a file, or one read of a database table).
Its id is a hash of the source's mapping and the input's content, so an
unchanged file is recognised and skipped. The ledger `ingest_batches` gets a
'started' row before any data and a 'committed' row after the last: rows of a
batch that never committed (a crash, a vanished file) are removed at the start
of the next run, which then loads the batch again from scratch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from cx360 import schema
from cx360.config import Config
from cx360.engine import Engine
from cx360.errors import Cx360Error
from cx360.sources.mapping import REASONS, Context, check
from cx360.sources.readers import ROW, Chunk, Malformed, Reader, readers_for
from cx360.workspace import Workspace

Progress = Callable[[str, str, int], None]  # source, input, rows read so far


@dataclass
class SourceReport:
    source: str
    inputs: int = 0
    unchanged: int = 0
    read: int = 0
    loaded: int = 0
    quarantined: int = 0
    duplicates: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def ingest(ws: Workspace, only: list[str] | None = None, *, on_progress: Progress | None = None) -> list[SourceReport]:
    """Ingest every source (or the named ones); a failing source is reported and does not stop the others."""
    config = ws.config
    names = only or [s.name for s in config.sources]
    sources = [config.source(n) for n in names]
    engine = ws.engine
    recover(engine)
    reports = []
    for source in sources:
        report = SourceReport(source.name)
        reports.append(report)
        try:
            for reader in readers_for(source, ws.root):
                report.inputs += 1
                _ingest_input(engine, config, source, reader, report, on_progress)
        except Cx360Error as exc:
            report.error = str(exc)
    return reports


def recover(engine: Engine) -> list[str]:
    """Remove every row written by batches that started and never committed; return their ids."""
    ledger = engine.table("ingest_batches")
    committed = ledger.filter(ledger.status == "committed").select("batch_id")
    orphans = ledger.filter(ledger.status == "started").anti_join(committed, "batch_id").select("batch_id").distinct()
    ids = engine.to_arrow(orphans, step="recover: find unfinished batches")["batch_id"].to_pylist()
    if ids:
        for table in (*schema.BATCH_TABLES, "ingest_batches"):
            with engine.step(f"recover: remove unfinished batches from {table}"):
                engine.delete_batches(table, ids)
    return ids


def _batch_id(source, reader: Reader) -> str:
    fingerprint = reader.fingerprint()
    if fingerprint is None:  # a database read: every run is a new batch; rows are deduplicated by key
        return uuid.uuid4().hex
    mapping = json.dumps(source.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(f"{mapping}\n{fingerprint}".encode()).hexdigest()[:32]


def _ingest_input(engine: Engine, config: Config, source, reader: Reader, report: SourceReport, on_progress) -> None:
    batch_id = _batch_id(source, reader)
    ledger = engine.table("ingest_batches")
    done = engine.to_arrow(
        ledger.filter((ledger.batch_id == batch_id) & (ledger.status == "committed")).select("rows_read"),
        step="check ledger",
    )
    if done.num_rows:
        rows = done["rows_read"][0].as_py()
        report.unchanged += 1
        report.read += rows
        report.duplicates += rows
        return

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    _ledger(engine, batch_id, source.name, reader.label, "started", now)
    ctx = Context(
        engine=engine,
        source=source.name,
        batch_id=batch_id,
        ingested_at=now,
        region=config.workspace.default_region,
        event_names=config.event_names,
        schemaless=reader.schemaless,
    )
    read = quarantined = 0
    try:
        for chunk in reader.chunks():
            read += chunk.data.num_rows + len(chunk.malformed)
            quarantined += _load_chunk(engine, source, chunk, ctx)
            if on_progress:
                on_progress(source.name, reader.label, read)
        target = engine.table(source.entity)
        loaded = int(engine.scalar(target.filter(target.batch_id == batch_id).count(), step="count loaded rows"))
    except BaseException:
        _discard(engine, batch_id)
        raise
    _ledger(engine, batch_id, source.name, reader.label, "committed", now, read, loaded, quarantined)
    report.read += read
    report.loaded += loaded
    report.quarantined += quarantined
    report.duplicates += read - loaded - quarantined


def _load_chunk(engine: Engine, source, chunk: Chunk, ctx: Context) -> int:
    """Write the chunk's valid new rows and its rejected rows; return how many were rejected."""
    staged = engine.stage(chunk.data)
    helpers: list[ir.Table] = []
    try:
        checked, helpers = check(staged, source.mapping, ctx)
        rejected = engine.to_arrow(
            checked.filter(checked[REASONS].notnull()).select("row_number", REASONS), step=f"{source.name}: validate"
        )
        valid = checked.filter(checked[REASONS].isnull()).drop(REASONS)
        engine.insert(source.entity, _new_rows(engine, valid, source.entity, ctx.source), step=f"{source.name}: load")
        bad = chunk.malformed + _malformed(chunk.data, rejected)
        if bad:
            engine.append("quarantine", _quarantine_rows(bad, ctx), step=f"{source.name}: quarantine")
        return len(bad)
    finally:
        for table in (*helpers, staged):
            engine.unstage(table)


def _new_rows(engine: Engine, valid: ir.Table, entity: str, source: str) -> ir.Table:
    """Keep the first row per key within the chunk, and only keys the table does not hold yet."""
    key = ["source", "event_id"] if entity == "events" else ["source", "record_hash"]
    rank = ibis.row_number().over(group_by=key, order_by="row_number")
    first = valid.mutate(_rank=rank).filter(ibis._._rank == 0).drop("_rank")
    existing = engine.table(entity)
    return first.anti_join(existing.filter(existing.source == source).select(*key), key)


def _malformed(data: pa.Table, rejected: pa.Table) -> list[Malformed]:
    if not rejected.num_rows:
        return []
    positions = pc.index_in(rejected["row_number"], value_set=data[ROW])
    raw_rows = data.drop_columns([ROW]).take(positions).to_pylist()
    return [
        Malformed(n, json.dumps(raw, ensure_ascii=False, default=str), reasons)
        for n, raw, reasons in zip(rejected["row_number"].to_pylist(), raw_rows, rejected[REASONS].to_pylist())
    ]


def _quarantine_rows(bad: list[Malformed], ctx: Context) -> pa.Table:
    n = len(bad)
    return pa.table(
        {
            "source": [ctx.source] * n,
            "batch_id": [ctx.batch_id] * n,
            "row_number": [m.row_number for m in bad],
            "raw": [m.raw for m in bad],
            "reasons": [m.reason for m in bad],
            "quarantined_at": pa.array([ctx.ingested_at] * n, pa.timestamp("us")),
        }
    )


def _ledger(engine: Engine, batch_id, source, input_, status, started, read=None, loaded=None, quarantined=None) -> None:
    finished = dt.datetime.now(dt.UTC).replace(tzinfo=None) if status == "committed" else None
    duplicates = None if read is None else read - loaded - quarantined
    row = pa.table(
        {
            "batch_id": [batch_id],
            "source": [source],
            "input": [input_],
            "status": [status],
            "started_at": pa.array([started], pa.timestamp("us")),
            "finished_at": pa.array([finished], pa.timestamp("us")),
            "rows_read": pa.array([read], pa.int64()),
            "rows_loaded": pa.array([loaded], pa.int64()),
            "rows_quarantined": pa.array([quarantined], pa.int64()),
            "rows_duplicate": pa.array([duplicates], pa.int64()),
        }
    )
    engine.append("ingest_batches", row, step=f"{source}: ledger ({status})")


def _discard(engine: Engine, batch_id: str) -> None:
    """Best effort: remove a failed batch now; if this fails too, the next run's recovery does it."""
    try:
        for table in (*schema.BATCH_TABLES, "ingest_batches"):
            engine.delete_batches(table, [batch_id])
    except Exception:  # noqa: BLE001 - the original error is the one to report
        pass

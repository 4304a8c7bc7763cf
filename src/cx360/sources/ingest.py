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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from cx360 import schema
from cx360.config import Config
from cx360.engine import Engine
from cx360.errors import Cx360Error, TransientSourceError
from cx360.privacy import ledger
from cx360.privacy.suppression import Suppression
from cx360.privacy.vault import Vault
from cx360.sources import segment, suppress, vaulting
from cx360.sources.dropped import keep_dropped, write_dropped
from cx360.sources.mapping import REASONS, Context, canonical_rows, check
from cx360.sources.masking import chunk_masker
from cx360.sources.readers import ENTITY, ROW, Chunk, Malformed, Reader, readers_for
from cx360.sources.textfile import InputChanged

if TYPE_CHECKING:
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
    suppressed: int = 0  # rows of erased people, not loaded (see cx360.privacy.suppression)
    identifiers_dropped: int = 0  # malformed identifiers removed from loaded rows (see dropped_identifiers)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def fail(self, message: str) -> None:
        self.error = message if self.error is None else f"{self.error}; {message}"

    def add(self, counts: BatchCounts) -> None:
        self.read += counts.read
        self.loaded += counts.loaded
        self.quarantined += counts.quarantined
        self.duplicates += counts.duplicates
        self.suppressed += counts.suppressed
        self.identifiers_dropped += counts.identifiers_dropped


@dataclass
class BatchCounts:
    """read = loaded + quarantined + duplicates + suppressed, checked before a batch commits."""

    read: int = 0
    loaded: int = 0
    quarantined: int = 0
    duplicates: int = 0
    suppressed: int = 0
    identifiers_dropped: int = 0  # malformed identifiers removed from loaded rows (not a row count)
    first_reason: str | None = None


def ingest(ws: Workspace, only: list[str] | None = None, *, on_progress: Progress | None = None) -> list[SourceReport]:
    """Ingest every source (or the named ones); a failing source is reported and does not stop the others."""
    config = ws.config
    names = only or [s.name for s in config.sources]
    sources = [config.source(n) for n in names]
    engine = ws.engine
    recover(engine)
    suppression = Suppression.load(ws.root, config.workspace.default_region)
    vault = vaulting.for_ingest(ws)
    reports = []
    drained = ledger.drain(engine, ws.root)  # consent changes the API took since the last ingest
    if drained:
        reports.append(SourceReport("api consents", inputs=1, read=drained, loaded=drained))
    for source in sources:
        report = SourceReport(source.name)
        reports.append(report)
        try:
            inputs = (
                segment.readers(source, ws.root)
                if source.preset == "segment"
                else readers_for(source, ws.root, config.ingest)
            )
            for reader in inputs:
                report.inputs += 1
                _ingest_with_retries(engine, config, source, reader, report, on_progress, suppression, vault)
        except Cx360Error as exc:
            report.fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - one broken source must not stop the others
            report.fail(f"unexpected {type(exc).__name__} while ingesting: {exc}")
    return reports


def ingest_input(
    engine: Engine,
    config: Config,
    source,
    reader: Reader,
    report: SourceReport,
    suppression: Suppression | None = None,
    vault: Vault | None = None,
) -> None:
    """Load one input that `readers_for` does not list (a segment of the collector's event log) the way
    `ingest` loads a source's inputs: skipped when its batch committed before, else one batch."""
    _ingest_with_retries(engine, config, source, reader, report, None, suppression, vault)


def _ingest_with_retries(
    engine, config: Config, source, reader: Reader, report: SourceReport, on_progress, suppression, vault
) -> None:
    attempts = config.ingest.read_attempts
    for attempt in range(1, attempts + 1):
        try:
            _ingest_input(engine, config, source, reader, report, on_progress, suppression, vault)
            return
        except InputChanged as exc:  # the batch was discarded: read the input again, from its new content
            if attempt == attempts:
                raise TransientSourceError(
                    f"{exc} on each of {attempts} attempts; nothing of it was loaded. Write inputs elsewhere and "
                    "move them into place when complete, or raise [ingest].read_attempts"
                ) from exc


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


def _ingest_input(
    engine: Engine, config: Config, source, reader: Reader, report: SourceReport, on_progress, suppression, vault
) -> None:
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
    progress = (lambda read: on_progress(source.name, reader.label, read)) if on_progress else None
    counts = load_batch(
        engine, config, source, batch_id, reader.label, reader.chunks(), reader.schemaless, progress, suppression, vault
    )
    report.add(counts)
    if counts.read and counts.quarantined == counts.read and not reader.rejected_only:
        report.fail(
            f"{reader.label}: every one of its {counts.read:,} rows was quarantined (first reason: "
            f"{counts.first_reason}); check the source's encoding, delimiter and mapping"
        )


def load_batch(
    engine: Engine,
    config: Config,
    source,
    batch_id: str,
    label: str,
    chunks: Iterable[Chunk],
    schemaless: bool,
    on_progress: Callable[[int], None] | None = None,
    suppression: Suppression | None = None,
    vault: Vault | None = None,
) -> BatchCounts:
    """Load one batch between a 'started' and a 'committed' ledger row; on any failure nothing of it stays.
    Rows of the people in `suppression` are counted as suppressed and not loaded. With a `vault`, the
    rows load pseudonymised and their clear values go to the vault (cx360.sources.vaulting)."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    _ledger(engine, batch_id, source.name, label, "started", now)
    ctx = Context(
        engine=engine,
        source=source.name,
        batch_id=batch_id,
        ingested_at=now,
        region=config.workspace.default_region,
        event_names=config.event_names,
        schemaless=schemaless,
        earliest=dt.datetime.combine(config.ingest.earliest, dt.time()),
        latest=now + dt.timedelta(days=config.ingest.max_future_days),
        purposes={name: p.channels for name, p in config.privacy.all_purposes.items()},
        timezone=source.timezone or config.workspace.timezone,
    )
    counts = BatchCounts()
    valid = 0
    mask = chunk_masker(config, source)
    try:
        for chunk in chunks:
            if mask is not None:
                chunk = mask(chunk)
            counts.read += chunk.data.num_rows + len(chunk.malformed)
            bad, good, suppressed = _load_chunk(engine, source, chunk, ctx, suppression, vault)
            counts.quarantined += len(bad)
            counts.suppressed += suppressed
            valid += good
            if bad and counts.first_reason is None:
                counts.first_reason = min(bad, key=lambda m: m.row_number).reason
            if on_progress:
                on_progress(counts.read)
        for entity, _ in source.targets():
            target = engine.table(entity)
            counts.loaded += int(
                engine.scalar(target.filter(target.batch_id == batch_id).count(), step=f"count loaded {entity}")
            )
        counts.duplicates = valid - counts.loaded
        drops = engine.table("dropped_identifiers")
        counts.identifiers_dropped = int(
            engine.scalar(drops.filter(drops.batch_id == batch_id).count(), step="count dropped identifiers")
        )
        if counts.duplicates < 0 or counts.read != (
            counts.loaded + counts.quarantined + counts.duplicates + counts.suppressed
        ):
            raise Cx360Error(
                f"{label}: rows do not add up (read {counts.read}, loaded {counts.loaded}, quarantined "
                f"{counts.quarantined}, suppressed {counts.suppressed}, valid {valid}); the batch was not committed"
            )
    except BaseException:
        _discard(engine, batch_id)
        raise
    _ledger(engine, batch_id, source.name, label, "committed", now, counts)
    return counts


def _load_chunk(
    engine: Engine, source, chunk: Chunk, ctx: Context, suppression: Suppression | None = None, vault=None
) -> tuple[list[Malformed], int, int]:
    """Write the chunk's valid new rows and its rejected rows; return the rejected rows, how many were
    valid (loaded now, or duplicates of rows loaded before), and how many rows of erased people were
    suppressed (neither loaded nor quarantined)."""
    bad, valid, suppressed = list(chunk.malformed), 0, 0
    for entity, mapping, data in _parts(source, chunk.data):
        rejected, good, gone = _load_part(engine, source.name, entity, mapping, data, ctx, suppression, vault)
        bad += rejected
        valid += good
        suppressed += gone
    if suppression:  # a rejected row or a line that never parsed may still be theirs
        theirs = {m.row_number for m in bad if suppression.touches(m.raw, source.name)}
        bad = [m for m in bad if m.row_number not in theirs]
        suppressed += len(theirs)
    if bad:
        engine.append("quarantine", _quarantine_rows(bad, ctx), step=f"{source.name}: quarantine")
    return bad, valid, suppressed


def _parts(source, data: pa.Table) -> list[tuple[str, object, pa.Table]]:
    """The chunk per target table: whole for a source of one table; split by the reader's `_cx360_entity`
    for a source that fills both (a Segment export's identify calls are records, its track calls events)."""
    targets = source.targets()
    if len(targets) == 1:
        entity, mapping = targets[0]
        return [(entity, mapping, data)]
    if not data.num_rows:
        return []  # nothing to route (a chunk of rows that never parsed)
    if ENTITY not in data.column_names:
        raise Cx360Error(f"source '{source.name}': its reader did not say which table each row goes to ({ENTITY})")
    parts = []
    for entity, mapping in targets:
        part = data.filter(pc.equal(data[ENTITY], entity))
        if part.num_rows:
            parts.append((entity, mapping, part))
    return parts


def _load_part(
    engine: Engine,
    name: str,
    entity: str,
    mapping,
    data: pa.Table,
    ctx: Context,
    suppression: Suppression | None,
    vault,
):
    """Load rows bound for one table; return the rejected rows, how many were valid, how many suppressed."""
    gone: set[int] = set()
    if suppression:
        data = suppress.redact_table(data, mapping, suppression)
    staged = engine.stage(data)
    helpers: list[ir.Table] = []
    try:
        checked, helpers = check(staged, mapping, ctx)
        if suppression:
            gone = suppress.suppressed_rows(engine, checked, entity, ctx, suppression)
            if gone:
                checked = checked.filter(~checked.row_number.isin(sorted(gone)))
        # Checked once into a table of its own: the rejects, the dropped identifiers and the load all read it.
        with engine.materialised(checked, step=f"{name}: validate") as checked:
            marked = _mark_suspects(engine, checked, name, entity, mapping)
            flagged = engine.to_arrow(
                marked.filter(marked[REASONS].notnull() | marked._cx360_suspect).select(
                    "row_number", REASONS, "_cx360_suspect"
                ),
                step=f"{name}: rejects",
            )
            rejected = flagged.filter(pc.is_valid(flagged[REASONS])).select(["row_number", REASONS])
            valid = checked.filter(checked[REASONS].isnull())
            dropped = keep_dropped(engine, valid, entity, ctx)
            rows = canonical_rows(valid)
            if vault is not None:  # checked, hashed and suppressed on clear values; kept as tokens
                rows = vaulting.pseudonymised(rows, vault, entity)
            new, conflicts = _new_rows(engine, rows, name, entity, mapping)
            if pc.any(flagged["_cx360_suspect"]).as_py():  # ids seen twice: compare their payloads
                conflicting = engine.to_arrow(conflicts, step=f"{name}: conflicting event ids")
                rejected = pa.concat_tables([rejected, _conflict_reasons(conflicting)])
            if vault is not None:  # the values first: a row never loads without them
                vaulting.put_clear_values(engine, vault, valid, new, entity, name)
            engine.insert(entity, new, step=f"{name}: load")
            write_dropped(engine, dropped, entity, ctx)
        return _malformed(data, rejected), data.num_rows - rejected.num_rows - len(gone), len(gone)
    finally:
        for table in (*helpers, staged):
            engine.unstage(table)


def _mark_suspects(engine: Engine, checked: ir.Table, name: str, entity: str, mapping) -> ir.Table:
    """The chunk with `_cx360_suspect`: a valid row whose source-given event_id is repeated in the chunk or
    already loaded, the only rows that can conflict (a content-derived id cannot)."""
    if entity != "events" or mapping.event_id is None:
        return checked.mutate(_cx360_suspect=ibis.literal(False))
    existing = engine.table("events")
    taken = existing.filter(existing.source == name).select(_cx360_taken=existing.event_id)
    valid = checked.filter(checked[REASONS].isnull())
    later = _repeats(valid, ["event_id"]).select(_cx360_later="row_number")
    joined = checked.left_join(taken, checked.event_id == taken._cx360_taken).left_join(
        later, checked.row_number == later._cx360_later
    )
    return joined.mutate(
        _cx360_suspect=checked[REASONS].isnull() & (joined._cx360_later.notnull() | joined._cx360_taken.notnull())
    ).drop("_cx360_taken", "_cx360_later")


def _repeats(rows: ir.Table, key: list[str]) -> ir.Table:
    """The rows whose key an earlier row of theirs (a lower row_number) already has. Found by grouping on the
    key, a hash aggregate, rather than by numbering every row within its key, a sort: most keys come once."""
    groups = rows.group_by(key).aggregate(_cx360_first=rows.row_number.min(), _cx360_n=rows.count())
    repeated = groups.filter(groups._cx360_n > 1).select(*key, "_cx360_first")
    joined = rows.join(repeated, key)
    return joined.filter(joined.row_number > joined._cx360_first).select(*rows.columns)


# What an event says: two rows with one event_id and the same payload are one event seen twice.
_PAYLOAD = ["ts", "name", "channel", *schema.IDENTIFIER_KINDS, "amount", "properties"]


def _new_rows(engine: Engine, valid: ir.Table, name: str, entity: str, mapping) -> tuple[ir.Table, ir.Table | None]:
    """The first row per key within the chunk whose key the table does not hold yet; and, for events keyed
    by the source's own id, the rows whose id is already taken by a different payload."""
    key = ["source", {"events": "event_id", "records": "record_hash", "consents": "consent_id"}[entity]]
    later = _repeats(valid, key)
    first = valid.anti_join(later.select("row_number"), "row_number")
    existing = engine.table(entity)
    existing = existing.filter(existing.source == name)
    new = first.anti_join(existing.select(*key), key)
    if entity != "events" or mapping.event_id is None:
        return new, None  # keys are content hashes: one key, one payload
    # Payloads are compared only for ids seen twice, which are few: most chunks bring only new ids.
    repeated = first.semi_join(later.select("event_id"), "event_id")
    earlier = repeated.select(
        "event_id",
        _cx360_by=ibis.literal("row ") + repeated.row_number.cast("string") + " of this batch",
        _cx360_was=_payload(repeated),
    )
    within = later.mutate(_cx360_payload=_payload(later)).join(earlier, "event_id")
    again = first.semi_join(existing.select("event_id"), "event_id")
    held = existing.semi_join(again.select("event_id"), "event_id")
    loaded = held.select(
        "event_id",
        _cx360_by=ibis.literal("batch ") + held.batch_id + " (row " + held.row_number.cast("string") + ")",
        _cx360_was=_payload(held),
    )
    before = again.mutate(_cx360_payload=_payload(again)).join(loaded, "event_id")
    columns = ["row_number", "event_id", "_cx360_by"]
    return new, (
        within.filter(within._cx360_payload != within._cx360_was)
        .select(*columns)
        .union(before.filter(before._cx360_payload != before._cx360_was).select(*columns))
    )


def _payload(t: ir.Table) -> ir.StringValue:
    return ibis.literal("\x1f").join([ibis.coalesce(t[c].cast("string"), "\x1e") for c in _PAYLOAD]).hexdigest("md5")


def _conflict_reasons(conflicting: pa.Table) -> pa.Table:
    seen: dict[int, str] = {}
    for r in conflicting.to_pylist():
        seen.setdefault(
            r["row_number"],
            f"event_id: conflicting payload for event_id '{r['event_id']}' already "
            f"loaded from {r['_cx360_by']}; a correction needs its own event_id",
        )
    return pa.table(
        {"row_number": pa.array(list(seen), pa.int64()), REASONS: pa.array(list(seen.values()), pa.string())}
    )


def _malformed(data: pa.Table, rejected: pa.Table) -> list[Malformed]:
    if not rejected.num_rows:
        return []
    positions = pc.index_in(rejected["row_number"], value_set=data[ROW])
    raw_rows = data.drop_columns([ROW]).take(positions).to_pylist()
    return [
        Malformed(n, json.dumps(raw, ensure_ascii=False, default=str), reasons)
        for n, raw, reasons in zip(
            rejected["row_number"].to_pylist(), raw_rows, rejected[REASONS].to_pylist(), strict=True
        )
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


def _ledger(engine: Engine, batch_id, source, input_, status, started, counts: BatchCounts | None = None) -> None:
    finished = dt.datetime.now(dt.UTC).replace(tzinfo=None) if status == "committed" else None
    read, loaded, quarantined, duplicates, suppressed = (
        (None,) * 5
        if counts is None
        else (counts.read, counts.loaded, counts.quarantined, counts.duplicates, counts.suppressed)
    )
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
            "rows_suppressed": pa.array([suppressed], pa.int64()),
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

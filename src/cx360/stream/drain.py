"""The drain: sealed segments of the event log into the warehouse, through the ingest code path.

Each sealed segment of source NAME is one ingest batch of source NAME (ledger, quarantine, and
read = loaded + quarantined + duplicates), read by the `format = "segment"` preset
(cx360.sources.segment: every call type, identify as records, anonymousId as a cookie or device,
the client's clock corrected by sentAt), with the mapping of cx360.toml when it declares a JSON
Lines source NAME (its `path` replaced by the log's segments).
Events are keyed (source, messageId), so a message stored twice (retried after the dedup window)
lands once. Rejected messages become `quarantine` rows with their reasons and raw payloads. A
segment moves to `drained/` once its batch committed; a crash before the move finds the batch
committed and only moves it.

`cx360 ingest` runs the drain after the sources. A segment a live server still holds open is
sealed by that server within [collector].seal_seconds, so the drain waits that long for it: what
was collected before the drain started is loaded when it ends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from cx360.config import Config, JsonlSource
from cx360.errors import Cx360Error
from cx360.privacy.suppression import Suppression
from cx360.privacy.vault import Vault
from cx360.sources.ingest import SourceReport, ingest_input
from cx360.sources.readers import ENTITY, Chunk, JsonlReader, Malformed, dict_table
from cx360.sources.segment import SegmentJsonlReader
from cx360.stream import eventlog
from cx360.stream.segments import mark_drained

if TYPE_CHECKING:
    from cx360.workspace import Workspace


def log_path(name: str) -> str:
    return f"{eventlog.LOG_DIR}/p*/{name}/events/*.jsonl"


def collector_source(config: Config, name: str) -> JsonlSource:
    """Source NAME as the drain (and the stream processor) reads it: its declared JSON Lines source, else
    the Segment preset."""
    declared = next((s for s in config.sources if s.name == name), None)
    if isinstance(declared, JsonlSource):
        return declared.model_copy(update={"path": log_path(name)})
    return JsonlSource.model_validate({"name": name, "kind": "jsonl", "path": log_path(name), "format": "segment"})


class RejectedReader(JsonlReader):
    """A segment of rejected messages: every line is a quarantine row, with the raw payload and reason."""

    rejected_only = True

    def chunks(self) -> Iterator[Chunk]:
        bad = []
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                entry = json.loads(line)
                bad.append(Malformed(n, entry["raw"], f"collector: {entry['cx360']['reason']}"))
        empty = dict_table([], [])
        yield Chunk(empty.append_column(ENTITY, pa.array([], pa.string())), bad)  # the preset splits rows by it


def drain(ws: Workspace, only: list[str] | None = None, *, wait: bool = True) -> list[SourceReport]:
    """Load every sealed segment of the log (of the named sources) into the warehouse; a report per source."""
    root = ws.root
    busy = eventlog.seal_abandoned(root)
    names = [n for n in eventlog.sources(root) if only is None or n in only]
    if busy and wait:
        _wait_sealed(root, names, ws.config.collector.seal_seconds)
    todo = {}
    for name in names:
        source = collector_source(ws.config, name)
        work = [(RejectedReader, p) for p in eventlog.sealed(root, name, "rejected")]
        events = SegmentJsonlReader if source.preset == "segment" else JsonlReader
        todo[name] = (source, work + [(events, p) for p in eventlog.sealed(root, name, "events")])
    if not any(work for _, work in todo.values()):  # a server's pass every few seconds: no engine to open
        return [SourceReport(name) for name in names]
    engine = ws.engine  # the one writer: what is listed below no other drain moves meanwhile
    suppression = Suppression.load(root, ws.config.workspace.default_region)  # erased people stay out
    vault = Vault.of(ws)
    reports = []
    for name, (source, work) in todo.items():
        report = SourceReport(name)
        reports.append(report)
        for kind, path in work:
            report.inputs += 1
            try:
                ingest_input(engine, ws.config, source, kind(path, source.encoding), report, suppression, vault)
            except Cx360Error as exc:
                report.fail(str(exc))
                break  # the segment stays sealed: the next drain loads it
            mark_drained(path)
    return reports


def connect_between_drains(ws: Workspace, *, wait_s: float = 60) -> None:
    """Connect the workspace's engine; while a running server drains its log into the warehouse (the
    one writer DuckDB allows), wait for its pass to end rather than fail as locked."""
    from cx360.errors import WarehouseLockedError

    deadline = time.monotonic() + wait_s
    while True:
        try:
            ws.engine  # noqa: B018 - connects, or raises WarehouseLockedError
            return
        except WarehouseLockedError:
            if not eventlog.live_writers(ws.root) or time.monotonic() > deadline:
                raise  # held by something else than a collector's drain, or for too long
            time.sleep(0.2)


def _wait_sealed(root: Path, names: list[str], seal_seconds: float) -> None:
    """Wait until the live writers have sealed the segments open now (they do within seal_seconds)."""
    waiting = {p for n in names for p in eventlog.open_segments(root, n)}
    deadline = time.monotonic() + 2 * seal_seconds + 1
    while waiting and time.monotonic() < deadline:
        time.sleep(0.05)
        waiting = {p for p in waiting if p.exists()}

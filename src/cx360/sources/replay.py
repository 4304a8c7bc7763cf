"""Replay quarantined rows through a source's current mapping, after a fix to cx360.toml.

The rows still failing for each input of the source (see `status.current_quarantine`)
are read back from their raw JSON and loaded as one new batch per input, under
that input's name: rows that now pass are loaded (or counted as duplicates), the
others are quarantined again with today's reasons, and the new batch supersedes
the old one in the quarantine view. A line that never parsed (a malformed CSV
line or JSON text) cannot be replayed: it is carried into the new batch as it
was. Each replay batch keeps *read = loaded + quarantined + duplicates + suppressed*.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from cx360.privacy.suppression import Suppression
from cx360.privacy.vault import Vault
from cx360.sources.ingest import SourceReport, load_batch, recover
from cx360.sources.readers import MALFORMED, Chunk, Malformed, as_text, dict_table
from cx360.status import current_quarantine

if TYPE_CHECKING:
    from cx360.workspace import Workspace


def replay(ws: Workspace, only: list[str] | None = None) -> list[SourceReport]:
    """Replay the still-failing rows of every source (or the named ones); one report per source."""
    config = ws.config
    sources = [config.source(n) for n in (only or [s.name for s in config.sources])]
    engine = ws.engine
    recover(engine)
    suppression = Suppression.load(ws.root, config.workspace.default_region)
    vault = Vault.of(ws)
    reports = []
    for source in sources:
        report = SourceReport(source.name)
        reports.append(report)
        q = current_quarantine(ws, source.name).order_by(["input", "row_number"])
        rows = engine.to_arrow(
            q.select("input", "batch_id", "row_number", "raw", "reasons"), step=f"{source.name}: quarantined rows"
        ).to_pylist()
        inputs: dict[str, list[dict]] = {}
        for r in rows:
            inputs.setdefault(r["input"], []).append(r)
        for label, failing in inputs.items():
            report.inputs += 1
            mapping = json.dumps(source.model_dump(mode="json"), sort_keys=True)
            previous = sorted({r["batch_id"] for r in failing})
            batch_id = hashlib.sha256(f"replay\n{mapping}\n{previous}".encode()).hexdigest()[:32]
            report.add(
                load_batch(
                    engine,
                    config,
                    source,
                    batch_id,
                    label,
                    [_chunk(failing)],
                    schemaless=True,
                    suppression=suppression,
                    vault=vault,
                )
            )
    return reports


def _chunk(rows: list[dict]) -> Chunk:
    parsed, numbers, carried = [], [], []
    for r in rows:
        raw = None if r["reasons"].startswith(MALFORMED) else json.loads(r["raw"])
        if not isinstance(raw, dict):
            carried.append(Malformed(r["row_number"], r["raw"], r["reasons"]))
            continue
        parsed.append({k: as_text(v) for k, v in raw.items()})
        numbers.append(r["row_number"])
    return Chunk(dict_table(parsed, numbers), carried)

"""Which stage wrote each table, when, as of which date, and from which versions of its inputs.

Every write by a pipeline stage bumps its tables' versions in `table_versions` and records the
versions of the tables it read. A table is *stale* when one of those inputs has been written again
since (or is itself stale): its content mixes an older state of the workspace with a newer one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa

from cx360 import schema
from cx360.engine import Engine


@dataclass
class Version:
    table: str
    stage: str
    version: int
    written_at: dt.datetime
    as_of: dt.datetime | None
    inputs: dict[str, int]
    rows: int


@dataclass
class TableState:
    table: str
    stage: str
    state: str  # fresh, stale, or never built
    version: Version | None = None
    why: list[str] = field(default_factory=list)


def versions(engine: Engine) -> dict[str, Version]:
    rows = engine.to_arrow(engine.table("table_versions"), step="provenance: read").to_pylist()
    return {r["table"]: Version(**{**r, "inputs": json.loads(r["inputs"] or "{}")}) for r in rows}


def record(
    engine: Engine,
    stage: str,
    *,
    reads: Iterable[str],
    writes: Iterable[str],
    as_of: dt.datetime | None,
    now: dt.datetime | None = None,
) -> dict[str, int]:
    """Record that `stage` has just written `writes` from the current versions of `reads`; returns the
    rows of each table written."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    current = versions(engine)
    inputs = {t: current[t].version if t in current else 0 for t in reads}
    rows = {t: int(engine.scalar(engine.table(t).count(), step=f"provenance: count {t}")) for t in writes}
    for t in writes:
        old = current.get(t)
        current[t] = Version(t, stage, (old.version if old else 0) + 1, now, as_of, inputs, rows[t])
    target = schema.ibis_schema("table_versions").to_pyarrow()
    data = [{**v.__dict__, "inputs": json.dumps(v.inputs, sort_keys=True)} for v in current.values()]
    engine.replace("table_versions", pa.Table.from_pylist(data, schema=target))
    return rows


def states(engine: Engine, stages: Iterable[tuple[str, tuple[str, ...], tuple[str, ...]]]) -> list[TableState]:
    """The state of every table the stages write, given (stage, reads, writes) in pipeline order."""
    current = versions(engine)
    out: dict[str, TableState] = {}
    for stage, reads, writes in stages:
        for table in writes:
            v = current.get(table)
            if table in out and (v is None or v.stage != stage):
                continue  # also written by an earlier stage (retention removes from what ingest wrote)
            if v is None:
                out[table] = TableState(table, stage, "never built")
                continue
            why = []
            for source in reads:
                now_at = current.get(source)
                seen = v.inputs.get(source, 0)
                if now_at is not None and now_at.version > seen:
                    when = now_at.written_at.isoformat(sep=" ", timespec="seconds")
                    as_of = f" as of {now_at.as_of.date()}" if now_at.as_of else ""
                    why.append(
                        f"{source} was rewritten by {now_at.stage} at {when}{as_of}, after {table} was "
                        f"built from its earlier version" + (f" (as of {v.as_of.date()})" if v.as_of else "")
                    )
                elif source in out and out[source].state == "stale":
                    why.append(f"it was built from {source}, which is stale")
            out[table] = TableState(table, stage, "stale" if why else "fresh", v, why)
    return list(out.values())

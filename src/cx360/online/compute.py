"""Traits and segment memberships of the profiles one micro-batch touched, by the batch's own definitions.

The trait definitions (cx360.profiles.traits) and segment conditions (cx360.segments.evaluate) are Ibis
expressions; the pipeline runs them over every profile in the warehouse. Here the same expressions run
over a slice: an in-memory DuckDB holding only the touched profiles' events, records, identity nodes
and golden rows. Compiling them takes one to five seconds, so the SQL is compiled once per `as_of`
and reused for every micro-batch of that day; the next day's is compiled ahead, in a thread of its own
on a scratch DuckDB of its own, so the processor does not stall at midnight. Running it over a slice
of a few hundred profiles takes about a tenth of a second.

`as_of` follows the batch's rule (cx360.profiles.build.default_as_of): midnight after the latest
event, never after tomorrow, so that a nightly `cx360 run` over the same events computes the same traits.
Segments whose conditions name fields outside the traits (scores, churn, archetypes, RFM, clusters)
are computed by the batch only: they need the models' stages.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any

import ibis
import pyarrow as pa

from cx360 import schema
from cx360.engine import DuckDB
from cx360.errors import Cx360Error
from cx360.profiles import texts, traits
from cx360.segments.evaluate import Fields, Spec, members, specs_from_config

SLICE_TABLES = ("profile_events", "records", "identity_map", "profiles")


def as_of_for(latest: dt.datetime, now: dt.datetime) -> dt.datetime:
    """Midnight after the latest event, but never later than midnight after today (the batch's rule)."""
    return dt.datetime.combine(min(latest, now).date() + dt.timedelta(days=1), dt.time())


@dataclass
class Computed:
    traits: dict[str, dict[str, Any]]  # profile -> trait row
    breakdowns: dict[str, dict[str, dict[str, float]]]  # profile -> breakdown -> key -> value
    segments: dict[str, set[str]]  # profile -> the online segments it is in


@dataclass
class Compiled:
    """The SQL of one as_of, and which segments it evaluates online."""

    traits_sql: str
    breakdowns_sql: str
    segments_sql: str | None
    online_specs: list[Spec]
    batch_only: dict[str, str]  # segment -> why the batch alone evaluates it


def _scratch() -> DuckDB:
    engine = DuckDB.in_memory()
    con = engine.con
    con.create_table("online_voice", schema=ibis.schema(texts.voice_schema()))
    con.create_table("online_voice_breakdowns", schema=schema.ibis_schema("profile_breakdowns"))
    return engine


def compile_for(e: DuckDB, specs: list[Spec], as_of: dt.datetime, timezone: str) -> Compiled:
    trait_table, breakdowns = traits.build(
        e, as_of, e.table("online_voice"), e.table("online_voice_breakdowns"), timezone=timezone
    )
    fields = Fields(e, as_of)
    parts, online, batch_only = [], [], {}
    for spec in specs:
        try:
            if spec.purpose is not None:
                raise Cx360Error("it declares a purpose: the consent check runs in the batch")
            m = members(e, fields, spec, as_of)
        except Cx360Error as exc:
            batch_only[spec.name] = str(exc)
            continue
        parts.append(m.select("profile_id", segment=ibis.literal(spec.name)))
        online.append(spec)
    return Compiled(
        ibis.to_sql(trait_table, dialect="duckdb"),
        ibis.to_sql(breakdowns, dialect="duckdb"),
        ibis.to_sql(ibis.union(*parts, distinct=False), dialect="duckdb") if parts else None,
        online,
        batch_only,
    )


class SliceEngine:
    """One per processor thread: the scratch DuckDB and the SQL compiled for the current as_of (and,
    once that is ready, for the next day's, compiled ahead in a thread)."""

    def __init__(self, segment_specs, timezone: str = "UTC"):
        self.engine = _scratch()
        self.timezone = timezone  # the workspace's, as in the batch's traits
        self.raw = self.engine.con.con
        self.specs: list[Spec] = specs_from_config(segment_specs)
        self._compiled: dict[dt.datetime, Compiled] = {}
        self._current: Compiled | None = None
        self._current_as_of: dt.datetime | None = None
        self._ahead: threading.Thread | None = None
        self._lock = threading.Lock()
        self.compiled_here = 0  # compilations the caller waited for (one at start; none at midnight)

    @property
    def online_specs(self) -> list[Spec]:
        return self._current.online_specs if self._current else []

    @property
    def batch_only(self) -> dict[str, str]:
        return self._current.batch_only if self._current else {}

    def prepare(self, as_of: dt.datetime) -> Compiled:
        """The SQL of `as_of`: compiled ahead, else compiled now; then the next day's is compiled ahead."""
        with self._lock:
            ready = self._compiled.get(as_of)
        if ready is None:
            ready = compile_for(self.engine, self.specs, as_of, self.timezone)
            self.compiled_here += 1
        with self._lock:
            self._compiled = {t: c for t, c in self._compiled.items() if t >= as_of}
            self._compiled[as_of] = ready
            tomorrow = as_of + dt.timedelta(days=1)
            busy = self._ahead is not None and self._ahead.is_alive()
            if tomorrow not in self._compiled and not busy:
                # not a daemon: the interpreter's exit waits for it, as DuckDB aborts if cut off mid-call
                self._ahead = threading.Thread(target=self._compile_ahead, args=(tomorrow,))
                self._ahead.start()
        self._current, self._current_as_of = ready, as_of
        return ready

    def wait_ahead(self) -> None:
        if self._ahead is not None:
            self._ahead.join()

    def close(self) -> None:
        self.wait_ahead()
        self.engine.close()

    def _compile_ahead(self, as_of: dt.datetime) -> None:
        engine = _scratch()  # its own connection: the processor's is busy
        try:
            compiled = compile_for(engine, self.specs, as_of, self.timezone)
        finally:
            engine.close()  # here, not at the interpreter's exit (where DuckDB aborts the process)
        with self._lock:
            self._compiled[as_of] = compiled

    def compute(self, as_of: dt.datetime, tables: dict[str, pa.Table]) -> Computed:
        sql = self._current if as_of == self._current_as_of else self.prepare(as_of)
        raw = self.raw
        for name in (*SLICE_TABLES, "profile_traits"):
            raw.execute(f"DELETE FROM {name}")
        for name in SLICE_TABLES:
            data = _conform(tables[name], name)
            raw.register("_slice", data)
            raw.execute(f"INSERT INTO {name} SELECT * FROM _slice")
            raw.unregister("_slice")
        trait_rows = raw.execute(sql.traits_sql).to_arrow_table()
        raw.register("_slice", _conform(trait_rows, "profile_traits"))
        raw.execute("INSERT INTO profile_traits SELECT * FROM _slice")
        raw.unregister("_slice")
        out_traits = {r["profile_id"]: r for r in trait_rows.to_pylist()}
        out_breakdowns: dict[str, dict[str, dict[str, float]]] = {}
        for r in raw.execute(sql.breakdowns_sql).to_arrow_table().to_pylist():
            out_breakdowns.setdefault(r["profile_id"], {}).setdefault(r["breakdown"], {})[r["key"]] = r["value"]
        segments: dict[str, set[str]] = {pid: set() for pid in out_traits}
        if sql.segments_sql:
            for pid, segment in raw.execute(sql.segments_sql).fetchall():
                segments.setdefault(pid, set()).add(segment)
        return Computed(out_traits, out_breakdowns, segments)


def _conform(data: pa.Table, name: str) -> pa.Table:
    """The slice's rows in the table's column order and types (missing columns are empty)."""
    target = schema.ibis_schema(name).to_pyarrow()
    columns = []
    for f in target:
        if f.name in data.column_names:
            columns.append(data[f.name].cast(f.type))
        else:
            columns.append(pa.nulls(data.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=target)

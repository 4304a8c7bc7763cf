"""Retention: rows older than what `[retention]` in cx360.toml allows are deleted, rule by rule.

A rule covers a table, or for events one kind of event: an event name (`events.call`) or a channel
(`events.web`). Each event follows exactly one rule, the most specific that names it: its name's,
else its channel's, else `events.default`. An event no rule covers is kept.

The pipeline runs this right after ingest, so that every table built from events and records (the
profiles, traits, scores, segments) is rebuilt without what was removed. The ingest ledger keeps its
'committed' rows, so re-ingesting the same files does not bring expired rows back; a re-run finds
nothing more to remove.

On DuckDB a DELETE leaves the bytes of the removed rows in the warehouse file until the file is
rewritten: `[retention] compact = true` (or `cx360 privacy retain --compact`) rewrites it after rows
were removed. On Spark the table's files are rewritten and the rows are gone.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir

from cx360.config import Config, parse_duration
from cx360.engine import Engine

# The time a row's age is counted from, per table.
AGE_COLUMNS = {
    "events": "ts",
    "records": "updated_at",
    "quarantine": "quarantined_at",
    "dropped_identifiers": "dropped_at",
}
DUCKDB_NOTE = (
    "DuckDB keeps the bytes of deleted rows in warehouse.duckdb until the file is rewritten: "
    "the rows are gone from every query, not yet from the file ([retention] compact = true rewrites it)"
)


@dataclass
class Rule:
    table: str
    kind: str | None  # an event name or a channel; None: the whole table (or the rest of events)
    by: str  # "table", or for events "name", "channel" or "default" (the events no other rule names)
    keep: str  # as written: "13 months"
    cutoff: dt.datetime  # rows older than this are removed
    removed: int = 0
    unit: str = "rows"  # what `removed` counts: rows, or for the event log its segment files

    @property
    def key(self) -> str:
        return self.table if self.by == "table" else f"{self.table}.{self.kind or 'default'}"

    def as_dict(self) -> dict:
        return {"rule": self.key, "keep": self.keep, "cutoff": self.cutoff, "removed": self.removed, "unit": self.unit}


@dataclass
class RetentionReport:
    rules: list[Rule]
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)
    compacted: bool = False  # the DuckDB file was rewritten after the deletes

    @property
    def removed(self) -> int:
        return sum(r.removed for r in self.rules)

    def as_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "removed": self.removed,
            "compacted": self.compacted,
            "rules": [r.as_dict() for r in self.rules],
            "warnings": self.warnings,
        }


def cutoff(keep: str, now: dt.datetime) -> dt.datetime:
    """`now` minus the duration, in calendar months and years where it says so (the 31st of a month
    becomes the last day of a shorter one)."""
    n, unit = parse_duration(keep)
    if unit in ("day", "week"):
        return now - dt.timedelta(days=n * (7 if unit == "week" else 1))
    months = n * (12 if unit == "year" else 1)
    year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
    day = min(now.day, calendar.monthrange(year, month + 1)[1])
    return now.replace(year=year, month=month + 1, day=day)


def rules(config: Config, now: dt.datetime) -> list[Rule]:
    settings = config.retention
    out: list[Rule] = []
    names = set(config.event_names)
    for kind, keep in settings.events.items():
        by = "default" if kind == "default" else "name" if kind in names else "channel"
        out.append(Rule("events", None if by == "default" else kind, by, keep, cutoff(keep, now)))
    for table in ("records", "quarantine", "dropped_identifiers"):
        keep = getattr(settings, table)
        if keep is not None:
            out.append(Rule(table, None, "table", keep, cutoff(keep, now)))
    if settings.event_log is not None:
        out.append(
            Rule("event_log", None, "table", settings.event_log, cutoff(settings.event_log, now), unit="segments")
        )
    return out


def _condition(rule: Rule, t: ir.Table, every: list[Rule]) -> ir.BooleanValue:
    """The rows `rule` removes: older than its cutoff, and governed by it and no narrower rule."""
    age = t[AGE_COLUMNS[rule.table]]
    if rule.table == "records":
        age = ibis.coalesce(t.updated_at, t.ingested_at)  # a source that gives no update time: when it came
    old = age < ibis.literal(rule.cutoff, "timestamp")
    if rule.table != "events":
        return old
    names = [r.kind for r in every if r.table == "events" and r.by == "name"]
    channels = [r.kind for r in every if r.table == "events" and r.by == "channel"]
    if rule.by == "name":
        return old & (t.name == rule.kind)
    other_name = ~t.name.isin(names) if names else ibis.literal(True)
    if rule.by == "channel":
        return old & (t.channel == rule.kind) & other_name
    other_channel = t.channel.isnull() | ~t.channel.isin(channels) if channels else ibis.literal(True)
    return old & other_name & other_channel


def apply(
    engine: Engine,
    config: Config,
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    segments: Iterable[Path] = (),
    compact: bool = False,
) -> RetentionReport:
    """Delete (or, with dry_run, count) what each rule removes; each rule's delete is all or nothing.
    `segments` are the event log's drained segment files, which `event_log` ages by when they were
    written (the warehouse holds their events: removing them loses nothing that was not loaded).
    `compact` says the caller rewrites the DuckDB file afterwards (it owns the connection)."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    every = rules(config, now)
    report = RetentionReport(every, dry_run)
    for rule in every:
        if rule.table == "event_log":
            rule.removed = _expire_files(segments, rule.cutoff, dry_run)
            continue
        t = engine.table(rule.table)
        condition = _condition(rule, t, every)
        if dry_run:
            rule.removed = int(engine.scalar(t.filter(condition).count(), step=f"retention: count {rule.key}"))
        else:
            rule.removed = engine.delete(rule.table, condition)
    seen = _channels(engine, [r.kind for r in every if r.by == "channel"])
    for rule in every:
        if rule.by == "channel" and rule.kind not in seen:
            report.warnings.append(
                f"retention rule {rule.key}: no event has the name or channel {rule.kind!r}; check the spelling"
            )
    if report.removed and not dry_run and config.engine.kind == "duckdb" and not compact:
        report.warnings.append(DUCKDB_NOTE)
    return report


def _expire_files(paths: Iterable[Path], before: dt.datetime, dry_run: bool) -> int:
    limit = before.replace(tzinfo=dt.UTC).timestamp()
    old = [p for p in paths if p.stat().st_mtime < limit]
    if not dry_run:
        for p in old:
            p.unlink(missing_ok=True)
    return len(old)


def _channels(engine: Engine, kinds: list[str]) -> set[str]:
    if not kinds:
        return set()
    events = engine.table("events")
    found = events.filter(events.channel.isin(kinds)).select("channel").distinct()
    return set(engine.to_arrow(found, step="retention: channels").column("channel").to_pylist())

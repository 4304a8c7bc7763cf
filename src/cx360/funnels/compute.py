"""A funnel: how many people went through ordered steps within a window, and how long each step took.

The rule (docs/funnels.md): every event that matches step 1 starts an attempt; an attempt reaches step
k+1 with the earliest step-(k+1) event strictly after the event it took for step k, provided that event
is within the window of the attempt's start. Taking the earliest is never worse (any later choice leaves
fewer events to continue with), so one pass per step finds how far each attempt can go. A person counts
once, with their furthest attempt (the earliest of those when several go as far): a second start never
resets progress, one event never serves two steps, and step k+1 never counts more people than step k.

Each step is one sort per person over the attempts and the step's events, written in Ibis so that the
same code runs on DuckDB and Spark.
"""

from __future__ import annotations

import datetime as dt
from contextlib import nullcontext
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir

from cx360.config import FunnelSpec, within_seconds
from cx360.engine import Engine
from cx360.errors import ConfigError
from cx360.funnels.fields import EventFields

NO_SEGMENT = "(no segment)"


def _t(k: int) -> str:
    return f"t{k}"


def people(events: ir.Table, steps: list[ir.BooleanValue], within_s: int) -> ir.Table:
    """One row per person who did step 1: profile_id, level (steps reached), channel (of the first step)
    and t0..t{n-1}, the time of each step reached (NULL beyond `level`).

    `events` holds profile_id, ts and channel; `steps` are booleans over it."""
    n = len(steps)
    ts_null = ibis.null().cast(events.ts.type())
    first = events.filter(steps[0])
    cur = first.select("profile_id", "channel", start=first.ts, **{_t(0): first.ts})
    for k in range(1, n):
        prev = cur[_t(k - 1)]
        queries = cur.mutate(_at=ibis.coalesce(prev, cur.start), _kind=0, _target=ts_null)
        hits = events.filter(steps[k])
        targets = hits.select(
            "profile_id",
            channel=ibis.null().cast("string"),
            start=ts_null,
            **{_t(j): ts_null for j in range(k)},
            _at=hits.ts,
            _kind=1,
            _target=hits.ts,
        )
        both = ibis.union(queries, targets, distinct=False)
        # walking back in time, the smallest target seen so far is the earliest one after this row;
        # at one instant queries sort first, so a target at the same time never counts as after
        later = ibis.window(group_by="profile_id", order_by=[ibis.desc("_at"), "_kind"], preceding=None, following=0)
        both = both.mutate(_next=both._target.min().over(later))
        both = both.filter(both._kind == 0)
        ok = both[_t(k - 1)].notnull() & (both._next.epoch_seconds() - both.start.epoch_seconds() <= within_s)
        cur = both.mutate(**{_t(k): ibis.ifelse(ok, both._next, ts_null)}).drop("_at", "_kind", "_target", "_next")
    level = sum((cur[_t(k)].notnull().cast("int64") for k in range(n)), ibis.literal(0))
    cur = cur.mutate(level=level)
    best = ibis.row_number().over(group_by="profile_id", order_by=[ibis.desc("level"), "start"])
    cur = cur.mutate(_best=best)
    return cur.filter(cur._best == 0).select("profile_id", "level", "channel", *(_t(k) for k in range(n)))


def summary(persons: ir.Table, n: int, by: str | None = None) -> ir.Table:
    """Per group (`by`, a column of `persons`): entered_k and median_k (seconds from step k-1 to k)."""
    metrics = {}
    for k in range(n):
        metrics[f"entered_{k}"] = (persons.level > k).sum().cast("int64")
        if k:
            gap = (persons[_t(k)].epoch_seconds() - persons[_t(k - 1)].epoch_seconds()).cast("float64")
            # NULL outside the rows that count, not median(where=...): Spark takes a filter for the percentage
            metrics[f"median_{k}"] = ibis.ifelse(persons.level > k, gap, ibis.null().cast("float64")).median()
    if by is None:
        return persons.aggregate(**metrics)
    return persons.group_by(by).aggregate(**metrics).order_by(by)


@dataclass
class Step:
    step: int
    condition: str
    entered: int
    converted: int
    conversion: float | None  # entered / entered at the step before (at step 1: 1.0)
    median_seconds_from_previous: float | None


@dataclass
class Report:
    funnel: str
    within: str
    steps: list[Step]
    breakdown: str | None = None
    groups: dict[str, list[Step]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        import dataclasses

        out = {"funnel": self.funnel, "within": self.within, "steps": [dataclasses.asdict(s) for s in self.steps]}
        if self.breakdown:
            out["breakdown"] = self.breakdown
            out["groups"] = [
                {"group": g, "steps": [dataclasses.asdict(s) for s in steps]} for g, steps in self.groups.items()
            ]
        return out


def _steps(spec: FunnelSpec, row: dict) -> list[Step]:
    n = len(spec.steps)
    entered = [int(row.get(f"entered_{k}") or 0) for k in range(n)]
    out = []
    for k in range(n):
        converted = entered[k + 1] if k + 1 < n else entered[k]
        before = entered[k - 1] if k else entered[k]
        median = row.get(f"median_{k}") if k else None
        out.append(
            Step(
                step=k + 1,
                condition=spec.steps[k],
                entered=entered[k],
                converted=converted,
                conversion=(entered[k] / before) if before else None,
                median_seconds_from_previous=None if median is None or median != median else float(median),
            )
        )
    return out


def run(
    engine: Engine,
    spec: FunnelSpec,
    fields: EventFields,
    *,
    breakdown: str | None = None,
    allowed: ir.Table | None = None,
    segments: ir.Table | None = None,
) -> Report:
    """The funnel over `profile_events`. `allowed` (profile ids) keeps only the people whose data may be
    used for analytics; `segments` (segment, profile_id: current members) is needed for a segment breakdown."""
    pe = engine.table("profile_events")
    pe = pe.filter(pe.profile_id.notnull())
    steps = [fields.condition(pe, text, f"funnel '{spec.name}' step {i + 1}") for i, text in enumerate(spec.steps)]
    events = pe.select("profile_id", "ts", "channel", **{f"_s{i}": s for i, s in enumerate(steps)})
    events = events.filter(ibis.or_(*(events[f"_s{i}"] for i in range(len(steps)))))
    if allowed is not None:
        events = events.semi_join(allowed, "profile_id")
    persons = people(events, [events[f"_s{i}"] for i in range(len(steps))], within_seconds(spec.within))
    if breakdown not in (None, "channel", "segment"):
        raise ConfigError(f"unknown breakdown {breakdown!r}; use channel or segment")
    if breakdown == "segment" and segments is None:
        raise ConfigError("a breakdown by segment needs the segments' current members")
    n = len(spec.steps)
    # a breakdown reads the people twice (totals, groups): compute them once
    with engine.materialised(persons, step=f"funnel '{spec.name}': people") if breakdown else nullcontext(persons) as p:
        total = engine.to_arrow(summary(p, n), step=f"funnel '{spec.name}'").to_pylist()
        report = Report(spec.name, spec.within, _steps(spec, total[0] if total else {}), breakdown)
        if breakdown == "channel":
            grouped = p.mutate(group=p.channel.fill_null("(unknown)"))
        elif breakdown == "segment":
            members = segments.select("profile_id", group=segments.segment)
            grouped = p.left_join(members, "profile_id").drop("profile_id_right")
            grouped = grouped.mutate(group=grouped.group.fill_null(NO_SEGMENT))
        if breakdown:
            by = summary(grouped, n, "group")
            rows = engine.to_arrow(by, step=f"funnel '{spec.name}' by {breakdown}").to_pylist()
            report.groups = {r["group"]: _steps(spec, r) for r in rows}
    return report


def as_of_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)

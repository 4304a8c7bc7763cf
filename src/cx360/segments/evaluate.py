"""Evaluate every segment on the current profiles and keep membership history.

One evaluation: the derived tables profile_rfm and profile_clusters are rebuilt from profile_traits
(profile_archetypes is the archetypes stage's, just before); each segment's condition becomes an
Ibis filter over traits and scores (and recent profile_events); who entered and who left is written
to segment_members, and each segment's size, as_of and status to `segments`. A segment that fails is
recorded as failed with its error, keeps its members as they were, and makes the evaluation fail: it
never stays on show as ok.

A segment never mixes dates: a field from a table scored as of another date than the traits (churn
scores left from before the traits were rebuilt) fails the segment, naming the stage to run again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from cx360 import schema
from cx360.conditions import compile_condition, parse
from cx360.config import EventCondition, SegmentSpec
from cx360.engine import Engine
from cx360.errors import ConfigError, Cx360Error, StageNotRunError
from cx360.privacy.consent import Policy
from cx360.segments import builtin

if TYPE_CHECKING:
    from cx360.workspace import Workspace

# Tables whose columns conditions may name besides the traits, and the pipeline stage that fills each.
FIELD_TABLES = {
    "profile_scores": "profiles",
    "churn_scores": "churn",
    "profile_archetypes": "archetypes",
    "profile_rfm": "segments",
    "profile_clusters": "segments",
}
NOT_FIELDS = {"profile_id", "as_of", "scored_at", "horizon_days"}
EVENT_FIELDS = ("name", "channel", "amount", "source", "ts")


@dataclass
class Spec:
    name: str
    kind: str
    description: str
    where: str | None
    events: tuple[EventCondition, ...] = ()
    purpose: str | None = None  # members must pass the consent check for it (and channel)
    channel: str | None = None

    @property
    def definition(self) -> str:
        parts = [self.where] if self.where else []
        for e in self.events:
            count = f"at least {e.min_count}" + (f" and at most {e.max_count}" if e.max_count is not None else "")
            parts.append(
                f"{count} '{e.name}' events{' where ' + e.where if e.where else ''} in the last {e.within_days} days"
            )
        if self.purpose:
            parts.append(f"consent to {self.purpose}" + (f" by {self.channel}" if self.channel else ""))
        return " and ".join(parts)


@dataclass
class SegmentResult:
    name: str
    kind: str
    status: str
    size: int | None
    entered: int
    exited: int
    error: str | None = None


class Fields:
    """Resolves a condition's field names to columns of profile_traits or of a table keyed by profile_id."""

    def __init__(self, engine: Engine, as_of: dt.datetime, workspace: object = None):
        self.engine = engine
        self.as_of = as_of
        self.workspace = workspace
        self.owner: dict[str, str] = {
            c: "profile_traits" for c in engine.table("profile_traits").columns if c not in NOT_FIELDS
        }
        for table in FIELD_TABLES:
            if engine.has_table(table):
                for c in engine.table(table).columns:
                    if c not in NOT_FIELDS:
                        self.owner.setdefault(c, table)
        self._scored: dict[str, dt.datetime | None] = {}

    def check(self, names: list[str], segment: str) -> None:
        unknown = [n for n in names if n not in self.owner]
        if unknown:
            known = ", ".join(sorted(self.owner))
            raise ConfigError(
                f"segment '{segment}': unknown field(s) {', '.join(map(repr, unknown))}; known fields: {known}"
            )
        for n in names:
            table = self.owner[n]
            if table == "profile_traits":
                continue
            stage = FIELD_TABLES[table]
            scored = self._as_of(table)
            if scored is None:
                raise StageNotRunError(
                    f"segment '{segment}': field '{n}' comes from {table}, which is empty",
                    stage=stage,
                    workspace=self.workspace,
                )
            if scored != self.as_of:
                raise StageNotRunError(
                    f"segment '{segment}': field '{n}' comes from {table}, as of {scored}, "
                    f"but the profile traits are as of {self.as_of}",
                    stage=stage,
                    workspace=self.workspace,
                )

    def _as_of(self, table: str) -> dt.datetime | None:
        """The as_of the table was computed for (None when it is empty)."""
        if table not in self._scored:
            t = self.engine.table(table)
            scored = self.engine.scalar(t.as_of.max(), step=f"segments: {table} as_of")
            self._scored[table] = None if pd.isna(scored) else pd.Timestamp(scored).to_pydatetime()
        return self._scored[table]

    def frame(self, names: list[str]) -> ir.Table:
        """profile_traits with the other tables the names need, left-joined on profile_id."""
        t = self.engine.table("profile_traits")
        for table in dict.fromkeys(self.owner[n] for n in names if self.owner[n] != "profile_traits"):
            other = self.engine.table(table)
            cols = [n for n in names if self.owner[n] == table]
            t = t.left_join(other.select("profile_id", *cols), "profile_id").drop("profile_id_right")
        return t


def members(
    engine: Engine,
    fields: Fields,
    spec: Spec,
    as_of: dt.datetime,
    policy: Policy | None = None,
    now: dt.datetime | None = None,
) -> ir.Table:
    """The profile ids in the segment, as an expression. A segment that declares a purpose keeps only the
    people the consent check allows `now` (the evaluation's time: a withdrawal after as_of counts)."""
    names = parse(spec.where).fields if spec.where else []
    fields.check(names, spec.name)
    t = fields.frame(names)
    if spec.where:
        t = t.filter(compile_condition(parse(spec.where), lambda f: t[f]))
    t = t.select("profile_id")
    for i, e in enumerate(spec.events):
        counts = event_counts(engine, e, as_of, spec.name)
        col = f"_events_{i}"
        j = t.left_join(counts.rename({col: "n"}), "profile_id").drop("profile_id_right")
        n = j[col].fill_null(0)
        test = n >= e.min_count
        if e.max_count is not None:
            test &= n <= e.max_count
        t = j.filter(test).select("profile_id")
    if spec.purpose is not None:
        if policy is None:
            raise ConfigError(f"segment '{spec.name}' declares purpose {spec.purpose!r}: evaluate it with the policy")
        t = t.semi_join(policy.allowed(engine, spec.purpose, spec.channel, now or as_of), "profile_id")
    return t


def event_counts(engine: Engine, e: EventCondition, as_of: dt.datetime, segment: str) -> ir.Table:
    pe = engine.table("profile_events")
    since = as_of - dt.timedelta(days=e.within_days)
    pe = pe.filter(
        (pe.name == e.name) & (pe.ts >= ibis.literal(since, "timestamp")) & (pe.ts < ibis.literal(as_of, "timestamp"))
    )
    if e.where:
        cond = parse(e.where)

        def resolve(field: str) -> ir.Value:
            if field.startswith("properties."):
                return engine.json_get(pe.properties, field.split(".", 1)[1])
            if field in EVENT_FIELDS:
                return pe[field]
            raise ConfigError(
                f"segment '{segment}': unknown event field {field!r} in events.where; known: "
                f"{', '.join(EVENT_FIELDS)}, properties.KEY"
            )

        pe = pe.filter(compile_condition(cond, resolve))
    return pe.group_by("profile_id").aggregate(n=pe.count())


def specs_from_config(segments: list[SegmentSpec]) -> list[Spec]:
    return [Spec(s.name, "custom", s.description, s.where, tuple(s.events), s.purpose, s.channel) for s in segments]


def evaluate(ws: Workspace, *, now: dt.datetime | None = None) -> list[SegmentResult]:
    """Rebuild the derived tables, evaluate every segment, record sizes, status and membership changes."""
    engine = ws.engine
    as_of = builtin.as_of_of(engine)
    if as_of is None:
        raise StageNotRunError("no profile traits to segment", stage="profiles", workspace=ws.root)
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    settings = ws.config.segmentation
    traits = engine.table("profile_traits")

    if settings.rfm:
        with engine.step("segments: rfm"):
            engine.replace("profile_rfm", builtin.rfm(traits))
    found: list[builtin.Cluster] = []
    if settings.clusters:
        columns = tuple(settings.cluster_traits) or builtin.DEFAULT_CLUSTER_TRAITS
        unknown = sorted(set(columns) - set(traits.columns))
        if unknown:
            raise ConfigError(f"segmentation.cluster_traits: unknown trait(s) {unknown}; see `cx360 traits`")
        frame, found = builtin.clusters(engine, traits, k=settings.clusters, columns=columns, seed=settings.seed)
        target = schema.ibis_schema("profile_clusters").to_pyarrow()
        engine.replace(
            "profile_clusters", pa.Table.from_pandas(frame[target.names], schema=target, preserve_index=False)
        )

    specs = [Spec(n, kind, doc, where) for n, kind, doc, where in builtin.builtin_specs(settings.rfm, found)]
    specs += specs_from_config(ws.config.segments)
    fields = Fields(engine, as_of, ws.root)
    policy = Policy(ws.config.privacy)
    stored = engine.to_arrow(engine.table("segment_members"), step="segments: read membership").to_pandas()
    # not dict(groupby): a GroupBy has a .keys attribute, so dict() would take it for a mapping
    history = {name: part for name, part in stored.groupby("segment", sort=False)} if len(stored) else {}  # noqa: C416
    previous = engine.to_arrow(engine.table("segments"), step="segments: read previous").to_pandas()
    results, rows = [], []
    for spec in specs:
        try:
            expr = members(engine, fields, spec, as_of, policy, now)
            ids = engine.to_arrow(expr, step=f"segment '{spec.name}'").column("profile_id").to_pandas()
        except Cx360Error as exc:
            results.append(SegmentResult(spec.name, spec.kind, "failed", None, 0, 0, str(exc)))
            rows.append(_row(spec, None, now, as_of, "failed", str(exc)))
            continue
        history[spec.name], entered, exited = _update(history.get(spec.name), spec.name, ids, as_of)
        results.append(SegmentResult(spec.name, spec.kind, "ok", len(ids), entered, exited))
        rows.append(_row(spec, len(ids), now, as_of, "ok", None))
    # segments no longer declared: their members leave, and the segment leaves the list
    gone = set(previous.name) - {s.name for s in specs} if len(previous) else set()
    for name in gone:
        history[name], _, _ = _update(history.get(name), name, pd.Series([], dtype=str), as_of)
    parts = [h for h in history.values() if h is not None and len(h)]
    engine.replace(
        "segment_members", _arrow(pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(), "segment_members")
    )
    engine.replace("segments", _arrow(pd.DataFrame(rows), "segments"))
    return results


def _update(
    history: pd.DataFrame | None, name: str, ids: pd.Series, as_of: dt.datetime
) -> tuple[pd.DataFrame, int, int]:
    """One segment's membership rows: close those of who left, open one for each newcomer."""
    if history is None:
        history = pd.DataFrame(
            {
                "segment": pd.Series(dtype=str),
                "profile_id": pd.Series(dtype=str),
                "entered_at": pd.Series(dtype="datetime64[us]"),
                "exited_at": pd.Series(dtype="datetime64[us]"),
            }
        )
    open_ = history.exited_at.isna()
    leaving = open_ & ~history.profile_id.isin(ids)
    history = history.copy()
    history.loc[leaving, "exited_at"] = pd.Timestamp(as_of)
    new_ids = ids[~ids.isin(history.profile_id[open_])].drop_duplicates().sort_values()
    if len(new_ids):
        fresh = pd.DataFrame(
            {"segment": name, "profile_id": new_ids.to_numpy(), "entered_at": pd.Timestamp(as_of), "exited_at": pd.NaT}
        )
        history = pd.concat([history, fresh], ignore_index=True) if len(history) else fresh
    return history, len(new_ids), int(leaving.sum())


def _row(spec: Spec, size: int | None, now: dt.datetime, as_of: dt.datetime, status: str, error: str | None) -> dict:
    return {
        "name": spec.name,
        "kind": spec.kind,
        "description": spec.description,
        "definition": spec.definition,
        "size": size,
        "evaluated_at": now,
        "as_of": as_of,
        "status": status,
        "error": error,
    }


def _arrow(frame: pd.DataFrame, table: str) -> pa.Table:
    from cx360 import schema

    target = schema.ibis_schema(table).to_pyarrow()
    if frame.empty:
        return target.empty_table()
    return pa.Table.from_pandas(frame[target.names], schema=target, preserve_index=False)


def listing(ws: Workspace) -> list[dict]:
    """Every segment's last evaluation, with `fresh`: evaluated on the profiles as they are now."""
    engine = ws.engine
    current = builtin.as_of_of(engine)
    rows = engine.to_arrow(engine.table("segments").order_by(["kind", "name"]), step="segments: list").to_pylist()
    for r in rows:
        r["fresh"] = r["status"] == "ok" and current is not None and r["as_of"] == current
    declared = {s.name for s in ws.config.segments}
    listed = {r["name"] for r in rows}
    for name in sorted(declared - listed):  # declared since the last evaluation: never evaluated
        rows.append(
            {
                "name": name,
                "kind": "custom",
                "description": "",
                "definition": "",
                "size": None,
                "evaluated_at": None,
                "as_of": None,
                "status": "never evaluated",
                "error": None,
                "fresh": False,
            }
        )
    return rows

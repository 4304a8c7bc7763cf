"""Digital habits over time: each person's archetype history, and how often people change archetype.

`archetype_history` holds one row per stay in an archetype (entered_at, and exited_at once the person
moved to another), both set to the as_of of the archetypes run that saw the change, as
`segment_members` does for segments. A run at the as_of of the latest change replaces what that run
found (a re-run after retraining the survey model); a run at an earlier as_of (profiles rebuilt for a
past date) leaves the history alone and says so, so the history only moves forward.

A *change* is a stay that closed at an as_of where the same person opened another. The change rate of
a period (from one as_of that changed something to the next) is the share of the people placed at its
start who changed archetype at its end; runs that changed nothing add no period of their own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import pandas as pd

from cx360.engine import Engine
from cx360.errors import NotFoundError, StageNotRunError

if TYPE_CHECKING:
    from cx360.workspace import Workspace

TABLE = "archetype_history"


def record(engine: Engine, as_of: dt.datetime) -> str | None:
    """Fold the current profile_archetypes (computed as of `as_of`) into the history. Returns a warning
    when the history was left alone."""
    h = engine.table(TABLE)
    latest = engine.scalar(ibis.greatest(h.entered_at.max(), h.exited_at.max()), step="habits: latest")
    latest = None if pd.isna(latest) else pd.Timestamp(latest).to_pydatetime()
    if latest is not None and as_of < latest:
        return (
            f"archetype history not updated: archetypes as of {as_of:%Y-%m-%d %H:%M} are older than its latest "
            f"change ({latest:%Y-%m-%d %H:%M})"
        )
    at = ibis.literal(as_of, "timestamp")
    now = engine.table("profile_archetypes").select("profile_id", "archetype")
    if latest is not None and as_of == latest:  # the same date again: undo what the last run at it did
        h = h.filter(h.entered_at != at).mutate(
            exited_at=ibis.ifelse(h.exited_at == at, ibis.null("timestamp"), h.exited_at)
        )
    open_ = h.filter(h.exited_at.isnull())
    kept = open_.semi_join(now, [open_.profile_id == now.profile_id, open_.archetype == now.archetype])
    closing = open_.anti_join(now, [open_.profile_id == now.profile_id, open_.archetype == now.archetype])
    arriving = now.anti_join(open_, [now.profile_id == open_.profile_id, now.archetype == open_.archetype])
    ts = h.entered_at.type()
    columns = ("profile_id", "archetype", "entered_at", "exited_at")
    rows = ibis.union(
        *(
            t.select(*columns).cast({"entered_at": ts, "exited_at": ts})
            for t in (
                h.filter(h.exited_at.notnull()),
                kept,
                closing.mutate(exited_at=at),
                arriving.mutate(entered_at=at, exited_at=ibis.null("timestamp")),
            )
        ),
        distinct=False,
    )
    with engine.materialised(rows, step="habits: archetype history") as staged:
        engine.replace(TABLE, staged)
    return None


def changes(h: ir.Table) -> ir.Table:
    """profile_id, at, from_archetype, to_archetype: every change of archetype."""
    left = h.filter(h.exited_at.notnull())
    came = h.select("profile_id", at=h.entered_at, to_archetype=h.archetype)
    j = left.join(came, [left.profile_id == came.profile_id, left.exited_at == came.at])
    return j.select(left.profile_id, at=left.exited_at, from_archetype=left.archetype, to_archetype=came.to_archetype)


@dataclass
class Report:
    runs: int  # as_ofs at which something changed, the first placement included
    periods: list[dict]
    people: int
    changers: int
    changes_per_person: dict[str, int]  # "0", "1", "2", "3+" -> people
    transitions: list[dict]
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    yearly_change_rate: float | None = None  # changes per person-year observed

    def as_dict(self) -> dict:
        return asdict(self)


def report(engine: Engine, allowed: ir.Table | None = None) -> Report:
    """Change rates per period and per person, over the people in `allowed` (everybody when None)."""
    h = engine.table(TABLE)
    if allowed is not None:
        h = h.semi_join(allowed, "profile_id")
    ch = changes(h)
    points = ibis.union(
        h.select(at=h.entered_at), h.filter(h.exited_at.notnull()).select(at=h.exited_at), distinct=True
    )
    points = points.mutate(since=points.at.lag().over(order_by="at"))
    # placed at the period's start: a stay that began by then and had not ended before its end
    j = points.join(h, [h.entered_at <= points.since, h.exited_at.isnull() | (h.exited_at >= points.at)])
    placed = j.group_by(["since", "at"]).aggregate(people=j.profile_id.nunique())
    per = ch.group_by("at").aggregate(changed=ch.profile_id.nunique())
    rows = engine.to_arrow(
        points.left_join(placed, ["since", "at"])
        .drop("since_right", "at_right")
        .left_join(per, "at")
        .drop("at_right")
        .order_by("at"),
        step="habits: periods",
    ).to_pylist()
    periods = [
        {
            "since": r["since"],
            "until": r["at"],
            "people": int(r["people"] or 0),
            "changed": int(r["changed"] or 0),
            "rate": round((r["changed"] or 0) / r["people"], 4) if r["people"] else None,
        }
        for r in rows
        if r["since"] is not None
    ]
    span = h.group_by("profile_id").aggregate(
        first=h.entered_at.min(), last=ibis.coalesce(h.exited_at.max(), h.entered_at.max())
    )
    counts = ch.group_by("profile_id").aggregate(n=ch.count())
    person = span.left_join(counts, "profile_id").drop("profile_id_right")
    person = person.mutate(n=person.n.fill_null(0))
    end = engine.scalar(points.at.max(), step="habits: last")
    dist = engine.to_arrow(
        person.group_by(k=ibis.least(person.n, 3)).aggregate(people=ibis._.count()), step="habits: per person"
    ).to_pylist()
    by = {int(r["k"]): int(r["people"]) for r in dist}
    first = engine.scalar(person["first"].min(), step="habits: first")
    total_changes = int(engine.scalar(ch.count(), step="habits: changes") or 0)
    years = 0.0
    if end is not None and not pd.isna(end):
        until = ibis.literal(pd.Timestamp(end).to_pydatetime(), "timestamp")
        observed = (until.epoch_seconds() - person["first"].epoch_seconds()).sum()
        years = float(engine.scalar(observed, step="habits: person-years") or 0) / (365.25 * 86_400)
    trans = engine.to_arrow(
        ch.group_by(["from_archetype", "to_archetype"])
        .aggregate(changes=ch.count())
        .order_by([ibis.desc("changes"), "from_archetype", "to_archetype"]),
        step="habits: transitions",
    ).to_pylist()
    return Report(
        runs=len(rows),
        periods=periods,
        people=sum(by.values()),
        changers=sum(v for k, v in by.items() if k > 0),
        changes_per_person={"0": by.get(0, 0), "1": by.get(1, 0), "2": by.get(2, 0), "3+": by.get(3, 0)},
        transitions=trans,
        first=None if first is None or pd.isna(first) else pd.Timestamp(first).to_pydatetime(),
        last=None if end is None or pd.isna(end) else pd.Timestamp(end).to_pydatetime(),
        yearly_change_rate=round(total_changes / years, 4) if years > 0 else None,
    )


@dataclass
class PersonHabits:
    profile_id: str
    archetypes: list[dict]  # stays, oldest first
    changes: int
    segments: list[dict] = field(default_factory=list)  # segment stays, oldest first

    def as_dict(self) -> dict:
        return asdict(self)


def person(engine: Engine, profile_id: str) -> PersonHabits:
    h = engine.table(TABLE)
    stays = engine.to_arrow(
        h.filter(h.profile_id == profile_id).order_by(["entered_at", "archetype"]).drop("profile_id"),
        step="habits: one person",
    ).to_pylist()
    n = int(engine.scalar(changes(h.filter(h.profile_id == profile_id)).count(), step="habits: their changes"))
    m = engine.table("segment_members")
    segs = engine.to_arrow(
        m.filter(m.profile_id == profile_id).order_by(["entered_at", "segment"]).drop("profile_id"),
        step="habits: their segments",
    ).to_pylist()
    return PersonHabits(profile_id, stays, n, segs)


# -- for a workspace -----------------------------------------------------------------------------------
# Change rates count people in aggregate: only those whom the analytics purpose allows.
PURPOSE = "analytics"


def habits_report(ws: Workspace) -> Report:
    """How often the workspace's people change digital archetype, per period and per person."""
    from cx360.privacy.consent import Policy

    engine = ws.engine
    if engine.scalar(engine.table(TABLE).count(), step="habits: history") == 0:
        raise StageNotRunError("no archetype history yet", stage="archetypes", workspace=ws.root)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return report(engine, Policy(ws.config.privacy).allowed(engine, PURPOSE, None, now))


def person_habits(ws: Workspace, profile_id: str) -> PersonHabits:
    """One person's archetypes over time and their segment stays."""
    engine = ws.engine
    p = engine.table("profiles")
    if engine.scalar(p.filter(p.profile_id == profile_id).count(), step="habits: profile") == 0:
        raise NotFoundError(f"no profile {profile_id!r}: give a profile id (see `cx360 profile show`)")
    return person(engine, profile_id)

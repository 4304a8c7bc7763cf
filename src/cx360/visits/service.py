"""Visit analytics of a workspace: the period and place asked for, checked, over the people that the
analytics purpose allows (see cx360.visits.compute)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from cx360.errors import ConfigError, NotFoundError, StageNotRunError
from cx360.privacy.consent import Policy
from cx360.visits import compute

if TYPE_CHECKING:
    from cx360.workspace import Workspace

# Visit analytics counts people in aggregate, like funnels: only those analytics may count.
PURPOSE = "analytics"
PURCHASES_BY = ("category", "merchant")


def places(ws: Workspace) -> list[str]:
    """Every place that a visit names."""
    return compute.known_places(ws.engine, ws.engine.table("profile_events"))


def visit_report(
    ws: Workspace,
    place: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    purchases_by: str = "category",
) -> compute.Report:
    """Visitors of `place` (every place when None) in [since, until): by default the whole visit history."""
    engine = ws.engine
    if engine.scalar(engine.table("profiles").count(), step="visits: profiles") == 0:
        raise StageNotRunError("no profiles to count visits over", stage="profiles", workspace=ws.root)
    if purchases_by not in PURCHASES_BY:
        raise ConfigError(f"purchases by {purchases_by!r}: choose one of {', '.join(PURCHASES_BY)}")
    pe = engine.table("profile_events")
    known = compute.known_places(engine, pe)
    if place is not None and place not in known:
        raise NotFoundError(f"no visits to a place named {place!r}; places: {', '.join(known) or 'none (no visits)'}")
    default = compute.bounds(engine, pe) or (dt.datetime(1970, 1, 1), dt.datetime(1970, 1, 2))
    period = compute.Period(since or default[0], until or default[1])
    if period.since >= period.until:
        raise ConfigError(
            f"empty period: --since {period.since:%Y-%m-%d} is not before --until {period.until:%Y-%m-%d}"
        )
    allowed = Policy(ws.config.privacy).allowed(engine, PURPOSE, None, _now())
    settings = ws.config.visits
    return compute.run(
        engine,
        pe,
        allowed,
        period,
        place,
        regular_per_month=settings.regular_per_month,
        window_minutes=settings.purchase_window_minutes,
        purchases_by=purchases_by,
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)

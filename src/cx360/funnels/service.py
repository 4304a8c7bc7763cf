"""Funnels and forms of a workspace: the declared funnel, the workspace's fields, and the consent check."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cx360.errors import NotFoundError, StageNotRunError
from cx360.funnels import compute, forms
from cx360.funnels.fields import EventFields, mapped_properties
from cx360.privacy.consent import Policy

if TYPE_CHECKING:
    from cx360.workspace import Workspace

# Funnels and forms count people; only those whose data may serve aggregate reporting are counted.
PURPOSE = "analytics"


def fields_of(ws: Workspace) -> EventFields:
    return EventFields(ws.engine, mapped_properties(ws.config))


def funnel_report(ws: Workspace, name: str, breakdown: str | None = None) -> compute.Report:
    """The funnel declared as `name`, counted over everybody the analytics purpose allows now."""
    spec = next((f for f in ws.config.funnels if f.name == name), None)
    if spec is None:
        known = ", ".join(f.name for f in ws.config.funnels) or "none"
        raise NotFoundError(f"no funnel named '{name}' in {ws.root / 'cx360.toml'}; declared funnels: {known}")
    engine = ws.engine
    if engine.scalar(engine.table("profiles").count(), step="funnels: profiles") == 0:
        raise StageNotRunError("no profiles to count funnels over", stage="profiles", workspace=ws.root)
    by = breakdown or spec.breakdown
    segments = None
    if by == "segment":
        m = engine.table("segment_members")
        segments = m.filter(m.exited_at.isnull()).select("segment", "profile_id")
    allowed = Policy(ws.config.privacy).allowed(engine, PURPOSE, None, compute.as_of_now())
    return compute.run(engine, spec, fields_of(ws), breakdown=by, allowed=allowed, segments=segments)


def form_report(ws: Workspace, form: str | None = None) -> list[forms.FormReport]:
    """Every form's figures (or one form's), over everybody the analytics purpose allows now."""
    engine = ws.engine
    pe = engine.table("profile_events")
    allowed = Policy(ws.config.privacy).allowed(engine, PURPOSE, None, compute.as_of_now())
    reports = forms.report(engine, pe.filter(pe.profile_id.notnull()).semi_join(allowed, "profile_id"))
    if form is None:
        return reports
    chosen = [r for r in reports if r.form == form]
    if not chosen:
        known = ", ".join(r.form for r in reports) or "none (no form_started events)"
        raise NotFoundError(f"no form named '{form}' among the events; forms: {known}")
    return chosen

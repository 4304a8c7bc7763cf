"""Form analytics: per form and per field, how many people started, left and submitted, and why they left.

An attempt is a `form_started` event; its outcome is the person's first `form_submitted` or
`form_abandoned` of the same form after it, before they start that form again; an attempt with
neither is still open. A form is named by the events' `form` property (`(unnamed)` without one).
The field of an abandonment is the `field` property of its `form_abandoned` event: the last field
the person touched. Why they left: the last page or screen they saw before leaving (a `page_viewed`
event's `path` or `screen`, on any channel), and the error events between the start and the leaving.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import ibis
import ibis.expr.types as ir

from cx360.engine import Engine

OUTCOMES = ("form_submitted", "form_abandoned")
ERRORS = ("app_error", "login_failed", "card_declined")
UNNAMED = "(unnamed)"
_ORDER = {"form_started": 0, "form_submitted": 1, "form_abandoned": 1}


def attempts(engine: Engine, pe: ir.Table) -> ir.Table:
    """One row per form_started: profile_id, form, started_at, outcome (submitted, abandoned or open),
    ended_at and field (of an abandonment)."""
    f = pe.filter(pe.name.isin(("form_started", *OUTCOMES)))
    f = f.mutate(
        form=engine.json_get(f.properties, "form").fill_null(UNNAMED),
        field=engine.json_get(f.properties, "field"),
        _rank=f.name.substitute(_ORDER, else_=1),
    )
    w = ibis.window(group_by=["profile_id", "form"], order_by=["ts", "_rank", "event_id"])
    f = f.mutate(_next=f.name.lead().over(w), _next_ts=f.ts.lead().over(w), _next_field=f.field.lead().over(w))
    s = f.filter(f.name == "form_started")
    ended = s._next.isin(OUTCOMES)
    return s.select(
        "profile_id",
        "form",
        started_at=s.ts,
        outcome=ibis.ifelse(ended, s._next.replace("form_", ""), "open"),
        ended_at=ibis.ifelse(ended, s._next_ts, ibis.null().cast(s.ts.type())),
        field=ibis.ifelse(s._next == "form_abandoned", s._next_field, ibis.null().cast("string")),
    )


def _seconds(a: ir.Table, when: ir.BooleanValue | None = None) -> ir.FloatingValue:
    """Seconds from start to outcome; NULL where `when` is false (so that medians run on every engine)."""
    s = (a.ended_at.epoch_seconds() - a.started_at.epoch_seconds()).cast("float64")
    return s if when is None else ibis.ifelse(when, s, ibis.null().cast("float64"))


def per_form(a: ir.Table) -> ir.Table:
    return (
        a.group_by("form")
        .aggregate(
            starts=a.count(),
            submitted=(a.outcome == "submitted").sum().cast("int64"),
            abandoned=(a.outcome == "abandoned").sum().cast("int64"),
            open=(a.outcome == "open").sum().cast("int64"),
            people=a.profile_id.nunique(),
            median_seconds_to_submit=_seconds(a, a.outcome == "submitted").median(),
            median_seconds_to_abandon=_seconds(a, a.outcome == "abandoned").median(),
        )
        .order_by("form")
    )


def per_field(a: ir.Table) -> ir.Table:
    left = a.filter(a.outcome == "abandoned")
    left = left.mutate(field=left.field.fill_null("(unknown)"))
    return (
        left.group_by(["form", "field"])
        .aggregate(abandoned=left.count(), median_seconds_to_abandon=_seconds(left).median())
        .order_by(["form", ibis.desc("abandoned"), "field"])
    )


def last_pages(engine: Engine, pe: ir.Table, a: ir.Table) -> ir.Table:
    """form, page, abandoned: the last page or screen seen at or before each abandonment."""
    left = a.filter(a.outcome == "abandoned")
    views = pe.filter(pe.name == "page_viewed")
    views = views.select(
        "profile_id",
        seen_at=views.ts,
        page=ibis.coalesce(engine.json_get(views.properties, "path"), engine.json_get(views.properties, "screen")),
    )
    j = left.join(views, [left.profile_id == views.profile_id, views.seen_at <= left.ended_at])
    j = j.mutate(_r=ibis.row_number().over(group_by=["profile_id", "form", "ended_at"], order_by=ibis.desc("seen_at")))
    j = j.filter(j._r == 0)
    j = j.mutate(page=j.page.fill_null("(no page)"))
    return (
        j.group_by(["form", "page"]).aggregate(abandoned=j.count()).order_by(["form", ibis.desc("abandoned"), "page"])
    )


def errors_before_leaving(pe: ir.Table, a: ir.Table) -> ir.Table:
    """form, error, abandoned: abandonments with at least one such error event between start and leaving."""
    left = a.filter(a.outcome == "abandoned")
    errs = pe.filter(pe.name.isin(ERRORS)).select("profile_id", error=pe.name, error_at=pe.ts)
    j = left.join(
        errs,
        [left.profile_id == errs.profile_id, errs.error_at >= left.started_at, errs.error_at <= left.ended_at],
    )
    j = j.select("profile_id", "form", "started_at", "error").distinct()
    return j.group_by(["form", "error"]).aggregate(abandoned=j.count()).order_by(["form", ibis.desc("abandoned")])


@dataclass
class FormReport:
    form: str
    starts: int
    submitted: int
    abandoned: int
    open: int
    people: int
    submit_rate: float | None
    median_seconds_to_submit: float | None
    median_seconds_to_abandon: float | None
    fields: list[dict] = field(default_factory=list)  # field, abandoned, share, median_seconds_to_abandon
    last_pages: list[dict] = field(default_factory=list)  # page, abandoned
    errors: list[dict] = field(default_factory=list)  # error, abandoned (attempts that saw it)

    def as_dict(self) -> dict:
        return asdict(self)


def _num(value) -> float | None:
    return None if value is None or value != value else float(value)


def report(engine: Engine, pe: ir.Table) -> list[FormReport]:
    """Every form's figures over the events `pe` (profile_events, or a part of it)."""
    with engine.materialised(attempts(engine, pe), step="forms: attempts") as a:  # four queries read them
        forms = engine.to_arrow(per_form(a), step="forms: per form").to_pylist()
        fields = engine.to_arrow(per_field(a), step="forms: per field").to_pylist()
        pages = engine.to_arrow(last_pages(engine, pe, a), step="forms: last pages").to_pylist()
        errors = engine.to_arrow(errors_before_leaving(pe, a), step="forms: errors").to_pylist()
    out = []
    for f in forms:
        r = FormReport(
            form=f["form"],
            starts=f["starts"],
            submitted=f["submitted"],
            abandoned=f["abandoned"],
            open=f["open"],
            people=f["people"],
            submit_rate=f["submitted"] / f["starts"] if f["starts"] else None,
            median_seconds_to_submit=_num(f["median_seconds_to_submit"]),
            median_seconds_to_abandon=_num(f["median_seconds_to_abandon"]),
        )
        r.fields = [
            {
                "field": x["field"],
                "abandoned": x["abandoned"],
                "share": x["abandoned"] / r.abandoned,
                "median_seconds_to_abandon": _num(x["median_seconds_to_abandon"]),
            }
            for x in fields
            if x["form"] == r.form
        ]
        r.last_pages = [{"page": x["page"], "abandoned": x["abandoned"]} for x in pages if x["form"] == r.form]
        r.errors = [{"error": x["error"], "abandoned": x["abandoned"]} for x in errors if x["form"] == r.form]
        out.append(r)
    return out

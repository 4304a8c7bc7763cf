"""One incoming call, end to end: the likely reasons from the caller's events before now, with their
evidence, the queue from the routing table, and the agent's prior-issue summary."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cx360.calls import features, routing, summary
from cx360.calls.model import CallReasonModel
from cx360.config import CallSettings

TOP = 3
TEXT_EVENTS = ("call", "review_posted", "social_post")


def forecast(model: CallReasonModel, events: list[dict[str, Any]], at: dt.datetime) -> list[dict[str, Any]]:
    """The top reasons, each with its probability and evidence (the events behind its strongest features)."""
    fam = features.of_one_call(events, at)
    latest: dict[str, tuple[float, dict]] = {}
    week: dict[str, int] = {}
    for f, h, i in zip(fam["family"], fam["hours"], fam["event"], strict=True):
        if f not in latest or h < latest[f][0]:
            latest[f] = (h, events[i])
        week[f] = week.get(f, 0) + (h <= features.WINDOWS_H[2])  # within 7 days
    out = []
    for reason, p, fams in model.top(fam, ["call"], k=TOP)[0]:
        evidence = []
        for f in fams:
            e = latest[f][1]
            text = features.describe(e["name"], e["ts"], features.props(e.get("properties")), e.get("amount"))
            if week.get(f, 0) > 1:
                text += f" ({week[f]} in the last 7 days)"
            evidence.append(text)
        out.append({"reason": reason, "probability": round(p, 4), "evidence": evidence})
    return out


def language_of(events: list[dict[str, Any]], attributes: dict[str, Any]) -> str | None:
    """The caller's language: the profile's own, else that of the latest text they wrote or said."""
    given = (attributes.get("language") or {}).get("value")
    if given:
        return str(given).lower()
    from cx360.text.language import detect_language

    for e in sorted(events, key=lambda e: e["ts"], reverse=True):
        text = features.props(e.get("properties")).get("text") if e["name"] in TEXT_EVENTS else None
        if text:
            lang = detect_language(text)
            return lang if lang and lang != "unknown" else None
    return None


def route(
    settings: CallSettings,
    model: CallReasonModel | None,
    profile: dict[str, Any],
    events: list[dict[str, Any]],
    at: dt.datetime,
    *,
    language: str | None = None,
    withheld: str | None = None,
) -> dict[str, Any]:
    """The answer for a known caller: `profile` a Profile dump, `events` theirs (ts, name, properties, amount).
    `withheld`: why profiling is not allowed for this caller (then no forecast, and no scores to route by)."""
    before = [e for e in events if e["ts"] < at]
    reasons = forecast(model, before, at) if model is not None else []
    scores = profile.get("scores") or {}
    caller = routing.Caller(
        reason=reasons[0]["reason"] if reasons else None,
        value_tier=scores.get("value_tier"),
        churn_risk=(scores.get("churn") or {}).get("risk"),
        language=(language or language_of(before, profile.get("attributes") or {})),
    )
    decision = routing.choose(settings, caller)
    notes = []
    if withheld:
        notes.append(f"no forecast: {withheld}")
    elif model is None:
        notes.append("no call-reason model in this workspace: run `cx360 calls train -w DIR`")
    if decision.unrouted_reason:
        notes.append(f"reason {decision.unrouted_reason!r} is not in the routing table ([calls].routes)")
    return {
        "profile_id": profile["profile_id"],
        "candidates": [],
        "at": at,
        "reasons": reasons,
        "queue": decision.queue,
        "skills": decision.skills,
        "route": decision.route,
        "unrouted_reason": decision.unrouted_reason,
        "caller": {"value_tier": caller.value_tier, "churn_risk": caller.churn_risk, "language": caller.language},
        "prior_issues": summary.prior_issues(before, at),
        "notes": notes,
    }


def unknown(settings: CallSettings, at: dt.datetime, candidates: list[str] = (), note: str = "") -> dict[str, Any]:
    """An unknown caller (or a phone several people share): no forecast, the default queue."""
    return {
        "profile_id": None,
        "candidates": list(candidates),
        "at": at,
        "reasons": [],
        "queue": settings.default_queue,
        "skills": [],
        "route": None,
        "unrouted_reason": None,
        "caller": None,
        "prior_issues": None,
        "notes": [note] if note else [],
    }

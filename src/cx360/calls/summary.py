"""What the agent should know before answering: the caller's last calls and complaints with their
outcomes, the issues still open, and whether this is a repeat contact within 7 days."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cx360.calls.features import props

REPEAT_WINDOW = dt.timedelta(days=7)
LAST = 5


def prior_issues(events: list[dict[str, Any]], at: dt.datetime) -> dict[str, Any]:
    """`events`: the person's events (ts, name, properties) in any order; only those before `at` count."""
    before = sorted((e for e in events if e["ts"] < at), key=lambda e: e["ts"], reverse=True)
    calls = [_call(e) for e in before if e["name"] == "call"]
    complaints = [_complaint(e, at) for e in before if e["name"] == "complaint"]
    open_issues = [
        {"kind": "complaint", "since": c["opened_at"], "topic": c["topic"], "id": c["id"]}
        for c in complaints
        if c["open"]
    ]
    settled: set[str] = set()
    for c in calls:  # newest first: an unresolved call is open unless a later call on its reason was resolved
        if c["outcome"] == "resolved":
            settled.add(c["reason"])
        elif c["outcome"] == "unresolved" and c["reason"] not in settled and at - c["ts"] <= REPEAT_WINDOW:
            open_issues.append({"kind": "call", "since": c["ts"], "topic": c["reason"], "id": c["id"]})
            settled.add(c["reason"])
    recent = [c for c in calls if at - c["ts"] <= REPEAT_WINDOW]
    return {
        "last_calls": calls[:LAST],
        "last_complaints": complaints[:LAST],
        "open_issues": open_issues,
        "repeat_contact": bool(recent),
        "previous_call": recent[0] if recent else None,
    }


def _call(e: dict[str, Any]) -> dict[str, Any]:
    p = props(e.get("properties"))
    return {
        "id": e.get("event_id"),
        "ts": e["ts"],
        "reason": p.get("reason"),
        "outcome": p.get("outcome"),
        "queue": p.get("queue"),
    }


def _complaint(e: dict[str, Any], at: dt.datetime) -> dict[str, Any]:
    p = props(e.get("properties"))
    closed = p.get("closed_at") or None
    closed_ts = dt.datetime.fromisoformat(str(closed).replace("Z", "")) if closed else None
    still_open = closed_ts is None or closed_ts > at
    return {
        "id": e.get("event_id"),
        "opened_at": e["ts"],
        "topic": p.get("topic"),
        "open": still_open,
        "closed_at": None if still_open else closed_ts,
        "outcome": "open" if still_open else "closed",
    }

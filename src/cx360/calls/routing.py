"""The routing table of cx360.toml ([calls]): the first route whose conditions all hold for the call
gives its queue; a call no route matches goes to the default queue."""

from __future__ import annotations

from dataclasses import dataclass, field

from cx360.config import CallSettings


@dataclass(frozen=True)
class Caller:
    """What routing reads about a call: the forecast's top reason and the caller's profile."""

    reason: str | None = None
    value_tier: str | None = None
    churn_risk: float | None = None
    language: str | None = None


@dataclass
class Decision:
    queue: str
    skills: list[str] = field(default_factory=list)
    route: int | None = None  # index of the matching route in [calls].routes; None: the default queue
    unrouted_reason: str | None = None  # the top reason, when no route names it


def choose(settings: CallSettings, caller: Caller) -> Decision:
    unknown = caller.reason if caller.reason and caller.reason not in settings.known_reasons else None
    for n, r in enumerate(settings.routes):
        if r.reason and caller.reason not in r.reason:
            continue
        if r.value_tier and caller.value_tier not in r.value_tier:
            continue
        if r.min_churn_risk is not None and (caller.churn_risk is None or caller.churn_risk < r.min_churn_risk):
            continue
        if r.language and caller.language not in r.language:
            continue
        return Decision(r.queue, list(r.skills), n, unknown)
    return Decision(settings.default_queue, [], None, unknown)


def unrouted(settings: CallSettings, reasons: set[str]) -> list[str]:
    """Reason codes found in the calls that no route names (they reach only the routes for any reason)."""
    return sorted(r for r in reasons if r not in settings.known_reasons)

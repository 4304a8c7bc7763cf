"""Response schemas of the REST API (the profile itself is cx360.profiles.view.Profile), and the
error envelope every /v1 error answers with."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from cx360.profiles.view import UtcDatetime, columns_model


class ErrorBody(BaseModel):
    type: str = Field(description="the error class, e.g. NotFoundError, ForbiddenError, ValidationError")
    message: str = Field(description="what went wrong and what to do about it")


class ErrorResponse(BaseModel):
    error: ErrorBody


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: the envelope, documented for each error status it can answer."""
    meaning = {
        401: "no key, or a malformed, unknown or revoked key",
        403: "the key's role may not do this",
        404: "no such profile or identifier",
        422: "malformed input",
        429: "too many searches or identifier lookups from this key: wait the `Retry-After` seconds",
        503: "the audit log cannot be written or read now: personal data is not served; try again",
    }
    out: dict[int | str, dict[str, Any]] = {s: {"model": ErrorResponse, "description": meaning[s]} for s in statuses}
    if 429 in out:
        out[429]["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
    return out


class Event(BaseModel):
    event_id: str
    ts: UtcDatetime = Field(description="when it happened (UTC)")
    source: str
    name: str
    channel: str | None = None
    amount: float | None = None
    properties: dict[str, Any] = Field(
        default_factory=dict, description="values are `***` for a role without personal data"
    )


class Timeline(BaseModel):
    profile_id: str
    events: list[Event]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class SearchHit(BaseModel):
    profile_id: str
    kind: str = Field(description="what matched: first_name, last_name, name, profile_id or an identifier kind")
    term: str = Field(description="the matching term (masked for a role without personal data)")
    first_name: str | None = None
    last_name: str | None = None
    city: str | None = None


class SearchResults(BaseModel):
    q: str
    results: list[SearchHit]


Segment = columns_model("Segment", "segments", "A segment with its size and freshness.", skip=())


class Segments(BaseModel):
    available: bool = Field(description="false when no segment stage ran in this workspace")
    segments: list[Segment]  # type: ignore[valid-type]
    note: str | None = None


class AuditEntry(BaseModel):
    at: str = Field(description="when (UTC, ISO)")
    key_id: str | None = None
    key_name: str | None = None
    role: str | None = None
    action: str | None = Field(None, description="profile, timeline, search or dashboard")
    profile_id: str | None = None
    fields: str | None = Field(None, description="the personal fields read, comma-separated")
    client: str | None = None


class AuditEntries(BaseModel):
    entries: list[AuditEntry]


class Health(BaseModel):
    status: str
    index_built_at: str = Field(description="when the serving index was built (UTC)")
    rows: dict[str, int] = Field(description="rows per table of the serving index")

"""Response schemas of the REST API (the profile itself is cx360.profiles.view.Profile), and the
error envelope every /v1 error answers with."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cx360.profiles.view import UtcDatetime, columns_model

# The identifier kinds a caller may name when a bare value could be several (document: SCHEME:NUMBER).
LookupKind = Literal["email", "phone", "customer_no", "card_token", "cookie_id", "device_id", "document"]


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
        409: "an earlier stage must run first (a segment that failed at its last evaluation)",
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


class SegmentMember(BaseModel):
    profile_id: str
    entered_at: UtcDatetime | None = Field(None, description="when the person entered the segment")


class SegmentMembers(BaseModel):
    segment: str
    as_of: UtcDatetime | None = Field(None, description="the profiles the segment was evaluated on")
    members: list[SegmentMember]
    withheld: int = Field(description="members of this page left out: no consent to profiling")
    next: str | None = Field(None, description="pass as `after` for the next page; null on the last")


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
    collector: CollectorHealth = Field(description="the Segment-spec collector and its event log")
    online: OnlineHealth | None = Field(None, description="the stream processor and the online store; null when off")


class CallRouteRequest(BaseModel):
    phone: str = Field(
        min_length=1, description="the caller's number (ANI), in any format the workspace's region parses"
    )
    at: UtcDatetime | None = Field(None, description="when the call arrives (UTC); default now")
    language: str | None = Field(None, description="the language the caller chose in the IVR (ru, en, ...)")


class CallReason(BaseModel):
    reason: str = Field(description="a reason code of the workspace's past calls")
    probability: float
    evidence: list[str] = Field(description="the events before the call that speak for this reason")


class PriorCall(BaseModel):
    id: str | None = None
    ts: UtcDatetime
    reason: str | None = None
    outcome: str | None = None
    queue: str | None = None


class PriorComplaint(BaseModel):
    id: str | None = None
    opened_at: UtcDatetime
    topic: str | None = None
    open: bool
    closed_at: UtcDatetime | None = None
    outcome: str


class OpenIssue(BaseModel):
    kind: str = Field(description="complaint, or call (unresolved in the last 7 days)")
    since: UtcDatetime
    topic: str | None = None
    id: str | None = None


class PriorIssues(BaseModel):
    last_calls: list[PriorCall]
    last_complaints: list[PriorComplaint]
    open_issues: list[OpenIssue]
    repeat_contact: bool = Field(description="the caller called within the last 7 days")
    previous_call: PriorCall | None = None


class CallerScores(BaseModel):
    value_tier: str | None = None
    churn_risk: float | None = None
    language: str | None = None


class CallRoute(BaseModel):
    profile_id: str | None = Field(description="null for an unknown caller or a phone several people share")
    candidates: list[str] = Field(description="the profiles holding a shared phone; nothing is merged")
    at: UtcDatetime
    reasons: list[CallReason] = Field(description="the likeliest reasons, most likely first (at most 3)")
    queue: str
    skills: list[str]
    route: int | None = Field(description="the matching line of [calls].routes (from 0); null: the default queue")
    unrouted_reason: str | None = Field(description="the top reason, when the routing table does not name it")
    caller: CallerScores | None = None
    prior_issues: PriorIssues | None = None
    notes: list[str]


class ConsentChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(description="the person: a profile id, a node key (email:...) or an identifier value")
    kind: LookupKind | None = Field(
        None, description="the identifier's kind, when `subject` is a bare value that could be several"
    )
    purpose: str = Field(description="a purpose of the workspace's [privacy.purposes] (docs/privacy.md)")
    channel: str | None = Field(None, description="the channel, for a purpose consented per channel")
    status: Literal["granted", "denied", "withdrawn"]
    at: UtcDatetime | None = Field(None, description="when the person said so (default: now)")
    legal_basis: str | None = None
    evidence: str | None = Field(None, description="what proves it; default: the API key that recorded it")


class ConsentDecision(BaseModel):
    purpose: str
    channel: str | None
    allowed: bool = Field(description="what the one policy check now decides for this purpose and channel")
    status: str | None
    since: UtcDatetime | None
    source: str | None
    reason: str


class ConsentRecorded(BaseModel):
    profile_id: str
    consent_id: str = Field(description="a hash of the change: the same change sent twice is recorded once")
    recorded: bool = Field(description="false when this very change was recorded before")
    decision: ConsentDecision


class OnlineHealth(BaseModel):
    running: bool = Field(description="whether this process applies its collected events now")
    applied: int = Field(0, description="events and identify calls applied since start")
    skipped: int = Field(
        0, description="messages left to the batch: unreadable by the mapping (quarantined), or naming only junk"
    )
    batches: int = Field(0, description="micro-batches applied since start")
    ms_per_batch: float | None = Field(None, description="mean time to apply a micro-batch, in milliseconds")
    profiles: int = Field(0, description="profiles whose current document is in the online store")
    triggers_pending: int = Field(0, description="trigger deliveries waiting (for a try or a retry)")
    triggers_dead: int = Field(0, description="trigger deliveries given up (kept; `cx360 triggers replay`)")


class CollectorHealth(BaseModel):
    log_bytes: int = Field(description="bytes the event log holds on disk")
    lag: int = Field(description="messages logged and not yet loaded into the warehouse")
    free_disk_mb: float = Field(description="free disk where the event log lives")
    accepted: int = Field(description="messages accepted since this server process started")
    duplicates: int = Field(description="natural duplicates (a messageId again, same payload) answered since start")
    synthetic_duplicates: int = Field(description="a messageId again with another payload: rejected, since start")
    rejected: int = Field(description="messages rejected as invalid since start (quarantined)")
    refused: int = Field(description="requests refused with 503 for backpressure since start")
    transport: str = Field("log", description="where accepted messages go first: the event log, or redis")
    transport_lag: int = Field(0, description="of `lag`, the messages still in Redis, not yet in the event log")
    transport_durable: bool = Field(True, description="false for a Redis accepted without appendfsync always")


class Receipt(BaseModel):
    messageId: str | None = Field(description="the message's id as sent (null when it had none)")
    status: str = Field(description="accepted, duplicate or rejected")
    reason: str | None = Field(None, description="why it was rejected")


class CollectorAnswer(BaseModel):
    success: bool = Field(description="true: the request was read; each message has its receipt")
    accepted: int
    duplicates: int
    rejected: int
    receipts: list[Receipt] = Field(description="one per message, in the order sent")


class CollectorError(BaseModel):
    code: str = Field(description="the error class, as Segment's SDKs read it")
    message: str
    error: ErrorBody


Health.model_rebuild()

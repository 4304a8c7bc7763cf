"""/v1/decisions: the next best action for one person, now, for the app, the web site and the contact centre."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

import anyio.to_thread
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from cx360.api import services
from cx360.api.deps import Client, Ctx, Who
from cx360.api.schemas import LookupKind, errors
from cx360.profiles.view import UtcDatetime

router = APIRouter(prefix="/v1/decisions", tags=["decisions"], responses=errors(401, 403, 404, 409, 422, 429, 503))


class ByProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile_id: str = Field(description="the person's profile id")


class ByIdentifier(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identifier: str = Field(description="a node key (email:...) or a bare identifier value")
    kind: LookupKind | None = Field(None, description="the identifier's kind, when its value could be several")


class Candidate(BaseModel):
    offer: str
    channel: str
    value: float
    propensity: float | None = None
    model: str | None = Field(None, description="what ranks it: uplift (its offer has a control group) or propensity")
    uplift: float | None = Field(None, description="propensity minus the chance of accepting uncontacted")
    expected_value: float | None = None
    hour: int | None = None
    suppressed_by: str | None = Field(None, description="the rule that held it back")


class DecisionAnswer(BaseModel):
    decision_id: str
    profile_id: str
    offer: str = Field(description="the offer chosen; empty: none")
    channel: str
    send_at: UtcDatetime | None = Field(None, description="when to send it (UTC)")
    expected_value: float
    propensity: float | None
    uplift: float | None = Field(
        None, description="for an offer with a control group: propensity minus its take-up uncontacted"
    )
    model: str | None = Field(None, description="what ranked the chosen action: uplift or propensity")
    probability: float = Field(description="probability that the policy chose this action")
    reasons: str
    candidates: list[Candidate]


@router.post("", response_model=DecisionAnswer, summary="The next best offer for a person, with channel, hour and why")
async def decide(body: ByProfile | ByIdentifier, ctx: Ctx, who: Who, client: Client) -> Any:
    """A coroutine, so that the audit entry's fdatasync, begun when the entry is recorded, runs while the
    decision is worked out in a worker thread (its reads and models take milliseconds: off the event loop)."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    key, kind = (body.profile_id, None) if isinstance(body, ByProfile) else (body.identifier, body.kind)
    answer = partial(services.next_best_action, ctx, who, key, kind=kind, at=now, client=client)
    async with ctx.audit.deferred():
        return await anyio.to_thread.run_sync(answer)

"""/v1/calls: route an incoming call."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter

from cx360.api import services
from cx360.api.deps import Client, Ctx, Who
from cx360.api.schemas import CallRoute, CallRouteRequest, errors

router = APIRouter(prefix="/v1/calls", tags=["calls"], responses=errors(401, 403, 422, 429, 503))


@router.post(
    "/route",
    response_model=CallRoute,
    summary="An incoming call: the caller, the likely reasons with evidence, the queue, the prior issues",
)
def route(body: CallRouteRequest, ctx: Ctx, who: Who, client: Client) -> Any:
    at = body.at.astimezone(dt.UTC).replace(tzinfo=None) if body.at else None  # stored times are naive UTC
    return services.route_call(ctx, who, body.phone, at=at, language=body.language, client=client)

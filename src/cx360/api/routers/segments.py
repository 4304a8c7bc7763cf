"""/v1/segments: every segment with its size and freshness, and a segment's current members, paged."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query

from cx360.api import services
from cx360.api.deps import Client, Ctx, Who
from cx360.api.schemas import SegmentMembers, Segments, errors

router = APIRouter(prefix="/v1/segments", tags=["segments"], responses=errors(401, 403))


@router.get("", summary="Segments: name, description, size, when evaluated, status", response_model=Segments)
def list_segments(ctx: Ctx, who: Who) -> Any:
    return services.list_segments(ctx, who)


@router.get(
    "/{name}/members",
    summary="A segment's current members by profile id, paged: follow `next` as `after` until it is null",
    response_model=SegmentMembers,
    responses=errors(404, 409, 422),
)
def segment_members(
    ctx: Ctx,
    who: Who,
    client: Client,
    name: str,
    entered_since: Annotated[dt.datetime | None, Query(description="only members who entered at or after")] = None,
    after: Annotated[str | None, Query(description="the `next` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    return services.segment_members(
        ctx, who, name, entered_since=entered_since, after=after, limit=limit, client=client
    )

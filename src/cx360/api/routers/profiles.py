"""/v1/profiles: one profile by id or by identifier, and its timeline.

The two profile reads are the API's hot path, so they are coroutines: their reads are local point
reads (SQLite, tens of microseconds), a thread-pool trip would cost more than the work, and the
audit entry's fdatasync is awaited with the other requests' (`AuditLog.deferred`). Their
parameters are plain strings, read by the routes themselves (`DirectRoute`). The masked profile is a
`Profile` dump already, so it is written out as JSON without validating it again; `response_model`
documents it."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic_core import to_json

from cx360.api import services
from cx360.api.deps import Client, Ctx, DirectRoute, Who, caller
from cx360.api.schemas import LookupKind, Timeline, errors
from cx360.errors import DataError
from cx360.profiles.view import Profile

router = APIRouter(prefix="/v1/profiles", tags=["profiles"], responses=errors(401, 403, 404, 422, 429, 503))
LOOKUP = get_args(LookupKind)


class ProfileJSON(JSONResponse):
    """A profile dump, written out by pydantic-core (dates and times as the `Profile` model writes them)."""

    def render(self, content: Any) -> bytes:
        return to_json(content)


async def _profile(ctx: Ctx, who: Who, key: str, kind: str | None, client: str | None) -> ProfileJSON:
    async with ctx.audit.deferred():
        shown = services.get_profile(ctx, who, key, kind=kind, client=client)
    return ProfileJSON(shown)


async def _find(request: Request) -> ProfileJSON:
    ctx, who, client = await caller(request)
    given = {k: v for k in LOOKUP if (v := request.query_params.get(k))}
    if len(given) != 1:
        raise DataError(f"give exactly one identifier of: {', '.join(LOOKUP)} (got {len(given)})")
    kind, value = next(iter(given.items()))
    return await _profile(ctx, who, value, kind, client)


async def _get(request: Request) -> ProfileJSON:
    ctx, who, client = await caller(request)
    return await _profile(ctx, who, request.path_params["profile_id"], None, client)


def _direct(path: str, answer, **documented):
    """GET `path`, answered by `answer(request)` (DirectRoute); the decorated signature documents it."""

    def register(endpoint):
        endpoint.direct = answer
        router.add_api_route(path, endpoint, methods=["GET"], route_class_override=DirectRoute, **documented)
        return endpoint

    return register


# These signatures are the routes' OpenAPI documentation (no docstrings: they would become its text).
@_direct("", _find, summary="Find a profile by an identifier", response_model=Profile, response_class=ProfileJSON)
async def find(
    ctx: Ctx,
    who: Who,
    client: Client,
    email: str | None = None,
    phone: str | None = None,
    customer_no: str | None = None,
    card_token: str | None = None,
    cookie_id: str | None = None,
    device_id: str | None = None,
    document: Annotated[str | None, Query(description="SCHEME:NUMBER, e.g. ru.inn:7707083893")] = None,
) -> Any: ...


@_direct(
    "/{profile_id}",
    _get,
    response_model=Profile,
    response_class=ProfileJSON,
    summary="One profile: attributes with sources, identifiers, traits, scores, segments, archetype",
)
async def get(profile_id: str, ctx: Ctx, who: Who, client: Client) -> Any: ...


@router.get(
    "/{profile_id}/timeline",
    response_model=Timeline,
    summary="The profile's events across channels, newest first, paged",
)
def timeline(
    profile_id: str,
    ctx: Ctx,
    who: Who,
    client: Client,
    source: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> Any:
    return services.get_timeline(
        ctx,
        who,
        profile_id,
        source=source,
        since=_naive(since),
        until=_naive(until),
        limit=limit,
        cursor=cursor,
        client=client,
    )


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    """Stored timestamps are naive UTC."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)

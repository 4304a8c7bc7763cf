"""Dependencies shared by the routers, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cx360.api.access import Principal
from cx360.api.services import Context
from cx360.errors import AuthError

# Declares the bearer scheme in the OpenAPI schema (the Authorize button of /docs); missing or
# malformed credentials are KeyRing's to reject, with cx360's own error envelope.
bearer = HTTPBearer(auto_error=False, description="an API key from `cx360 keys create`: `cx360_<id>_<secret>`")


# The dependencies are coroutines: they do not block (a key's row is cached; a miss is one local SQLite
# read), and a plain function would cost each request a trip through the thread pool per dependency.
async def context(request: Request) -> Context:
    return request.app.state.ctx


MAX_AUTHORIZATION = 512  # "Bearer " and a key of at most 256 characters, with room for spaces


async def principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None
) -> Principal:
    if len(request.headers.get("authorization") or "") > MAX_AUTHORIZATION:
        raise AuthError(f"malformed Authorization header: longer than {MAX_AUTHORIZATION} characters")
    who = request.app.state.ctx.keys.authenticate(credentials.credentials.strip() if credentials else None)
    request.state.key_id = who.key_id  # for the access log
    return who


async def client(request: Request) -> str | None:
    """The client's address, for the audit log (X-Forwarded-For counts only from trusted proxies)."""
    peer = request.client.host if request.client else None
    return request.app.state.ctx.proxies.client(peer, request.headers.get("x-forwarded-for"))


Ctx = Annotated[Context, Depends(context)]
Who = Annotated[Principal, Depends(principal)]
Client = Annotated[str | None, Depends(client)]


async def caller(request: Request) -> tuple[Context, Principal, str | None]:
    """Ctx, Who and Client of a request, resolved in that order by the same coroutines (for DirectRoute)."""
    return await context(request), await principal(request, await bearer(request)), await client(request)


class DirectRoute(APIRoute):
    """A route answered by its endpoint's `direct(request)` coroutine, which reads its plain string
    parameters and calls `caller` itself: FastAPI's dependency solving and parameter validation cost
    a third of a profile lookup's CPU. The endpoint's signature still documents the route (OpenAPI)."""

    def get_route_handler(self):
        return self.endpoint.direct

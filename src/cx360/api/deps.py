"""Dependencies shared by the routers, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from cx360.api.access import Principal
from cx360.api.services import Context
from cx360.errors import AuthError


def context(request: Request) -> Context:
    return request.app.state.ctx


MAX_AUTHORIZATION = 512  # "Bearer " and a key of at most 256 characters, with room for spaces


def principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    if authorization and len(authorization) > MAX_AUTHORIZATION:
        raise AuthError(f"malformed Authorization header: longer than {MAX_AUTHORIZATION} characters")
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        key = ""
    return context(request).keys.authenticate(key.strip() or None)


def client(request: Request) -> str | None:
    """The client's address, for the audit log (X-Forwarded-For counts only from trusted proxies)."""
    peer = request.client.host if request.client else None
    return context(request).proxies.client(peer, request.headers.get("x-forwarded-for"))


Ctx = Annotated[Context, Depends(context)]
Who = Annotated[Principal, Depends(principal)]
Client = Annotated[str | None, Depends(client)]

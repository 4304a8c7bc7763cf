"""/v1/search: profiles by name or identifier prefix."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from cx360.api import services
from cx360.api.deps import Client, Ctx, Who

router = APIRouter(prefix="/v1/search", tags=["search"])


@router.get("", summary="Profiles whose name or an identifier starts with q")
def search(q: str, ctx: Ctx, who: Who, client: Client,
           limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
    return {"q": q, "results": services.search(ctx, who, q, limit=limit, client=client)}

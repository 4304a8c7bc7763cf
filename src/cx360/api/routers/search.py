"""/v1/search: profiles by name or identifier prefix."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from cx360.api import services
from cx360.api.deps import Client, Ctx, Who
from cx360.api.schemas import SearchResults, errors

router = APIRouter(prefix="/v1/search", tags=["search"], responses=errors(401, 403, 422, 429, 503))


@router.get("", summary="Profiles whose name or an identifier starts with q", response_model=SearchResults)
def search(
    q: Annotated[str, Query(min_length=2, description="at least 2 characters besides spaces")],
    ctx: Ctx,
    who: Who,
    client: Client,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Any:
    return {"q": q, "results": services.search(ctx, who, q, limit=limit, client=client)}

"""/v1/segments: every segment with its size and freshness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cx360.api import services
from cx360.api.deps import Ctx, Who
from cx360.api.schemas import Segments, errors

router = APIRouter(prefix="/v1/segments", tags=["segments"], responses=errors(401, 403))


@router.get("", summary="Segments: name, description, size, when evaluated, status", response_model=Segments)
def list_segments(ctx: Ctx, who: Who) -> Any:
    return services.list_segments(ctx, who)

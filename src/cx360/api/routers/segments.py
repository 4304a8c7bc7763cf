"""/v1/segments: every segment with its size and freshness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cx360.api import services
from cx360.api.deps import Ctx, Who

router = APIRouter(prefix="/v1/segments", tags=["segments"])


@router.get("", summary="Segments: name, description, size, when evaluated, status")
def list_segments(ctx: Ctx, who: Who) -> dict[str, Any]:
    return services.list_segments(ctx, who)

"""/v1/consents: record a consent change the person made (at a counter, on the phone, in the app)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cx360.api import services
from cx360.api.deps import Client, Ctx, Who
from cx360.api.schemas import ConsentChange, ConsentRecorded, errors

router = APIRouter(prefix="/v1/consents", tags=["consents"], responses=errors(401, 403, 404, 422, 429, 503))


@router.post(
    "",
    summary="Record a consent change; answers the decision of the policy check that follows from it",
    response_model=ConsentRecorded,
    status_code=201,
)
def record(body: ConsentChange, ctx: Ctx, who: Who, client: Client) -> Any:
    return services.record_consent(ctx, who, body.model_dump(), client=client)

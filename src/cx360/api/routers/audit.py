"""/v1/audit: the audit log of personal-data reads (admins only)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query

from cx360.api.audit import read_audit
from cx360.api.deps import Ctx, Who
from cx360.api.schemas import AuditEntries, errors

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=errors(401, 403, 422, 503))


@router.get("", summary="Who read which personal data, newest first", response_model=AuditEntries)
def audit(
    ctx: Ctx,
    who: Who,
    since: dt.datetime | None = None,
    key: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> Any:
    who.require("audit")
    ctx.audit.flush()
    return {"entries": read_audit(ctx.root, since=since, key_id=key, limit=limit)}

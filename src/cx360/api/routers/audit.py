"""/v1/audit: the audit log of personal-data reads (admins only)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query

from cx360.api.audit import read_audit
from cx360.api.deps import Ctx, Who

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", summary="Who read which personal data, newest first")
def audit(ctx: Ctx, who: Who, since: dt.datetime | None = None, key: str | None = None,
          limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> dict[str, Any]:
    who.require("audit")
    ctx.audit.flush()
    return {"entries": read_audit(ctx.root, since=since, key_id=key, limit=limit)}

"""What the API and the dashboard do, apart from HTTP: find, mask, audit. Routes stay thin."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cx360.api.access import KeyRing, Principal, mask_events, mask_profile, mask_search
from cx360.api.audit import AuditLog
from cx360.api.store import Store
from cx360.errors import DataError


@dataclass
class Context:
    """Everything a request needs, created once per server process."""

    root: Path
    store: Store
    keys: KeyRing
    audit: AuditLog

    def close(self) -> None:
        self.audit.close()
        self.store.close()


def get_profile(ctx: Context, who: Principal, key: str, *, kind: str | None = None,
                client: str | None = None, action: str = "profile") -> dict[str, Any]:
    who.require("profile")
    pid = ctx.store.resolve(key, kind)
    shown, fields = mask_profile(ctx.store.profile(pid), who)
    if kind is not None:
        fields = [f"query.{kind}", *fields]  # the identifier the caller looked up is personal data too
    ctx.audit.record(who, action, pid, fields, client)
    return shown


def get_timeline(ctx: Context, who: Principal, pid: str, *, source: str | None = None,
                 since: dt.datetime | None = None, until: dt.datetime | None = None, limit: int = 50,
                 cursor: str | None = None, client: str | None = None) -> dict[str, Any]:
    who.require("timeline")
    if not 1 <= limit <= 500:
        raise DataError(f"limit: expected 1 to 500, got {limit}")
    if since and until and since >= until:
        raise DataError(f"since ({since}) must be before until ({until})")
    pid = ctx.store.resolve(pid)
    page = ctx.store.timeline(pid, source=source, since=since, until=until, limit=limit, cursor=cursor)
    page["events"], fields = mask_events(page["events"], who)
    ctx.audit.record(who, "timeline", pid, fields, client)
    return page


def search(ctx: Context, who: Principal, q: str, *, limit: int = 20, client: str | None = None) -> list[dict[str, Any]]:
    who.require("search")
    if len(q.strip()) < 2:
        raise DataError(f"q: expected at least 2 characters of a name or identifier, got {q!r}")
    if not 1 <= limit <= 100:
        raise DataError(f"limit: expected 1 to 100, got {limit}")
    hits, fields = mask_search(ctx.store.search(q, limit=limit), who)
    for h in hits:
        ctx.audit.record(who, "search", h["profile_id"], fields, client)
    return hits


def list_segments(ctx: Context, who: Principal) -> dict[str, Any]:
    who.require("segments")
    rows = ctx.store.segments()
    if rows is None:
        return {"available": False, "segments": [],
                "note": "no segments table in this workspace yet: define and evaluate segments first"}
    return {"available": True, "segments": rows}

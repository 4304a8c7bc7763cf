"""What the API and the dashboard do, apart from HTTP: find, mask, audit, limit. Routes stay thin."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cx360.api.access import KeyRing, Principal, mask_events, mask_profile, mask_search
from cx360.api.audit import AuditLog
from cx360.api.limits import RateLimiter
from cx360.api.network import Proxies
from cx360.api.store import Store
from cx360.config import ServeSettings
from cx360.errors import DataError, ForbiddenError, NotFoundError

_PROFILE_ID = re.compile(r"[Pp][0-9a-fA-F]+")


@dataclass
class Context:
    """Everything a request needs, created once per server process."""

    root: Path
    store: Store
    keys: KeyRing
    audit: AuditLog
    settings: ServeSettings = field(default_factory=ServeSettings)

    def __post_init__(self) -> None:
        extra = [p for p in os.environ.get("CX360_TRUSTED_PROXIES", "").split(",") if p.strip()]
        self.proxies = Proxies([*self.settings.trusted_proxies, *extra])
        self.search_limit = RateLimiter(self.settings.search_per_minute, self.settings.search_burst)

    def close(self) -> None:
        self.audit.close()
        self.store.close()


def _find(
    ctx: Context, who: Principal, key: str, kind: str | None, action: str, client: str | None
) -> tuple[str, list[str]]:
    """The profile behind `key`, and the audit fields of the lookup itself: an identifier the caller
    looked up is personal data, whether it came in the path or in the query, found or not. A role
    without `pii` that looks up by identifier learns whether it is a customer's: such lookups spend
    the search limit's tokens."""
    if not who.can("pii") and (kind is not None or not _PROFILE_ID.fullmatch(key.strip())):
        ctx.search_limit.take(who.key_id)
    try:
        pid, matched = ctx.store.find(key, kind)
    except NotFoundError:
        looked_up = kind or ("profile" if _PROFILE_ID.fullmatch(key.strip()) else "identifier")
        if looked_up != "profile":
            ctx.audit.record(who, action, None, [f"query.{looked_up}"], client)
        if who.can("pii"):
            raise
        raise NotFoundError(
            f"no profile holds this {looked_up}, or it is ambiguous (your role sees no "
            "identifiers, so they are not repeated here)"
        ) from None
    return pid, [f"query.{k}" for k in matched if k != "profile"]


def get_profile(
    ctx: Context,
    who: Principal,
    key: str,
    *,
    kind: str | None = None,
    client: str | None = None,
    action: str = "profile",
) -> dict[str, Any]:
    """The profile (a `Profile` dump, see cx360.profiles.view) as `who` may see it; the read is audited."""
    who.require("profile")
    pid, query = _find(ctx, who, key, kind, action, client)
    shown, fields = mask_profile(ctx.store.profile(pid).model_dump(), who)
    ctx.audit.record(who, action, pid, [*query, *fields], client)
    return shown


def get_timeline(
    ctx: Context,
    who: Principal,
    pid: str,
    *,
    source: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
    client: str | None = None,
) -> dict[str, Any]:
    who.require("timeline")
    if not 1 <= limit <= 500:
        raise DataError(f"limit: expected 1 to 500, got {limit}")
    if since and until and since >= until:
        raise DataError(f"since ({since}) must be before until ({until})")
    pid, query = _find(ctx, who, pid, None, "timeline", client)
    page = ctx.store.timeline(pid, source=source, since=since, until=until, limit=limit, cursor=cursor)
    page["events"], fields = mask_events(page["events"], who)
    ctx.audit.record(who, "timeline", pid, [*query, *fields], client)
    return page


def query_kind(q: str) -> str:
    """What a search term looks like, for the audit log (which does not keep the term itself)."""
    q = q.strip()
    if _PROFILE_ID.fullmatch(q):
        return "profile_id"
    if "@" in q:
        return "email"
    if re.fullmatch(r"[+\d\s().-]+", q):
        return "number"
    return "text"


def search(ctx: Context, who: Principal, q: str, *, limit: int = 20, client: str | None = None) -> list[dict[str, Any]]:
    """Search by prefix. Roles with `pii` search names and identifiers; the others, profile ids only
    (a prefix search over data they may not see would spell it out one character at a time).
    Every search takes a token of the key's rate limit and is audited, hits or not."""
    who.require("search")
    if len(q.strip()) < 2:
        raise DataError(f"q: expected at least 2 characters of a name or identifier, got {q!r}")
    if not 1 <= limit <= 100:
        raise DataError(f"limit: expected 1 to 100, got {limit}")
    ctx.search_limit.take(who.key_id)
    shape = query_kind(q)
    ctx.audit.record(who, "search", None, [f"query.{shape}"], client)
    if not who.can("pii") and shape != "profile_id":
        raise ForbiddenError(
            f"role {who.role!r} may search by profile id only (P followed by its first "
            "characters); searching names and identifiers needs a role that sees personal "
            "data (admin, agent)"
        )
    kinds = None if who.can("pii") else ("profile_id",)
    hits, fields = mask_search(ctx.store.search(q, limit=limit, kinds=kinds), who)
    for h in hits:
        ctx.audit.record(who, "search", h["profile_id"], fields, client)
    return hits


def list_segments(ctx: Context, who: Principal) -> dict[str, Any]:
    who.require("segments")
    rows = ctx.store.segments()
    if rows is None:
        return {
            "available": False,
            "segments": [],
            "note": "no segments table in this workspace yet: define and evaluate segments first",
        }
    return {"available": True, "segments": rows}


def campaigns(ctx: Context, who: Principal) -> list[dict[str, Any]]:
    """Responses per offer. An offer made to only a few people says what those people were offered:
    for roles without `pii`, offers reaching fewer than `min_group_size` people are pooled in one row."""
    rows = ctx.store.campaigns
    if who.can("pii"):
        return rows
    k = ctx.settings.min_group_size
    shown = [r for r in rows if (r.get("people") or 0) >= k]
    small = [r for r in rows if (r.get("people") or 0) < k]
    if small:
        pooled = {c: sum(r[c] for r in small) for c in ("made", "accepted", "rejected", "ignored")}
        shown.append({"offer": f"({len(small)} offers to fewer than {k} people)", **pooled, "people": None})
    return shown

"""What the API and the dashboard do, apart from HTTP: find, mask, audit, limit. Routes stay thin."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cx360.api.access import KeyRing, Principal, mask_events, mask_profile, mask_search
from cx360.api.audit import AuditLog
from cx360.api.limits import RateLimiter
from cx360.api.network import Proxies
from cx360.api.store import Store
from cx360.config import CallSettings, CollectorSettings, Config, PrivacySettings, ServeSettings
from cx360.errors import ConfigError, DataError, ForbiddenError, NotFoundError, StageNotRunError
from cx360.privacy import ledger, reveal
from cx360.privacy.consent import Decision, Policy

if TYPE_CHECKING:
    from cx360.online.feed import Feeds
    from cx360.online.processor import Processor
    from cx360.online.triggers import Deliverer
    from cx360.privacy.vault import Vault
    from cx360.stream.collector import Collector

_PROFILE_ID = re.compile(r"[Pp][0-9a-fA-F]+")


@dataclass
class Context:
    """Everything a request needs, created once per server process."""

    root: Path
    store: Store
    keys: KeyRing
    audit: AuditLog
    settings: ServeSettings = field(default_factory=ServeSettings)
    calls: CallSettings = field(default_factory=CallSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    collector_settings: CollectorSettings = field(default_factory=CollectorSettings)
    config: Config | None = None  # the workspace's; the stream processor runs only with it
    vault: Vault | None = None  # with [privacy] vault on: the clear values, for roles with `pii`

    def __post_init__(self) -> None:
        import threading

        self.policy = Policy(self.privacy)
        self._collector: Collector | None = None
        self.processor: Processor | None = None
        self.deliverer: Deliverer | None = None
        self._collector_lock = threading.Lock()
        extra = [p for p in os.environ.get("CX360_TRUSTED_PROXIES", "").split(",") if p.strip()]
        self.proxies = Proxies([*self.settings.trusted_proxies, *extra])
        self.search_limit = RateLimiter(self.settings.search_per_minute, self.settings.search_burst)

    def collector(self, *, background: bool = True) -> Collector:
        """The collector of this process, opened at its first use (so a server that collects nothing
        opens no log partition); with `background`, it seals and drains its log as it goes."""
        with self._collector_lock:
            if self._collector is None:
                from cx360.stream.collector import Collector

                self._collector = Collector(self.root, self.collector_settings)
                if background:
                    self._collector.start()
                    self.start_online()
            return self._collector

    def start_online(self, feeds: Feeds | None = None) -> None:
        """Apply collected events to the online store, and deliver the triggers they fire: those of
        `feeds` (`cx360 stream`), or by default this process's own partition, unless `[stream] processor
        = "separate"` leaves them to `cx360 stream`."""
        if self.config is None or self.store.online is None:
            return
        from cx360.online.feed import Feeds
        from cx360.online.processor import Processor
        from cx360.online.triggers import Deliverer

        if feeds is None:
            if self._collector is None or self.config.stream.processor == "separate":
                return
            feeds = Feeds(self.root, self.store.online.offset, only=self._collector.partition.folder)
        self.processor = Processor(self.config, self.store.online, self.store, feeds, vault=self.vault)
        self.processor.start()
        if self.config.triggers:
            self.deliverer = Deliverer(
                self.store.online,
                self.config.triggers,
                self.config.trigger_delivery,
                self.config.collector.redis_url,
                consent=lambda pid, purpose, channel: decide(self, pid, purpose, channel),
            )
            self.deliverer.start()

    @property
    def running_collector(self) -> Collector | None:
        return self._collector

    def close(self) -> None:
        with self._collector_lock:
            for worker in (self.deliverer, self.processor):
                if worker is not None:
                    worker.close()
            if self._collector is not None:
                self._collector.close()
                self._collector = None
        self.audit.close()
        self.store.close()
        if self.vault is not None:
            self.vault.close()


def _find(
    ctx: Context, who: Principal, key: str, kind: str | None, action: str, client: str | None
) -> tuple[str, list[str]]:
    """The profile behind `key`, and the audit fields of the lookup itself: an identifier the caller
    looked up is personal data, whether it came in the path or in the query, found or not; a miss is
    audited whatever was looked up (a scan for profile ids shows in the log). A role
    without `pii` that looks up by identifier learns whether it is a customer's: such lookups spend
    the search limit's tokens."""
    if not who.can("pii") and (kind is not None or not _PROFILE_ID.fullmatch(key.strip())):
        ctx.search_limit.take(who.key_id)
    try:
        pid, matched = ctx.store.find(key, kind)
    except NotFoundError:
        looked_up = kind or ("profile" if _PROFILE_ID.fullmatch(key.strip()) else "identifier")
        ctx.audit.record(who, action, None, [f"query.{'profile_id' if looked_up == 'profile' else looked_up}"], client)
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
    profile = withhold_profiling(ctx, who, clear_profile(ctx, who, pid))
    shown, fields = mask_profile(profile, who, tokens=ctx.vault is not None)
    ctx.audit.record(who, action, pid, [*query, *fields], client)
    return shown


def clear_profile(ctx: Context, who: Principal, pid: str) -> dict[str, Any]:
    """The profile's dump; with the vault on and a role with `pii`, its identifiers and golden personal
    attributes revealed from the vault (the caller audits the read). Other roles never open the vault:
    they see tokens, and no personal attribute (the serving index holds none)."""
    if ctx.vault is None or not who.can("pii"):
        return ctx.store.profile(pid).model_dump()
    profile = ctx.store.profile(pid, reveal.golden(ctx.vault, [pid])[pid]).model_dump()
    return {**profile, "identifiers": reveal.clear_identifiers(ctx.vault, profile["identifiers"])}


def record_consent(ctx: Context, who: Principal, body: dict[str, Any], *, client: str | None = None) -> dict[str, Any]:
    """Record a consent change for the person behind `subject` (audited), and what the check now decides."""
    who.require("consents")
    pid, query = _find(ctx, who, body["subject"], body["kind"], "consent", client)
    at = body["at"]
    try:
        c = ledger.change(
            ctx.privacy,
            pid,
            body["purpose"],
            body["status"],
            channel=body["channel"],
            at=at.astimezone(dt.UTC).replace(tzinfo=None) if at else None,
            source="api",
            legal_basis=body["legal_basis"],
            evidence=body["evidence"] or f"api key {who.key_id}",
        )
    except ConfigError as exc:
        raise DataError(str(exc)) from None
    ctx.audit.record(who, "consent", pid, [*query, f"consents.{c.purpose}"], client)
    recorded = ledger.submit(ctx.root, c)
    decision = decide(ctx, pid, c.purpose, c.channel)
    return {"profile_id": pid, "consent_id": c.consent_id, "recorded": recorded, "decision": decision.as_dict()}


# What profiling produced about a person: answered only for the profiling purpose, with consent.
PROFILING_OUTPUT = {"traits": None, "breakdowns": {}, "scores": None, "segments": [], "archetype": None}


def decide(
    ctx: Context, pid: str, purpose: str, channel: str | None = None, *, rows: list[dict] | None = None
) -> Decision:
    """The policy check for one person now: the changes in the serving index and those the API took since
    (`rows`: those changes, read once by consent_rows for several checks)."""
    rows = consent_rows(ctx, pid) if rows is None else rows
    return ctx.policy.decide(rows, purpose, channel, dt.datetime.now(dt.UTC).replace(tzinfo=None))


def consent_rows(ctx: Context, pid: str) -> list[dict]:
    seen = ctx.store.consents(pid)
    known = {r["consent_id"] for r in seen}
    return seen + [r for r in ledger.intake(ctx.root, [pid]) if r["consent_id"] not in known]


def withhold_profiling(
    ctx: Context, who: Principal, profile: dict[str, Any], rows: list[dict] | None = None
) -> dict[str, Any]:
    """The profile without traits, scores, segments and archetype unless the key carries the profiling
    purpose and the person's consent to profiling holds; `withheld` says why."""
    if "profiling" not in who.purposes:
        reason = f"this API key is not for profiling (its purposes: {', '.join(sorted(who.purposes))})"
    else:
        decision = decide(ctx, profile["profile_id"], "profiling", rows=rows)
        if decision.allowed:
            return profile
        reason = f"the person does not consent to profiling ({decision.reason})"
    return {**profile, **PROFILING_OUTPUT, "withheld": reason}


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
    hits = ctx.store.search(q, limit=limit, kinds=kinds)
    if ctx.vault is not None and who.can("pii"):  # the index holds no names: the vault's golden records
        names = reveal.golden(ctx.vault, [h["profile_id"] for h in hits])
        hits = [{**h, **{a: names[h["profile_id"]].get(a) for a in ("first_name", "last_name")}} for h in hits]
    hits, fields = mask_search(hits, who)
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


def segment_members(
    ctx: Context,
    who: Principal,
    name: str,
    *,
    entered_since: dt.datetime | None = None,
    after: str | None = None,
    limit: int = 100,
    client: str | None = None,
) -> dict[str, Any]:
    """A page of a segment's current members. Membership is profiling output: the key must be for
    profiling, and members whose consent to profiling does not hold are withheld (counted, not named)."""
    who.require("segments")
    if "profiling" not in who.purposes:
        raise ForbiddenError(f"this API key is not for profiling (its purposes: {', '.join(sorted(who.purposes))})")
    segment = next((s for s in ctx.store.segments() or [] if s["name"] == name), None)
    if segment is None:
        raise NotFoundError(f"no segment named '{name}'")
    if segment["status"] != "ok":
        raise StageNotRunError(f"segment '{name}' failed at its last evaluation ({segment['error']})", stage="segments")
    page = ctx.store.segment_members(name, entered_since=entered_since, after=after, limit=limit)
    members = [m for m in page if decide(ctx, m["profile_id"], "profiling").allowed]
    if members:
        ctx.audit.record(who, "segment_members", None, [f"segment_members.{name}"], client)
    return {
        "segment": name,
        "as_of": segment["as_of"],
        "members": members,
        "withheld": len(page) - len(members),
        "next": page[-1]["profile_id"] if len(page) == limit else None,
    }


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


def route_call(
    ctx: Context,
    who: Principal,
    phone: str,
    *,
    at: dt.datetime | None = None,
    language: str | None = None,
    client: str | None = None,
) -> dict[str, Any]:
    """An incoming call from `phone` (the ANI): the caller through the identity graph, the likely
    reasons before `at` (default now) with evidence, the queue and the prior issues; audited."""
    from cx360.calls import features
    from cx360.calls import route as calls

    who.require("calls")
    at = at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if not phone.strip():
        raise DataError("phone: give the caller's number (the ANI)")
    try:
        pid, query = _find(ctx, who, phone, "phone", "call_route", client)
    except NotFoundError:
        holders = ctx.store.phone_holders(phone)  # the miss itself is audited by _find
        if len(holders) > 1:
            for h in holders:
                ctx.audit.record(who, "call_route", h, ["query.phone", "calls.candidates"], client)
            return calls.unknown(
                ctx.calls,
                at,
                holders,
                f"this phone is shared by {len(holders)} profiles and identifies none of them: ask who is "
                "calling; nothing was merged",
            )
        return calls.unknown(ctx.calls, at, note="unknown caller: no profile holds this phone")
    # forecasting a reason and routing by value and churn risk is profiling: the one policy check decides
    profile = withhold_profiling(ctx, who, ctx.store.profile(pid).model_dump())
    withheld = profile.get("withheld")
    events = ctx.store.events_for_call(pid, at, features.LOOKBACK)
    model = None if withheld else call_model(ctx)
    answer = calls.route(ctx.calls, model, profile, events, at, language=language, withheld=withheld)
    ctx.audit.record(who, "call_route", pid, [*query, "calls.reasons", "calls.prior_issues"], client)
    return answer


def call_model(ctx: Context):
    """The workspace's call-reason model (models/calls), loaded once; None until `cx360 calls train`."""
    from cx360.calls.forecast import MODEL_DIR
    from cx360.calls.model import MODEL_FILE, CallReasonModel

    path = ctx.root / MODEL_DIR
    stamp = (path / MODEL_FILE).stat().st_mtime_ns if (path / MODEL_FILE).exists() else None
    cached = getattr(ctx, "_call_model", (None, None))
    if cached[0] != stamp:
        cached = (stamp, CallReasonModel.load(path) if stamp is not None else None)
        ctx._call_model = cached
    return cached[1]


def call_outcomes(ctx: Context, who: Principal) -> dict[str, Any]:
    """First-contact resolution and repeat calls per reason and queue; for roles without `pii`, reasons
    of fewer than `min_group_size` people are pooled (as campaigns are)."""
    import pandas as pd

    from cx360.calls import outcomes

    who.require("segments")
    frame = pd.DataFrame(ctx.store.calls, columns=["key", "profile_id", "at", "reason", "queue", "outcome"])
    report = outcomes.summarise(frame)
    return report if who.can("pii") else outcomes.pooled(report, ctx.settings.min_group_size)


def prior_issues(ctx: Context, who: Principal, pid: str, *, client: str | None = None) -> dict[str, Any] | None:
    """The agent's summary of a customer's last calls, complaints and open issues (roles with `calls`)."""
    from cx360.calls import summary

    if not who.can("calls"):
        return None
    at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    events = ctx.store.events_for_call(pid, at, summary.REPEAT_WINDOW)
    ctx.audit.record(who, "call_summary", pid, ["calls.prior_issues"], client)
    return summary.prior_issues(events, at)


def next_best_action(
    ctx: Context, who: Principal, key: str, *, kind: str | None = None, at: dt.datetime, client: str | None = None
) -> dict[str, Any]:
    """The person's next best action at `at` (cx360.decisions.realtime), from the last `cx360 decide`'s
    models and the person's profile, history (cx360.api.histories) and consents as served; audited.
    Without consent to profiling: none."""
    from cx360.api import histories
    from cx360.decisions import realtime
    from cx360.decisions.decide import MODEL_DIR
    from cx360.decisions.responses import MODEL_FILE, Models

    who.require("profile")
    pid, query = _find(ctx, who, key, kind, "decision", client)
    config = workspace_config(ctx)
    if not (ctx.root / MODEL_DIR / MODEL_FILE).is_file():
        raise StageNotRunError("no decision models yet", stage="decide", command=f"cx360 decide -w {ctx.root}")
    models = _cached(
        ctx, "_decision_models", ctx.root / MODEL_DIR / MODEL_FILE, lambda: Models.load(ctx.root / MODEL_DIR)
    )
    consents = consent_rows(ctx, pid)
    profile = withhold_profiling(ctx, who, ctx.store.profile(pid).model_dump(), consents)
    ctx.audit.record(who, "decision", pid, [*query, "decisions.offer", "traits", "timeline"], client)
    if "profiling" not in who.purposes:  # the caller may profile no one (the person's own refusal: below)
        return {
            "decision_id": f"{pid}:{at:%Y%m%dT%H%M}:none",
            "profile_id": pid,
            "offer": "",
            "channel": "",
            "send_at": None,
            "expected_value": 0.0,
            "propensity": None,
            "probability": 1.0,
            "reasons": f"no offer: {profile['withheld']}",
            "candidates": [],
        }
    allowed = lambda p, c: decide(ctx, pid, p, c, rows=consents).allowed  # noqa: E731
    person = realtime.person(profile, histories.read(ctx.store, pid), config, allowed, at)
    row = realtime.decide_one(models, config, person, at, dt.datetime.now(dt.UTC).replace(tzinfo=None))
    return {**row, "offer": row["offer"] or "", "channel": row["channel"] or ""}


def _cached(ctx: Context, name: str, path: Path, load):
    """`load()`, again only when `path` changed since the last load."""
    stamp = path.stat().st_mtime_ns if path.exists() else None
    cached = getattr(ctx, name, (None, None))
    if cached[0] != stamp or stamp is None:
        cached = (stamp, load())
        setattr(ctx, name, cached)
    return cached[1]


def workspace_config(ctx: Context):
    """The workspace file as it is now (read again when it changed)."""
    from cx360.config import CONFIG_FILE, load_config

    return _cached(ctx, "_config", ctx.root / CONFIG_FILE, lambda: load_config(ctx.root / CONFIG_FILE))

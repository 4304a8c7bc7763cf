"""API keys, roles and masking of personal data.

Keys look like `cx360_<id>_<secret>`; the workspace keeps only the id, a random salt and
sha256(salt + secret) in `access.sqlite`, so a leaked file does not leak keys. The secret
carries 256 random bits, which is why a fast hash is enough (scrypt protects low-entropy
passwords, and would cost tens of milliseconds per request).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cx360 import schema
from cx360.errors import AuthError, ConfigError, ForbiddenError, NotFoundError
from cx360.filemodes import private
from cx360.trait_catalog import TRAITS

ACCESS_FILE = "access.sqlite"

# What each role may do. `pii`: sees personal data unmasked (and every such read is audited).
ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset({"profile", "timeline", "segments", "search", "pii", "audit", "calls", "consents"}),
    "agent": frozenset({"profile", "timeline", "segments", "search", "pii", "calls", "consents"}),
    "analyst": frozenset({"profile", "timeline", "segments", "search"}),
    "marketer": frozenset({"profile", "segments", "search"}),
    "writer": frozenset({"collect"}),  # a write key: posts Segment-spec calls of its source, reads nothing
}
PERMISSIONS = {
    "profile": "read a profile (attributes, scores, segments)",
    "timeline": "read a profile's events",
    "segments": "list segments",
    "search": "search by name or identifier prefix",
    "pii": "see personal data unmasked",
    "audit": "read the audit log",
    "calls": "route a call: its likely reasons with their evidence, and the caller's prior issues",
    "consents": "record a person's consent changes",
    "collect": "post events to the collector (/v1/batch, /v1/track, ...)",
}
# What a key is used for, when `cx360 keys create` names no --purpose: reading profiles, traits and scores.
DEFAULT_KEY_PURPOSES = ("profiling",)
PII_ATTRIBUTES = frozenset(c.name for c in schema.ATTRIBUTES if c.pii)
# Text traits carry values taken from source data (a call's reason, a place, an offer, a product).
TEXT_TRAITS = frozenset(t.name for t in TRAITS if t.dtype == "string")
# Breakdowns keyed by cx360's own vocabulary; every other breakdown is keyed by source values.
PUBLIC_BREAKDOWNS = frozenset({"events_by_channel", "complaints_by_topic"})
MAX_KEY_BYTES = 256  # a real key is 48 characters: anything longer is refused before any lookup
_KEY_ID = re.compile(r"[0-9A-Za-z]{1,32}")
_SOURCE = re.compile(r"[a-z][a-z0-9_]{0,62}")  # as config.SourceName


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    role: str
    purposes: frozenset[str] = frozenset(DEFAULT_KEY_PURPOSES)  # what the caller uses the data for
    source: str | None = None  # a writer key's source

    def can(self, permission: str) -> bool:
        return permission in ROLES.get(self.role, ())

    def require(self, permission: str) -> None:
        if not self.can(permission):
            allowed = ", ".join(r for r, p in ROLES.items() if permission in p)
            raise ForbiddenError(f"role {self.role!r} may not {PERMISSIONS[permission]} (roles that may: {allowed})")


def _connect(path: Path) -> sqlite3.Connection:
    private(path)
    con = sqlite3.connect(path, timeout=10, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("""CREATE TABLE IF NOT EXISTS api_keys (key_id TEXT PRIMARY KEY, name TEXT, role TEXT,
                   salt BLOB, digest BLOB, created_at TEXT, revoked_at TEXT)""")
    if "purposes" not in {r[1] for r in con.execute("PRAGMA table_info(api_keys)")}:
        with con:  # keys made before purposes existed carry the default ones
            con.execute("ALTER TABLE api_keys ADD COLUMN purposes TEXT")
    if "source" not in {r[1] for r in con.execute("PRAGMA table_info(api_keys)")}:
        with con:  # writer keys name their source
            con.execute("ALTER TABLE api_keys ADD COLUMN source TEXT")
    return con


def _purposes(text: str | None) -> frozenset[str]:
    return frozenset(text.split(",")) if text else frozenset(DEFAULT_KEY_PURPOSES)


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode()).digest()


def create_key(
    root: Path,
    role: str,
    name: str | None = None,
    purposes: Iterable[str] = DEFAULT_KEY_PURPOSES,
    source: str | None = None,
) -> tuple[str, str]:
    """A new key for `role`, used for `purposes` (checked against the workspace by the caller), a writer's
    for `source`: returns (key id, the key). The key itself is not stored anywhere."""
    if role not in ROLES:
        raise ConfigError(f"--role: expected one of {', '.join(ROLES)}, got {role!r}")
    if (role == "writer") != (source is not None):
        raise ConfigError("--source: a writer key needs --source NAME, and only a writer key takes one")
    if source is not None and not _SOURCE.fullmatch(source):
        raise ConfigError(f"--source: {source!r} is not a source name (lower-case letters, digits, _; a letter first)")
    purposes = sorted(set(purposes)) or list(DEFAULT_KEY_PURPOSES)
    key_id, secret, salt = secrets.token_hex(4), secrets.token_urlsafe(32), secrets.token_bytes(16)
    with _connect(root / ACCESS_FILE) as con:
        con.execute(
            "INSERT INTO api_keys (key_id, name, role, salt, digest, created_at, revoked_at, purposes, source) "
            "VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)",
            (
                key_id,
                name or f"{role}-{key_id}",
                role,
                salt,
                _digest(salt, secret),
                dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                ",".join(purposes),
                source,
            ),
        )
    return key_id, f"cx360_{key_id}_{secret}"


def list_keys(root: Path) -> list[dict[str, Any]]:
    with _connect(root / ACCESS_FILE) as con:
        cur = con.execute(
            "SELECT key_id, name, role, purposes, source, created_at, revoked_at FROM api_keys ORDER BY created_at"
        )
        rows = [dict(zip([d[0] for d in cur.description], r, strict=True)) for r in cur.fetchall()]
    for r in rows:
        r["purposes"] = ",".join(sorted(_purposes(r["purposes"])))
    return rows


def revoke_key(root: Path, key_id: str) -> None:
    with _connect(root / ACCESS_FILE) as con:
        n = con.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
            (dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), key_id),
        ).rowcount
    if not n:
        raise NotFoundError(f"no active key {key_id!r} (see `cx360 keys list`)")


class KeyRing:
    """Checks keys against access.sqlite. Known keys' rows are cached for a few seconds (so a
    revocation takes effect quickly without a database read per request), at most `cap` of them,
    least recently used out first. Unknown ids are never cached: whatever a caller invents costs
    one indexed read and no memory."""

    def __init__(self, root: Path, ttl: float = 5.0, cap: int = 1024):
        self._con = _connect(root / ACCESS_FILE)
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[float, tuple]] = OrderedDict()
        self.ttl, self.cap = ttl, cap

    def authenticate(self, key: str | None) -> Principal:
        if not key:
            raise AuthError("missing API key: send `Authorization: Bearer <key>` (create one with `cx360 keys create`)")
        if len(key) > MAX_KEY_BYTES:
            raise AuthError(f"malformed API key: longer than {MAX_KEY_BYTES} characters")
        prefix, _, rest = key.partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != "cx360" or not _KEY_ID.fullmatch(key_id) or not secret:
            raise AuthError("malformed API key: expected cx360_<id>_<secret> as `cx360 keys create` printed it")
        row = self._row(key_id)
        if row is None or not hmac.compare_digest(_digest(row[3], secret), row[4]):
            raise AuthError(f"unknown API key {key_id!r}")
        if row[5]:
            raise AuthError(f"API key {key_id!r} was revoked at {row[5]}")
        return Principal(key_id=key_id, name=row[1], role=row[2], purposes=_purposes(row[6]), source=row[7])

    def principal(self, key_id: str) -> Principal:
        """The principal of a key id already authenticated (a dashboard session), if still active."""
        row = self._row(key_id)
        if row is None or row[5]:
            raise AuthError(f"API key {key_id!r} is unknown or revoked: log in again")
        return Principal(key_id=key_id, name=row[1], role=row[2], purposes=_purposes(row[6]), source=row[7])

    def _row(self, key_id: str) -> tuple | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key_id)
            if cached and now - cached[0] < self.ttl:
                self._cache.move_to_end(key_id)
                return cached[1]
            row = self._con.execute(
                "SELECT key_id, name, role, salt, digest, revoked_at, purposes, source FROM api_keys WHERE key_id = ?",
                (key_id,),
            ).fetchone()
            self._cache.pop(key_id, None)
            if row is not None:
                self._cache[key_id] = (now, row)
                while len(self._cache) > self.cap:
                    self._cache.popitem(last=False)
        return row

    def cached(self) -> int:
        return len(self._cache)


def mask(value: Any) -> Any:
    """Keep the first character of text (enough to tell two rows apart on screen), hide the rest."""
    if value is None:
        return None
    text = str(value)
    return (text[:1] + "***") if len(text) > 1 else "***"


def mask_record(record: str | None) -> str | None:
    """`crm:C000186` names a customer in a source system: keep the source, hide the record's key."""
    if record is None:
        return None
    return record.partition(":")[0] + ":***"


def personal_fields(
    attributes: Iterable[str],
    identifiers: Iterable[str],
    traits: Iterable[str] = (),
    breakdowns: Iterable[str] = (),
    *,
    records: bool = False,
) -> list[str]:
    """The audit names of the personal fields in a profile with these attributes, identifier kinds,
    traits and breakdowns (`records`: it names the source records its attributes came from)."""
    return (
        [f"attributes.{a}" for a in attributes if a in PII_ATTRIBUTES]
        + (["attributes.record"] if records else [])
        + [f"identifiers.{k}" for k in identifiers]
        + [f"traits.{t}" for t in traits if t in TEXT_TRAITS]
        + [f"breakdowns.{b}" for b in breakdowns if b not in PUBLIC_BREAKDOWNS]
    )


def mask_profile(
    profile: dict[str, Any], principal: Principal, *, tokens: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """The profile as this principal may see it, and the personal fields it reads unmasked. `tokens`:
    its identifiers are the vault's tokens (a role without `pii` sees them as they are)."""
    attributes, traits = profile["attributes"], profile["traits"] or {}  # a Profile dump (cx360.profiles.view)
    fields = personal_fields(
        attributes,
        profile["identifiers"],
        [t for t, v in traits.items() if v is not None],
        profile["breakdowns"],
        records=any(v.get("record") for v in attributes.values()),
    )
    if principal.can("pii"):
        return profile, fields
    shown = dict(profile)
    shown["attributes"] = {
        a: {
            **v,
            "value": mask(v["value"]) if a in PII_ATTRIBUTES else v["value"],
            **({"record": mask_record(v["record"])} if "record" in v else {}),
        }
        for a, v in attributes.items()
    }
    if not tokens:
        shown["identifiers"] = {k: [mask(v) for v in vs] for k, vs in profile["identifiers"].items()}
    if profile["traits"] is not None:
        shown["traits"] = {t: (mask(v) if t in TEXT_TRAITS else v) for t, v in traits.items()}
    shown["breakdowns"] = {
        b: (values if b in PUBLIC_BREAKDOWNS else _mask_keys(values)) for b, values in profile["breakdowns"].items()
    }
    churn = (profile.get("scores") or {}).get("churn")
    if churn and churn.get("reasons"):  # `top_category=Groceries (+0.40)` names a text trait's value
        shown["scores"] = {
            **profile["scores"],
            "churn": {**churn, "reasons": [_mask_reason(r) for r in churn["reasons"]]},
        }
    return shown, []


def _mask_reason(reason: str) -> str:
    name, eq, rest = reason.partition("=")
    if not eq or name.strip() not in TEXT_TRAITS:
        return reason
    value, sep, contribution = rest.partition(" (")
    return f"{name}={mask(value)}{sep}{contribution}"


def _mask_keys(values: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in values.items():
        out[mask(k)] = out.get(mask(k), 0.0) + (v or 0.0)
    return out


def mask_events(events: list[dict[str, Any]], principal: Principal) -> tuple[list[dict[str, Any]], list[str]]:
    """Event properties are personal data (free text, places): hidden from roles without `pii`."""
    if principal.can("pii"):
        return events, (["events.properties"] if any(e["properties"] for e in events) else [])
    return [{**e, "properties": dict.fromkeys(e["properties"], "***")} for e in events], []


def mask_search(hits: list[dict[str, Any]], principal: Principal) -> tuple[list[dict[str, Any]], list[str]]:
    if principal.can("pii"):
        return hits, ["search.name", "search.term"] if hits else []
    masked = [
        {
            **h,
            "first_name": mask(h.get("first_name")),
            "last_name": mask(h.get("last_name")),
            "term": h["term"] if h["kind"] == "profile_id" else mask(h["term"]),
        }
        for h in hits
    ]
    return masked, []

"""Consent changes recorded by hand (`cx360 consents ...`) or by the API (`POST /v1/consents`).

Sources load the `consents` table through ingest; the CLI appends to it directly. The API cannot
write the warehouse while `cx360 run` may hold it, so its changes go to `consents.sqlite` in the
workspace (a small ledger safe for many processes): the API reads it at once, and the next
`cx360 ingest` copies it into the warehouse, where every batch check sees it. A change's id is a
hash of what it says, so recording the same change twice (a retried request) keeps one row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from cx360 import schema
from cx360.config import CONSENT_STATUSES, PrivacySettings
from cx360.errors import ConfigError
from cx360.filemodes import private

if TYPE_CHECKING:
    from cx360.engine import Engine

INTAKE_FILE = "consents.sqlite"
_FIELDS = ("consent_id", "ts", "source", "profile_id", "purpose", "channel", "status", "legal_basis", "evidence")


@dataclass(frozen=True)
class Change:
    profile_id: str
    purpose: str
    channel: str | None
    status: str
    ts: dt.datetime
    source: str
    legal_basis: str | None = None
    evidence: str | None = None

    @property
    def consent_id(self) -> str:
        body = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()[:32]

    def row(self) -> dict[str, Any]:
        return {"consent_id": self.consent_id, **asdict(self)}


def change(
    privacy: PrivacySettings,
    profile_id: str,
    purpose: str,
    status: str,
    *,
    channel: str | None = None,
    at: dt.datetime | None = None,
    source: str,
    legal_basis: str | None = None,
    evidence: str | None = None,
) -> Change:
    """A checked change: a declared purpose, a channel it has, a known status, a time not in the future."""
    if status not in CONSENT_STATUSES:
        raise ConfigError(f"status: expected one of {', '.join(CONSENT_STATUSES)}, got {status!r}")
    privacy.check_channel(purpose, channel)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if at is not None and at.tzinfo is not None:
        at = at.astimezone(dt.UTC).replace(tzinfo=None)
    if at is not None and at > now + dt.timedelta(minutes=5):
        raise ConfigError(f"at: {at:%Y-%m-%d %H:%M} is in the future; a consent change is recorded when it happened")
    return Change(profile_id, purpose, channel, status, at or now, source, legal_basis, evidence)


def _arrow(rows: list[dict[str, Any]]) -> pa.Table:
    target = schema.ibis_schema("consents").to_pyarrow()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    full = [{**dict.fromkeys(target.names), "ingested_at": now, **r} for r in rows]
    return pa.Table.from_pylist(full, schema=target)


def append(engine: Engine, rows: list[dict[str, Any]]) -> int:
    """Write changes to the warehouse ledger, skipping those already there; returns how many were new."""
    if not rows:
        return 0
    ids = [r["consent_id"] for r in rows]
    ledger = engine.table("consents")
    held = set(
        engine.to_arrow(ledger.filter(ledger.consent_id.isin(ids)).select("consent_id"), step="consents: known ids")[
            "consent_id"
        ].to_pylist()
    )
    new = [r for r in {r["consent_id"]: r for r in rows}.values() if r["consent_id"] not in held]
    if new:
        engine.append("consents", _arrow(new), step="consents: record")
    return len(new)


# -- the API's intake ------------------------------------------------------------------------
def _connect(root: Path) -> sqlite3.Connection:
    path = root / INTAKE_FILE
    private(path)
    con = sqlite3.connect(path, timeout=10, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(
        "CREATE TABLE IF NOT EXISTS consents (consent_id TEXT PRIMARY KEY, ts TEXT, source TEXT, profile_id TEXT, "
        "purpose TEXT, channel TEXT, status TEXT, legal_basis TEXT, evidence TEXT)"
    )
    con.execute("CREATE INDEX IF NOT EXISTS consents_profile ON consents (profile_id)")
    return con


def submit(root: Path, c: Change) -> bool:
    """Keep an API change in the intake; False when the same change was recorded before."""
    r = c.row()
    with _connect(root) as con:
        cur = con.execute(
            f"INSERT OR IGNORE INTO consents VALUES ({', '.join('?' * len(_FIELDS))})",
            [r["ts"].isoformat() if k == "ts" else r[k] for k in _FIELDS],
        )
        return cur.rowcount == 1


def intake(root: Path, profile_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """The intake's changes (of the given profiles), as rows of the consents table."""
    if not (root / INTAKE_FILE).exists():
        return []
    con = _connect(root)
    try:
        sql = f"SELECT {', '.join(_FIELDS)} FROM consents"
        if profile_ids is not None:
            sql += f" WHERE profile_id IN ({', '.join('?' * len(profile_ids))})"
        rows = con.execute(sql, profile_ids or []).fetchall()
    finally:
        con.close()
    out = [dict(zip(_FIELDS, r, strict=True)) for r in rows]
    for r in out:
        r["ts"] = dt.datetime.fromisoformat(r["ts"])
    return out


def drain(engine: Engine, root: Path) -> int:
    """Copy the intake's changes into the warehouse ledger (each once); returns how many were new."""
    return append(engine, intake(root))

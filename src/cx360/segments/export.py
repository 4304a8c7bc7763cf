"""Audiences out: a segment's current members, checked against consent for the export's purpose and
channel, with the identifiers that purpose allows.

An export is refused for a segment that failed or is stale (evaluated on older profiles than the
current ones): its members would not be the segment's. Members whose consent does not allow the
purpose now are withheld and counted. The identifiers come from the identity map: the purpose's
`identifiers` ([privacy.purposes.NAME]), narrowed to what the channel reaches (e-mail for `email`,
the phone for `sms` and `call`, the device for `push`). With `hashed`, each identifier is written as
the SHA-256 of its normalised form instead (e-mail trimmed and lower-cased, phone in E.164 with its
`+`), the form customer-match uploads of ad platforms take. With `[privacy] vault` on, the identity map
holds tokens, and the export reveals from the vault exactly the contacts it writes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import ibis.expr.types as ir
import pyarrow as pa

from cx360.errors import ConfigError, NotFoundError, StageNotRunError
from cx360.filemodes import write_private_table
from cx360.privacy import reveal
from cx360.privacy.consent import Policy
from cx360.segments.evaluate import listing

if TYPE_CHECKING:
    from cx360.workspace import Workspace

# An export that names no purpose is the segment itself leaving: profile ids, for profiling.
DEFAULT_PURPOSE = "profiling"
# What each channel reaches a person through; a channel not named here carries no identifier.
CHANNEL_IDENTIFIERS = {
    "email": ("email",),
    "sms": ("phone",),
    "call": ("phone",),
    "messenger": ("phone",),
    "push": ("device_id",),
    "mobile_app": ("device_id",),
}


@dataclass
class Audience:
    segment: str
    purpose: str
    channel: str | None
    as_of: dt.datetime
    members: pa.Table  # profile_id, one column per identifier, entered_at
    withheld: int  # members the consent check left out

    @property
    def identifiers(self) -> list[str]:
        return [c for c in self.members.column_names if c not in ("profile_id", "entered_at")]


def check_exportable(ws: Workspace, name: str) -> dict:
    """The segment's listing row, or an error saying why its members cannot leave now."""
    rows = {r["name"]: r for r in listing(ws)}
    if name not in rows:
        raise NotFoundError(f"no segment named '{name}'; segments: {', '.join(sorted(rows)) or 'none'}")
    row = rows[name]
    if row["status"] == "never evaluated":
        raise StageNotRunError(f"segment '{name}' is declared but not evaluated", stage="segments", workspace=ws.root)
    if row["status"] != "ok":
        raise StageNotRunError(
            f"segment '{name}' failed at its last evaluation ({row['error']}); fix it and evaluate again",
            stage="segments",
            workspace=ws.root,
        )
    if not row["fresh"]:
        raise StageNotRunError(
            f"segment '{name}' is stale: evaluated on the profiles as of {row['as_of']}, which have been rebuilt since",
            stage="segments",
            workspace=ws.root,
        )
    return row


def purpose_of(ws: Workspace, name: str, purpose: str | None, channel: str | None) -> tuple[str, str | None]:
    """The export's purpose and channel: the segment's own when it declares them, else those given, else
    profiling (whose default carries no identifier)."""
    declared = next((s for s in ws.config.segments if s.name == name), None)
    if declared is not None and declared.purpose is not None:
        if purpose is not None and (purpose, channel) != (declared.purpose, declared.channel):
            what = declared.purpose + (f" by {declared.channel}" if declared.channel else "")
            raise ConfigError(f"segment '{name}' is declared for {what}; it can be exported only for that")
        purpose, channel = declared.purpose, declared.channel
    if purpose is None:
        if channel is not None:
            raise ConfigError(f"a channel ({channel!r}) needs the purpose it is for")
        purpose = DEFAULT_PURPOSE
    ws.config.privacy.check_channel(purpose, channel)
    return purpose, channel


def allowed_identifiers(ws: Workspace, purpose: str, channel: str | None) -> list[str]:
    kinds = ws.config.privacy.purpose(purpose).identifiers
    if channel is not None:
        kinds = [k for k in kinds if k in CHANNEL_IDENTIFIERS.get(channel, ())]
    return list(kinds)


def members_with_identifiers(ws: Workspace, name: str, kinds: list[str], allowed: ir.Table) -> ir.Table:
    """Current members the consent check allows, one row each, with the first value of each identifier kind."""
    engine = ws.engine
    m = engine.table("segment_members")
    t = m.filter((m.segment == name) & m.exited_at.isnull()).select("profile_id", "entered_at")
    t = t.semi_join(allowed, "profile_id")
    mapping = engine.table("identity_map")
    for kind in kinds:
        nodes = mapping.filter(mapping.kind == kind)
        values = nodes.group_by("profile_id").aggregate(**{kind: nodes.node.substr(len(kind) + 1).min()})
        t = t.left_join(values, "profile_id").drop("profile_id_right")
    return t.select("profile_id", *kinds, "entered_at").order_by("profile_id")


def _sha256(values: pa.ChunkedArray, kind: str) -> pa.Array:
    def norm(v: str) -> str:
        v = v.strip()
        return v.lower() if kind == "email" else v

    return pa.array([None if v is None else hashlib.sha256(norm(v).encode()).hexdigest() for v in values.to_pylist()])


def audience(
    ws: Workspace,
    name: str,
    *,
    purpose: str | None = None,
    channel: str | None = None,
    hashed: bool = False,
    now: dt.datetime | None = None,
) -> Audience:
    """The segment's members that may leave for the purpose now, with the identifiers it allows."""
    row = check_exportable(ws, name)
    purpose, channel = purpose_of(ws, name, purpose, channel)
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    kinds = allowed_identifiers(ws, purpose, channel)
    engine = ws.engine
    allowed = Policy(ws.config.privacy).allowed(engine, purpose, channel, now)
    table = engine.to_arrow(members_with_identifiers(ws, name, kinds, allowed), step=f"export '{name}'")
    table = reveal.clear_columns(ws, table, kinds)
    if hashed:
        for kind in kinds:
            i = table.column_names.index(kind)
            table = table.set_column(i, f"{kind}_sha256", _sha256(table.column(kind), kind))
    m = engine.table("segment_members")
    current = engine.scalar(
        m.filter((m.segment == name) & m.exited_at.isnull()).count(), step=f"export '{name}': members"
    )
    return Audience(name, purpose, channel, row["as_of"], table, int(current) - table.num_rows)


def write(aud: Audience, path: Path, fmt: str) -> None:
    """The audience as CSV or Parquet, written whole or not at all, readable by its owner only."""
    write_private_table(aud.members, path, fmt)

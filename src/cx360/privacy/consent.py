"""The one consent check: may a person's data be used for a purpose, on a channel, at a time.

Everything that uses personal data for a purpose asks here: segments that declare a purpose, the
API (the `profiling` purpose gates traits and scores), the consent trait, and exports, triggers and
decisions as they come. `allowed` answers for everybody at once (an Ibis table of profile ids, so
it runs where the data lives); `decide` answers for one person, with the reason.

The rule, in one place:
- the changes that count are the ledger's rows for the purpose whose time is at or before `at`; for
  a per-channel purpose, rows for the channel and rows without a channel (the whole purpose);
- the latest change by event time decides (arrival order never matters); at one instant the most
  restrictive status wins (withdrawn, then denied, then granted), then the greatest consent_id, so
  that every engine and every run picks the same row;
- with no change, the purpose's default applies: `opt-out` allows, `opt-in` does not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir

from cx360 import node_keys
from cx360.config import CONSENT_STATUSES, PrivacySettings

if TYPE_CHECKING:
    from cx360.engine import Engine

# At one instant the most restrictive change wins: a lower rank sorts first.
STATUS_RANK = {"withdrawn": 0, "denied": 1, "granted": 2}
assert set(STATUS_RANK) == set(CONSENT_STATUSES)
RESOLVED = ("profile_id", "consent_id", "ts", "purpose", "channel", "status", "legal_basis", "source")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    purpose: str
    channel: str | None
    status: str | None  # of the change that decided; None when the default did
    since: dt.datetime | None
    source: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "channel": self.channel,
            "allowed": self.allowed,
            "status": self.status,
            "since": self.since,
            "source": self.source,
            "reason": self.reason,
        }


def _sort_key(row: dict[str, Any]) -> tuple:
    """Python's form of the ordering in `latest`: the greatest key decides."""
    return (row["ts"], -STATUS_RANK[row["status"]], row["consent_id"] or "")


class Policy:
    """The purposes of a workspace ([privacy.purposes]) and the check over its consents ledger."""

    def __init__(self, privacy: PrivacySettings):
        self.privacy = privacy
        self.purposes = privacy.all_purposes

    def pairs(self) -> list[tuple[str, str | None]]:
        """Every (purpose, channel) a consent can be asked for: channel None for a purpose without channels."""
        return [(p, c) for p, spec in sorted(self.purposes.items()) for c in (spec.channels or [None])]

    # -- everybody at once ---------------------------------------------------------------
    def latest(self, rows: ir.Table, purpose: str, channel: str | None, at: dt.datetime) -> ir.Table:
        """The change that decides, per profile: profile_id, status, ts, source (rows as in RESOLVED)."""
        self.privacy.check_channel(purpose, channel)
        applies = rows.channel.isnull() if channel is None else (rows.channel == channel) | rows.channel.isnull()
        r = rows.filter((rows.purpose == purpose) & (rows.ts <= ibis.literal(at, "timestamp")) & applies)
        r = r.mutate(_rank=r.status.substitute(STATUS_RANK, else_=0))
        r = r.mutate(
            _n=ibis.row_number().over(
                group_by="profile_id", order_by=[ibis.desc("ts"), "_rank", ibis.desc("consent_id")]
            )
        )
        return r.filter(r._n == 0).select("profile_id", "status", "ts", "source")

    def allowed(self, engine: Engine, purpose: str, channel: str | None, at: dt.datetime) -> ir.Table:
        """The profile ids whose data may be used for `purpose` on `channel` at `at`."""
        last = self.latest(resolved(engine), purpose, channel, at)
        people = engine.table("profiles").select("profile_id")
        if self.purposes[purpose].default == "opt-out":
            return people.anti_join(last.filter(last.status != "granted"), "profile_id")
        return people.semi_join(last.filter(last.status == "granted"), "profile_id")

    def granted_pairs(self, engine: Engine, at: dt.datetime) -> ir.Table:
        """profile_id, consents: the `purpose` or `purpose:channel` pairs allowed at `at`, '|'-separated."""
        people = engine.table("profiles").select("profile_id")
        parts = [
            self.allowed(engine, p, c, at).select("profile_id", pair=ibis.literal(p if c is None else f"{p}:{c}"))
            for p, c in self.pairs()
        ]
        pairs = ibis.union(*parts, distinct=False)
        joined = pairs.group_by("profile_id").aggregate(consents=pairs.pair.collect().sort().join("|"))
        return people.left_join(joined, "profile_id").select("profile_id", consents=joined.consents.fill_null(""))

    # -- one person ------------------------------------------------------------------------
    def decide(self, rows: list[dict[str, Any]], purpose: str, channel: str | None, at: dt.datetime) -> Decision:
        """The decision for one person from their ledger rows (dicts with the RESOLVED columns)."""
        self.privacy.check_channel(purpose, channel)
        applies = [
            r
            for r in rows
            if r["purpose"] == purpose
            and r["ts"] <= at
            and (r["channel"] is None or (channel is not None and r["channel"] == channel))
        ]
        what = purpose if channel is None else f"{purpose} by {channel}"
        if not applies:
            default = self.purposes[purpose].default
            allowed = default == "opt-out"
            reason = f"no consent recorded for {what}; the purpose is {default}"
            return Decision(allowed, purpose, channel, None, None, None, reason)
        last = max(applies, key=_sort_key)
        reason = f"{what}: {last['status']} at {last['ts']:%Y-%m-%d %H:%M} ({last['source']})"
        return Decision(
            last["status"] == "granted", purpose, channel, last["status"], last["ts"], last["source"], reason
        )


def resolved(engine: Engine) -> ir.Table:
    """The ledger with the person of each row: the profile it names (following merges), else the profile of
    its strongest identifier that the identity map knows. Rows of people cx360 does not know yet are left out
    until identity resolution places them."""
    c = engine.table("consents").rename(_named="profile_id")
    ids = engine.table("profile_ids")
    survivor = ids.select(_id=ids.profile_id, _survivor=ibis.coalesce(ids.merged_into, ids.profile_id))
    joined = c.left_join(survivor, c._named == survivor._id)
    mapping = engine.table("identity_map")
    for kind in node_keys.ATTRIBUTION_ORDER:
        m = mapping.filter(mapping.kind == kind)
        m = m.select(**{f"_node_{kind}": m.node, f"_pid_{kind}": m.profile_id})
        joined = joined.left_join(m, node_keys.identifier_expr(kind, joined[kind]) == m[f"_node_{kind}"])
    pid = ibis.coalesce(
        ibis._._survivor, ibis._._named, *(ibis._[f"_pid_{kind}"] for kind in node_keys.ATTRIBUTION_ORDER)
    )
    joined = joined.mutate(profile_id=pid)
    return joined.filter(joined.profile_id.notnull()).select(*RESOLVED)

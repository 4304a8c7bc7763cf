"""Past calls of a workspace and what happened before each: the training and evaluation data of the
call-reason forecast, read from `profile_events` (so only calls attributed to a person count)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import pandas as pd

from cx360.calls import features
from cx360.errors import StageNotRunError

if TYPE_CHECKING:
    from cx360.workspace import Workspace


@dataclass
class CallHistory:
    calls: pd.DataFrame  # key (call event id), profile_id, at, reason, queue, outcome; by time
    families: pd.DataFrame  # key, family, hours before the call
    without_reason: int = 0  # attributed calls with no reason code: neither learned from nor scored

    def before(self, when: dt.datetime) -> CallHistory:
        return self._subset(self.calls["at"] < when)

    def since(self, when: dt.datetime) -> CallHistory:
        return self._subset(self.calls["at"] >= when)

    def _subset(self, mask) -> CallHistory:
        calls = self.calls[mask].reset_index(drop=True)
        return CallHistory(calls, self.families[self.families.key.isin(set(calls.key))], self.without_reason)


def calls(ws: Workspace) -> pd.DataFrame:
    """Every attributed call: key, profile_id, at, reason, queue, outcome, ordered by time."""
    if not ws.engine.has_table("profile_events"):
        raise StageNotRunError("no profile_events table", stage="profiles", workspace=ws.root)
    pe = ws.engine.table("profile_events")
    c = pe.filter(pe.name == "call")
    c = c.select(
        key=c.event_id,
        profile_id=c.profile_id,
        at=c.ts,
        reason=ws.engine.json_get(c.properties, "reason"),
        queue=ws.engine.json_get(c.properties, "queue"),
        outcome=ws.engine.json_get(c.properties, "outcome"),
    )
    frame = ws.engine.to_arrow(c, step="calls: past calls").to_pandas()
    return frame.sort_values(["at", "key"], kind="stable").reset_index(drop=True)


def load(ws: Workspace) -> CallHistory:
    """Past calls with a reason code, and the feature families of the 30 days before each."""
    all_calls = calls(ws)
    known = all_calls[all_calls.reason.notna() & (all_calls.reason != "")].reset_index(drop=True)
    pe = ws.engine.table("profile_events")
    c = pe.filter(pe.name == "call").select(key=pe.event_id, cp=pe.profile_id, at=pe.ts)
    e = pe.filter(~pe.name.isin(list(features.IGNORED)))
    e = e.select(ep=e.profile_id, ts=e.ts, name=e.name, properties=e.properties)
    lookback = ibis.interval(hours=features.WINDOWS_H[-1])
    joined = c.join(e, (c.cp == e.ep) & (e.ts < c.at) & (e.ts >= c.at - lookback))
    prior = ws.engine.to_arrow(
        joined.select("key", "at", "ts", "name", "properties"), step="calls: events before each call"
    ).to_pandas()
    return CallHistory(known, features.families(prior), len(all_calls) - len(known))

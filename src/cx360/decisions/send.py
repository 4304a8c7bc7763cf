"""Releasing planned decisions: a consent withdrawn, or a complaint opened, between the decision and its
send stops the send. What is sent goes to one CSV per channel for the campaign tools (profile ids, not
addresses: the tool that holds the channel's addresses resolves them)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from cx360 import schema
from cx360.decisions.inputs import open_complaints
from cx360.privacy.consent import Policy

if TYPE_CHECKING:
    from cx360.workspace import Workspace

SEND_COLUMNS = ["decision_id", "profile_id", "offer", "channel", "send_at", "propensity", "probability"]


def send(ws: Workspace, *, at: dt.datetime | None = None, out_dir: Path) -> dict:
    """Mark the planned decisions due by `at` sent or suppressed; write the sent ones per channel."""
    engine, policy = ws.engine, ws.config.contact_policy
    at = at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    log = engine.to_arrow(engine.table("decisions"), step="decisions: read log").to_pandas()
    due = (log.status == "planned") & log.offer.notna() & (log.send_at <= pd.Timestamp(at))
    check = Policy(ws.config.privacy)
    held = pd.Series(None, index=log.index, dtype=object)
    for channel in log.channel[due].unique():
        consent = policy.consent_channel(channel) if channel in policy.channels else channel
        allowed = check.allowed(engine, policy.purpose, consent, at)
        ok = set(engine.to_arrow(allowed, step=f"decisions: consent {consent}")["profile_id"].to_pylist())
        lost = due & (log.channel == channel) & ~log.profile_id.isin(ok)
        held[lost] = f"consent: no {policy.purpose} consent for {channel} at send time"
    if policy.complaint_hold:
        complaint = due & held.isna() & log.profile_id.isin(open_complaints(engine, at))
        held[complaint] = "complaint_hold: a complaint was opened since the decision"
    log.loc[due & held.notna(), "status"] = "suppressed"
    log.loc[due & held.notna(), "suppressed_by"] = held[due & held.notna()]
    sent = due & held.isna()
    log.loc[sent, "status"] = "sent"
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for channel, part in log[sent].groupby("channel"):
        part[SEND_COLUMNS].to_csv(out_dir / f"{channel}.csv", index=False)
        counts[channel] = len(part)
    target = schema.ibis_schema("decisions").to_pyarrow()
    with engine.step("decisions: mark sends"):
        engine.replace("decisions", pa.Table.from_pandas(log[target.names], schema=target, preserve_index=False))
    rules = held[due & held.notna()].str.split(":").str[0].value_counts()
    return {"at": at, "sent": counts, "suppressed": {k: int(v) for k, v in rules.items()}}

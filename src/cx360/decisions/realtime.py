"""One decision for one person, now: what `POST /v1/decisions` answers.

The response models are those of the last `cx360 decide` (models/decisions); the person's profile
(traits, scores, segments), their events and their consents are read at the request, so that a
rejection, a complaint or a withdrawn consent since the batch counts at once. The rules, scores and
arbitration are the batch's own code, run on a table of one person.

What differs from the batch, by construction: fields an offer names that the served profile does not
carry (RFM and cluster columns) are unknown, and caps count the person's offer events only, not the
sends the batch released that have not come back as events yet.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pandas as pd

from cx360.config import Config
from cx360.decisions import expressions, inputs
from cx360.decisions.decide import rows, score
from cx360.decisions.responses import Models
from cx360.privacy.consent import Policy

ANSWER = ("decision_id", "profile_id", "offer", "channel", "send_at", "expected_value", "propensity", "probability")


def person_frame(profile: dict[str, Any], config: Config, allowed: Callable[[str, str | None], bool]) -> pd.DataFrame:
    """The fields offers may name, for one served profile (see cx360.profiles.view.Profile)."""
    needed = {f for o in config.offers for t in (o.where, o.value) for f in expressions.fields(t)}
    row: dict[str, Any] = {}
    for part in ("traits", "scores", "archetype"):
        row |= {k: v for k, v in (profile.get(part) or {}).items() if k in needed and not isinstance(v, dict)}
    if "churn_risk" in needed:
        row["churn_risk"] = ((profile.get("scores") or {}).get("churn") or {}).get("risk")
    current = {m["segment"] for m in profile.get("segments", []) if m.get("exited_at") is None}
    for name in needed:
        if name.startswith("segment."):
            row[name] = name.split(".", 1)[1] in current
        elif name.startswith("consent."):
            for purpose, channel in Policy(config.privacy).pairs():
                if inputs.consent_field(purpose, channel) == name:
                    row[name] = allowed(purpose, channel)
        row.setdefault(name, None)
    for k, v in list(row.items()):
        if isinstance(v, dt.datetime) and v.tzinfo is not None:
            row[k] = v.astimezone(dt.UTC).replace(tzinfo=None)
    frame = pd.DataFrame([row], index=pd.Index([profile["profile_id"]], name="profile_id"))
    return expressions.nullable(frame.astype(object).where(frame.notna(), None))


def person_inputs(
    profile: dict[str, Any],
    events: list[dict[str, Any]],
    config: Config,
    allowed: Callable[[str, str | None], bool],
    at: dt.datetime,
) -> inputs.Inputs:
    """One person's Inputs from their served profile and events (dicts: ts, name, channel, properties)."""
    pid = profile["profile_id"]
    ev = pd.DataFrame(events, columns=["ts", "name", "channel", "properties"])
    ev["ts"] = pd.to_datetime(ev.ts, utc=True).dt.tz_localize(None)
    ev = ev[ev.ts < pd.Timestamp(at)]
    props = ev.properties.map(lambda p: p if isinstance(p, dict) else json.loads(p or "{}"))
    offers = ev[ev.name.isin(inputs.CONTACT_EVENTS)]
    history = pd.DataFrame(
        {
            "profile_id": pid,
            "ts": offers.ts,
            "name": offers.name,
            "channel": offers.channel,
            "offer": props[offers.index].map(lambda p: p.get("offer")),
        }
    ).sort_values("ts")
    complaint = ev.name == "complaint"
    closed = pd.to_datetime(props[complaint].map(lambda p: p.get("closed_at")), errors="coerce")
    status = props[complaint].map(lambda p: p.get("status"))
    open_ = (closed.isna() & (status != "closed")) | (closed >= pd.Timestamp(at))
    recent = ev[~ev.name.isin(inputs.CONTACT_EVENTS) & (ev.ts >= pd.Timestamp(at) - pd.Timedelta(days=365))]
    activity = recent.groupby(recent.ts.dt.hour).size().rename_axis("hour").reset_index(name="n")
    policy = config.contact_policy
    consent = {
        ch: ({pid} if allowed(policy.purpose, ch) else set())
        for ch in dict.fromkeys(policy.consent_channel(c) for c in policy.channels)
    }
    return inputs.Inputs(
        people=person_frame(profile, config, allowed),
        history=history[inputs.HISTORY_COLUMNS].reset_index(drop=True),
        sent=pd.DataFrame(columns=inputs.HISTORY_COLUMNS),
        open_complaints={pid} if bool(open_.any()) else set(),
        activity=activity.assign(profile_id=pid)[["profile_id", "hour", "n"]],
        consent=consent,
        traits_as_of=at,
        as_of=at,
    )


def decide_one(models: Models, config: Config, data: inputs.Inputs, now: dt.datetime) -> dict[str, Any]:
    """The decision-log row for the one person of `data` (see schema.DECISIONS), candidates parsed."""
    mine = models.with_people(data.history, data.activity, data.as_of)
    scored, chosen, timing = score(mine, config, data)
    (row,) = rows(mine, config, data, scored, chosen, timing, now)
    row["candidates"] = json.loads(row["candidates"])
    return row

"""One decision for one person, now: what `POST /v1/decisions` answers.

The response models are those of the last `cx360 decide` (models/decisions); the person's profile
(traits, scores, segments), their history (a History: the events a decision reads) and their consents
are read at the request, so that a rejection, a complaint or a withdrawn consent since the batch counts
at once.

The batch's steps, for one person in plain Python: no table is built per request. Conditions and
values are compiled once per text from the batch's own parse (cx360.decisions.expressions), the rules
carry the batch's rule texts (cx360.decisions.rules), the channel and hour come from the batch's model
(ChannelHourModel.choose_own), the propensity is the batch's model on a numpy row, and arbitration
draws with the batch's seeded draw. A test keeps the answer equal to the batch's for the same people
at the same time.

What differs from the batch, by construction: fields an offer names that the served profile does not
carry (RFM and cluster columns) are unknown, and caps count the person's offer events only, not the
sends the batch released that have not come back as events yet.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from cx360.config import Config
from cx360.decisions import arbitrate, control, expressions, inputs, portrait, rules
from cx360.decisions.decide import chosen_reason, next_send, no_offer, ranked_by
from cx360.decisions.propensity import ACCEPTED, FEATURES, PRIOR
from cx360.decisions.responses import Models
from cx360.decisions.timing import own_channels, own_hours
from cx360.privacy.consent import Policy

ANSWER = ("decision_id", "profile_id", "offer", "channel", "send_at", "expected_value", "propensity", "probability")
ACTIVITY_DAYS = 365  # as inputs.activity: the habits of the last year


@dataclass(frozen=True)
class Contact:
    ts: dt.datetime  # naive UTC
    name: str
    channel: str | None
    offer: str | None


MARKED = (*inputs.CONTACT_EVENTS, "complaint")  # the events whose properties a decision reads
EPOCH = dt.datetime(1970, 1, 1)


def micros(ts: dt.datetime) -> int:
    """A naive UTC time as microseconds since the epoch (how a History keeps times)."""
    return (ts - EPOCH) // dt.timedelta(microseconds=1)


@dataclass
class History:
    """A person's events as a decision reads them: the contacts and complaints with their properties
    (offer; status and closed_at), the others by name as times only (for the activity hours)."""

    marked: list[tuple[int, str, str | None, dict[str, Any]]] = field(
        default_factory=list
    )  # (us, name, channel, props)
    times: dict[str, list[int]] = field(default_factory=dict)  # name -> microseconds since the epoch, UTC

    def add(self, ts: Any, name: str, channel: str | None, properties: Any) -> None:
        """One event as the serving index and the online store keep it (properties: a dict or JSON text)."""
        us = micros(_utc(ts))
        if name in MARKED:
            props = properties if isinstance(properties, dict) else json.loads(properties or "{}")
            self.marked.append((us, name, channel, props))
        else:
            self.times.setdefault(name, []).append(us)


@dataclass
class Person:
    profile_id: str
    fields: dict[str, Any]  # every field an offer names; None: unknown
    contacts: list[Contact]  # the offer events before the decision, in time order
    activity: np.ndarray  # 24 counts per local hour: events other than offers in the year before the decision
    open_complaint: bool
    consent: dict[str, bool]  # consent channel of the contact policy -> may they be contacted on it
    profiling: bool = True  # does their consent allow profiling (else every candidate is held)
    zone: str = "UTC"  # their clock: the golden record's person_time_zone, else the policy's
    spend: dict[str, float] | None = None  # their card spend per category (cx360.decisions.portrait); None: unknown


def _utc(ts: Any) -> dt.datetime:
    ts = dt.datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    return ts.astimezone(dt.UTC).replace(tzinfo=None) if ts.tzinfo is not None else ts


def _when(value: Any) -> dt.datetime | None:
    """A time in an event's properties, naive UTC; None when missing or not a time (as pandas' coerce)."""
    if value is None:
        return None
    try:
        return _utc(dt.datetime.fromisoformat(str(value)))
    except ValueError:
        stamp = pd.to_datetime(value, errors="coerce", utc=True)
        return None if pd.isna(stamp) else stamp.tz_convert(None).to_pydatetime()


def person_fields(profile: dict[str, Any], config: Config, allowed: Callable[[str, str | None], bool]) -> dict:
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
    for k, v in row.items():
        if isinstance(v, float) and math.isnan(v):
            row[k] = None
        elif isinstance(v, dt.datetime):
            row[k] = _utc(v)
    return row


def person(
    profile: dict[str, Any],
    history: History,
    config: Config,
    allowed: Callable[[str, str | None], bool],
    at: dt.datetime,
) -> Person:
    """One person from their served profile (withheld: without consent to profiling, see
    api.services.withhold_profiling) and history, of which the events before `at` count: offers of any
    age (cooldowns, response rates), complaints of any age, the others of the year before (activity)."""
    policy = config.contact_policy
    attribute = (profile.get("attributes") or {}).get(policy.person_time_zone or "") or {}
    zone = policy.zone_of(attribute.get("value")) or policy.time_zone
    clock = ZoneInfo(zone)
    contacts, activity, complaint = [], np.zeros(24), False
    until, since = micros(at), micros(at - dt.timedelta(days=ACTIVITY_DAYS))

    def hour(us: int) -> int:  # on the person's clock, each event with its own offset (as inputs.activity)
        return dt.datetime.fromtimestamp(us // 1_000_000, clock).hour

    for us, name, channel, props in history.marked:
        if us >= until:
            continue
        ts = EPOCH + dt.timedelta(microseconds=us)
        if name in inputs.CONTACT_EVENTS:
            contacts.append(Contact(ts, name, channel, props.get("offer")))
            continue
        if name == config.uplift.control_event:
            continue
        if us >= since:
            activity[hour(us)] += 1
        if not complaint:
            closed = _when(props.get("closed_at"))
            complaint = (closed is None and props.get("status") != "closed") or (closed is not None and closed >= at)
    for name, stamps in history.times.items():
        if name != config.uplift.control_event:  # a campaign held the person out: not a moment of theirs
            for us in stamps:
                if since <= us < until:
                    activity[hour(us)] += 1
    contacts.sort(key=lambda c: c.ts)
    consent = {ch: allowed(policy.purpose, ch) for ch in dict.fromkeys(map(policy.consent_channel, policy.channels))}
    fields = person_fields(profile, config, allowed)
    if profile.get("withheld"):
        fields = dict.fromkeys(fields)
    pid = profile["profile_id"]
    spend = (profile.get("breakdowns") or {}).get(portrait.SPEND)
    return Person(pid, fields, contacts, activity, complaint, consent, not profile.get("withheld"), zone, spend)


def candidates(config: Config, p: Person, at: dt.datetime) -> list[dict[str, Any]]:
    """rules.candidates for one person: each (offer, channel) with its value and the first rule holding it."""
    policy = config.contact_policy

    def within(events: list[Contact], days: int) -> int:
        return sum(c.ts >= at - dt.timedelta(days=days) for c in events)

    out = []
    for o in config.offers:
        held = []
        mine = [c for c in p.contacts if c.offer == o.name]
        if not p.profiling:
            held.append(rules.PROFILING_RULE)
        if not rules.running(o, at):
            held.append(rules.dates_rule(o))
        if not expressions.row_condition(o.where, o.name)(p.fields):
            held.append(f"eligibility: not {o.where}")
        if policy.complaint_hold and p.open_complaint:
            held.append("complaint_hold: a complaint is open")
        for what, days in (("rejected", o.cooldown_days), ("declined", o.declined_cooldown_days)):
            name = "offer_rejected" if what == "rejected" else "application_declined"
            if days and within([c for c in mine if c.name == name], days):
                held.append(rules.cooldown_rule(o, what))
        if o.cap and within(mine, o.cap.days) >= o.cap.count:
            held.append(f"offer_cap: {o.name} at most {o.cap}")
        value = expressions.row_value(o.value, o.name)(p.fields) * o.priority
        for ch in o.channels:
            rule = list(held)
            if not p.consent.get(policy.consent_channel(ch), False):
                rule.append(f"consent: no {policy.purpose} consent for {ch}")
            cap = policy.channels[ch].cap
            if cap and within([c for c in p.contacts if c.channel == ch], cap.days) >= cap.count:
                rule.append(f"channel_cap: {ch} at most {cap}")
            total = policy.max_contacts
            if total and within(p.contacts, total.days) >= total.count:
                rule.append(f"max_contacts: at most {total} over every channel")
            out.append({"offer": o.name, "channel": ch, "value": value, "suppressed_by": rule[0] if rule else None})
    return out


def decide_one(models: Models, config: Config, p: Person, at: dt.datetime, now: dt.datetime) -> dict[str, Any]:
    """The decision-log row for one person at `at` (see schema.DECISIONS), its candidates as a list."""
    policy, timing, objective = config.contact_policy, models.timing, config.decisions.objective
    catalogue = {o.name: o for o in config.offers}
    clock = ZoneInfo(p.zone)
    local = [c.ts.replace(tzinfo=dt.UTC).astimezone(clock).hour for c in p.contacts]
    hits = [c.name == ACCEPTED for c in p.contacts]
    activity = p.activity
    cands = candidates(config, p, at)
    open_ = [c for c in cands if c["suppressed_by"] is None]
    hours = {}
    for ch in dict.fromkeys(c["channel"] for c in open_):
        options = policy.send_hours(ch)
        own = own_hours([h for h, hit in zip(local, hits, strict=True) if hit], activity, options,
                        response_weight=timing.response_weight)  # fmt: skip
        hours[ch] = timing.choose_own(p.profile_id, "hour", options, own)
    design = None
    if open_:
        rows = [features(models, p, local, hits, activity, c["channel"], int(hours[c["channel"]].value)) for c in open_]
        offers = [c["offer"] for c in open_]
        traits = portrait.row(p.spend if p.profiling else None, list(models.traits))
        design = models.propensity.design(
            np.array(rows), offers, [c["channel"] for c in open_], np.array([traits] * len(open_))
        )
        x = np.array([untreated_features(models, p, hits, o) + traits for o in offers])
        anyway = models.control.predict(offers, x)
        prob = models.propensity.predict_design(design)
        priority = [catalogue[o].priority for o in offers]
        values = np.array([c["value"] for c in open_])
        expected, score = arbitrate.scores(config.decisions.objective, prob, prob - anyway, values, priority)
        for i, c in enumerate(open_):
            c |= {
                "hour": int(hours[c["channel"]].value),
                "propensity": float(prob[i]),
                "uplift": None if math.isnan(anyway[i]) else float(prob[i] - anyway[i]),
                "expected_value": float(expected[i]),
                "score": float(score[i]),
            }
    row = {
        "decision_id": f"{p.profile_id}:{at:%Y%m%dT%H%M}:{uuid.uuid4().hex[:8]}",
        "profile_id": p.profile_id,
        "decided_at": now,
        "as_of": at,
        "candidates": [_logged(c, objective) for c in cands],
        "status": "planned",
        "suppressed_by": None,
    }
    ranked = sorted(
        (i for i, c in enumerate(open_) if c["score"] > 0),
        key=lambda i: (-open_[i]["score"], open_[i]["offer"], open_[i]["channel"]),
    )
    if not ranked:
        return row | _none(cands)
    rank, probability, explored = arbitrate.pick_one(
        len(ranked), p.profile_id, policy.exploration, f"{policy.seed}:{at.isoformat()}"
    )
    c = open_[ranked[rank]]
    why = models.propensity.reasons_design(design[ranked[rank] : ranked[rank] + 1])[0]
    offer = catalogue[c["offer"]]
    best = timing.choose_own(p.profile_id, "channel", offer.channels,
                             own_channels([x.channel for x in p.contacts], hits, offer.channels))  # fmt: skip
    hour = hours[c["channel"]]
    ranking = ranked_by(models, objective, c["offer"], c["propensity"], c["uplift"], c["value"], offer.priority)
    reason = chosen_reason(c["offer"], c["channel"], ranking, why, explored, hour, p.zone)
    return row | {
        "offer": c["offer"],
        "channel": c["channel"],
        "send_at": next_send(at, int(hour.value), clock),
        "expected_value": float(c["expected_value"]),
        "propensity": c["propensity"],
        "probability": float(probability),
        "explored": explored,
        "reasons": f"{reason}; best {best.reason}",
        "uplift": c["uplift"],
        "model": "uplift" if arbitrate.by_uplift(objective, c["uplift"]) else "propensity",
    }


def features(models: Models, p: Person, local: list[int], hits: list[bool], activity, channel: str, hour: int):
    """Models.features for one candidate: the person's shrunk rates, in FEATURES' order."""
    base = models.base_

    def rate(keep: list[bool]) -> tuple[float, int]:
        n = sum(keep)
        s = sum(h for h, k in zip(hits, keep, strict=True) if k)
        return (s + PRIOR * base) / (n + PRIOR), n

    everyone = [True] * len(hits)
    prior, n = rate(everyone)
    on_channel, cn = rate([c.channel == channel for c in p.contacts])
    part, _ = rate([h // 3 == hour // 3 for h in local])
    near = sum(activity[(hour + k) % 24] for k in range(-2, 3)) / max(activity.sum(), 1.0)
    values = {
        "prior_rate": prior,
        "channel_rate": on_channel,
        "daypart_rate": part,
        "channel_share": cn / max(n, 1),
        "active_near": near,
        "log_contacts": math.log1p(n),
    }
    return [values[f] for f in FEATURES]


def untreated_features(models: Models, p: Person, hits: list[bool], offer: str) -> list[float]:
    """Models.untreated's features for one person and offer, in control.FEATURES' order (its traits follow)."""
    mine = [h for h, c in zip(hits, p.contacts, strict=True) if c.offer == offer]
    return [
        control.shrunk(sum(hits), len(hits), models.base_),
        control.shrunk(sum(mine), len(mine), models.base_),
        math.log1p(len(hits)),
    ]


def _logged(c: dict[str, Any], objective: str) -> dict[str, Any]:
    """A candidate as the decision log keeps it (decide._candidates)."""
    out = {"offer": c["offer"], "channel": c["channel"], "value": round(c["value"], 4)}
    if c["suppressed_by"] is not None:
        return out | {"suppressed_by": c["suppressed_by"]}
    model = {"model": "uplift" if arbitrate.by_uplift(objective, c["uplift"]) else "propensity"}
    if c["uplift"] is not None:
        model["uplift"] = round(c["uplift"], 6)
    return out | {
        "propensity": round(c["propensity"], 6),
        **model,
        "expected_value": round(c["expected_value"], 6),
        "hour": c["hour"],
    }


def _none(cands: list[dict[str, Any]]) -> dict[str, Any]:
    """No offer, and why (decide._none_reasons)."""
    if not cands:
        reason = "no offer: the catalogue has none for this person"
    elif all(c["suppressed_by"] is not None for c in cands):
        counts = Counter(c["suppressed_by"].split(":")[0] for c in cands)
        text = ", ".join(f"{r} {n}" for r, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        reason = f"no offer: every candidate is held back ({text})"
    else:
        reason = "no offer: no open candidate has a positive score"
    return no_offer(reason)

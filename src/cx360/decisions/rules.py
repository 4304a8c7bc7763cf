"""The candidates of a decision, every (person, offer, channel), each with the first rule that holds it
back: the person's consent to profiling, the offer's dates and eligibility, consent on the channel, an
open complaint, the cooldowns after a rejection or a declined application, the offer's own cap, the
channel's cap and global fatigue."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from cx360.decisions import expressions
from cx360.decisions.inputs import Inputs
from cx360.decisions.settings import Cap, ContactPolicy, OfferSpec

CANDIDATE_COLUMNS = ["profile_id", "offer", "channel", "value", "suppressed_by"]
PROFILING_RULE = "profiling_consent: the person does not consent to profiling"


def candidates(offers: list[OfferSpec], policy: ContactPolicy, inputs: Inputs) -> pd.DataFrame:
    """CANDIDATE_COLUMNS, one row per person, offer and channel; suppressed_by is None when nothing holds it."""
    people = inputs.people
    ids = people.index.to_numpy()
    index = pd.Index(ids, dtype=object)  # hashed look-ups: arrow strings and np.isin sort instead
    hist = inputs.history
    contacts = pd.concat([hist, inputs.sent], ignore_index=True) if len(inputs.sent) else hist
    as_of = pd.Timestamp(inputs.as_of)
    parts = []
    for o in offers:
        held = np.full(len(ids), None, dtype=object)
        if inputs.profiling is not None:
            _hold(held, ~index.isin(inputs.profiling), PROFILING_RULE)
        _hold(held, np.full(len(ids), not running(o, inputs.as_of)), dates_rule(o))
        _hold(held, ~expressions.condition(o.where, people, o.name).to_numpy(), f"eligibility: not {o.where}")
        if policy.complaint_hold:
            _hold(held, index.isin(inputs.open_complaints), "complaint_hold: a complaint is open")
        mine = hist[hist.offer == o.name]
        _hold(
            held,
            _within(mine[mine.name == "offer_rejected"], ids, as_of, o.cooldown_days),
            cooldown_rule(o, "rejected"),
        )
        declined = mine[mine.name == "application_declined"]
        _hold(held, _within(declined, ids, as_of, o.declined_cooldown_days), cooldown_rule(o, "declined"))
        if o.cap:
            _hold(
                held,
                _capped(contacts[contacts.offer == o.name], ids, as_of, o.cap),
                f"offer_cap: {o.name} at most {o.cap}",
            )
        value = expressions.value(o.value, people, o.name)
        for ch in o.channels:
            rule = held.copy()
            allowed = inputs.consent.get(policy.consent_channel(ch), set())
            _hold(rule, ~index.isin(allowed), f"consent: no {policy.purpose} consent for {ch}")
            cap = policy.channels[ch].cap
            if cap:
                _hold(
                    rule, _capped(contacts[contacts.channel == ch], ids, as_of, cap), f"channel_cap: {ch} at most {cap}"
                )
            if policy.max_contacts:
                total = policy.max_contacts
                _hold(rule, _capped(contacts, ids, as_of, total), f"max_contacts: at most {total} over every channel")
            parts.append(
                pd.DataFrame(
                    {
                        "profile_id": ids,
                        "offer": o.name,
                        "channel": ch,
                        "value": value.to_numpy() * o.priority,
                        "suppressed_by": rule,
                    }
                )
            )
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in CANDIDATE_COLUMNS})
    return pd.concat(parts, ignore_index=True)


def _hold(held: np.ndarray, mask, rule: str) -> None:
    """Record `rule` for the rows it holds that no earlier rule holds."""
    held[np.asarray(mask, dtype=bool) & pd.isna(held)] = rule


def running(o: OfferSpec, at: dt.datetime) -> bool:
    day = at.date()
    return (o.starts is None or o.starts <= day) and (o.ends is None or day <= o.ends)


def dates_rule(o: OfferSpec) -> str:
    return f"offer_dates: {o.name} runs {o.starts or 'always'} to {o.ends or 'open end'}"


def cooldown_rule(o: OfferSpec, what: str) -> str:
    days = o.cooldown_days if what == "rejected" else o.declined_cooldown_days
    rule = "rejected_cooldown" if what == "rejected" else "declined_cooldown"
    event = "rejected it" if what == "rejected" else "had an application for it declined"
    return f"{rule}: {event} in the last {days} days"


def _within(events: pd.DataFrame, ids: np.ndarray, as_of: pd.Timestamp, days: int) -> np.ndarray:
    if days == 0 or events.empty:
        return np.zeros(len(ids), dtype=bool)
    recent = events.profile_id[events.ts >= as_of - pd.Timedelta(days=days)]
    return pd.Index(ids, dtype=object).isin(recent.unique())


def _capped(events: pd.DataFrame, ids: np.ndarray, as_of: pd.Timestamp, cap: Cap) -> np.ndarray:
    """Who already had `cap.count` contacts in the `cap.days` before as_of: one more would break the cap."""
    if events.empty:
        return np.zeros(len(ids), dtype=bool)
    counts = events.profile_id[events.ts >= as_of - pd.Timedelta(days=cap.days)].value_counts()
    return pd.Index(ids, dtype=object).isin(counts.index[counts >= cap.count])

"""Each source system's export of the synthetic bank, as a DataFrame in that system's own shape."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd

from cx360.demo.activity import CALL_REASONS, MALLS, MCC, OFFERS, POSTS, iso, occurrences
from cx360.demo.people import ARCHETYPES, CHANNELS, DISTRICTS

# What a person takes without being contacted, by offer: (the hidden interest that drives it, the chance with
# it, the chance without). The demo's other offers are never taken uncontacted.
UNTREATED = {"auto_loan": ("fuel", 0.20, 0.02), "credit_card": ("travel", 0.15, 0.03), "deposit": (None, 0.15, 0.02)}
HOLDOUT = {"auto_loan": 0.25, "credit_card": 0.25}  # campaigns that hold a random share of people out


def untreated(people: pd.DataFrame, offer: np.ndarray) -> np.ndarray:
    """The chance that each person (a row of the hidden population, or of its truth file, whose interests
    are joined by commas) takes `offer` uncontacted: with the interest it needs (deposits: the valuable)
    or without."""
    out = np.zeros(len(people))
    offer = np.asarray(offer)
    for name, (interest, high, low) in UNTREATED.items():
        has = (
            people.value.to_numpy() > 1500
            if interest is None
            else np.array([interest in (i.split(",") if isinstance(i, str) else i) for i in people.interests])
        )
        out = np.where(offer == name, np.where(has, high, low), out)
    return out


def acceptance(people: pd.DataFrame, channel: np.ndarray, hour: np.ndarray, offer: np.ndarray) -> np.ndarray:
    """The chance that each person (a row of the hidden population) accepts `offer` sent on `channel` at
    `hour`: what they would take anyway (untreated), and of the rest a share that is higher on their
    preferred channel, within two hours of their preferred hour, and for the valuable. The demo's
    marketing history is drawn from it, and so is the decisions benchmark's simulator."""
    liked = np.asarray(channel) == people.preferred_channel.to_numpy()
    near = np.abs(np.asarray(hour) - people.preferred_hour.to_numpy()) <= 2
    persuaded = 0.04 + 0.12 * liked + 0.06 * near + 0.05 * (people.value.to_numpy() > 1500)
    anyway = untreated(people, offer)
    return anyway + (1 - anyway) * persuaded


def marketing(p: pd.DataFrame, cust: np.ndarray, rng, start: dt.date, days: int) -> pd.DataFrame:
    """Offers as the marketing automation logs them. A campaign with a holdout (HOLDOUT) contacts no one
    of its random control share: their row says `held_out`, with whether they took the offer anyway."""
    idx, ts = occurrences(p, np.full(len(p), 8.0), rng, start, days)
    channel = np.where(rng.random(len(idx)) < 0.5, p.preferred_channel.values[idx], rng.choice(CHANNELS, len(idx)))
    hour = ts.astype("datetime64[h]").astype(int) % 24
    u = rng.random(len(idx))
    offer = rng.choice(OFFERS, len(idx))
    accept = acceptance(p.iloc[idx], channel, hour, offer)
    outcome = np.where(u < accept, "accepted", np.where(u < accept + 0.25, "rejected", "ignored"))
    declined = (offer == "auto_loan") | (offer == "mortgage")
    outcome = np.where(declined & (outcome == "accepted") & (rng.random(len(idx)) < 0.3), "declined", outcome)
    share = pd.Series(offer).map(HOLDOUT).fillna(0.0).to_numpy()
    held = np.random.default_rng([len(idx), 17]).random(len(idx)) < share  # its own draw: the rest stays as it was
    converted = np.where(held, np.where(u < untreated(p.iloc[idx], offer), "true", "false"), "")
    return pd.DataFrame(
        {
            "campaign_event_id": [f"mk-{i:08d}" for i in range(len(idx))],
            "sent_at": [str(t).replace("T", " ") for t in ts.astype("datetime64[s]")],
            "client": cust[idx],
            "offer_code": offer,
            "channel": channel,
            "outcome": np.where(held, "held_out", outcome),
            "converted": converted,
        }
    )


def web(p: pd.DataFrame, cust: np.ndarray, rng, start: dt.date, days: int) -> list[dict]:
    rate = 60 * p.digital_sophistication.values * (p.archetype.values != "paranoid")
    idx, ts = occurrences(p, rate, rng, start, days)
    cookies = np.array([f"ck-{hashlib.md5(f'{pid}'.encode()).hexdigest()[:12]}" for pid in p.person_id])
    kind = rng.choice(
        ["page", "login", "form_started", "form_abandoned", "form_submitted"], len(idx), p=[0.7, 0.15, 0.06, 0.05, 0.04]
    )
    pages = rng.choice(["/", "/cards", "/deposits", "/mortgage", "/auto-loan", "/app"], len(idx))
    field = rng.choice(["income", "passport", "employer", "phone"], len(idx))
    out = []
    for n, (i, t, k) in enumerate(zip(idx, iso(ts), kind, strict=True)):
        row = {"message_id": f"w-{n:09d}", "anonymous_id": cookies[i], "timestamp": t, "type": k}
        if k == "login":
            row["user_id"] = cust[i]
        if k.startswith("form"):
            row["properties"] = {"form": "loan_application", **({"field": field[n]} if k == "form_abandoned" else {})}
        else:
            row["properties"] = {"path": pages[n]}
        out.append(row)
    return out


def app(p: pd.DataFrame, cust: np.ndarray, rng, start: dt.date, days: int) -> pd.DataFrame:
    rate = 50 * np.clip(p.digital_sophistication.values - 0.25, 0, 1)
    idx, ts = occurrences(p, rate, rng, start, days)
    kind = rng.choice(
        ["screen_view", "login", "transfer_form_opened", "transfer_form_sent"], len(idx), p=[0.6, 0.3, 0.05, 0.05]
    )
    device = np.array([hashlib.sha1(f"dev{pid}".encode()).hexdigest()[:16].upper() for pid in p.person_id])
    return pd.DataFrame(
        {
            "event_uuid": [f"app-{i:09d}" for i in range(len(idx))],
            "device": device[idx],
            "customer": np.where(kind == "login", cust[idx], None),
            "event": kind,
            "occurred_at": ts.astype("datetime64[us]"),
            "screen": rng.choice(["home", "cards", "payments", "offers"], len(idx)),
        }
    )


def cards(p: pd.DataFrame, tokens: dict, rng, start: dt.date, days: int) -> pd.DataFrame:
    holders = p.person_id.isin(tokens)
    rate = np.where(holders, 60 + p.value.values / 10, 0)
    idx, ts = occurrences(p, rate, rng, start, days)
    interests = p.interests.values
    cats = np.array(
        [interests[i][rng.integers(len(interests[i]))] if rng.random() < 0.6 else rng.choice(list(MCC)) for i in idx]
    )
    atm = rng.random(len(idx)) < 0.08
    away = rng.random(len(idx)) < 0.25
    district = np.where(away, rng.choice(DISTRICTS, len(idx)), p.home_district.values[idx])
    amount = np.round(rng.lognormal(np.log(p.value.values[idx] / 25), 0.7), 2)
    return pd.DataFrame(
        {
            "txn_id": [f"tx-{i:010d}" for i in range(len(idx))],
            "card_token": [tokens[pid] for pid in p.person_id.values[idx]],
            "ts": ts.astype("datetime64[us]"),
            "amount": np.where(atm, np.round(amount * 3, -2) + 100, amount),
            "currency": "RUB",
            "txn_type": np.where(atm, "ATM", "POS"),
            "mcc": np.where(atm, 6011, [MCC[c][0] for c in cats]),
            "category": np.where(atm, "ATM cash", [MCC[c][1] for c in cats]),
            "merchant": np.where(atm, "ATM", [f"{MCC[c][1]} #{rng.integers(1, 40)}" for c in cats]),
            "district": district,
        }
    )


def calls(p: pd.DataFrame, cust: np.ndarray, rng, start: dt.date, days: int) -> pd.DataFrame:
    rate = 1.5 + 4 * p.churned.values + 2 * (1 - p.satisfaction.values)
    idx, ts = occurrences(p, rate, rng, start, days)
    reasons = list(CALL_REASONS)
    leaving = p.churned.values[idx] & (rng.random(len(idx)) < 0.3)
    reason = np.where(leaving, "close_account", rng.choice(reasons[:-1], len(idx)))
    english = p.english.values[idx]
    known = rng.random(len(idx)) < 0.7
    return pd.DataFrame(
        {
            "call_id": [f"CALL{i:08d}" for i in range(len(idx))],
            "customer_number": np.where(known, cust[idx], ""),
            "caller_phone": np.where(known & (rng.random(len(idx)) < 0.5), "", p.mobile.values[idx]),
            "started_at": [str(t).replace("T", " ") for t in ts.astype("datetime64[s]")],
            "reason_code": reason,
            "duration_sec": rng.integers(30, 1200, len(idx)),
            "summary": [CALL_REASONS[r][int(e)] for r, e in zip(reason, english, strict=True)],
            "person": idx,  # who really called: for the planted causes and the truth, not written out
        }
    )


def social(p: pd.DataFrame, rng, start: dt.date, days: int, bank: str = "demobank") -> list[dict]:
    rate = np.where(p.has_handle.values, 2 + 4 * p.digital_sophistication.values, 0)
    idx, ts = occurrences(p, rate, rng, start, days, until_churn=False)
    handles = p.handle.values
    out = []
    for n, (i, t) in enumerate(zip(idx, iso(ts), strict=True)):
        s = p.satisfaction.values[i]
        tone = "positive" if rng.random() < s * 0.8 else "negative" if rng.random() < 0.6 else "neutral"
        text = str(rng.choice(POSTS[tone])).format(bank=bank)
        friend = handles[rng.integers(len(handles))]
        review = rng.random() < 0.3
        out.append(
            {
                "post_id": f"sp-{n:08d}",
                "author": "@" + handles[i],
                "created": t,
                "kind": "review" if review else "post",
                "platform": str(rng.choice(["vk", "telegram", "x"])),
                "text": text + (f" cc @{friend}" if rng.random() < 0.2 else ""),
                "followers": int(p.followers.values[i]),
                "rating": round(1 + 4 * s) if review else None,
            }
        )
    return out


def surveys(p: pd.DataFrame, rng) -> pd.DataFrame:
    """Answers of the quarter who took the survey, with the archetype its segmentation questionnaire
    placed them in: their own, except for one in ten whom the questionnaire misplaces (drawn from a
    generator of its own, so the other sources stay as they were)."""
    took = p[rng.random(len(p)) < 0.25]
    soph, share = took.digital_sophistication.values, took.data_sharing.values
    questionnaire = np.random.default_rng([len(p), len(took), 20])
    misplaced = questionnaire.random(len(took)) < 0.1
    stated = np.where(misplaced, questionnaire.choice(ARCHETYPES, len(took)), took.archetype.values)
    return pd.DataFrame(
        {
            "response_id": [f"sv-{i:06d}" for i in range(len(took))],
            "respondent_email": took.email.values,
            "submitted": "2025-06-15 12:00:00",
            "preferred_device": np.where(soph > 0.6, "smartphone", np.where(soph > 0.3, "laptop", "none")),
            "preferred_channel": took.preferred_channel.values,
            "ok_to_share_data": np.clip(np.round(1 + 4 * share + rng.normal(0, 0.5, len(took))), 1, 5).astype(int),
            "uses_mobile_payments": np.where(soph > 0.5, "yes", "no"),
            "archetype": stated,
        }
    )


def mall(p: pd.DataFrame, rng, start: dt.date, days: int) -> pd.DataFrame:
    rate = np.where(p.digital_sophistication.values > 0.2, rng.gamma(2, 6, len(p)), 0)
    idx, ts = occurrences(p, rate, rng, start, days)
    mac = np.array([hashlib.sha256(f"mac{pid}".encode()).hexdigest()[:20] for pid in p.person_id])
    dwell = rng.gamma(2, 35, len(idx)).astype(int) + 5
    exit_ = ts + (dwell * 60).astype("timedelta64[s]")
    return pd.DataFrame(
        {
            "visit_id": [f"mv-{i:08d}" for i in range(len(idx))],
            "mac_hash": mac[idx],
            "wifi_phone": p.mobile.values[idx],
            "entered": [str(t).replace("T", " ") for t in ts.astype("datetime64[s]")],
            "left": [str(t).replace("T", " ") for t in exit_.astype("datetime64[s]")],
            "mall": rng.choice(MALLS, len(idx)),
            "home_district": p.home_district.values[idx],
            "dwell_minutes": dwell,
            "visitor": p.person_id.values[idx],  # who really came: for the truth, not written out
        }
    )


def strangers(n: int, rng: np.random.Generator, start: dt.date) -> pd.DataFrame:
    """People who are not the bank's customers but sign in to a mall's wifi with their phone: no CRM
    knows them, so cx360 sees each as a device and a phone, a profile without a record. Their phones
    use a code no customer's does (958), and they live nearer the malls' own districts."""
    ids = np.arange(1, n + 1)
    near = rng.random(n) < 0.6  # most come from the three districts around the malls
    return pd.DataFrame(
        {
            "stranger_id": [f"stranger-{i:06d}" for i in ids],
            "mac_hash": [hashlib.sha256(f"mac-stranger{i}".encode()).hexdigest()[:20] for i in ids],
            "mobile": [f"+7958{i:07d}" for i in ids],
            "home_district": np.where(near, rng.choice(DISTRICTS[7:10], n), rng.choice(DISTRICTS, n)),
            # fewer visits than the customers': many come once
            "visits_per_year": np.round(rng.gamma(0.6, 4, n), 2),
            "preferred_hour": np.clip(rng.normal(16, 3, n), 9, 22).astype(int),
            "churn_date": None,
        }
    )


def stranger_visits(s: pd.DataFrame, rng: np.random.Generator, start: dt.date, days: int, first: int) -> pd.DataFrame:
    """The strangers' visits in the wifi export's shape, numbered on from visit `first` (those who come less
    than once a year may not come at all)."""
    idx, ts = occurrences(s, np.maximum(s.visits_per_year.values, 365.0 / days), rng, start, days)
    dwell = rng.gamma(1.5, 30, len(idx)).astype(int) + 5
    exit_ = ts + (dwell * 60).astype("timedelta64[s]")
    return pd.DataFrame(
        {
            "visit_id": [f"mv-{first + i:08d}" for i in range(len(idx))],
            "mac_hash": s.mac_hash.values[idx],
            "wifi_phone": s.mobile.values[idx],
            "entered": [str(t).replace("T", " ") for t in ts.astype("datetime64[s]")],
            "left": [str(t).replace("T", " ") for t in exit_.astype("datetime64[s]")],
            "mall": rng.choice(MALLS, len(idx)),
            "home_district": s.home_district.values[idx],
            "dwell_minutes": dwell,
            "visitor": s.stranger_id.values[idx],
        }
    )


def preferences(p: pd.DataFrame, cust: np.ndarray, rng, start: dt.date, days: int) -> pd.DataFrame:
    """The marketing system's consent log, newest first as it lists them: opt-ins per channel in the first
    months (more from people who share data readily), later withdrawals (SMS the most), and refusals of
    profiling by some of the privacy-minded."""
    known = np.flatnonzero([isinstance(c, str) for c in cust])
    share = p.data_sharing.values[known]
    parts = []
    for channel, withdraw in (("email", 0.1), ("sms", 0.35), ("push", 0.15), ("phone", 0.1)):
        granted = known[rng.random(len(known)) < 0.25 + 0.6 * share]
        at = rng.integers(0, days // 3, len(granted))
        parts.append((granted, channel, "marketing", "Y", at))
        leaving = rng.random(len(granted)) < withdraw * (1.5 - p.data_sharing.values[granted])
        later = at[leaving] + rng.integers(1, days - days // 3, leaving.sum())
        parts.append((granted[leaving], channel, "marketing", "W", later))
    private = known[(p.archetype.values[known] == "paranoid") & (rng.random(len(known)) < 0.5)]
    parts.append((private, "", "profiling", "N", rng.integers(0, days, len(private))))
    idx = np.concatenate([x[0] for x in parts])
    at = np.concatenate([x[4] for x in parts])
    ts = (
        np.datetime64(start)
        + at.astype("timedelta64[D]")
        + rng.integers(8 * 3600, 20 * 3600, len(idx)).astype("timedelta64[s]")
    )
    frame = pd.DataFrame(
        {
            "client": cust[idx],
            "channel": np.concatenate([[x[1]] * len(x[0]) for x in parts]),
            "purpose": np.concatenate([[x[2]] * len(x[0]) for x in parts]),
            "opt": np.concatenate([[x[3]] * len(x[0]) for x in parts]),
            "changed_at": [str(t).replace("T", " ") for t in ts.astype("datetime64[s]")],
        }
    )
    frame["basis"] = np.where(frame.purpose == "marketing", "consent", "legitimate_interest")
    frame = frame.sort_values(["changed_at", "client", "channel"], ascending=False, ignore_index=True)
    frame.loc[frame.index[:1], "channel"] = "fax"  # a channel the bank never had
    return frame

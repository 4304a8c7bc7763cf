"""Why people call the synthetic bank: causes planted in its world, each with the calls it leads to.

A declined card makes a card call likely within days, a fee a fee call, failed logins and app errors
a digital-access call, a declined or abandoned application a loan call, an open complaint a
follow-up, a transfer held for checks a transfer call. Calls cx360 did not cause (the background
calls of `sources.calls`) keep their random reasons. Every call gets the queue the bank's IVR sent
it to and its outcome; an unresolved call is often followed by a repeat call on the same reason,
less often when a specialist took it. All of it draws from its own random stream, so the rest of
the world stays as it was; truth/calls.parquet keeps each call's reason and its true cause.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd

from cx360.demo.activity import CALL_REASONS, occurrences

# cause (an event kind) -> (the reason code of the call it leads to, chance that it leads to one)
CAUSES = {
    "card_declined": ("card_blocked", 0.55),
    "fee_charged": ("fees", 0.4),
    "login_failed": ("app_problem", 0.3),
    "app_error": ("app_problem", 0.35),
    "form_abandoned": ("loan_question", 0.12),
    "application_declined": ("loan_question", 0.5),
    "complaint_opened": ("complaint_followup", 0.6),
    "transfer_pending": ("transfer_issue", 0.6),
}
REASON_TEXTS = {
    "complaint_followup": ("Звоню узнать, что с моей жалобой", "Calling about my open complaint"),
    "transfer_issue": ("Перевод завис, деньги не дошли", "My transfer is stuck, the money has not arrived"),
}
TEXTS = CALL_REASONS | REASON_TEXTS
# the specialist queue of each reason; the IVR sends some calls to the general queue instead
QUEUES = {
    "card_blocked": "cards",
    "fees": "billing",
    "app_problem": "digital",
    "loan_question": "lending",
    "complaint_staff": "complaints",
    "complaint_followup": "complaints",
    "transfer_issue": "payments",
    "close_account": "retention",
}
COMPLAINT_TOPICS = ("service", "fees", "card", "app", "branch")


def _end_hours(people: pd.DataFrame, start: dt.date, days: int) -> np.ndarray:
    """Hours from the start of the world to each person's last day (their churn date, or the end)."""
    churn = np.array([(c - start).days if c is not None else days for c in people.churn_date], dtype=float)
    return np.minimum(churn, days) * 24.0


def plant(
    people: pd.DataFrame,
    cust: np.ndarray,
    tokens: dict,
    tx: pd.DataFrame,
    app: pd.DataFrame,
    web: list[dict],
    marketing: pd.DataFrame,
    calls: pd.DataFrame,
    *,
    seed: int,
    start: dt.date,
    days: int,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(card transactions, app events, complaints, calls, the calls' truth) with the causes planted."""
    rng = np.random.default_rng(np.random.PCG64([seed, 18]))
    origin = np.datetime64(start, "s")
    causes: list[pd.DataFrame] = []  # person index, ts, cause, event id

    holders = people.person_id.isin(tokens).to_numpy()
    parts = []
    for kind, rate in (("DECLINED", 3.0), ("FEE", 1.5)):
        idx, ts = occurrences(people, np.where(holders, rate, 0.0), rng, start, days)
        fee = kind == "FEE"
        ids = [f"tx-{kind[0].lower()}{i:09d}" for i in range(len(idx))]
        parts.append(
            pd.DataFrame(
                {
                    "txn_id": ids,
                    "card_token": [tokens[pid] for pid in people.person_id.values[idx]],
                    "ts": ts.astype("datetime64[us]"),
                    "amount": rng.choice([99.0, 199.0, 299.0], len(idx))
                    if fee
                    else np.round(rng.lognormal(np.log(3000), 0.8, len(idx)), 2),
                    "currency": "RUB",
                    "txn_type": kind,
                    "mcc": 6012 if fee else 5411,
                    "category": "Bank fee" if fee else "Grocery stores",
                    "merchant": "Monthly service fee"
                    if fee
                    else [f"Grocery stores #{n}" for n in rng.integers(1, 40, len(idx))],
                    "district": people.home_district.values[idx],
                }
            )
        )
        causes.append(
            pd.DataFrame({"i": idx, "ts": ts, "cause": "fee_charged" if fee else "card_declined", "eid": ids})
        )
    tx = pd.concat([tx, *parts], ignore_index=True)

    device = np.array([hashlib.sha1(f"dev{pid}".encode()).hexdigest()[:16].upper() for pid in people.person_id])
    app_users = set(app.device)
    uses_app = np.array([d in app_users for d in device])
    soph = people.digital_sophistication.to_numpy()
    parts = []
    for kind, rate in (("login_failed", 3.0), ("app_error", 2.0), ("transfer_pending", 1.5)):
        idx, ts = occurrences(people, np.where(uses_app, rate * (0.5 + soph), 0.0), rng, start, days)
        ids = [f"app-{kind[:3]}{i:08d}" for i in range(len(idx))]
        parts.append(
            pd.DataFrame(
                {
                    "event_uuid": ids,
                    "device": device[idx],
                    "customer": None,
                    "event": kind,
                    "occurred_at": ts.astype("datetime64[us]"),
                    "screen": "payments"
                    if kind == "transfer_pending"
                    else "login"
                    if kind == "login_failed"
                    else "home",
                }
            )
        )
        causes.append(pd.DataFrame({"i": idx, "ts": ts, "cause": kind, "eid": ids}))
    app = pd.concat([app, *parts], ignore_index=True)

    # complaints: more from the unhappy; most are closed within weeks, some stay open
    idx, ts = occurrences(people, 1.2 * (1.4 - people.satisfaction.to_numpy()), rng, start, days)
    open_hours = rng.gamma(2.0, 5.0, len(idx)) * 24
    closed = ts + open_hours.astype("timedelta64[h]")
    still_open = (rng.random(len(idx)) < 0.15) | (closed > origin + np.timedelta64(days, "D"))
    complaint_ids = [f"CMP{i:07d}" for i in range(len(idx))]
    complaints = pd.DataFrame(
        {
            "complaint_id": complaint_ids,
            "client": cust[idx],
            "opened_at": [str(t).replace("T", " ") for t in ts.astype("datetime64[s]")],
            "topic": rng.choice(COMPLAINT_TOPICS, len(idx)),
            "status": np.where(still_open, "open", "closed"),
            "closed_at": [
                "" if o else str(c).replace("T", " ")
                for o, c in zip(still_open, closed.astype("datetime64[s]"), strict=True)
            ],
        }
    )
    # a follow-up call comes while the complaint is still open
    follow = pd.DataFrame({"i": idx, "ts": ts, "cause": "complaint_opened", "eid": complaint_ids})
    follow["window_h"] = np.where(still_open, 14 * 24, np.minimum(open_hours, 14 * 24))
    causes.append(follow)

    # causes among what the world already holds: abandoned loan forms and declined applications
    cookie_person = {
        f"ck-{hashlib.md5(f'{pid}'.encode()).hexdigest()[:12]}": n for n, pid in enumerate(people.person_id)
    }
    abandoned = [
        r
        for r in web
        if isinstance(r, dict) and r.get("type") == "form_abandoned" and r["anonymous_id"] in cookie_person
    ]
    causes.append(
        pd.DataFrame(
            {
                "i": np.array([cookie_person[r["anonymous_id"]] for r in abandoned], dtype=int),
                "ts": np.array([r["timestamp"].rstrip("Z") for r in abandoned], dtype="datetime64[s]"),
                "cause": "form_abandoned",
                "eid": [r["message_id"] for r in abandoned],
            }
        )
    )
    person_of = {c: n for n, c in enumerate(cust) if isinstance(c, str)}
    declined = marketing.assign(at=pd.to_datetime(marketing.sent_at, format="%Y-%m-%d %H:%M:%S", errors="coerce"))
    declined = declined[(declined.outcome == "declined") & declined.client.isin(person_of) & declined["at"].notna()]
    causes.append(
        pd.DataFrame(
            {
                "i": declined.client.map(person_of).to_numpy(dtype=int),
                "ts": declined["at"].to_numpy().astype("datetime64[s]"),
                "cause": "application_declined",
                "eid": declined.campaign_event_id.to_numpy(),
            }
        )
    )

    planted = _calls_from(pd.concat(causes, ignore_index=True), people, rng, origin, _end_hours(people, start, days))
    calls, truth = _with_outcomes(calls, planted, people, cust, rng, origin, _end_hours(people, start, days))
    return tx, app, complaints, calls, truth


def _calls_from(causes: pd.DataFrame, people, rng, origin, end_h) -> pd.DataFrame:
    """The calls the causes lead to: each with its chance, a few hours to days later, before the person leaves."""
    causes = causes.sort_values(["ts", "eid"], kind="stable").reset_index(drop=True)
    chance = causes.cause.map({k: p for k, (_, p) in CAUSES.items()}).to_numpy()
    delay_h = rng.gamma(1.3, 18.0, len(causes))
    window = causes["window_h"].fillna(np.inf).to_numpy() if "window_h" in causes else np.inf
    delay_h = np.minimum(delay_h, window * rng.random(len(causes)) + 1)
    at = causes.ts.to_numpy().astype("datetime64[s]") + (delay_h * 3600).astype("timedelta64[s]")
    hours = (at - origin).astype("timedelta64[s]").astype(float) / 3600
    keep = (rng.random(len(causes)) < chance) & (hours < end_h[causes.i.to_numpy()])
    made = causes[keep].assign(at=at[keep])
    return pd.DataFrame(
        {
            "i": made.i.to_numpy(),
            "at": made["at"].to_numpy(),
            "reason": made.cause.map({k: r for k, (r, _) in CAUSES.items()}).to_numpy(),
            "cause": made.cause.to_numpy(),
            "cause_event_id": made.eid.to_numpy(),
            "cause_ts": made.ts.to_numpy().astype("datetime64[s]"),
        }
    )


def _with_outcomes(background, planted, people, cust, rng, origin, end_h) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Background and planted calls in one export, each with its queue and outcome, plus repeat calls."""
    background = background.copy()
    bg_person = background.pop("person").to_numpy(dtype=int)
    english = people.english.to_numpy()
    n = len(planted)
    known = rng.random(n) < 0.7
    new = pd.DataFrame(
        {
            "call_id": [f"CALL-P{i:07d}" for i in range(n)],
            "customer_number": np.where(known, cust[planted.i], ""),
            "caller_phone": np.where(known & (rng.random(n) < 0.5), "", people.mobile.values[planted.i]),
            "started_at": [str(t).replace("T", " ") for t in planted["at"].to_numpy().astype("datetime64[s]")],
            "reason_code": planted.reason.to_numpy(),
            "duration_sec": rng.integers(30, 1200, n),
            "summary": [TEXTS[r][int(english[i])] for r, i in zip(planted.reason, planted.i, strict=True)],
        }
    )
    calls = pd.concat([background, new], ignore_index=True)
    person = np.concatenate([bg_person, planted.i.to_numpy()])
    truth = pd.DataFrame(
        {
            "call_id": calls.call_id,
            "person_id": people.person_id.values[person],
            "reason_code": calls.reason_code,
            "cause": ["background"] * len(background) + list(planted.cause),
            "cause_event_id": [None] * len(background) + list(planted.cause_event_id),
            "cause_ts": pd.to_datetime(
                np.concatenate([np.full(len(background), np.datetime64("NaT", "s")), planted.cause_ts.to_numpy()])
            ),
        }
    )
    calls, truth = _route_and_repeat(calls, truth, person, people, rng, end_h, origin)
    return calls, truth


def _route_and_repeat(calls, truth, person, people, rng, end_h, origin):
    """The IVR's queue (the reason's specialists for 60% of calls, else general), the outcome (specialists
    resolve more), and for most unresolved calls one repeat call on the same reason within a week."""
    n = len(calls)
    specialist = rng.random(n) < 0.6
    queue = np.where(specialist, calls.reason_code.map(QUEUES).fillna("general"), "general")
    resolved = rng.random(n) < np.where(specialist, 0.85, 0.55)
    calls = calls.assign(queue=queue, outcome=np.where(resolved, "resolved", "unresolved"))
    again = ~resolved & (rng.random(n) < 0.7)
    at = pd.to_datetime(calls.started_at[again]).to_numpy().astype("datetime64[s]")
    at = at + (rng.uniform(0.2, 6.5, again.sum()) * 86400).astype("timedelta64[s]")
    hours = (at - origin).astype("timedelta64[s]").astype(float) / 3600
    ok = hours < end_h[person[again]]
    src = calls[again][ok]
    who = person[again][ok]
    m = len(src)
    repeat = src.assign(
        call_id=[f"CALL-R{i:07d}" for i in range(m)],
        started_at=[str(t).replace("T", " ") for t in at[ok]],
        duration_sec=rng.integers(30, 1200, m),
        queue=np.where(rng.random(m) < 0.8, src.reason_code.map(QUEUES).fillna("general"), "general"),
        outcome=np.where(rng.random(m) < 0.8, "resolved", "unresolved"),
    )
    truth = pd.concat(
        [
            truth,
            pd.DataFrame(
                {
                    "call_id": repeat.call_id.to_numpy(),
                    "person_id": people.person_id.values[who],
                    "reason_code": repeat.reason_code.to_numpy(),
                    "cause": "repeat",
                    "cause_event_id": src.call_id.to_numpy(),
                    "cause_ts": pd.to_datetime(src.started_at).to_numpy(),
                }
            ),
        ],
        ignore_index=True,
    )
    calls = pd.concat([calls, repeat], ignore_index=True)
    truth = truth.assign(queue=calls.queue.to_numpy(), outcome=calls.outcome.to_numpy())
    return calls, truth

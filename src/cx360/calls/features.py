"""What happened before a call, as features: per family of events (an event name; a call by its
reason; a complaint still open at the time of the call), how many in the last 1, 3, 7 and 30 days
and how recent the last one was. Events at or after the call's time are never read.

Training (from `profile_events`) and serving (from the API's index) both go through `families` and
`matrix`, so the model sees the same features in both places.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pandas as pd

WINDOWS_H = (24, 72, 168, 720)  # 1, 3, 7 and 30 days
LOOKBACK = dt.timedelta(hours=WINDOWS_H[-1])
# Frequent everyday events say little on their own about why someone calls; kept out to stay fast.
IGNORED = frozenset({"page_viewed", "session_started", "card_payment", "store_visit", "call_reason_forecast"})


def props(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def family(name: str, properties: dict[str, Any], at: dt.datetime) -> str | None:
    """The feature family of one event seen from a call at `at` (None: not a feature)."""
    if name in IGNORED:
        return None
    if name == "call":
        reason = properties.get("reason")
        return f"call:{reason}" if reason else "call"
    if name == "complaint":
        closed = properties.get("closed_at")
        if closed in (None, "") or _ts(closed) > at:
            return "complaint_open"
        return "complaint_closed"
    return name


def families(events: pd.DataFrame) -> pd.DataFrame:
    """`events` (key, at: the call's time, ts, name, properties) -> (key, family, hours before the call),
    for events strictly before the call and within the lookback; the index is kept."""
    e = events[(events.ts < events["at"]) & (events.ts >= events["at"] - LOOKBACK)]
    fam = [family(n, props(p), a) for n, p, a in zip(e.name, e.properties, e["at"].dt.to_pydatetime(), strict=True)]
    hours = (e["at"] - e.ts).dt.total_seconds().to_numpy() / 3600.0
    out = pd.DataFrame({"key": e.key.to_numpy(dtype=object), "family": fam, "hours": hours}, index=e.index)
    return out[out.family.notna()]


def of_one_call(events: list[dict[str, Any]], at: dt.datetime) -> dict[str, list]:
    """`families` for one call, straight from its events (ts, name, properties): what the API scores,
    without a DataFrame's overhead. `event` is the position in `events` of each row."""
    out: dict[str, list] = {"key": [], "family": [], "hours": [], "event": []}
    for i, e in enumerate(events):
        if not at - LOOKBACK <= e["ts"] < at:
            continue
        f = family(e["name"], props(e.get("properties")), at)
        if f is not None:
            out["key"].append("call")
            out["family"].append(f)
            out["hours"].append((at - e["ts"]).total_seconds() / 3600.0)
            out["event"].append(i)
    return out


def names(vocabulary: list[str]) -> list[str]:
    return [f"{f}@{w}h" for f in vocabulary for w in WINDOWS_H] + [f"{f}@recency" for f in vocabulary]


def matrix(fam, keys: list, vocabulary: list[str]) -> np.ndarray:
    """Features of each key in `keys` from `fam` (a `families` frame, or `of_one_call`'s columns):
    log(1 + count) per window, then exp(-hours since the last / 24)."""
    col = {f: i for i, f in enumerate(vocabulary)}
    row = {k: i for i, k in enumerate(keys)}
    picked = [
        (row[k], col[f], h)
        for k, f, h in zip(fam["key"], fam["family"], fam["hours"], strict=True)
        if f in col and k in row
    ]
    if picked:
        r, c, h = (np.asarray(column) for column in zip(*picked, strict=True))
        r, c, h = r.astype(int), c.astype(int), h.astype(float)
    else:
        r = c = np.zeros(0, dtype=int)
        h = np.zeros(0)
    n, v = len(keys), len(vocabulary)
    out = np.zeros((n, v * (len(WINDOWS_H) + 1)))
    for w, limit in enumerate(WINDOWS_H):
        inside = h <= limit
        np.add.at(out[:, w * v : (w + 1) * v], (r[inside], c[inside]), 1.0)
    out[:, : len(WINDOWS_H) * v] = np.log1p(out[:, : len(WINDOWS_H) * v])
    np.maximum.at(out[:, len(WINDOWS_H) * v :], (r, c), np.exp(-h / 24.0))
    return out


def describe(name: str, ts: dt.datetime, properties: dict[str, Any], amount: float | None) -> str:
    """One event as evidence an agent reads: 'card declined 2025-03-04 14:02 at Grocery stores #12'."""
    when = f"{ts:%Y-%m-%d %H:%M}"
    if name == "call":
        outcome = f" ({properties['outcome']})" if properties.get("outcome") else ""
        return f"call about {properties.get('reason', 'an unknown reason')} {when}{outcome}"
    if name == "complaint":
        topic = f" about {properties['topic']}" if properties.get("topic") else ""
        state = "still open" if properties.get("closed_at") in (None, "") else f"closed {properties['closed_at']}"
        return f"complaint{topic} opened {when}, {state}"
    text = f"{name.replace('_', ' ')} {when}"
    where = properties.get("merchant") or properties.get("form") or properties.get("offer") or properties.get("screen")
    if where:
        text += f" at {where}" if "merchant" in properties else f" ({where})"
    if amount:
        text += f", {amount:g}"
    return text


def _ts(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "")).replace(tzinfo=None)
    except ValueError:
        return dt.datetime.max

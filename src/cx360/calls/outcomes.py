"""Outcome metrics of the contact centre: first-contact resolution (no repeat contact on the same
reason within 7 days), the repeat-call rate per reason, and which queues led to fewer repeats.

A call counts toward first-contact resolution only when its 7 days lie inside the data (the calls of
the last week have not had the time to be repeated yet)."""

from __future__ import annotations

import pandas as pd

REPEAT_DAYS = 7


def flag_repeats(calls: pd.DataFrame) -> pd.DataFrame:
    """`calls` (key, profile_id, at, reason, queue) with `repeated` (the same person called again on the
    same reason within 7 days), `is_repeat` (this call is such a repeat) and `observed` (its 7 days are
    inside the data)."""
    c = calls[calls.reason.notna()].sort_values(["profile_id", "reason", "at", "key"], kind="stable").copy()
    same = (c.profile_id == c.profile_id.shift(-1)) & (c.reason == c.reason.shift(-1))
    gap = c["at"].shift(-1) - c["at"]
    c["repeated"] = same & (gap <= pd.Timedelta(days=REPEAT_DAYS))
    before = (c.profile_id == c.profile_id.shift(1)) & (c.reason == c.reason.shift(1))
    c["is_repeat"] = before & (c["at"] - c["at"].shift(1) <= pd.Timedelta(days=REPEAT_DAYS))
    c["observed"] = c["at"] <= c["at"].max() - pd.Timedelta(days=REPEAT_DAYS)
    return c.sort_values(["at", "key"], kind="stable").reset_index(drop=True)


def summarise(calls: pd.DataFrame) -> dict:
    """Per reason: calls, first-contact resolution, repeat-call rate; per reason and queue: the same, so
    that routing choices can be compared; and the totals."""
    c = flag_repeats(calls)
    seen = c[c.observed]

    def rates(g: pd.DataFrame, o: pd.DataFrame) -> dict:
        return {
            "calls": len(g),
            "people": g.profile_id.nunique(),
            "first_contact_resolution": round(float(1 - o.repeated.mean()), 4) if len(o) else None,
            "repeat_call_rate": round(float(g.is_repeat.mean()), 4) if len(g) else None,
        }

    by_reason = {r: rates(g, seen[seen.reason == r]) for r, g in c.groupby("reason", sort=True)}
    by_queue = []
    for (r, q), o in seen.groupby(["reason", seen.queue.fillna("(none)")], sort=True):
        by_queue.append(
            {
                "reason": r,
                "queue": q,
                "calls": len(o),
                "people": o.profile_id.nunique(),
                "first_contact_resolution": round(float(1 - o.repeated.mean()), 4),
            }
        )
    best = {}
    for row in by_queue:
        if row["calls"] >= 10 and (
            row["reason"] not in best
            or row["first_contact_resolution"] > best[row["reason"]]["first_contact_resolution"]
        ):
            best[row["reason"]] = row
    return {
        "calls": len(c),
        "observed": len(seen),
        "first_contact_resolution": round(float(1 - seen.repeated.mean()), 4) if len(seen) else None,
        "repeat_call_rate": round(float(c.is_repeat.mean()), 4) if len(c) else None,
        "by_reason": by_reason,
        "by_reason_and_queue": by_queue,
        "fewest_repeats": {r: row["queue"] for r, row in sorted(best.items())},
    }


def pooled(report: dict, min_people: int) -> dict:
    """The report with every reason (and reason x queue) of fewer than `min_people` people left out and
    counted in one line: a rare reason code tells who called about it."""
    small = {r for r, m in report["by_reason"].items() if m["people"] < min_people}
    rows = [q for q in report["by_reason_and_queue"] if q["reason"] not in small and q["people"] >= min_people]
    return {
        **report,
        "by_reason": {r: m for r, m in report["by_reason"].items() if r not in small},
        "by_reason_and_queue": rows,
        "fewest_repeats": {r: q for r, q in report["fewest_repeats"].items() if r not in small},
        "pooled": {
            "reasons": len(small),
            "calls": sum(report["by_reason"][r]["calls"] for r in small),
            "min_people": min_people,
        },
    }

"""Small groups in aggregate reports, for roles that may not see personal data.

A count of one to k − 1 people tells who they are to anyone who knows a little about them (the one
visitor from a village, the two people who left a form at a rare field). For such roles a report of
funnels, forms, visits, habits or listening goes through `pooled`:

- in a breakdown by a value (a district, a place, a field, an error, a move between archetypes, a
  funnel's channel or segment), the groups of fewer than k are pooled into one `other` group;
- every count left between 1 and k − 1 (a funnel's step, a period, a histogram bucket, a pooled
  group that is still small) is shown as `< k` (a `Few`);
- the rates, medians and amounts of a record with such a count are withheld, as they would give it back.

Zero stays zero: that nobody did something singles out nobody. The report's own structure (dataclass
or dict) is kept, so the pages read it as they read the full report.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

OTHER = "other"
# Fields that count people, visits, attempts or posts, in any of the reports.
COUNTS = frozenset(
    {
        "entered",
        "converted",
        "starts",
        "submitted",
        "abandoned",
        "open",
        "people",
        "visits",
        "visitors",
        "customers",
        "non_customers",
        "non_customer_visits",
        "visits_without_profile",
        "visitors_without_analytics_consent",
        "visits_with_dwell",
        "payments",
        "buyers",
        "changers",
        "changed",
        "changes",
        "mentions",
        "positive",
        "neutral",
        "negative",
        "prospects",
    }
)
# Figures computed from a record's counts: withheld where one of its counts is.
DERIVED = frozenset(
    {
        "conversion",
        "median_seconds_from_previous",
        "submit_rate",
        "median_seconds_to_submit",
        "median_seconds_to_abandon",
        "share",
        "rate",
        "net_tone",
        "intent",
        "amount",
        "median_dwell_minutes",
        "yearly_change_rate",
        "minutes",
    }
)
# Lists of groups keyed by a value, pooled into `other`; each group's size is its first count named here.
GROUPED = frozenset({"catchment", "places", "fields", "last_pages", "errors", "transitions", "rows"})
SIZE = ("people", "visitors", "buyers", "abandoned", "changes", "entered")
COUNT_MAPS = frozenset({"changes_per_person"})  # class -> people


@dataclass(frozen=True)
class Few:
    """A count of 1 to k − 1, shown as `< k`."""

    k: int

    def __str__(self) -> str:
        return f"< {self.k}"


def few(value: Any, k: int) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < k:
        return Few(k)
    return value


def pooled(report: Any, k: int) -> Any:
    """`report` (a dataclass, dict or list of them) with its small groups pooled and small counts masked."""
    return _walk(report, k, None)


def _walk(obj: Any, k: int, name: str | None) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        values = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return dataclasses.replace(obj, **_record(values, k))
    if isinstance(obj, dict):
        if name in COUNT_MAPS:
            return {key: few(v, k) for key, v in obj.items()}
        if name == "groups":  # a funnel's breakdown: group -> its steps
            return {g: _walk(steps, k, None) for g, steps in _pool_funnel_groups(obj, k).items()}
        return _record(obj, k)
    if isinstance(obj, list):
        rows = _pool_rows(obj, k) if name in GROUPED else obj
        return [_walk(x, k, None) for x in rows]
    return obj


def _record(values: dict, k: int) -> dict:
    out = {key: few(v, k) if key in COUNTS else _walk(v, k, key) for key, v in values.items()}
    if any(isinstance(out[key], Few) for key in out if key in COUNTS):
        for key in DERIVED & out.keys():
            out[key] = dict.fromkeys(out[key]) if isinstance(out[key], dict) else None
    return out


def _size(row: dict) -> int:
    return next((row[key] for key in SIZE if isinstance(row.get(key), int)), 0)


def _pool_rows(rows: list, k: int) -> list:
    if not rows or not all(isinstance(r, dict) for r in rows):
        return rows
    small = [r for r in rows if 0 < _size(r) < k]
    if not small:
        return rows
    other: dict = {}
    for key, v in small[0].items():
        if key in COUNTS:
            other[key] = sum(r[key] or 0 for r in small)
        elif isinstance(v, str):
            other[key] = OTHER
        else:
            other[key] = None
    return [r for r in rows if not 0 < _size(r) < k] + [other]


def _pool_funnel_groups(groups: dict, k: int) -> dict:
    small = [g for g, steps in groups.items() if steps and 0 < steps[0].entered < k]
    if not small:
        return groups
    kept = {g: steps for g, steps in groups.items() if g not in small}
    first = groups[small[0]]
    kept[OTHER] = [
        dataclasses.replace(
            step,
            entered=sum(groups[g][i].entered for g in small),
            converted=sum(groups[g][i].converted for g in small),
            conversion=None,
            median_seconds_from_previous=None,
        )
        for i, step in enumerate(first)
    ]
    return kept

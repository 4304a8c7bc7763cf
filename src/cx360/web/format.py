"""The one formatting layer of the dashboard: labels, missing values, numbers and times as people read
them. Templates show values through these filters only, so that no `None`, `snake_case` name or
microsecond timestamp reaches the screen."""

from __future__ import annotations

import datetime as dt
import re

from cx360.privacy.small_groups import Few

MISSING = "—"
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?")
# Words that keep their capitals when a label is humanised.
_UPPER = {"clv": "CLV", "rfm": "RFM", "id": "id", "nba": "NBA", "sms": "SMS", "atm": "ATM", "pos": "POS", "utc": "UTC"}


def label(name: object) -> str:
    """A column, trait, event or channel name as words: `spend_total` -> `Spend total`, `clv_12m` -> `CLV 12m`."""
    if name is None:
        return MISSING
    words = [_UPPER.get(w.lower(), w) for w in re.split(r"[_\s]+", str(name).strip()) if w]
    if not words:
        return MISSING
    first = words[0]
    words[0] = first if first in _UPPER.values() else first[:1].upper() + first[1:]
    return " ".join(words)


def words(name: object) -> str:
    """A name inside a sentence: `high_value` -> `high value` (no capital)."""
    return MISSING if name is None else re.sub(r"_+", " ", str(name)).strip() or MISSING


def when(value: object, *, date_only: bool = False) -> str:
    """A time to the minute (UTC, as stored), a date as a date; ISO strings from JSON documents too."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, str):
        if not _ISO.match(value):
            return value
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        if date_only or (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return value.strftime("%Y-%m-%d")
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def num(value: object, digits: int = 0) -> str:
    if isinstance(value, Few):  # a count of fewer than k people, withheld from this role
        return str(value)
    if value is None or (isinstance(value, float) and value != value):
        return MISSING
    return f"{value:,.{digits}f}"


def pct(value: object, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return MISSING
    return f"{value:.{digits}%}"


def duration(seconds: object) -> str:
    """Seconds as the largest units that read well: `95` -> `1 min 35 s`, `90000` -> `1 d 1 h`."""
    if seconds is None or (isinstance(seconds, float) and seconds != seconds):
        return MISSING
    s = round(float(seconds))
    for unit, size, smaller, small_size in (("d", 86400, "h", 3600), ("h", 3600, "min", 60), ("min", 60, "s", 1)):
        if s >= size:
            big, rest = divmod(s, size)
            rest //= small_size
            return f"{big} {unit} {rest} {smaller}" if rest else f"{big} {unit}"
    return f"{s} s"


def value(v: object) -> str:
    """Any value of a table cell: missing, a time, a number or text."""
    if v is None or v == "":
        return MISSING
    if isinstance(v, Few):
        return str(v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return num(v, 0 if abs(v) >= 1000 else 2)
    if isinstance(v, dt.date | dt.datetime) or (isinstance(v, str) and _ISO.match(v)):
        return when(v)
    return str(v)


FILTERS = {"label": label, "words": words, "when": when, "num": num, "pct": pct, "duration": duration, "value": value}

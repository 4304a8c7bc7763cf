"""Identifier values that must not link people, found by their shape and by whom they are held.

- a placeholder by pattern: `noreply@…`, `no-email@…`, `test1@…`, `a@a.ru`, `xxx@…`, `12345@…`,
  an e-mail at an example or test domain, a phone whose last 7 digits are all the same or whose
  national number is a run (`+79999999999`, `+71234567890`), a customer number or cookie such as
  `UNKNOWN`, `undefined`, `0000-0000`;
- an e-mail at one of the organisation's own domains (`[identity].own_domains`): a staff or
  shared mailbox, not a customer's;
- a value held by records of `[identity].shared_by_people` or more different people: records
  that differ both in first name and in birth date.

Each reason starts with the rule's name, so `explain` can say which rule blocked a value.
"""

from __future__ import annotations

import re

import pandas as pd
import phonenumbers
import pyarrow as pa

from cx360 import node_keys
from cx360.config import IdentitySettings
from cx360.identity.names import canonical_first_name

# Words that stand for "no value", once separators (and in e-mails digits) are removed: n/a -> na.
JUNK_WORDS = frozenset(
    {
        "none",
        "null",
        "nil",
        "na",
        "nan",
        "no",
        "not",
        "unknown",
        "undefined",
        "empty",
        "blank",
        "default",
        "missing",
        "test",
        "testing",
        "tester",
        "example",
        "sample",
        "dummy",
        "fake",
        "temp",
        "anonymous",
        "anon",
        "guest",
        "user",
        "noemail",
        "nomail",
        "noaddress",
        "email",
        "mail",
        "noreply",
        "donotreply",
        "dontreply",
        "noname",
        "nobody",
        "asdf",
        "qwerty",
        "xyz",
        "client",
        "customer",
        "net",
        "netu",
    }
)
_NO_REPLY = re.compile(r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer[-_.]?daemon|postmaster|bounce)")
_JUNK_DOMAIN = re.compile(r"(^|\.)(example|test|invalid|localhost|local|none|noemail|nomail)(\.[a-z]{2,6})?$")
_SEPARATORS = re.compile(r"[\d\s._+\-/\\]")  # for e-mail local parts: digits too
_RUNS = "01234567890", "09876543210", "abcdefghijklmnopqrstuvwxyz", "qwertyuiop", "asdfghjkl"


def pattern_reason(kind: str, value: str, settings: IdentitySettings) -> str | None:
    """Why a normalised value is junk by its shape alone, or None."""
    if kind == "email":
        return _email(value, settings)
    if kind == "phone":
        return _phone(value)
    return _token(value)


def _email(value: str, settings: IdentitySettings) -> str | None:
    local, _, domain = value.rpartition("@")
    for own in settings.own_domains:
        if domain == own or domain.endswith("." + own):
            return f"own domain: {own} is the organisation's own ([identity].own_domains), so a staff or shared mailbox"
    if _NO_REPLY.match(local):
        return "placeholder pattern: a no-reply address"
    if _JUNK_DOMAIN.search(domain):
        return "placeholder pattern: an example or test domain"
    if len(local) < settings.min_email_local_part:
        shortest = settings.min_email_local_part
        return f"placeholder pattern: a local part shorter than {shortest} characters"
    return _token(local, what="local part", email=True)


def _phone(value: str) -> str | None:
    try:
        national = str(phonenumbers.parse(value).national_number)
    except phonenumbers.NumberParseException:
        national = value.lstrip("+")
    if len(set(national[-7:])) == 1:
        return "placeholder pattern: the last 7 digits are all the same"
    if any(national in run for run in _RUNS[:2]):
        return "placeholder pattern: the number is a run of digits"
    return None


def _token(value: str, what: str = "value", email: bool = False) -> str | None:
    """Junk words and repeated characters for any kind. Only in an e-mail's local part are digits
    ignored (`test1`) and runs junk (`12345`, `abcd`): a hex device id loses letters to neither,
    and a customer number 1234 may well be a real key."""
    low = value.lower()
    bare = re.sub(r"[\s._+\-/\\]", "", low)
    word = _SEPARATORS.sub("", low) if email else bare
    if word in JUNK_WORDS:
        return f"placeholder pattern: the {what} is a placeholder word ({word})"
    if len(bare) >= 3 and len(set(bare)) == 1:
        return f"placeholder pattern: the {what} repeats one character"
    if email and len(bare) >= 3 and any(bare in run for run in _RUNS):
        return f"placeholder pattern: the {what} is a run of characters"
    return None


def pattern_flags(nodes: pd.Series, settings: IdentitySettings) -> pd.DataFrame:
    """node, reason for each identifier node key whose value is junk by its shape."""
    keys = nodes.drop_duplicates()
    keys = keys[node_keys.kind_series(keys) != node_keys.RECORD]
    kinds, values = node_keys.kind_series(keys), node_keys.value_series(keys)
    reasons = [pattern_reason(k, v, settings) for k, v in zip(kinds, values, strict=True)]
    found = pd.DataFrame({"node": keys.to_numpy(), "reason": reasons})
    return found[found.reason.notna()]


def shared_by_people(links: pd.DataFrame, records: pa.Table, settings: IdentitySettings) -> pd.DataFrame:
    """node, reason for each identifier held by records of `shared_by_people` or more people.

    Records are different people when they differ both in first name (nicknames and spellings
    folded) and in birth date, so that one typo or a swapped day and month does not count as a
    second person: the count is the smaller of the two numbers of distinct values.
    """
    held = links[links.rule == "record_identifier"][["left", "right", "source"]]
    if held.empty:
        return pd.DataFrame({"node": [], "reason": []})
    people = records.select(["node", "first_name", "birth_date"]).to_pandas()
    people["first"] = [canonical_first_name(n) if isinstance(n, str) else None for n in people.first_name]
    people["born"] = people.birth_date.astype("string")
    held = held.merge(people[["node", "first", "born"]], left_on="left", right_on="node", how="inner")
    by = held.groupby("right").agg(firsts=("first", "nunique"), births=("born", "nunique"))
    known = by.where(by > 0)  # a field no record has says nothing
    by["people"] = known.min(axis=1).fillna(0).astype(int)
    many = by[by.people >= settings.shared_by_people]
    sources = held[held.right.isin(many.index)].groupby("right").source.agg(lambda s: ", ".join(sorted(set(s))))
    reasons = [
        f"shared: held by records of {p} different people ({f} first names, {b} birth dates) in {sources[node]}"
        for node, p, f, b in zip(many.index, many.people, many.firsts, many.births, strict=True)
    ]
    return pd.DataFrame({"node": many.index.to_numpy(), "reason": reasons})

"""Identifier values that must not link people, found by their shape and by whom they are held.

- a placeholder by pattern: `noreply@…`, `no-email@…`, `test1@…`, `a@a.ru`, `xxx@…`, `12345@…`,
  an e-mail at an example or test domain, a phone whose last 7 digits are all the same or whose
  national number is a run (`+79999999999`, `+71234567890`), a customer number or cookie such as
  `UNKNOWN`, `undefined`, `0000-0000`;
- an e-mail at one of the organisation's own domains (`[identity].own_domains`): a staff or
  shared mailbox, not a customer's;
- a value held by records of `[identity].shared_by_people` or more different people: records
  that differ both in first name and in birth date;
- a shared contact: a phone or e-mail that is all two records have in common while their first names,
  birth dates or genders conflict (spouses, a parent and child, twins). A contact is evidence, not
  proof: two such records stay apart unless something else links them.

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

CONTACT_KINDS = ("phone", "email")

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


def pattern_flags(nodes: pd.Series, settings: IdentitySettings, values: dict[str, str] | None = None) -> pd.DataFrame:
    """node, reason for each identifier node key whose value is junk by its shape; `values` gives the
    clear value of each node that holds a token (the PII vault on)."""
    keys = nodes.drop_duplicates()
    keys = keys[node_keys.kind_series(keys) != node_keys.RECORD]
    kinds = node_keys.kind_series(keys)
    clear = node_keys.value_series(keys) if values is None else keys.map(values)
    reasons = [
        pattern_reason(k, v, settings) if isinstance(v, str) else None for k, v in zip(kinds, clear, strict=True)
    ]
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


def shared_contacts(links: pd.DataFrame, records: pa.Table) -> pd.DataFrame:
    """node, reason for each phone or e-mail that is all two records have in common while their first
    names (nicknames and spellings folded, one typo allowed), birth dates (one typo or a swapped day and
    month allowed) or genders conflict. Records that share a second identifier too (a phone and an
    e-mail, a customer number) are left to the other rules: a nickname with a typo is likelier then than
    two people. A contact shared within one source is found by `suspicious_nodes` already."""
    held = links[links.rule == "record_identifier"][["left", "right", "kind"]]
    contacts = held[held.kind.isin(CONTACT_KINDS)]
    if contacts.empty:
        return pd.DataFrame({"node": [], "reason": []})
    holds = held.groupby("left").right.agg(set).to_dict()
    people = records.select(["node", "first_name", "birth_date", "gender"]).to_pandas()
    people["first"] = [canonical_first_name(n) if isinstance(n, str) else None for n in people.first_name]
    people["born"] = [_date_digits(b) for b in people.birth_date]
    people["sex"] = [_gender(g) for g in people.gender]
    contacts = contacts.merge(people[["node", "first", "born", "sex"]], left_on="left", right_on="node", how="inner")
    contacts = contacts[contacts.groupby("right").left.transform("nunique") >= 2]
    found = []
    for node, group in contacts.groupby("right", sort=True):
        rows = group.drop_duplicates("left").to_dict("records")
        why = next(
            (
                w
                for i, a in enumerate(rows)
                for b in rows[i + 1 :]
                if len(holds[a["left"]] & holds[b["left"]]) == 1 and (w := _conflict(a, b)) is not None
            ),
            None,
        )
        if why is not None:
            found.append((node, f"shared contact: held by records of different people ({why})"))
    return pd.DataFrame(found, columns=["node", "reason"])


def _conflict(a: dict, b: dict) -> str | None:
    """What says that two records are two people (the two values, in order), or None."""
    # merged frames hold a missing value as NaN: only strings are values
    both = lambda f: sorted((a[f], b[f])) if isinstance(a[f], str) and isinstance(b[f], str) else None  # noqa: E731
    if (sex := both("sex")) and sex[0] != sex[1]:
        return f"genders {sex[0]} and {sex[1]}"
    if (first := both("first")) and _names_conflict(*first):
        return f"first names {first[0]} and {first[1]}"
    if (born := both("born")) and _dates_conflict(*born):
        return f"birth dates {_iso(born[0])} and {_iso(born[1])}"
    return None


def _names_conflict(a: str, b: str) -> bool:
    # One typo apart is one name, except a trailing "a": Aleksandr and Aleksandra are a couple.
    gendered = a + "a" == b or b + "a" == a
    return gendered or not _one_edit(a, b)


def _dates_conflict(a: str, b: str) -> bool:
    """YYYYMMDD dates of two people: not a typo of one digit within a year or so, a swap of neighbours,
    or a day and month swapped (a parent born 1970 and a child born 1990 are one digit apart)."""
    if a == b or a == b[:4] + b[6:] + b[4:6]:
        return False
    if _one_edit(a, b) and len(a) == len(b):
        swapped = sum(x != y for x, y in zip(a, b, strict=True)) == 2
        return not (swapped or abs(int(a[:4]) - int(b[:4])) <= 1)
    return True


def _iso(digits: str) -> str:
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"


def _one_edit(a: str, b: str) -> bool:
    """Equal, or one substitution, insertion, deletion or swap of neighbours apart."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]])
    short, long = sorted((a, b), key=len)
    i = next((i for i in range(len(short)) if short[i] != long[i]), len(short))
    return short[i:] == long[i + 1 :]


def _date_digits(value: object) -> str | None:
    """YYYYMMDD of a birth date, or None."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    born = pd.to_datetime(str(value), errors="coerce")
    return None if pd.isna(born) else born.strftime("%Y%m%d")


_GENDERS = {"m": "m", "male": "m", "м": "m", "муж": "m", "f": "f", "female": "f", "ж": "f", "жен": "f", "w": "f"}


def _gender(value: object) -> str | None:
    """m or f, or None for anything else (unknown, other, missing)."""
    if not isinstance(value, str):
        return None
    return _GENDERS.get(value.strip().lower().rstrip("."))

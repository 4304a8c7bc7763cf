"""Normalisation of typed identifiers, so that the same person's identifier looks the same in every source.

String identifiers are normalised with engine expressions. Phone numbers need
libphonenumber and documents python-stdnum, so they are parsed in Python once
per distinct value and joined back: a source has far fewer distinct phones than rows.
"""

from __future__ import annotations

from collections.abc import Iterable

import ibis
import ibis.expr.types as ir
import phonenumbers

from cx360 import documents

PARSED_IN_PYTHON = ("phone", "document")  # by parse_table, per distinct value
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def strip(text: ir.StringValue) -> ir.StringValue:
    """Leading and trailing whitespace (NBSP included) removed. A regular expression rather than
    Ibis' strip(), which Spark compiles into a trim that also eats the letters 'f' and 'v'."""
    return text.re_replace("^[\\s\u00a0]+|[\\s\u00a0]+$", "")


def clean(value: ir.Value) -> ir.StringValue:
    """Trimmed string, NULL when empty."""
    text = strip(value.cast("string"))
    return ibis.ifelse(text == "", ibis.null("string"), text)


def normalise(kind: str, value: ir.Value) -> ir.StringValue:
    """Normalised form of a non-phone identifier (see schema.IDENTIFIERS for each rule)."""
    text = clean(value)
    if kind in ("email", "device_id"):
        return text.lower()
    if kind in ("customer_no", "card_token"):
        return text.upper()
    if kind == "social_handle":
        return text.lower().lstrip().re_replace(r"^@+", "")
    if kind in ("cookie_id", *PARSED_IN_PYTHON):
        return text
    raise ValueError(f"unknown identifier kind {kind!r}")


def normalise_value(kind: str, value: str, region: str | None = None) -> str | None:
    """The same rules as `normalise` (and phone parsing), for one value in Python."""
    text = value.strip()
    if not text:
        return None
    if kind == "phone":
        return parse_phone(text, region)[0]
    if kind in ("email", "device_id"):
        return text.lower()
    if kind in ("customer_no", "card_token"):
        return text.upper()
    if kind == "social_handle":
        return text.lower().lstrip("@")
    if kind == "cookie_id":
        return text
    if kind == "document":
        return document_value(text)
    raise ValueError(f"unknown identifier kind {kind!r}")


def document_value(text: str, scheme: str | None = None) -> str | None:
    """A document number in its stored form; `SCHEME:NUMBER` (ru.inn:7707083893) names its scheme."""
    prefix, sep, rest = text.partition(":")
    if scheme is None and sep and documents.known(prefix):
        scheme, text = prefix, rest
    return documents.normalise(scheme, text)[0]


def invalid(kind: str, normalised: ir.StringValue) -> ir.BooleanValue | None:
    """A condition that flags a malformed value of this kind, or None when any text is accepted."""
    if kind == "email":
        return normalised.notnull() & ~normalised.re_search(EMAIL_PATTERN)
    return None


def parse_phone(raw: str, region: str | None) -> tuple[str | None, str | None]:
    """(E.164 number, None) or (None, reason)."""
    text = raw.strip()
    if not text:
        return None, None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        hint = "" if region or text.startswith("+") else " (no +country code and no [workspace].default_region)"
        return None, f"not a phone number: {exc}{hint}"
    if not phonenumbers.is_valid_number(number):
        return None, f"not a valid phone number for region {phonenumbers.region_code_for_number(number) or region}"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def parse_table(kind: str, values: Iterable[str], *, region: str | None, scheme: str | None) -> dict[str, list]:
    """Columns raw / value / reason for each distinct raw phone or document: its normal form, or why it
    is not a valid one."""
    raw, normal, reason = [], [], []
    for value in values:
        parsed, why = parse_phone(value, region) if kind == "phone" else documents.normalise(scheme, value)
        raw.append(value)
        normal.append(parsed)
        reason.append(why)
    return {"raw": raw, "value": normal, "reason": reason}

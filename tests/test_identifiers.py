"""Identifier normalisation: the same person's identifier looks the same in every source."""

from __future__ import annotations

import ibis
import pytest

from cx360.identifiers import normalise, parse_phone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("8 (916) 123-45-67", "RU", "+79161234567"),
        ("+7 916 123 45 67", None, "+79161234567"),
        ("79161234567", "RU", "+79161234567"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("+1 (650) 253-0000", "RU", "+16502530000"),
    ],
)
def test_phone_formats_become_e164(raw, region, expected):
    assert parse_phone(raw, region) == (expected, None)


@pytest.mark.parametrize(
    ("raw", "region", "fragment"),
    [
        ("12-34", "RU", "not a valid phone number"),
        ("0000000000", "RU", "not a valid phone number"),
        ("call me", "RU", "not a phone number"),
        ("916 123 45 67", None, "no +country code and no [workspace].default_region"),
    ],
)
def test_unparseable_phones_give_a_reason(raw, region, fragment):
    number, reason = parse_phone(raw, region)
    assert number is None and fragment in reason


def test_blank_phone_is_no_value_not_an_error():
    assert parse_phone("   ", "RU") == (None, None)


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("email", "  Ivan.Petrov@Mail.RU ", "ivan.petrov@mail.ru"),
        ("customer_no", " c-0012 ", "C-0012"),
        ("card_token", "tok_ab12", "TOK_AB12"),
        ("device_id", "A1B2-C3", "a1b2-c3"),
        ("cookie_id", " AbC ", "AbC"),
        ("social_handle", "@@Ivan_P", "ivan_p"),
        ("email", "   ", None),
    ],
)
def test_string_identifiers_normalise(kind, raw, expected):
    t = ibis.memtable({"v": [raw]})
    assert ibis.duckdb.connect().to_pyarrow(t.select(out=normalise(kind, t.v)))["out"].to_pylist() == [expected]

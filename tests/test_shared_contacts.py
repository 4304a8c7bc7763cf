"""A phone or e-mail shared by two records is evidence, not proof: spouses, a parent and child and twins
who share a contact stay apart, the contact is reported as shared, and one person's typos still merge."""

from __future__ import annotations

import pytest
from test_junk_identifiers import groups, profile_of, reasons_for

from cx360.identity.explain import explain
from cx360.identity.junk import _dates_conflict, _names_conflict
from cx360.identity.resolve import resolve
from cx360.sources.ingest import ingest

CORE = """
    id,first,last,dob,sex,phone,email
    K1,Иван,Петров,1960-04-01,M,+79161110001,
    K2,Ольга,Смирнова,1990-06-06,F,,smirnovy@mail.ru
    K3,Александр,Волков,1982-02-02,,+79161110003,
    K4,Дмитрий,Орлов,1975-03-12,M,+79161110004,
    K5,Саша,Белов,1991-01-01,M,+79161110005,
    K6,Коля,Егоров,1970-07-07,M,+79161110006,kolya.egorov@mail.ru
"""
CARDS = """
    id,first,last,dob,sex,phone,email
    M1,Ivan,Petrov,1988-04-01,M,+79161110001,
    M2,Elena,Smirnova,1990-06-06,F,,smirnovy@mail.ru
    M3,Aleksandra,Volkova,1982-02-02,,+79161110003,
    M4,Dmtriy,Orlov,1975-03-12,M,+79161110004,
    M5,Sasha,Belova,1991-01-01,F,+79161110005,
    M6,Kloya,Egorov,1970-07-07,M,+79161110006,kolya.egorov@mail.ru
"""
SOURCE = """
    [[sources]]
    name = "{name}"
    kind = "csv"
    path = "data/{name}.csv"
    [sources.records]
    record_id = "id"
    identifiers = {{ phone = "phone", email = "email" }}
    attributes = {{ first_name = "first", last_name = "last", gender = "sex", birth_date = "dob" }}
"""


@pytest.mark.parametrize("engine_kind", ["duckdb"], indirect=True)
def test_people_who_share_a_contact_stay_apart_and_the_contact_is_reported(make_workspace):
    make_workspace.write("data/core.csv", CORE)
    make_workspace.write("data/cards.csv", CARDS)
    ws = make_workspace.config(
        "[identity]\nprobabilistic = false\n" + SOURCE.format(name="core") + SOURCE.format(name="cards")
    )
    assert all(r.ok for r in ingest(ws))
    resolve(ws)
    # Dmitriy with a typo is one person, and so is Kolya, whose nickname's typo is no second person
    # when he shares both a phone and an e-mail; the others are a father and son, twins, a married
    # couple and two Sashas of different genders, who share one contact each.
    assert groups(ws) == {
        frozenset({"K4", "M4"}),
        frozenset({"K6", "M6"}),
        *(frozenset({k}) for k in ("K1", "M1", "K2", "M2", "K3", "M3", "K5", "M5")),
    }
    shared = "shared contact: held by records of different people"
    assert reasons_for(ws, "phone:+79161110001") == {f"{shared} (birth dates 1960-04-01 and 1988-04-01)"}
    assert reasons_for(ws, "email:smirnovy@mail.ru") == {f"{shared} (first names elena and olga)"}
    assert reasons_for(ws, "phone:+79161110003") == {f"{shared} (first names alexandr and alexandra)"}
    assert reasons_for(ws, "phone:+79161110005") == {f"{shared} (genders f and m)"}
    assert reasons_for(ws, "phone:+79161110004") == set()
    assert profile_of(ws, "phone:+79161110001") is None
    # explain shows the contact as shared, with both records that hold it
    e = explain(ws, "phone:+79161110001")
    assert e.profile_id is None and {l["left"] for l in e.blocked} == {"record:core:K1", "record:cards:M1"}
    assert all(l["blocked_reason"].startswith("shared contact: ") for l in e.blocked)


def test_what_counts_as_two_people():
    assert not _names_conflict("dmitrii", "dmtrii") and not _names_conflict("ivan", "ivna")
    # one edit apart, but a trailing "a" makes the feminine form: Evgeniy and Evgeniya are two people
    assert _names_conflict("evgenii", "evgeniia") and _names_conflict("aleksandr", "aleksandra")
    assert _names_conflict("olga", "elena")
    assert not _dates_conflict("19750312", "19751203")  # day and month swapped
    assert not _dates_conflict("19750312", "19750313") and not _dates_conflict("19750312", "19570312")
    assert _dates_conflict("19700512", "19900512")  # one digit, twenty years: a parent and child
    assert _dates_conflict("19700512", "19720815")

"""Junk identifiers: a malformed one costs the row only that identifier, and a junk, shared or
event-borne one never merges different people; each is explained."""

from __future__ import annotations

import json

import pytest
from conftest import DUCKDB_ONLY

from cx360.errors import NotFoundError
from cx360.identity.explain import explain
from cx360.identity.resolve import resolve
from cx360.sources.ingest import ingest

CRM = """
    id,first,last,dob,phone,email
    K1,Ivan,Petrov,1980-05-03,0000000000,ivan.petrov@mail.ru
    K2,Anna,Sidorova,1985-01-02,0,anna.s@yandex.ru
    K3,Oleg,Volkov,1979-03-04,12345,oleg.v@gmail.com
    K4,Nina,Orlova,1990-07-08,+79161234567,
"""
CRM_SOURCE = """
    [identity]
    probabilistic = false

    [[sources]]
    name = "crm"
    kind = "csv"
    path = "data/crm.csv"
    [sources.records]
    record_id = "id"
    identifiers = { customer_no = "id", phone = "phone", email = "email" }
    attributes = { first_name = "first", last_name = "last", birth_date = { column = "dob", type = "date" } }
"""
CALLS = """
    call_id,customer,caller
    c1,K4,12345
    c2,,0000000000
"""
CALLS_SOURCE = """
    [[sources]]
    name = "calls"
    kind = "csv"
    path = "data/calls.csv"
    [sources.events]
    event_id = "call_id"
    timestamp = { value = "2025-03-01T10:00:00Z" }
    name = { value = "call" }
    identifiers = { customer_no = "customer", phone = "caller" }
"""


@pytest.fixture(params=["duckdb"])
def engine_kind(request):
    """DuckDB for the module; the ingest test also runs on Spark (the graph rules run in pandas on both)."""
    if request.param == "spark":
        request.getfixturevalue("spark_session")
    return request.param


def table(ws, name: str) -> list[dict]:
    return ws.engine.to_arrow(ws.engine.table(name), step="test").to_pylist()


@DUCKDB_ONLY  # junk identifiers on Spark: tests/test_identity.py
def test_a_junk_phone_keeps_the_customer_and_records_why(make_workspace):
    make_workspace.write("data/crm.csv", CRM)
    make_workspace.write("data/calls.csv", CALLS)
    ws = make_workspace.config(CRM_SOURCE + CALLS_SOURCE)
    crm, calls = ingest(ws)
    assert (crm.read, crm.loaded, crm.quarantined, crm.identifiers_dropped) == (4, 4, 0, 3)
    # an event keeps its customer number; one whose only identifier was junk is quarantined, saying why
    assert (calls.read, calls.loaded, calls.quarantined) == (2, 1, 1)
    [quarantined] = table(ws, "quarantine")
    assert (
        "phone (caller): not a valid phone number" in quarantined["reasons"]
        and "'0000000000'" in quarantined["reasons"]
    )
    dropped = sorted((d["source"], d["key"], d["kind"], d["value"]) for d in table(ws, "dropped_identifiers"))
    assert dropped == [
        ("calls", "c1", "phone", "12345"),
        ("crm", "K1", "phone", "0000000000"),
        ("crm", "K2", "phone", "0"),
        ("crm", "K3", "phone", "12345"),
    ]
    resolve(ws)
    profiles = {p["first_name"]: p for p in table(ws, "profiles")}
    assert set(profiles) == {"Ivan", "Anna", "Oleg", "Nina"}
    assert json.loads(profiles["Ivan"]["identifiers"]) == {
        "customer_no": ["K1"],
        "email": ["ivan.petrov@mail.ru"],
    }
    with pytest.raises(
        NotFoundError,
        match=r"dropped it from source crm as malformed \(phone \(phone\): not a valid phone number",
    ):
        explain(ws, "0000000000")


def groups(ws) -> set[frozenset]:
    by: dict[str, set] = {}
    for r in table(ws, "identity_map"):
        if r["kind"] == "record":
            by.setdefault(r["profile_id"], set()).add(r["node"].split(":", 2)[2])
    return {frozenset(v) for v in by.values()}


def profile_of(ws, node: str) -> str | None:
    return next((r["profile_id"] for r in table(ws, "identity_map") if r["node"] == node), None)


def reasons_for(ws, node: str) -> set[str]:
    return {
        l["blocked_reason"]
        for l in table(ws, "identity_links")
        if node in (l["left"], l["right"]) and l["status"] == "blocked"
    }


JUNK_EMAILS = [
    "no-email@mail.ru",
    "a@a.ru",
    "noreply@shop.ru",
    "test1@gmail.com",
    "xxx@yandex.ru",
    "12345@mail.ru",
    "ivan@example.com",
    "anna.k@bank.ru",
]
TWO_SYSTEMS = """
    [identity]
    probabilistic = false
    own_domains = ["bank.ru"]

    [[sources]]
    name = "crm_x"
    kind = "csv"
    path = "data/x.csv"
    [sources.records]
    record_id = "id"
    identifiers = { email = "email" }

    [[sources]]
    name = "crm_y"
    kind = "csv"
    path = "data/y.csv"
    [sources.records]
    record_id = "id"
    identifiers = { email = "email" }
"""


def test_junk_and_own_domain_emails_merge_nobody_and_explain_says_why(make_workspace, monkeypatch):
    from typer.testing import CliRunner

    from cx360.cli import app
    from cx360.cli.output import out

    # one record in each of two systems per e-mail: nothing but the e-mail could join them
    emails = [*JUNK_EMAILS, "ivan.petrov@mail.ru"]
    make_workspace.write("data/x.csv", "id,email\n" + "".join(f"X{i},{e}\n" for i, e in enumerate(emails)))
    make_workspace.write("data/y.csv", "id,email\n" + "".join(f"Y{i},{e}\n" for i, e in enumerate(emails)))
    ws = make_workspace.config(TWO_SYSTEMS)
    assert all(r.ok for r in ingest(ws))
    resolve(ws)
    real = len(JUNK_EMAILS)
    assert groups(ws) == {frozenset({f"X{i}"}) for i in range(real)} | {frozenset({f"Y{i}"}) for i in range(real)} | {
        frozenset({f"X{real}", f"Y{real}"})
    }
    for e in JUNK_EMAILS:
        [why] = reasons_for(ws, f"email:{e}")
        assert why.startswith("own domain: bank.ru" if e.endswith("@bank.ru") else "placeholder pattern: "), (e, why)
    assert reasons_for(ws, "email:a@a.ru") == {"placeholder pattern: a local part shorter than 2 characters"}

    e = explain(ws, "A@a.ru")  # a value that links to nobody is still explained
    assert e.profile_id is None and [n["node"] for n in e.nodes] == ["email:a@a.ru"]
    assert {(l["left"], l["rule"]) for l in e.blocked} == {
        ("record:crm_x:X1", "record_identifier"),
        ("record:crm_y:Y1", "record_identifier"),
    }
    monkeypatch.setattr(out, "width", 400)  # one line per table row
    shown = CliRunner().invoke(app, ["identity", "explain", "anna.k@bank.ru", "-w", str(ws.root)])
    assert shown.exit_code == 0, shown.output
    assert (
        "email:anna.k@bank.ru belongs to no profile" in shown.output
        and "own domain: bank.ru is the organisation's own" in shown.output
    )


PEOPLE = """
    id,first,last,dob,phone
    K1,Иван,Петров,1980-05-03,+79161110001
    K2,Анна,Смирнова,1985-01-02,+79161110002
    K3,Олег,Волков,1979-03-04,+79161110003
    K4,Мария,Волкова,1981-09-10,+74957771122
"""
CARDS = """
    id,first,last,dob,phone
    M1,Vanya,Petrov,1980-05-03,+79161110001
    M2,Anna,Smirnova,1985-02-01,+79161110002
    M3,Oleg,Volkov,1979-03-04,+74957771122
"""
LOGINS = """
    id,cookie,customer,phone
    w1,ck-lib,K1,
    w2,ck-lib,K2,
    w3,ck-lib,K3,
    w4,ck-own,K1,
    w5,ck-own,K1,
    c1,,K1,+79035550101
    c2,,K2,+79035550101
    c3,,K4,+79161110003
"""
WORLD = """
    [identity]
    probabilistic = false

    [[sources]]
    name = "core"
    kind = "csv"
    path = "data/core.csv"
    [sources.records]
    record_id = "id"
    identifiers = { customer_no = "id", phone = "phone" }
    attributes = { first_name = "first", last_name = "last", birth_date = { column = "dob", type = "date" } }

    [[sources]]
    name = "cards"
    kind = "csv"
    path = "data/cards.csv"
    [sources.records]
    record_id = "id"
    identifiers = { phone = "phone" }
    attributes = { first_name = "first", last_name = "last", birth_date = { column = "dob", type = "date" } }

    [[sources]]
    name = "touch"
    kind = "csv"
    path = "data/touch.csv"
    [sources.events]
    event_id = "id"
    timestamp = { value = "2025-03-01T10:00:00Z" }
    name = { value = "login" }
    identifiers = { cookie_id = "cookie", customer_no = "customer", phone = "phone" }
"""


def test_shared_and_event_borne_identifiers_merge_nobody(make_workspace):
    make_workspace.write("data/core.csv", PEOPLE)
    make_workspace.write("data/cards.csv", CARDS)
    make_workspace.write("data/touch.csv", LOGINS)
    ws = make_workspace.config(WORLD)
    assert all(r.ok for r in ingest(ws))
    report = resolve(ws)
    # Ivan and Anna are one person in both systems (a nickname and a swapped day and month are not a
    # second person); Oleg's cards record gives the home phone he shares with Maria: two people, so it joins nobody.
    assert groups(ws) == {
        frozenset({"K1", "M1"}),
        frozenset({"K2", "M2"}),
        frozenset({"K3"}),
        frozenset({"K4"}),
        frozenset({"M3"}),
    }
    assert reasons_for(ws, "phone:+74957771122") == {
        "shared: held by records of 2 different people (2 first names, 2 birth dates) in cards, core"
    }
    # the library computer's cookie (3 customers) and a phone that called for two customers link none of them
    assert reasons_for(ws, "cookie_id:ck-lib") == {
        "event-borne: seen in events with identifiers of 3 different profiles, so it links none of them"
    }
    assert reasons_for(ws, "phone:+79035550101") == {
        "event-borne: seen in events with identifiers of 2 different profiles, so it links none of them"
    }
    assert profile_of(ws, "cookie_id:ck-lib") is None and profile_of(ws, "phone:+79035550101") is None
    # a cookie seen with one customer only attaches to that customer
    assert profile_of(ws, "cookie_id:ck-own") == profile_of(ws, "record:core:K1")
    # a call that names Maria from Oleg's mobile does not merge the two
    [conflict] = [
        l
        for l in table(ws, "identity_links")
        if l["rule"] == "event_cooccurrence" and "customer_no:K4" in (l["left"], l["right"])
    ]
    assert conflict["status"] == "blocked" and conflict["blocked_reason"].startswith(
        "event-borne: joins identifiers of two profiles"
    )
    assert len(report.warnings) == 2
    e = explain(ws, "cookie_id:ck-lib")
    assert e.profile_id is None and len(e.blocked) == 3 and all(l["evidence"]["events"] == 1 for l in e.blocked)

"""Junk identifiers: a malformed one costs the row only that identifier, and a junk, shared or
event-borne one never merges different people; each is explained."""

from __future__ import annotations

import json

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


def table(ws, name: str) -> list[dict]:
    return ws.engine.to_arrow(ws.engine.table(name), step="test").to_pylist()


def test_a_junk_phone_keeps_the_customer_and_records_why(make_workspace):
    make_workspace.write("data/crm.csv", CRM)
    make_workspace.write("data/calls.csv", CALLS)
    ws = make_workspace.config(CRM_SOURCE + CALLS_SOURCE)
    crm, calls = ingest(ws)
    assert (crm.read, crm.loaded, crm.quarantined, crm.identifiers_dropped) == (4, 4, 0, 3)
    # an event keeps its customer number; one whose only identifier was junk is quarantined, saying why
    assert (calls.read, calls.loaded, calls.quarantined) == (2, 1, 1)
    [quarantined] = table(ws, "quarantine")
    assert "phone (caller): not a valid phone number" in quarantined["reasons"] and "'0000000000'" in quarantined["reasons"]
    dropped = sorted((d["source"], d["key"], d["kind"], d["value"]) for d in table(ws, "dropped_identifiers"))
    assert dropped == [("calls", "c1", "phone", "12345"), ("crm", "K1", "phone", "0000000000"),
                       ("crm", "K2", "phone", "0"), ("crm", "K3", "phone", "12345")]
    resolve(ws)
    profiles = {p["first_name"]: p for p in table(ws, "profiles")}
    assert set(profiles) == {"Ivan", "Anna", "Oleg", "Nina"}
    assert json.loads(profiles["Ivan"]["identifiers"]) == {"customer_no": ["K1"], "email": ["ivan.petrov@mail.ru"]}

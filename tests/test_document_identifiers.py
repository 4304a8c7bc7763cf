"""Documents (passport, INN, SNILS, SSN, tax ids) as an identifier kind: checked and compacted at
ingest with python-stdnum, linking records like an e-mail, personal data that erasure removes."""

from __future__ import annotations

import json

import pytest

from cx360.api import index
from cx360.api.store import Store
from cx360.config import Config
from cx360.erasure.erase import erase
from cx360.identifiers import normalise_value
from cx360.identity.resolve import resolve
from cx360.profiles.build import build
from cx360.sources.ingest import ingest
from cx360.workspace import Workspace

# Two CRMs that share no phone or e-mail: only the INN says that A1 and B7 are one person.
CRM_A = "id,inn,email\nA1,7707083893,ivan@mail.ru\nA2,7707083890,olga@mail.ru\n"
CRM_B = "id,inn,phone\nB7,7707 083 893,+79161234567\nB8,,+79167654321\n"
SOURCES = """
    [identity]
    probabilistic = false

    [[sources]]
    name = "crm_a"
    kind = "csv"
    path = "data/a.csv"
    [sources.records]
    record_id = "id"
    identifiers = { customer_no = "id", email = "email", document = { column = "inn", scheme = "ru.inn" } }

    [[sources]]
    name = "crm_b"
    kind = "csv"
    path = "data/b.csv"
    [sources.records]
    record_id = "id"
    identifiers = { customer_no = "id", phone = "phone", document = { column = "inn", scheme = "ru.inn" } }
"""


def test_a_document_links_records_and_an_invalid_one_is_kept_with_its_reason(duckdb_workspace):
    duckdb_workspace.write("data/a.csv", CRM_A)
    duckdb_workspace.write("data/b.csv", CRM_B)
    with duckdb_workspace.config(SOURCES) as ws:
        ingest(ws)
        e = ws.engine
        docs = {r["record_id"]: r["document"] for r in e.table("records").to_pyarrow().to_pylist()}
        assert docs == {"A1": "ru.inn:7707083893", "A2": None, "B7": "ru.inn:7707083893", "B8": None}
        dropped = e.table("dropped_identifiers").to_pyarrow().to_pylist()
        assert [(d["key"], d["kind"], d["value"]) for d in dropped] == [("A2", "document", "7707083890")]
        assert "not a valid ru.inn number" in dropped[0]["reason"]

        resolve(ws)
        profiles = e.table("profiles").to_pyarrow().to_pylist()
        ivan = [p for p in profiles if "ivan@mail.ru" in json.loads(p["identifiers"]).get("email", [])]
        assert len(profiles) == 3 and len(ivan) == 1 and ivan[0]["records"] == 2
        ids = json.loads(ivan[0]["identifiers"])
        assert (ids["document"], ids["phone"]) == (["ru.inn:7707083893"], ["+79161234567"])
        build(ws)
        root = ws.root

    store = Store(index.ensure(root / "warehouse.duckdb").path, region="RU")  # what GET /v1/profiles reads
    assert store.find("ru.inn:7707 083 893", "document") == (ivan[0]["profile_id"], ["document"])
    assert store.find("document:ru.inn:7707083893")[0] == ivan[0]["profile_id"]
    store.close()

    erase(root, "document:ru.inn:7707083893", "request by the customer")
    with Workspace(root) as ws:
        left = ws.engine.table("records").to_pyarrow().to_pylist()
        assert sorted(r["record_id"] for r in left) == ["A2", "B8"]


def test_a_lookup_names_the_scheme_and_only_documents_take_one():
    assert normalise_value("document", "ru.inn:7707 083 893") == "ru.inn:7707083893"
    assert normalise_value("document", "ru.inn:7707083890") is None  # its check digit is wrong
    source = {"name": "crm", "kind": "csv", "path": "a.csv", "records": {"record_id": "id"}}
    bad_scheme = {"document": {"column": "inn", "scheme": "ru.tin"}}
    with pytest.raises(ValueError, match=r"document scheme 'ru\.tin' is not known"):
        Config.model_validate({"sources": [{**source, "records": {"record_id": "id", "identifiers": bad_scheme}}]})
    misplaced = {"email": {"column": "inn", "scheme": "ru.inn"}}
    with pytest.raises(ValueError, match=r"only identifiers\.document takes a 'scheme'"):
        Config.model_validate({"sources": [{**source, "records": {"record_id": "id", "identifiers": misplaced}}]})

"""Identity resolution on every engine: deterministic graph, junk and shared identifiers,
stable profile ids, blocks and splits that hold, the golden record, explanations."""

from __future__ import annotations

import json

import pytest
from conftest import DUCKDB_ONLY, ENGINES

from cx360.errors import NotFoundError
from cx360.identity.explain import block, explain, find_profile, split, unblock
from cx360.identity.resolve import resolve
from cx360.sources.ingest import ingest

CRM_A = """
    id;first;last;dob;phone;email;city;updated
    A1;Иван;Иванов;1980-05-03;+79161234567;ivan@mail.ru;Москва;2025-01-01
    A2;Мария;Иванова;1982-07-11;+74951112233;maria@mail.ru;Москва;2025-01-01
    A3;Пётр;Иванов;1979-02-02;+74951112233;petr@mail.ru;Москва;2025-01-01
    A4;Олег;Смирнов;1990-01-01;+79035550001;test@test.com;Тверь;2025-01-01
"""
CRM_B = """
    id,first,last,dob,phone,email,city,updated
    B1,Ivan,Ivanov,1980-05-03,+79161234567,,Moscow,2025-06-01
    B2,Anna,Kuznetsova,1995-03-03,+79035550002,test@test.com,Tver,2025-06-01
    B3,Oleg,Smirnov,1990-01-01,,oleg.smirnov@x.ru,Tver,2025-06-01
"""
WEB = """
    {"id":"w1","cookie":"ck-1","user":"A3","type":"login","ts":"2025-02-01T10:00:00Z"}
    {"id":"w2","cookie":"ck-2","user":"B3","type":"login","ts":"2025-02-01T10:00:00Z"}
    {"id":"w3","cookie":"ck-2","user":"A4","type":"login","ts":"2025-02-02T10:00:00Z"}
"""
SOURCES = """
    [identity]
    probabilistic = false
    source_priority = ["crm_a", "crm_b"]

    [[sources]]
    name = "crm_a"
    kind = "csv"
    path = "data/a.csv"
    delimiter = ";"
    [sources.records]
    record_id = "id"
    updated_at = { column = "updated", type = "timestamp" }
    identifiers = { customer_no = "id", phone = "phone", email = "email" }
    attributes = { first_name = "first", last_name = "last", birth_date = { column = "dob", type = "date" }, city = "city" }

    [[sources]]
    name = "crm_b"
    kind = "csv"
    path = "data/b.csv"
    [sources.records]
    record_id = "id"
    updated_at = { column = "updated", type = "timestamp" }
    identifiers = { customer_no = "id", phone = "phone", email = "email" }
    attributes = { first_name = "first", last_name = "last", birth_date = { column = "dob", type = "date" }, city = "city" }

    [[sources]]
    name = "web"
    kind = "jsonl"
    path = "data/web.jsonl"
    [sources.events]
    event_id = "id"
    timestamp = { column = "ts", type = "timestamp" }
    name = { column = "type" }
    identifiers = { cookie_id = "cookie", customer_no = "user" }
"""  # noqa: E501 (TOML 1.0: an inline table stays on one line)


# The people of the bank above: A1/B1 share a phone; no family phone, placeholder e-mail or shared cookie merges.
PEOPLE = {
    frozenset({"A1", "B1"}),
    frozenset({"A2"}),
    frozenset({"A3"}),
    frozenset({"A4"}),
    frozenset({"B3"}),
    frozenset({"B2"}),
}


@pytest.fixture(params=["duckdb"])
def engine_kind(request):
    """DuckDB for the whole module; the first test also runs on Spark (resolve is slow there)."""
    if request.param == "spark":
        request.getfixturevalue("spark_session")
    return request.param


@pytest.fixture
def bank(make_workspace):
    make_workspace.write("data/a.csv", CRM_A)
    make_workspace.write("data/b.csv", CRM_B)
    make_workspace.write("data/web.jsonl", WEB)
    ws = make_workspace.config(SOURCES)
    assert all(r.ok for r in ingest(ws))
    return ws


def profile_of(ws, node: str) -> str:
    m = ws.engine.table("identity_map")
    return ws.engine.to_arrow(m.filter(m.node == node).select("profile_id"), step="t")["profile_id"][0].as_py()


def groups(ws) -> set[frozenset]:
    rows = ws.engine.table("identity_map").filter(lambda t: t.kind == "record").to_pyarrow().to_pylist()
    by: dict[str, set] = {}
    for r in rows:
        by.setdefault(r["profile_id"], set()).add(r["node"].split(":", 2)[2])
    return {frozenset(v) for v in by.values()}


@pytest.mark.parametrize("engine_kind", ENGINES, indirect=True)
def test_shared_and_junk_identifiers_do_not_merge_people(bank):
    report = resolve(bank)
    # A1/B1 share a phone. The family phone of A2/A3, the placeholder e-mail of A4/B2, and the
    # cookie that A4 and B3 both logged in with (events never merge record-backed profiles) merge nobody.
    assert groups(bank) == PEOPLE
    assert report.profiles == 6 and report.links_blocked >= 6
    links = bank.engine.table("identity_links").to_pyarrow().to_pylist()
    family = [l for l in links if l["right"] == "phone:+74951112233"]
    assert {l["status"] for l in family} == {"blocked"}
    assert "held by 2 different records of source crm_a" in family[0]["blocked_reason"]
    junk = [l for l in links if l["right"] == "email:test@test.com"]
    assert junk and all("blocked value" in l["blocked_reason"] for l in junk)
    cookie = [l for l in links if "cookie_id:ck-2" in (l["left"], l["right"])]
    assert len(cookie) == 2 and all("identifiers of 2 different profiles" in l["blocked_reason"] for l in cookie)
    assert any("anonymous identifier seen with several profiles" in w for w in report.warnings)


def test_profile_ids_are_stable_and_new_data_attaches(bank, make_workspace):
    resolve(bank)
    before = {n: profile_of(bank, n) for n in ("record:crm_a:A1", "record:crm_a:A2", "record:crm_b:B3")}
    resolve(bank)
    assert {n: profile_of(bank, n) for n in before} == before
    # a new login joins a new cookie to A1's customer number: it attaches to A1's profile
    make_workspace.write(
        "data/web2.jsonl", '{"id":"w9","cookie":"ck-9","user":"A1","type":"login","ts":"2025-03-01T10:00:00Z"}\n'
    )
    (make_workspace.root / "cx360.toml").write_text(
        (make_workspace.root / "cx360.toml").read_text().replace("data/web.jsonl", "data/web*.jsonl")
    )
    bank.__dict__.pop("config")
    ingest(bank)
    resolve(bank)
    assert profile_of(bank, "cookie_id:ck-9") == before["record:crm_a:A1"]
    assert {n: profile_of(bank, n) for n in before} == before


def test_merge_keeps_the_oldest_id_and_old_id_still_finds_the_profile(bank, make_workspace):
    resolve(bank)
    a2, a3 = profile_of(bank, "record:crm_a:A2"), profile_of(bank, "record:crm_a:A3")
    # a later system holds one customer with A3's customer number and the e-mail of A2's record
    make_workspace.write("data/c.csv", "id,customer,email\nC1,A3,maria@mail.ru\n")
    with open(make_workspace.root / "cx360.toml", "a", encoding="utf-8") as f:
        f.write(
            '\n[[sources]]\nname = "crm_c"\nkind = "csv"\npath = "data/c.csv"\n[sources.records]\nrecord_id = "id"\n'
            'identifiers = { customer_no = "customer", email = "email" }\n'
        )
    bank.__dict__.pop("config")
    ingest(bank)
    report = resolve(bank)
    merged = profile_of(bank, "record:crm_a:A2")
    assert merged == profile_of(bank, "record:crm_a:A3") and merged in (a2, a3)
    loser = a3 if merged == a2 else a2
    assert report.profiles_merged == 1
    assert find_profile(bank, loser) == merged


def test_block_survives_reruns_and_unblock_restores(bank):
    resolve(bank)
    pid = profile_of(bank, "record:crm_a:A1")
    block(bank, "record:crm_b:B1", "phone:+79161234567", by="dpo@bank", reason="different people, same phone")
    for _ in range(2):
        resolve(bank)
        assert frozenset({"A1", "B1"}) not in groups(bank)
    assert profile_of(bank, "record:crm_a:A1") == pid  # the larger part keeps the id
    history = explain(bank, "record:crm_b:B1").history
    assert history[0]["by"] == "dpo@bank" and history[0]["reason"] == "different people, same phone"
    unblock(bank, "record:crm_b:B1", "phone:+79161234567", by="dpo@bank", reason="checked: same person")
    resolve(bank)
    assert frozenset({"A1", "B1"}) in groups(bank)


def test_split_detaches_records_and_holds(bank):
    resolve(bank)
    cut = split(bank, "phone:+79161234567", ["record:crm_b:B1", "customer_no:B1"], by="agent7", reason="wrong merge")
    assert cut  # the links between the two parts were blocked
    resolve(bank)
    assert frozenset({"A1"}) in groups(bank) and frozenset({"B1"}) in groups(bank)
    with pytest.raises(NotFoundError, match="whole profile"):
        split(bank, "record:crm_b:B1", ["record:crm_b:B1", "customer_no:B1"], by="x", reason="y")


def test_golden_record_follows_source_priority_and_explains_itself(bank):
    resolve(bank)
    e = explain(bank, "IVAN@mail.ru")
    assert e.golden["first_name"] == "Иван" and e.golden["city"] == "Москва"  # crm_a is trusted first
    assert e.sources["first_name"] == {"record": "crm_a:A1", "rule": "source_priority"}
    assert e.golden["records"] == 2 and e.golden["sources"] == "crm_a, crm_b"
    rules = {(l["rule"], l["right"]) for l in e.links}
    assert ("record_identifier", "phone:+79161234567") in rules
    assert json.loads(
        bank.engine.table("profiles")
        .filter(lambda t: t.profile_id == e.profile_id)
        .to_pyarrow()["identifiers"][0]
        .as_py()
    )["phone"] == ["+79161234567"]
    with pytest.raises(NotFoundError, match="no profile holds"):
        explain(bank, "nobody@nowhere.org")


@DUCKDB_ONLY  # Splink on Spark: tests/test_matching.py
def test_records_without_a_shared_identifier_are_joined_by_probabilistic_matching(make_workspace):
    from test_matching import LATIN_FIRST, LATIN_LAST, people

    base = people()
    base.rename(columns={"unique_id": "id"}).to_csv(make_workspace.root / "data" / "a.csv", index=False)
    # The other system holds no phone or e-mail: only names in Latin letters and birth dates.
    other = base[["unique_id", "birth_date"]].assign(
        id=[f"b{i}" for i in range(len(base))], first_name=LATIN_FIRST, last_name=LATIN_LAST
    )
    other.drop(columns="unique_id").to_csv(make_workspace.root / "data" / "b.csv", index=False)
    attributes = (
        'attributes = { first_name = "first_name", last_name = "last_name", '
        'birth_date = { column = "birth_date", type = "date" } }'
    )
    ws = make_workspace.config(f"""
        [[sources]]
        name = "core"
        kind = "csv"
        path = "data/a.csv"
        [sources.records]
        record_id = "id"
        identifiers = {{ phone = "phone", email = "email" }}
        {attributes}

        [[sources]]
        name = "cards"
        kind = "csv"
        path = "data/b.csv"
        [sources.records]
        record_id = "id"
        {attributes}
    """)
    assert all(r.ok for r in ingest(ws))
    report = resolve(ws)
    assert report.probabilistic_links >= 20 and report.profiles == 20
    joined = sum(profile_of(ws, f"record:core:a{i}") == profile_of(ws, f"record:cards:b{i}") for i in range(20))
    assert joined == 20
    links = ws.engine.table("identity_links").to_pyarrow().to_pylist()
    assert all(0.9 <= link["confidence"] <= 1 for link in links if link["rule"] == "probabilistic")


def test_each_survivorship_rule_picks_its_value_and_says_where_it_came_from():
    import datetime as dt

    import pyarrow as pa

    from cx360.config import IdentitySettings
    from cx360.identity.golden import ATTRIBUTES, choose

    when = [dt.datetime(2025, 1, 1), dt.datetime(2025, 3, 1), dt.datetime(2025, 2, 1)]
    values = {
        "first_name": ["Ivan", None, "Vanya"],
        "last_name": ["Petrov", "Petrov-Vodkin", None],
        "city": ["Moscow", "Tver", "Moscow"],
    }
    members = pa.table(
        {
            "profile_id": ["P1"] * 3,
            "node": ["record:a:1", "record:b:2", "record:b:3"],
            "source": ["a", "b", "b"],
            "updated_at": pa.array(when, pa.timestamp("us")),
            "ingested_at": pa.array(when, pa.timestamp("us")),
            **{name: pa.array(values.get(name, [None] * 3), pa.string()) for name in ATTRIBUTES},
        }
    )
    ids = pa.table(
        {
            "profile_id": ["P1", "P1", "P1", "P2"],
            "node": ["record:a:1", "email:b@x.ru", "email:a@x.ru", "phone:+7"],
            "kind": ["record", "email", "email", "phone"],
        }
    )
    settings = IdentitySettings(
        source_priority=["b", "a"], survivorship={"last_name": "most_recent", "city": "most_frequent"}
    )
    p1, p2 = choose(members, ids, settings).to_pylist()
    assert (p1["first_name"], p1["last_name"], p1["city"]) == ("Vanya", "Petrov-Vodkin", "Moscow")
    assert json.loads(p1["attribute_sources"]) == {
        "first_name": {
            "record": "b:3",
            "rule": "source_priority",
        },  # b is trusted first; its newest record has no value
        "last_name": {"record": "b:2", "rule": "most_recent"},
        "city": {"record": "b:3", "rule": "most_frequent"},  # two records say Moscow; the newer of them
    }
    assert json.loads(p1["identifiers"]) == {"email": ["a@x.ru", "b@x.ru"]} and (p1["records"], p1["sources"]) == (
        3,
        "a, b",
    )
    assert (p2["records"], p2["sources"], json.loads(p2["attribute_sources"]), json.loads(p2["identifiers"])) == (
        0,
        "",
        {},
        {"phone": ["+7"]},
    )

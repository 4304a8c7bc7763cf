"""Node keys are built and parsed by cx360.node_keys alone: round trips, values with ':',
bad keys."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest

from cx360 import node_keys
from cx360.errors import DataError
from cx360.schema import IDENTIFIER_KINDS


@pytest.mark.parametrize("kind", IDENTIFIER_KINDS)
def test_identifier_keys_round_trip(kind):
    key = node_keys.identifier(kind, "ivan@mail.ru")
    assert key == f"{kind}:ivan@mail.ru"
    assert node_keys.parse(key) == (kind, "ivan@mail.ru")
    assert node_keys.kind_of(key) == kind and node_keys.value_of(key) == "ivan@mail.ru"


def test_record_keys_round_trip():
    key = node_keys.record("crm_b", "77")
    assert key == "record:crm_b:77"
    assert node_keys.parse(key) == ("record", "crm_b:77")
    assert node_keys.record_parts(key) == ("crm_b", "77")


def test_a_value_containing_the_separator_survives():
    key = node_keys.identifier("cookie_id", "ga:1.2:abc")
    assert node_keys.parse(key) == ("cookie_id", "ga:1.2:abc")
    rec = node_keys.record("crm", "branch:12:007")
    assert node_keys.record_parts(rec) == ("crm", "branch:12:007")


@pytest.mark.parametrize(
    "bad",
    [
        "fax:+74950000000",
        "ivan@mail.ru",
        "email:",
        ":x",
        "record:crm",
        "record::7",
        "record:crm:",
        "",
        "P000123",
    ],
)
def test_what_is_not_a_node_key_is_refused_clearly(bad):
    with pytest.raises(DataError, match="not a node key"):
        node_keys.parse(bad)
    assert node_keys.try_parse(bad) is None


def test_building_refuses_unknown_kinds_and_ambiguous_parts():
    with pytest.raises(DataError, match="unknown identifier kind 'fax'"):
        node_keys.identifier("fax", "1")
    with pytest.raises(DataError, match="unknown identifier kind"):
        node_keys.identifier_expr("record", ibis.literal("x"))
    with pytest.raises(DataError, match="without ':'"):
        node_keys.record("crm:b", "7")
    with pytest.raises(DataError, match="empty"):
        node_keys.identifier("email", "")
    with pytest.raises(DataError, match="not a record node"):
        node_keys.record_parts("email:a@b.ru")


def test_expressions_frames_and_sql_agree_with_the_python_keys():
    import duckdb

    t = ibis.memtable({"source": ["crm_b"], "record_id": ["7:1"], "email": ["a:b@c.ru"]})
    row = t.select(
        r=node_keys.record_expr(t.source, t.record_id),
        e=node_keys.identifier_expr("email", t.email),
    )
    row = row.mutate(
        is_email=node_keys.is_kind_expr(row.e, "email"),
        is_phone=node_keys.is_kind_expr(row.e, "phone"),
    )
    got = row.to_pyarrow().to_pylist()[0]
    assert got == {
        "r": node_keys.record("crm_b", "7:1"),
        "e": node_keys.identifier("email", "a:b@c.ru"),
        "is_email": True,
        "is_phone": False,
    }

    nodes = pd.Series([got["r"], got["e"]])
    assert list(node_keys.kind_series(nodes)) == ["record", "email"]
    assert list(node_keys.value_series(nodes)) == ["crm_b:7:1", "a:b@c.ru"]
    assert node_keys.kind_series(nodes.iloc[:0]).empty and node_keys.value_series(nodes.iloc[:0]).empty
    values = f"(VALUES ('{got['e']}'), ('{got['r']}')) t(node)"
    sql = f"SELECT {node_keys.value_sql('node')} AS v FROM {values}"
    assert [r[0] for r in duckdb.sql(sql).fetchall()] == ["a:b@c.ru", "crm_b:7:1"]

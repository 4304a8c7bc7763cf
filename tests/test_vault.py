"""The PII vault's core: tokens equal in Python, DuckDB and Spark SQL; items sealed per subject;
shredding leaves nothing readable and no clear bytes in its files."""

from __future__ import annotations

import base64
import os

import duckdb
import ibis
import pyarrow as pa
import pytest

from cx360.errors import ConfigError, EngineError
from cx360.privacy.vault import ENV_KEY, FOLDER, Vault


@pytest.fixture
def vault(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_KEY, raising=False)
    v = Vault.open(tmp_path)
    yield v
    v.close()


def test_tokens_are_keyed_deterministic_and_equal_in_python_ibis_and_sql(vault, tmp_path):
    values = ["ivan@mail.ru", "anna@yandex.ru", None]
    t = vault.token("email", "ivan@mail.ru")
    assert t == vault.token("email", "ivan@mail.ru") and t.startswith("tk_") and len(t) == 35
    assert t != vault.token("phone", "ivan@mail.ru"), "the kind is part of the token"
    con = ibis.duckdb.connect()
    table = ibis.memtable({"v": values})
    by_ibis = con.execute(table.select(t=vault.token_expr("email", table.v)))["t"].tolist()
    rows = "SELECT unnest(['ivan@mail.ru', 'anna@yandex.ru', NULL]) AS v"
    by_sql = duckdb.sql(f"SELECT {vault.token_sql('email', 'v')} AS t FROM ({rows})").fetchall()
    expected = [vault.token("email", v) for v in values[:2]]
    assert by_ibis[:2] == expected
    assert by_ibis[2] is None or by_ibis[2] != by_ibis[2], "null stays null (None or NaN in pandas)"
    assert [r[0] for r in by_sql] == [*expected, None]
    other = Vault.open(tmp_path / "other")
    assert other.token("email", "ivan@mail.ru") != t, "another workspace's secret gives other tokens"
    vault.close()
    again = Vault.open(tmp_path)
    assert again.token("email", "ivan@mail.ru") == t, "the token key survives reopening"


def test_put_reveal_replace_and_immutable_items(vault):
    assert (
        vault.put([("email:tk_a", "value", {"value": "ivan@mail.ru"}), ("record:crm:1", "h1", {"first_name": "Иван"})])
        == 2
    )
    assert vault.reveal(["email:tk_a", "record:crm:1", "nobody"]) == {
        "email:tk_a": {"value": {"value": "ivan@mail.ru"}},
        "record:crm:1": {"h1": {"first_name": "Иван"}},
    }
    assert vault.put([("record:crm:1", "h1", {"first_name": "changed"})], replace=False) == 0
    assert vault.put([("record:crm:1", "h2", {"first_name": "Ivan"})], replace=False) == 1
    assert vault.put([("profile:P1", "golden", {"last_name": "Petrov"})]) == 1
    assert vault.put([("profile:P1", "golden", {"last_name": "Sidorov"})]) == 1
    assert vault.reveal(["profile:P1"])["profile:P1"]["golden"] == {"last_name": "Sidorov"}
    got = vault.reveal_table(pa.table({"subject": ["record:crm:1", "email:tk_a"], "item": ["h2", "value"]}))
    assert sorted(zip(got["subject"].to_pylist(), got["item"].to_pylist(), strict=True)) == [
        ("email:tk_a", "value"),
        ("record:crm:1", "h2"),
    ]
    assert list(vault.subjects("record:")) == ["record:crm:1"]
    assert vault.counts() == {"subjects": 3, "items": 4}


def test_shredding_leaves_no_readable_item_and_no_clear_bytes(vault, tmp_path):
    people = [(f"email:tk_{i:03d}", "value", {"value": f"person{i}@example.org"}) for i in range(200)]
    vault.put(people)
    marker = "person7@example.org"
    assert vault.shred(["email:tk_007", "email:tk_unknown"]) == 1
    assert "email:tk_007" not in vault.reveal(["email:tk_007", "email:tk_008"])
    vault.compact()
    folder = tmp_path / FOLDER
    for path in folder.iterdir():
        data = path.read_bytes()
        assert marker.encode() not in data and b"person8@example.org" not in data, "values are encrypted at rest"
        assert b"email:tk_007" not in data, f"{path.name} still names the shredded subject"
    assert b"email:tk_008" in (folder / "vault_keys.sqlite").read_bytes()
    assert (folder / "vault.key").stat().st_mode & 0o077 == 0


def test_a_wrong_workspace_key_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_KEY, base64.b64encode(os.urandom(32)).decode())
    Vault.open(tmp_path).close()
    monkeypatch.setenv(ENV_KEY, base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(ConfigError, match="does not open the vault"):
        Vault.open(tmp_path)
    monkeypatch.setenv(ENV_KEY, "short")
    with pytest.raises(ConfigError, match="base64 of 32"):
        Vault.open(tmp_path)


def test_engine_errors_never_show_the_token_key(vault):
    sql = vault.token_sql("email", "v")
    message = str(EngineError("ingest", f"SELECT {sql} FROM nowhere", RuntimeError(f"bad {sql}")))
    assert vault._token_hex not in message and "'…'" in message


def test_spark_computes_the_same_tokens(vault, spark_session):
    frame = spark_session.createDataFrame([("ivan@mail.ru",), (None,)], "v string")
    frame.createOrReplaceTempView("vault_values")
    by_sql = [
        r.t
        for r in spark_session.sql(f"SELECT {vault.token_sql('email', 'v', 'spark')} AS t FROM vault_values").collect()
    ]
    con = ibis.pyspark.connect(spark_session)
    table = con.table("vault_values")
    by_ibis = con.to_pyarrow(table.select(t=vault.token_expr("email", table.v)))["t"].to_pylist()
    assert by_sql == by_ibis == [vault.token("email", "ivan@mail.ru"), None]

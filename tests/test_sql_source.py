"""A SQL database table as a source, against a real PostgreSQL (started by .ci/start-postgres)."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from cx360.sources.ingest import ingest


@pytest.fixture
def pg_table():
    url = os.environ.get("CX360_TEST_PG_URL")
    if not url:
        if os.environ.get("CX360_TEST_SERVICES") == "1":
            pytest.fail("CX360_TEST_SERVICES=1 but CX360_TEST_PG_URL is not set")
        pytest.skip("no PostgreSQL: set CX360_TEST_PG_URL (see .ci/start-postgres)")
    import sqlalchemy as sa

    name = f"payments_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"CREATE TABLE {name} (id integer primary key, customer text, paid_at timestamptz, "
                "amount numeric(12,2), note text)"
            )
        )
        conn.execute(
            sa.text(
                f"""INSERT INTO {name} VALUES
            (1, 'C001', '2025-02-01 10:00:00+03', 1500.50, 'rent'),
            (2, 'c002', '2025-02-02 11:30:00+00', 99.99, NULL),
            (3, NULL, '2025-02-03 12:00:00+00', 10.00, 'no customer'),
            (4, 'C001', '2025-02-04 09:15:00+00', 250.00, 'groceries')"""
            )
        )
    yield url, name
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {name}"))
    engine.dispose()


SOURCE = """
[[sources]]
name = "billing"
kind = "sql"
url_env = "CX360_TEST_PG_URL"
table = "{table}"
chunk_size = 3

[sources.events]
event_id = "id"
timestamp = {{ column = "paid_at", type = "timestamp" }}
name = {{ value = "transfer" }}
amount = "amount"
identifiers = {{ customer_no = "customer" }}
properties = {{ note = "note" }}
"""


def test_postgres_table_is_ingested_with_types_and_quarantine(pg_table, make_workspace):
    _, table = pg_table
    ws = make_workspace.config(SOURCE.format(table=table))
    [report] = ingest(ws)
    assert (report.read, report.loaded, report.quarantined) == (4, 3, 1)
    events = ws.engine.table("events").order_by("event_id").to_pyarrow().to_pylist()
    first = events[0]
    assert (first["event_id"], first["customer_no"], first["amount"]) == ("1", "C001", 1500.5)
    assert str(first["ts"]) == "2025-02-01 07:00:00"
    assert json.loads(first["properties"]) == {"note": "rent"}
    assert events[1]["customer_no"] == "C002"
    [row] = ws.engine.table("quarantine").to_pyarrow().to_pylist()
    assert "no identifier" in row["reasons"] and json.loads(row["raw"])["note"] == "no customer"

    [again] = ingest(ws)  # a database has no file to fingerprint: rows are deduplicated by key
    assert (again.loaded, again.duplicates) == (0, 3)


def test_unreachable_database_fails_the_source_without_leaking_the_password(duckdb_workspace, monkeypatch):
    monkeypatch.setenv("CX360_BAD_PG", "postgresql+psycopg://cx:secret-pw@127.0.0.1:9/none")
    ws = duckdb_workspace.config(SOURCE.format(table="payments").replace("CX360_TEST_PG_URL", "CX360_BAD_PG"))
    [report] = ingest(ws)
    assert not report.ok and "database unreachable" in report.error
    assert "secret-pw" not in report.error
    ws.close()


def test_unset_url_variable_and_unsafe_table_name(duckdb_workspace, monkeypatch):
    monkeypatch.delenv("CX360_NOPE", raising=False)
    ws = duckdb_workspace.config(SOURCE.format(table="t").replace("CX360_TEST_PG_URL", "CX360_NOPE"))
    assert "environment variable CX360_NOPE is not set" in ingest(ws)[0].error
    ws.close()
    monkeypatch.setenv("CX360_NOPE", "postgresql+psycopg://x@127.0.0.1:9/y")
    ws = duckdb_workspace.config(SOURCE.format(table="t; DROP TABLE x").replace("CX360_TEST_PG_URL", "CX360_NOPE"))
    assert "is not a plain [schema.]table name" in ingest(ws)[0].error
    ws.close()

"""The PII vault on every engine: the identity bank of test_identity, with the vault on, gives the same
people on DuckDB and on Spark, with tokens in the warehouse and a placeholder e-mail still blocked."""

from __future__ import annotations

import pytest
from conftest import DUCKDB_ONLY, ENGINES
from test_identity import CRM_A, CRM_B, PEOPLE, SOURCES, WEB, groups

from cx360.errors import ConfigError
from cx360.identity.resolve import resolve
from cx360.privacy.vault import Vault
from cx360.sources.ingest import ingest


@pytest.mark.parametrize("engine_kind", ENGINES, indirect=True)
def test_the_same_people_on_tokens_on_every_engine(make_workspace):
    make_workspace.write("data/a.csv", CRM_A)
    make_workspace.write("data/b.csv", CRM_B)
    make_workspace.write("data/web.jsonl", WEB)
    ws = make_workspace.config(SOURCES, extra="[privacy]\nvault = true\n")
    assert all(r.ok for r in ingest(ws))
    resolve(ws)
    assert groups(ws) == PEOPLE
    vault = Vault.of(ws)
    junk = vault.token("email", "test@test.com")
    links = ws.engine.table("identity_links").to_pyarrow().to_pylist()
    placeholder = [link for link in links if link["right"] == f"email:{junk}"]
    assert placeholder and all("blocked value" in link["blocked_reason"] for link in placeholder)
    records = ws.engine.table("records").to_pyarrow().to_pylist()
    assert all(r["first_name"] is None and (r["email"] or "tk_").startswith("tk_") for r in records)
    profiles = ws.engine.table("profiles").to_pyarrow().to_pylist()
    golden = vault.reveal(f"profile:{p['profile_id']}" for p in profiles)
    assert sorted(g["golden"]["last_name"] for g in golden.values()) == sorted(
        ["Иванов", "Иванова", "Иванов", "Смирнов", "Kuznetsova", "Smirnov"]
    )


@DUCKDB_ONLY
def test_switching_the_vault_for_a_filled_warehouse_is_a_clear_error(make_workspace):
    make_workspace.write("data/a.csv", CRM_A)
    make_workspace.write("data/b.csv", CRM_B)
    make_workspace.write("data/web.jsonl", WEB)
    ws = make_workspace.config(SOURCES)
    assert all(r.ok for r in ingest(ws))
    ws.close()
    ws = make_workspace.config(SOURCES, extra="[privacy]\nvault = true\n")
    with pytest.raises(ConfigError, match="already holds rows loaded with it off"):
        ingest(ws)
    ws.close()
    (make_workspace.root / "warehouse.duckdb").unlink()
    ws = make_workspace.config(SOURCES, extra="[privacy]\nvault = true\n")
    assert all(r.ok for r in ingest(ws))
    ws.close()
    ws = make_workspace.config(SOURCES)
    with pytest.raises(ConfigError, match="turn it back on"):
        ingest(ws)

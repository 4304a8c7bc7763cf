"""The PII vault on a small demo bank (`[privacy] vault = true`), beside the same bank with the vault off:
the warehouse and every other file hold tokens and no clear personal data, the vault holds the values,
and identity partitions the records exactly as it does on clear values. Reading it: a role with `pii`
gets clear values from the vault, audited; a role without it gets tokens and never opens the vault;
exports reveal the contact they need; subject access reveals everything; erasure crypto-shreds every
subject of the person and leaves no trace."""

from __future__ import annotations

import functools
import json
import re
import shutil
from pathlib import Path

import pytest
from test_erasure import cx360

from cx360 import node_keys, schema
from cx360.api.access import create_key
from cx360.api.audit import read_audit
from cx360.erasure.scan import scan
from cx360.erasure.stores import unclaimed
from cx360.erasure.subject import resolve
from cx360.pipeline import run
from cx360.privacy.vault import Vault
from cx360.sources.ingest import ingest
from cx360.workspace import Workspace

# Not searched: the raw inputs (the user's own files), the demo's hidden truth, and the vault itself.
UNSEARCHED = ("data/", "truth/", "privacy/vault")


def with_vault(root: Path) -> None:
    toml = root / "cx360.toml"
    text = toml.read_text(encoding="utf-8")
    text = text.replace("\n[privacy]\n", "\n[privacy]\nvault = true\n", 1)
    toml.write_text(text if "vault = true" in text else text + "\n[privacy]\nvault = true\n", encoding="utf-8")


@pytest.fixture(scope="module")
def banks(tmp_path_factory) -> dict[str, Path]:
    from cx360.demo import generate_world

    base = tmp_path_factory.mktemp("vault")
    off, on = base / "off", base / "on"
    generate_world(off, customers=60, seed=3)
    shutil.copytree(off, on)
    with_vault(on)
    done = cx360("run", "-w", on)  # ingest, identity and every later stage
    assert done.returncode == 0, done.stdout + done.stderr
    with Workspace(off) as ws:
        assert all(run(ws, stage).ok for stage in ("ingest", "identity", "profiles"))
    return {"off": off, "on": on}


@functools.cache
def rows(root: Path, table: str, *columns: str) -> list[dict]:
    with Workspace(root, read_only=True) as ws:
        t = ws.engine.table(table)
        return t.select(*(columns or t.columns)).to_pyarrow().to_pylist()


def personal_values(root: Path) -> set[str]:
    """Every e-mail, phone and full name of the records of a vault-off workspace."""
    found = set()
    for r in rows(root, "records"):
        found |= {r[k] for k in ("email", "phone") if r[k]}
        if r["first_name"] and r["last_name"]:
            found |= {f"{r['first_name']} {r['last_name']}", f"{r['last_name']} {r['first_name']}"}
    return found


def test_no_file_but_the_vault_holds_a_clear_email_phone_or_full_name(banks):
    on = banks["on"]
    values = personal_values(banks["off"])
    assert len(values) > 50
    # Documented exceptions: a rejected row and a dropped malformed identifier are kept as read.
    kept_as_read = " ".join(r["raw"] for r in rows(on, "quarantine", "raw")) + " ".join(
        r["value"] for r in rows(on, "dropped_identifiers", "value")
    )
    needles = [v.encode() for v in values if v not in kept_as_read]
    hits = {}
    for path in sorted(p for p in on.rglob("*") if p.is_file()):
        rel = path.relative_to(on).as_posix()
        if not rel.startswith(UNSEARCHED):
            data = path.read_bytes()
            if found := [n.decode() for n in needles if n in data]:
                hits[rel] = found[:3]
    assert hits == {}
    assert (on / "warehouse.duckdb").stat().st_size > 0


def test_the_warehouse_holds_tokens_and_the_vault_their_values(banks):
    off, on = banks["off"], banks["on"]
    clear = {(r["source"], r["record_id"]): r for r in rows(off, "records")}
    kept = rows(on, "records")
    assert len(kept) == len(clear)
    assert all(r[a] is None for r in kept for a in schema.PII_ATTRIBUTE_NAMES)
    assert all(r[k] is None or r[k].startswith("tk_") for r in kept for k in schema.IDENTIFIER_KINDS)
    with Workspace(on, read_only=True) as ws:
        vault = Vault.of(ws)
    held = vault.reveal(node_keys.record(r["source"], r["record_id"]) for r in kept)
    for r in kept:
        was = clear[(r["source"], r["record_id"])]
        assert r["record_hash"] == was["record_hash"]  # hashed on clear values: the same key either way
        item = held[node_keys.record(r["source"], r["record_id"])][r["record_hash"]]
        assert item == {a: str(was[a]) for a in schema.PII_ATTRIBUTE_NAMES if was[a] is not None}
        for kind in ("email", "phone"):
            if was[kind]:
                assert r[kind] == vault.token(kind, was[kind])
                assert vault.reveal([node_keys.identifier(kind, r[kind])])[node_keys.identifier(kind, r[kind])] == {
                    "value": {"value": was[kind]}
                }
    # events and consents hold tokens too
    for table in ("events", "consents"):
        values = [r[k] for r in rows(on, table, *schema.IDENTIFIER_KINDS) for k in schema.IDENTIFIER_KINDS if r[k]]
        assert values and all(v.startswith("tk_") for v in values)


@functools.cache
def members(root: Path) -> dict[str, frozenset[str]]:
    """Each profile's record nodes."""
    by: dict[str, set[str]] = {}
    for r in rows(root, "identity_map", "node", "kind", "profile_id"):
        if r["kind"] == node_keys.RECORD:
            by.setdefault(r["profile_id"], set()).add(r["node"])
    return {p: frozenset(s) for p, s in by.items()}


def test_profiles_partition_the_records_as_with_the_vault_off_and_golden_values_are_in_the_vault(banks):
    off, on = banks["off"], banks["on"]
    assert set(members(on).values()) == set(members(off).values())
    assert len(members(on)) > 20
    golden_off = {members(off)[p["profile_id"]]: p for p in rows(off, "profiles") if p["profile_id"] in members(off)}
    profiles = rows(on, "profiles")
    assert all(p[a] is None for p in profiles for a in schema.PII_ATTRIBUTE_NAMES)
    with Workspace(on, read_only=True) as ws:
        vault = Vault.of(ws)
    assert set(vault.subjects("profile:")) == {f"profile:{p['profile_id']}" for p in profiles}
    held = vault.reveal(f"profile:{p['profile_id']}" for p in profiles)
    mine = members(on)
    compared = 0
    for p in profiles:
        if p["profile_id"] in mine:
            was = golden_off[mine[p["profile_id"]]]
            golden = held[f"profile:{p['profile_id']}"]["golden"]
            assert golden == {a: str(was[a]) for a in schema.PII_ATTRIBUTE_NAMES if was[a] is not None}
            assert p["attribute_sources"] == was["attribute_sources"]
            compared += 1
    assert compared > 20


def test_reingesting_into_a_new_warehouse_finds_the_same_tokens_and_keys(banks, tmp_path):
    on = banks["on"]
    again = tmp_path / "again"
    shutil.copytree(on, again)
    (again / "warehouse.duckdb").unlink()
    subjects = set(Vault.open(on).subjects())
    sources = ["crm_core", "crm_cards", "web"]
    with Workspace(again) as ws:
        assert all(r.ok for r in ingest(ws, sources))
    for table, key in (("records", "record_hash"), ("events", "event_id")):
        columns = ("source", key, *schema.IDENTIFIER_KINDS)
        before = sorted(str(r) for r in rows(on, table, *columns) if r["source"] in sources)
        assert before and sorted(map(str, rows(again, table, *columns))) == before
    assert set(Vault.open(again).subjects()) == subjects  # the same tokens: no new subject


def test_ages_and_influence_are_as_with_the_vault_off(banks):
    """Ages come from the golden birth dates in the vault; mentions of @handles in posts reach the
    people whose handle nodes hold tokens."""
    off, on = banks["off"], banks["on"]
    mine = members(on)

    def by_members(root: Path, table: str, column: str) -> dict[frozenset[str], object]:
        found = {r["profile_id"]: r[column] for r in rows(root, table, "profile_id", column)}
        people = mine if root == on else members(off)
        return {people[p]: v for p, v in found.items() if p in people}

    ages = by_members(on, "profile_traits", "age_years")
    assert ages == by_members(off, "profile_traits", "age_years") and sum(a is not None for a in ages.values()) > 20
    influence = by_members(on, "profile_scores", "pagerank")
    clear = by_members(off, "profile_scores", "pagerank")
    assert influence.keys() == clear.keys()  # PageRank sums floats in any order: equal to the last digits only
    assert all(v == clear[k] or v == pytest.approx(clear[k], rel=1e-12) for k, v in influence.items())
    assert len({v for v in influence.values() if v is not None}) > 1


# -- reading the vault: the API, the dashboard, exports, subject access, erasure --------------------


def copy_of(banks: dict[str, Path], tmp_path: Path) -> Path:
    root = tmp_path / "on"
    shutil.copytree(banks["on"], root)
    return root


def someone(banks: dict[str, Path]) -> dict:
    """A person of two records with an e-mail, a phone and a name, as the vault-off bank holds them."""
    with Workspace(banks["off"], read_only=True) as ws:
        profiles = ws.engine.table("profiles").to_pyarrow().to_pylist()
    for p in sorted(profiles, key=lambda p: p["profile_id"]):
        ids = json.loads(p["identifiers"] or "{}")
        if p["records"] >= 2 and ids.get("email") and ids.get("phone") and p["first_name"] and p["last_name"]:
            return {
                "email": ids["email"][0],
                "phone": ids["phone"][0],
                "first_name": p["first_name"],
                "last_name": p["last_name"],
                "birth_date": p["birth_date"],
            }
    raise AssertionError("the demo bank has no merged person with an e-mail, a phone and a name")


class Reveals:
    """Counts the vault's reveal calls (the vault itself, not a stand-in)."""

    def __init__(self, vault: Vault):
        self.calls = 0
        self._reveal = vault.reveal
        vault.reveal = self  # type: ignore[method-assign]

    def __call__(self, subjects):
        self.calls += 1
        return self._reveal(subjects)


def test_a_pii_role_reads_clear_values_from_the_vault_and_a_masked_role_sees_tokens(banks, tmp_path):
    from fastapi.testclient import TestClient

    from cx360.api.app import create_app, open_context

    root = copy_of(banks, tmp_path)
    who = someone(banks)
    _, admin = create_key(root, "admin", "agent-1")
    _, analyst = create_key(root, "analyst", "analyst-1")
    ctx, _ = open_context(root)
    token = ctx.vault.token("email", who["email"])
    reveals = Reveals(ctx.vault)
    with TestClient(create_app(ctx)) as client:
        as_admin = {"Authorization": f"Bearer {admin}"}
        as_analyst = {"Authorization": f"Bearer {analyst}"}
        clear = client.get("/v1/profiles", params={"email": who["email"].upper()}, headers=as_admin).json()
        pid = clear["profile_id"]
        assert clear["attributes"]["first_name"]["value"] == who["first_name"]
        assert clear["attributes"]["last_name"]["value"] == who["last_name"]
        assert clear["attributes"]["birth_date"]["value"] == str(who["birth_date"])
        assert who["email"] in clear["identifiers"]["email"] and who["phone"] in clear["identifiers"]["phone"]
        assert reveals.calls > 0
        seen = reveals.calls
        masked = client.get("/v1/profiles", params={"email": who["email"]}, headers=as_analyst).json()
        assert masked["profile_id"] == pid
        assert masked["identifiers"]["email"] == [token]
        assert all(v.startswith("tk_") for vs in masked["identifiers"].values() for v in vs)
        assert not {"first_name", "last_name", "birth_date", "address", "postcode"} & set(masked["attributes"])
        # a token is a way in too, for the role that sees only tokens
        by_token = client.get(f"/v1/profiles/email:{token}", headers=as_analyst)
        assert by_token.status_code == 200 and by_token.json()["profile_id"] == pid
        assert client.get("/v1/search", params={"q": who["last_name"]}, headers=as_analyst).status_code == 403
        assert reveals.calls == seen, "a role without pii never opens the vault"
        # search by a whole name word (its token), in Latin too, and by a whole identifier; no prefix
        hits = client.get("/v1/search", params={"q": who["last_name"]}, headers=as_admin).json()["results"]
        mine = [h for h in hits if h["profile_id"] == pid]
        assert mine and mine[0]["first_name"] == who["first_name"] and mine[0]["term"] == who["last_name"].lower()
        full = f"{who['first_name']} {who['last_name']}"
        assert pid in {
            h["profile_id"] for h in client.get("/v1/search", params={"q": full}, headers=as_admin).json()["results"]
        }
        from cx360.identity.names import transliterations

        latin = transliterations(who["last_name"])
        if latin:
            found = client.get("/v1/search", params={"q": latin[0]}, headers=as_admin).json()["results"]
            assert pid in {h["profile_id"] for h in found}
        hits = client.get("/v1/search", params={"q": who["email"]}, headers=as_admin).json()["results"]
        assert [(h["profile_id"], h["kind"], h["term"]) for h in hits] == [(pid, "email", who["email"])]
        assert client.get("/v1/search", params={"q": who["email"][:6]}, headers=as_admin).json()["results"] == []
        routed = client.post("/v1/calls/route", json={"phone": who["phone"]}, headers=as_admin).json()
        assert routed["profile_id"] == pid
    audit = [e for e in read_audit(root) if e["profile_id"] == pid]
    by_key = {}
    for e in audit:
        by_key.setdefault(e["key_name"], set()).update(e["fields"].split(","))
    assert {"attributes.first_name", "identifiers.email", "query.email"} <= by_key["agent-1"]
    assert not any(f.startswith(("attributes.first_name", "identifiers.")) for f in by_key["analyst-1"])
    # the serving index holds tokens, never a clear e-mail or name
    served = [p for p in root.iterdir() if p.name.startswith("serve")]
    assert served
    for path in served:
        data = path.read_bytes()
        assert who["email"].encode() not in data and who["last_name"].encode() not in data, path.name


def _login(client, key: str) -> None:
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    assert client.post("/login", data={"key": key, "csrf": csrf}, follow_redirects=False).status_code == 303


def test_the_customer_card_shows_clear_values_to_pii_roles_and_tokens_to_others(banks, tmp_path):
    from fastapi.testclient import TestClient

    from cx360.api.app import create_app, open_context

    root = copy_of(banks, tmp_path)
    who = someone(banks)
    keys = {role: create_key(root, role, role)[1] for role in ("agent", "marketer")}
    ctx, _ = open_context(root)
    token = ctx.vault.token("email", who["email"])
    pid = ctx.store.resolve(who["email"], "email")
    with TestClient(create_app(ctx)) as client:
        _login(client, keys["agent"])
        card = client.get(f"/customers/{pid}").text
        assert who["last_name"] in card and who["email"] in card and token not in card
        found = client.get("/search", params={"q": who["last_name"]}).text
        assert pid in found and who["first_name"] in found
        client.cookies.clear()
        _login(client, keys["marketer"])
        card = client.get(f"/customers/{pid}").text
        assert token in card and who["email"] not in card and who["last_name"] not in card


def test_an_export_reveals_the_contact_its_channel_needs_and_subject_access_everything(banks, tmp_path):
    from cx360.erasure.export import JSON_FILE, export
    from cx360.segments.export import audience

    root = copy_of(banks, tmp_path)
    who = someone(banks)
    with Workspace(root) as ws:
        sms = audience(ws, "sms_card_offer")  # what `cx360 segments export` and the dashboard write
    with Workspace(banks["off"], read_only=True) as ws:
        known = set(ws.engine.table("records").phone.to_pyarrow().to_pylist())
    phones = sms.members.column("phone").to_pylist()
    assert sms.identifiers == ["phone"] and sms.members.num_rows > 3
    assert all(p is None or (p in known and not p.startswith("tk_")) for p in phones) and any(phones)
    export(root, who["email"], tmp_path / "access")
    document = json.loads((tmp_path / "access" / JSON_FILE).read_text(encoding="utf-8"))
    assert who["email"] in document["identifiers"]["email"] and who["phone"] in document["identifiers"]["phone"]
    held = [i["data"] for i in document["items"] if i["table"] == "vault"]
    assert {"golden", "value"} <= {d["item"] for d in held}
    assert any(d.get("last_name") == who["last_name"] for d in held if d["subject"].startswith("record:"))
    assert any(d.get("value") == who["email"] for d in held)


def test_erasure_shreds_every_subject_of_the_person_and_leaves_no_trace(banks, tmp_path):
    root = copy_of(banks, tmp_path)
    who = someone(banks)
    with Workspace(root) as ws:
        subject = resolve(ws, who["email"])
        before = scan(root, ws.config, subject)
        assert unclaimed(root, ws.config) == [], "every vault file belongs to a store"
    assert before.vault_subjects_left == len(subject.vault_subjects) > 3, "the check finds what is there"
    assert who["email"] in subject.clear_identifiers["email"]
    done = cx360("privacy", "erase", who["email"], "-w", root, "--reason", "request", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    receipt = json.loads(done.stdout)
    assert receipt["verification"]["hits"] == 0 and receipt["verification"]["vault_subjects_left"] == 0
    vault_store = next(s for s in receipt["stores"] if s["store"] == "vault")
    assert vault_store["subjects_shredded"] == len(subject.vault_subjects)
    vault = Vault.open(root)
    try:
        assert not set(vault.subjects()) & set(subject.vault_subjects)
        assert vault.reveal(subject.vault_subjects) == {}
        assert vault.subjects(f"{node_keys.RECORD}{node_keys.SEP}")  # everyone else's are still there
    finally:
        vault.close()
    values = [who["email"], who["phone"], f"{who['first_name']} {who['last_name']}", *subject.identifiers["email"]]
    for path in sorted(
        p for p in root.rglob("*") if p.is_file() and not p.relative_to(root).as_posix().startswith("data/")
    ):
        data = path.read_bytes()
        assert not [v for v in values if v.encode() in data], path


def test_turning_the_vault_on_over_clear_rows_is_a_clear_error(banks, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(banks["off"], mixed)
    with_vault(mixed)
    done = cx360("ingest", "-w", mixed)
    assert done.returncode == 1
    assert "already holds rows loaded with it off" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr

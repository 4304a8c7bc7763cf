"""Regression tests of the API's security promises: record sources masked, search closed to roles
without personal data and rate-limited, every lookup audited (path or query), forwarded addresses
believed only from trusted proxies, an audit log that outlives a locked database, a bounded key cache,
private file modes, and audited command-line reads."""

from __future__ import annotations

import getpass
import re
import sqlite3
import stat
import time

import pytest
from fastapi.testclient import TestClient
from serve_world import world_copy
from typer.testing import CliRunner

from cx360.api.access import KeyRing, create_key
from cx360.api.app import create_app, open_context
from cx360.api.audit import JOURNALS, read_audit
from cx360.config import ServeSettings


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("secure")
    world_copy(root, tmp_path_factory.getbasetemp() / "served-world")
    keys = {role: create_key(root, role, f"sec-{role}")[1] for role in ("admin", "analyst", "marketer", "agent")}
    return root, keys


@pytest.fixture
def api(world):
    """A fresh app per test (its own rate limits and audit writer), with small limits."""
    root, keys = world
    ctx, _ = open_context(root)
    ctx.settings = ServeSettings(search_burst=3, search_per_minute=60, trusted_proxies=["10.0.0.0/8"])
    ctx.__post_init__()
    with TestClient(create_app(ctx), client=("10.1.2.3", 5000)) as client:
        yield client, keys, ctx


def _get(client, keys, role, url, **params):
    return client.get(url, params=params, headers={"Authorization": f"Bearer {keys[role]}"})


def _entries(ctx, key):
    ctx.audit.flush()
    return list(read_audit(ctx.root, key_id=key.split("_")[1]))


def test_record_sources_text_traits_and_breakdown_keys_are_masked(api):
    client, keys, _ = api
    pid = _get(client, keys, "admin", "/v1/profiles", customer_no="C1").json()["profile_id"]
    for role in ("analyst", "marketer"):
        r = _get(client, keys, role, f"/v1/profiles/{pid}")
        p = r.json()
        assert {v["record"] for v in p["attributes"].values()} == {"crm:***"}
        assert p["traits"]["last_call_reason"] == "f***" and p["traits"]["top_category"] == "G***"
        assert p["breakdowns"]["calls_by_reason"] == {"f***": 1.0}
        assert p["breakdowns"]["events_by_channel"] == {"web": 2.0}, "cx360's own vocabulary stays"
        for secret in ("C1", "fees", "Groceries", "anna@x.ru"):
            assert secret not in r.text, (role, secret)
    agent = _get(client, keys, "agent", f"/v1/profiles/{pid}").json()
    assert agent["attributes"]["first_name"]["record"] == "crm:C1" and agent["traits"]["last_call_reason"] == "fees"


def test_churn_reasons_do_not_name_a_text_traits_value():
    from cx360.api.access import Principal, mask_profile

    reasons = ["top_category=Groceries (+0.40)", "days_since_txn=29 (+0.20)", "last_call_reason=fees"]
    profile = {
        "attributes": {},
        "identifiers": {},
        "traits": None,
        "breakdowns": {},
        "scores": {"value_tier": "gold", "churn": {"risk": 0.5, "reasons": reasons}},
    }
    shown, _ = mask_profile(profile, Principal("k", "n", "marketer"))
    assert shown["scores"]["churn"]["reasons"] == [
        "top_category=G*** (+0.40)",
        "days_since_txn=29 (+0.20)",
        "last_call_reason=f***",
    ]
    assert mask_profile(profile, Principal("k", "n", "agent"))[0]["scores"]["churn"]["reasons"] == reasons


def test_lookup_in_the_path_is_audited_like_the_query_and_misses_too(api):
    client, keys, ctx = api
    assert _get(client, keys, "analyst", "/v1/profiles/anna@x.ru").status_code == 200
    assert _get(client, keys, "analyst", "/v1/profiles", email="anna@x.ru").status_code == 200
    miss = _get(client, keys, "marketer", "/v1/profiles", email="nobody@x.ru")
    assert miss.status_code == 404 and "nobody@x.ru" not in miss.text, "errors do not echo identifiers to masked roles"
    analyst = [e for e in _entries(ctx, keys["analyst"]) if e["action"] == "profile"]
    assert [e["fields"] for e in analyst] == ["query.email", "query.email"]
    assert [e["fields"] for e in _entries(ctx, keys["marketer"])] == ["query.email"]


def test_search_is_for_profile_ids_only_without_pii_rate_limited_and_audited(api):
    client, keys, ctx = api
    r = _get(client, keys, "marketer", "/v1/search", q="anna@x")
    assert r.status_code == 403 and "profile id" in r.json()["error"]["message"]
    assert _get(client, keys, "marketer", "/v1/search", q="pe").status_code == 200
    assert _get(client, keys, "marketer", "/v1/search", q="p000").json()["results"] == []
    r = _get(client, keys, "marketer", "/v1/search", q="pe")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "a minute" in r.json()["error"]["message"]
    assert _get(client, keys, "agent", "/v1/search", q="an").status_code == 200, "limits are per key"
    assert _get(client, keys, "marketer", "/v1/profiles", email="anna@x.ru").status_code == 429, "a lookup is a search"
    pid = _get(client, keys, "agent", "/v1/profiles", email="anna@x.ru").json()["profile_id"]
    assert _get(client, keys, "marketer", f"/v1/profiles/{pid}").status_code == 200, "by profile id: no limit"
    kinds = sorted(
        e["fields"] for e in _entries(ctx, keys["marketer"]) if e["action"] == "search" and e["profile_id"] is None
    )
    assert kinds == ["query.email", "query.profile_id", "query.profile_id"], "every search, hits or not"
    assert "anna" not in str(_entries(ctx, keys["marketer"])), "the term itself is not kept"
    paths = client.get("/openapi.json").json()["paths"]
    assert {"429", "503"} <= set(paths["/v1/search"]["get"]["responses"]) and "429" in paths["/v1/profiles"]["get"][
        "responses"
    ]


def test_forwarded_for_is_believed_only_from_trusted_proxies(api, world):
    client, keys, ctx = api
    headers = {"Authorization": f"Bearer {keys['agent']}", "X-Forwarded-For": "6.6.6.6, 203.0.113.9"}
    assert client.get("/v1/profiles", params={"customer_no": "C2"}, headers=headers).status_code == 200
    direct = TestClient(create_app(ctx), client=("192.0.2.1", 5000))  # no `with`: the context stays open
    assert direct.get("/v1/profiles", params={"customer_no": "C2"}, headers=headers).status_code == 200
    clients = [e["client"] for e in _entries(ctx, keys["agent"]) if e["fields"].startswith("query.customer_no")][:2]
    assert clients == ["192.0.2.1", "203.0.113.9"], "newest first: the direct peer, then the proxied client"


def test_reads_are_served_only_once_journaled_and_the_writer_outlives_a_lock(api):
    client, keys, ctx = api
    ctx.audit.busy_timeout = 0.2
    if ctx.audit._con is not None:
        ctx.audit._con.close()
        ctx.audit._con = None
    blocker = sqlite3.connect(ctx.root / "access.sqlite", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        for _ in range(5):
            assert _get(client, keys, "agent", "/v1/profiles", customer_no="C1").status_code == 200
        journaled = "".join(p.read_text() for p in (ctx.root / JOURNALS).glob("*.jsonl"))
        assert journaled.count('"agent"') >= 5, "each answered read is on disk before the answer"
        started = time.monotonic()
        r = _get(client, keys, "admin", "/v1/audit")
        assert r.status_code == 503 and time.monotonic() - started < 6 and "audit" in r.json()["error"]["message"]
        assert ctx.audit._thread.is_alive()
    finally:
        blocker.rollback()
        blocker.close()
    entries = _get(client, keys, "admin", "/v1/audit", key=keys["agent"].split("_")[1]).json()["entries"]
    assert len([e for e in entries if e["fields"].startswith("query.customer_no")]) >= 5


def test_key_cache_is_bounded_and_oversized_keys_are_refused_early(world):
    root, keys = world
    ring = KeyRing(root, cap=2)
    for i in range(300):
        with pytest.raises(Exception, match="unknown API key"):
            ring.authenticate(f"cx360_{i:08x}_secret")
    assert ring.cached() == 0, "unknown ids are never cached"
    for role in ("admin", "analyst", "marketer"):
        ring.authenticate(keys[role])
    assert ring.cached() == 2
    for bad in ("cx360_" + "a" * 60_000 + "_x", "cx360_a-b_c", "cx360_" + "a" * 40 + "_x"):
        with pytest.raises(Exception, match="malformed API key"):
            ring.authenticate(bad)
    assert ring.cached() == 2


def test_http_refuses_a_huge_credential_with_401(api):
    client, _, _ = api
    r = client.get("/v1/segments", headers={"Authorization": "Bearer cx360_" + "f" * 60_000 + "_x"})
    assert r.status_code == 401 and len(r.text) < 1000 and "Authorization header" in r.text
    r = client.get("/v1/segments", headers={"Authorization": "Bearer cx360_" + "f" * 300 + "_x"})
    assert r.status_code == 401 and "256" in r.text


def test_workspace_files_are_private(world):
    from cx360.workspace import Workspace

    root, _ = world
    for name in ("warehouse.duckdb", "access.sqlite"):
        (root / name).chmod(0o644)
    Workspace(root)
    for path in [root / "warehouse.duckdb", root / "access.sqlite", root / JOURNALS, *(root / JOURNALS).iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_web_forms_carry_csrf_tokens_logout_is_a_post_and_pages_refuse_frames(api):
    client, keys, _ = api
    client.cookies.clear()
    login = client.get("/login")
    assert "frame-ancestors 'none'" in login.headers["content-security-policy"]
    assert login.headers["x-frame-options"] == "DENY" and "script-src" not in login.headers["content-security-policy"]
    csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
    forged = client.post("/login", data={"key": keys["analyst"], "csrf": "f" * 64}, follow_redirects=False)
    assert forged.status_code == 403 and "cx360_session" not in forged.headers.get("set-cookie", "")
    r = client.post("/login", data={"key": keys["analyst"], "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and "secure" not in r.headers["set-cookie"].lower(), "plain HTTP from an untrusted peer"
    page = client.get("/segments")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert token != csrf, "after login the token is bound to the session"
    assert client.get("/logout", follow_redirects=False).status_code == 405
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 403
    assert client.get("/segments", follow_redirects=False).status_code == 200, "a forged logout changes nothing"
    r = client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    client.cookies.clear()
    assert client.get("/health").headers["x-frame-options"] == "DENY"
    client.cookies.set("cx360_session", "stale.1.x")  # a session that ended: logging in again still works
    login = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
    assert client.post("/login", data={"key": keys["analyst"], "csrf": csrf}, follow_redirects=False).status_code == 303
    client.cookies.clear()


def test_cookies_are_secure_behind_an_https_proxy(api):
    client, keys, _ = api  # the peer, 10.1.2.3, is a trusted proxy in this app
    client.cookies.clear()
    https = {"X-Forwarded-Proto": "https"}
    login = client.get("/login", headers=https)
    assert "secure" in login.headers["set-cookie"].lower()
    csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
    nonce = login.cookies["cx360_login"]  # a Secure cookie: the client would not send it over plain HTTP
    client.cookies.clear()
    r = client.post(
        "/login",
        data={"key": keys["agent"], "csrf": csrf},
        follow_redirects=False,
        headers={**https, "Cookie": f"cx360_login={nonce}"},
    )
    assert r.status_code == 303 and "; secure" in r.headers["set-cookie"].lower()
    client.cookies.clear()


def test_command_line_reads_are_audited_with_the_os_user(world):
    from cx360.cli import app

    root, _ = world
    runner = CliRunner()
    for args in (
        ["profile", "show", "anna@x.ru"],
        ["identity", "explain", "customer_no:C2"],
        ["segments", "members", "high_value"],
    ):
        result = runner.invoke(app, [*args, "-w", str(root)])
        assert result.exit_code == 0, result.output
    cli = read_audit(root, key_id="cli")
    assert {e["action"] for e in cli} >= {"profile show", "identity explain", "segments members"}
    assert {e["key_name"] for e in cli} == {getpass.getuser()}
    (root / "data" / "crm.csv").write_text((root / "data" / "crm.csv").read_text() + 'C3,"unclosed\n', encoding="utf-8")
    assert runner.invoke(app, ["ingest", "-w", str(root)]).exit_code in (0, 1)
    assert runner.invoke(app, ["quarantine", "-w", str(root)]).exit_code == 0
    assert "quarantine" in {e["action"] for e in read_audit(root, key_id="cli")}
    shown = next(e for e in cli if e["action"] == "profile show")["fields"].split(",")
    assert {"query.identifier", "attributes.last_name", "identifiers.email"} <= set(shown)


def test_a_masked_search_by_a_full_email_and_lookups_that_find_nobody_are_audited(api, world):
    client, _, ctx = api
    root, _ = world
    key = create_key(root, "marketer", "sec-full-email")[1]
    headers = {"Authorization": f"Bearer {key}"}
    r = client.get("/v1/search", params={"q": "anna@x.ru"}, headers=headers)
    assert r.status_code == 403 and "results" not in r.json(), "a masked role learns no profile id from an e-mail"
    assert client.get("/v1/profiles/P0000dead", headers=headers).status_code == 404
    assert client.get("/v1/profiles", params={"phone": "+79169999999"}, headers=headers).status_code == 404
    entries = sorted((e["action"], e["profile_id"], e["fields"]) for e in _entries(ctx, key))
    assert entries == [
        ("profile", None, "query.phone"),
        ("profile", None, "query.profile_id"),
        ("search", None, "query.email"),
    ]


def test_command_line_lookups_that_find_nobody_are_audited(world):
    from cx360.cli import app

    root, _ = world
    runner = CliRunner()
    for args in (["profile", "show", "nobody@x.ru"], ["identity", "explain", "P0000dead"]):
        result = runner.invoke(app, [*args, "-w", str(root)])
        assert result.exit_code == 1 and result.exception is not None, result.output
    misses = {(e["action"], e["fields"]) for e in read_audit(root, key_id="cli") if e["profile_id"] is None}
    assert {("profile show", "query.identifier"), ("identity explain", "query.profile_id")} <= misses

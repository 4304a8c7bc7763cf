"""The access matrix: every route the app declares × every role (admin, agent, analyst, marketer,
no key), asserting that no personal value of the served test world reaches a role that may not see
it, in any response body: API, dashboard pages, errors, /metrics, the docs.

The personal values come from the warehouse itself (every column the schema marks `pii`, record
keys, identity nodes, event properties), so a new source of personal data in the test world is
checked without editing this file; the routes come from the app, so a new endpoint without a case
here fails the suite until it gets one."""

from __future__ import annotations

import json
import re

import duckdb
import pytest
from fastapi.testclient import TestClient
from serve_world import world_copy, write_churn_scores

from cx360 import schema
from cx360.api.access import create_key
from cx360.api.app import create_app, open_context
from cx360.stream.messages import CALLS

ROLES = ("admin", "agent", "analyst", "marketer", None)
SEES_PII = {"admin", "agent"}


def _routes(routes, prefix=""):
    """(method, path template) of every route, through included routers and mounts."""
    for r in routes:
        if hasattr(r, "original_router"):  # FastAPI keeps included routers as one entry
            yield from _routes(r.original_router.routes, prefix + (getattr(r.include_context, "prefix", "") or ""))
        elif hasattr(r, "methods") and r.methods:
            for m in sorted(r.methods - {"HEAD"}):
                yield m, prefix + r.path
        else:
            yield "MOUNT", prefix + r.path


def _personal_values(warehouse) -> set[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        values: set[str] = set()
        pii = {
            t: [c.name for c in cols if c.pii and c.name not in ("extra", "properties", "raw")]
            for t, cols in (("records", schema.RECORDS), ("events", schema.EVENTS))
        }
        for table, cols in pii.items():
            for col in cols:
                values |= {
                    str(v)
                    for (v,) in con.execute(
                        f'SELECT DISTINCT "{col}" FROM {table} WHERE "{col}" IS NOT NULL'
                    ).fetchall()
                }
        values |= {r for (r,) in con.execute("SELECT DISTINCT record_id FROM records").fetchall()}
        values |= {n.partition(":")[2] for (n,) in con.execute("SELECT node FROM identity_map").fetchall()}
        for (props,) in con.execute("SELECT properties FROM events WHERE properties IS NOT NULL").fetchall():
            values |= {str(v) for v in json.loads(props).values() if v is not None}
    phones = {v.lstrip("+") for v in values if v.startswith("+")}
    return {v for v in values | phones if v.strip()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("access")
    warehouse = world_copy(root, tmp_path_factory.getbasetemp() / "served-world")
    write_churn_scores(root)
    values = _personal_values(warehouse)
    keys = {role: create_key(root, role, f"matrix-{role}")[1] for role in ROLES if role}
    ctx, _ = open_context(root)
    with TestClient(create_app(ctx)) as client:
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        anna = client.get("/v1/profiles", params={"email": "anna@x.ru"}, headers=admin).json()
        boris = client.get("/v1/profiles", params={"email": "boris@x.ru"}, headers=admin).json()["profile_id"]
        cursor = client.get(f"/v1/profiles/{anna['profile_id']}/timeline", params={"limit": 2}, headers=admin).json()[
            "next_cursor"
        ]
        yield client, keys, values, anna["profile_id"], boris, cursor


def _cases(anna: str, boris: str, cursor: str) -> dict[tuple[str, str], list[dict]]:
    """How to call each route: the requests the matrix makes (path, params, form)."""
    lookups = [
        {"email": "anna@x.ru"},
        {"phone": "+79160000002"},
        {"customer_no": "C1"},
        {"card_token": "TK1"},
        {"cookie_id": "ck1"},
        {"email": "nobody@x.ru"},
        {"email": "anna@x.ru", "phone": "+79160000001"},
    ]
    return {
        ("GET", "/v1/profiles"): [{"params": p} for p in lookups],
        ("GET", "/v1/profiles/{profile_id}"): [
            {"path": f"/v1/profiles/{x}"} for x in (anna, boris, "anna@x.ru", "C2", "P0000")
        ],
        ("GET", "/v1/profiles/{profile_id}/timeline"): [
            {"path": f"/v1/profiles/{anna}/timeline"},
            {"path": f"/v1/profiles/{anna}/timeline", "params": {"cursor": cursor}},
            {"path": f"/v1/profiles/{anna}/timeline", "params": {"source": "activity", "limit": 500}},
            {"path": "/v1/profiles/ck1/timeline"},
            {"path": f"/v1/profiles/{anna}/timeline", "params": {"cursor": "bad"}},
        ],
        ("GET", "/v1/segments"): [{}],
        ("GET", "/v1/segments/{name}/members"): [
            {"path": f"/v1/segments/{name}/members"} for name in ("high_value", "nope")
        ],
        ("GET", "/v1/search"): [{"params": {"q": q}} for q in (anna[:5].lower(), "ann", "+7916", "Петр", "c1", "x")],
        ("GET", "/v1/audit"): [{}, {"params": {"limit": 5}}],
        ("POST", "/v1/consents"): [
            {"json": {"subject": subject, "purpose": "profiling", "status": "granted"}}
            for subject in ("boris@x.ru", "nobody@x.ru", "C1")
        ],
        ("GET", "/health"): [{}],
        ("GET", "/metrics"): [{}],
        ("GET", "/openapi.json"): [{}],
        ("GET", "/docs"): [{}],
        ("GET", "/docs/oauth2-redirect"): [{}],
        ("GET", "/redoc"): [{}],
        ("GET", "/docs/init.js"): [{}],
        ("MOUNT", "/docs-assets"): [{"path": "/docs-assets/swagger-ui.css"}],
        ("MOUNT", "/static"): [{"path": "/static/style.css"}],
        ("GET", "/login"): [{}],
        ("POST", "/login"): [{"form": {"key": "cx360_nope_nope"}}],
        ("POST", "/logout"): [{"form": {}}],
        ("GET", "/"): [{}],
        ("GET", "/search"): [{"params": {"q": q}} for q in (anna[:5], "anna", "+7916", "")],
        ("GET", "/segments"): [{}],
        ("POST", "/v1/calls/route"): [
            {"json": b}
            for b in (
                {"phone": "+79160000001"},
                {"phone": "+79160000001", "at": "2025-06-03T00:00:00Z"},
                {"phone": "+79990000000"},
                {"phone": ""},
            )
        ],
        ("GET", "/calls"): [{}],
        ("POST", "/v1/decisions"): [
            {"json": b} for b in ({"profile_id": anna}, {"identifier": "anna@x.ru", "kind": "email"}, {})
        ],
        ("POST", "/v1/batch"): [
            {"json": {"batch": [{"type": "track", "messageId": "m", "userId": "C1", "event": "x"}]}}
        ],
        **{("POST", f"/v1/{call}"): [{"json": {"messageId": "m", "userId": "C1"}}] for call in CALLS},
        ("GET", "/customers/{profile_id}"): [
            {"path": f"/customers/{x}"} for x in (anna, boris, "anna@x.ru", "P-unknown")
        ]
        + [{"path": f"/customers/{anna}", "params": {"cursor": cursor}}],
        ("GET", "/funnels"): [{}, {"params": {"by": "channel"}}],
        ("GET", "/forms"): [{}],
        ("GET", "/visits"): [{}],
        ("GET", "/listening"): [{}],
        ("GET", "/habits"): [{}],
        ("GET", "/segments/{name}"): [{"path": f"/segments/{name}"} for name in ("high_value", "nope")],
        ("POST", "/segments/{name}/export"): [
            {"path": f"/segments/{name}/export", "form": {"file_format": "csv"}} for name in ("high_value", "nope")
        ],
    }


def _leaks(text: str, values: set[str]) -> list[str]:
    return sorted(v for v in values if re.search(rf"(?<![0-9a-z]){re.escape(v.lower())}(?![0-9a-z])", text.lower()))


def _login(client, key: str) -> None:
    client.cookies.clear()
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    assert client.post("/login", data={"key": key, "csrf": csrf}, follow_redirects=False).status_code == 303


def _csrf(client) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/segments").text)
    return found.group(1) if found else ""


def test_every_route_has_a_case(world):
    client, _, _, anna, boris, cursor = world
    declared = set(_routes(client.app.routes))
    assert declared - set(_cases(anna, boris, cursor)) == set(), "add these routes to the access matrix"
    assert {("GET", "/v1/profiles"), ("GET", "/customers/{profile_id}"), ("GET", "/metrics")} <= declared


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "no-key")
def test_no_personal_data_reaches_a_role_without_it(world, role):
    client, keys, values, anna, boris, cursor = world
    assert {"anna@x.ru", "+79160000001", "79160000001", "C1", "TK1", "ck1", "Петрова", "1990-03-15", "fees"} <= values
    client.cookies.clear()
    if role:
        _login(client, keys[role])
    headers = {"Authorization": f"Bearer {keys[role]}"} if role else {}
    client.app.state.ctx.search_limit.burst = 10_000  # the matrix is not a flood
    client.app.state.ctx.search_limit._buckets.clear()
    seen, leaked, calls = 0, {}, 0
    for (method, _), requests in _cases(anna, boris, cursor).items():
        for req in requests:
            path = req.get("path") or _
            if "json" in req:
                r = client.post(path, json=req["json"], headers=headers)
            elif method == "POST":
                form = {**req["form"], "csrf": _csrf(client)}
                r = client.post(path, data=form, follow_redirects=False)
                if path == "/logout" and role:
                    _login(client, keys[role])  # the next pages need the session again
            else:
                r = client.get(
                    path,
                    params=req.get("params"),
                    headers=headers if path.startswith("/v1") else {},
                    follow_redirects=False,
                )
            calls += 1
            assert r.status_code < 500, (role, path, req, r.text[:300])
            found = _leaks(r.text + json.dumps(dict(r.headers)), values)
            if found:
                seen += 1
                leaked[(path, json.dumps(req.get("params")))] = found
    assert calls >= 45
    if role in SEES_PII:
        assert seen >= 10, "roles with pii see personal data: otherwise this test could not catch a leak"
    else:
        assert leaked == {}, f"personal data reached {role or 'a caller without a key'}: {leaked}"
    if role is None:
        assert client.get("/v1/segments").status_code == 401
        assert client.get(f"/customers/{anna}", follow_redirects=False).headers["location"] == "/login"
    client.cookies.clear()

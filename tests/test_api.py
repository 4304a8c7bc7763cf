"""The REST API through FastAPI's TestClient, over a real serving index: lookups by every way in,
paging, roles and masking, the audit trail, errors with the right status, /health and /metrics."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from serve_world import build_world, evaluate_segments
from typer.testing import CliRunner

from cx360.api import index
from cx360.api.access import create_key, revoke_key
from cx360.api.app import create_app, open_context
from cx360.profiles.view import Profile


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    warehouse = build_world(root)
    bare = index.ensure(warehouse)  # before the scoring and segment stages ran
    assert bare.rebuilt and not bare.rows.get("segments")
    evaluate_segments(root)
    ctx, report = open_context(root)
    assert report.rebuilt, "the warehouse changed: the index must be rebuilt"
    keys = {role: create_key(root, role, f"test-{role}")[1] for role in ("admin", "analyst", "marketer", "agent")}
    with TestClient(create_app(ctx)) as client:
        yield root, client, keys, ctx


def _get(client, keys, role, url, **params):
    return client.get(url, params=params, headers={"Authorization": f"Bearer {keys[role]}"})


def _anna(client, keys):
    return _get(client, keys, "admin", "/v1/profiles", email="anna@x.ru").json()


def test_lookup_by_every_identifier_gives_one_profile(served):
    _, client, keys, _ = served
    anna = _anna(client, keys)
    pid = anna["profile_id"]
    assert anna["attributes"]["first_name"] == {
        "value": "Анна",
        "record": "crm:C1",
        "rule": anna["attributes"]["first_name"]["rule"],
    }
    assert anna["identifiers"]["email"] == ["anna@x.ru"] and anna["scores"]["value_tier"] in (
        "bronze",
        "silver",
        "gold",
        "platinum",
    )
    assert [s["segment"] for s in anna["segments"]] == ["high_value"]
    assert anna["traits"]["calls_total"] == 1
    for params in (
        {"email": "  ANNA@x.ru "},
        {"phone": "8 916 000-00-01"},
        {"customer_no": "c1"},
        {"card_token": "tk1"},
        {"cookie_id": "ck1"},
    ):
        r = _get(client, keys, "admin", "/v1/profiles", **params)
        assert r.status_code == 200 and r.json()["profile_id"] == pid, params
    assert _get(client, keys, "admin", f"/v1/profiles/{pid}").json()["profile_id"] == pid


def test_errors_carry_the_right_status(served):
    _, client, keys, _ = served
    r = _get(client, keys, "admin", "/v1/profiles", email="nobody@x.ru")
    assert r.status_code == 404 and "nobody@x.ru" in r.json()["error"]["message"]
    assert _get(client, keys, "admin", "/v1/profiles/P0000").status_code == 404
    r = _get(client, keys, "admin", "/v1/profiles", email="anna@x.ru", phone="+79160000001")
    assert r.status_code == 422 and "exactly one identifier" in r.json()["error"]["message"]
    assert _get(client, keys, "admin", "/v1/profiles").status_code == 422
    pid = _anna(client, keys)["profile_id"]
    r = _get(client, keys, "admin", f"/v1/profiles/{pid}/timeline", cursor="not-a-cursor")
    assert r.status_code == 422 and "cursor" in r.json()["error"]["message"]
    assert _get(client, keys, "admin", f"/v1/profiles/{pid}/timeline", limit=0).status_code == 422
    assert _get(client, keys, "admin", "/v1/search", q="a").status_code == 422


def test_authentication_and_roles(served):
    root, client, keys, _ = served
    assert client.get("/v1/segments").status_code == 401
    r = client.get("/v1/segments", headers={"Authorization": "Bearer cx360_dead_beef"})
    assert r.status_code == 401 and "unknown API key" in r.json()["error"]["message"]
    assert client.get("/v1/segments", headers={"Authorization": "Bearer garbage"}).status_code == 401
    key_id, key = create_key(root, "agent", "to-revoke")
    assert client.get("/v1/segments", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    revoke_key(root, key_id)
    client.app.state.ctx.keys.ttl = 0  # the cache would otherwise keep the key alive a few seconds
    r = client.get("/v1/segments", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    pid = _anna(client, keys)["profile_id"]
    r = _get(client, keys, "marketer", f"/v1/profiles/{pid}/timeline")
    assert r.status_code == 403 and "analyst" in r.json()["error"]["message"]
    assert _get(client, keys, "analyst", "/v1/audit").status_code == 403
    assert _get(client, keys, "agent", f"/v1/profiles/{pid}/timeline").status_code == 200


def test_personal_data_masked_for_roles_without_it_and_every_read_audited(served):
    _, client, keys, _ = served
    anna = _anna(client, keys)
    pid, anna_tier = anna["profile_id"], anna["scores"]["value_tier"]
    analyst = _get(client, keys, "analyst", f"/v1/profiles/{pid}").json()
    assert analyst["attributes"]["first_name"]["value"] == "А***"
    assert analyst["attributes"]["birth_date"]["value"] == "1***"
    assert analyst["attributes"]["city"]["value"] == "Moscow"  # not personal data on its own
    assert analyst["identifiers"]["email"] == ["a***"] and analyst["scores"]["value_tier"] == anna_tier
    events = _get(client, keys, "analyst", f"/v1/profiles/{pid}/timeline").json()["events"]
    assert {v for e in events for v in e["properties"].values()} == {"***"}
    agent = _get(client, keys, "agent", f"/v1/profiles/{pid}").json()
    assert agent["attributes"]["last_name"]["value"] == "Петрова"
    # the profile routes write their dump without validating it again: it is what the model writes
    for body in (analyst, agent):
        assert Profile.model_validate(body).model_dump(mode="json") == body

    entries = _get(client, keys, "admin", "/v1/audit").json()["entries"]
    agent_reads = [e for e in entries if e["role"] == "agent" and e["action"] == "profile" and e["profile_id"] == pid]
    assert agent_reads and "attributes.last_name" in agent_reads[0]["fields"].split(",")
    assert agent_reads[0]["client"] == "testclient" and agent_reads[0]["key_name"] == "test-agent"
    assert not [e for e in entries if e["role"] == "analyst"], "masked reads hold no personal data"
    assert any(e["fields"].startswith("query.email") for e in entries if e["role"] == "admin")


def test_timeline_pages_newest_first_with_filters(served):
    _, client, keys, _ = served
    pid = _anna(client, keys)["profile_id"]
    url = f"/v1/profiles/{pid}/timeline"
    everything = _get(client, keys, "admin", url).json()["events"]
    assert [e["event_id"] for e in everything] == ["e6", "e5", "e4", "e3", "e2", "e1"]
    seen, cursor = [], None
    while True:
        page = _get(client, keys, "admin", url, limit=4, **({"cursor": cursor} if cursor else {})).json()
        seen += [e["event_id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["event_id"] for e in everything]
    assert [
        e["event_id"]
        for e in _get(client, keys, "admin", url, since="2025-06-02T00:00:00Z", until="2025-06-04T00:00:00").json()[
            "events"
        ]
    ] == ["e3", "e2"]
    assert {e["channel"] for e in _get(client, keys, "admin", url, source="crm").json()["events"]} == set()
    assert everything[-1]["properties"] == {"category": "Groceries"} and everything[-1]["amount"] == 10.0


def test_segments_and_search(served):
    _, client, keys, _ = served
    segments = _get(client, keys, "marketer", "/v1/segments").json()
    assert segments["available"] and [s["name"] for s in segments["segments"]] == ["at_risk", "high_value"]
    hits = _get(client, keys, "admin", "/v1/search", q="Пет").json()["results"]
    assert [(h["last_name"], h["kind"]) for h in hits] == [("Петрова", "last_name")]
    # a Cyrillic name is found by its Latin spellings too
    latin_hits = _get(client, keys, "admin", "/v1/search", q="Petrova").json()["results"]
    assert [(h["last_name"], h["kind"], h["term"]) for h in latin_hits] == [("Петрова", "last_name_latin", "petrova")]
    full = _get(client, keys, "admin", "/v1/search", q="anna petr").json()["results"]
    assert [(h["profile_id"], h["kind"]) for h in full] == [(hits[0]["profile_id"], "name_latin")]
    assert [h["kind"] for h in _get(client, keys, "admin", "/v1/search", q="boris@").json()["results"]] == ["email"]
    assert _get(client, keys, "admin", "/v1/search", q="zzz").json()["results"] == []
    r = _get(client, keys, "marketer", "/v1/search", q="Пет")
    assert r.status_code == 403 and "profile id only" in r.json()["error"]["message"]
    pid = hits[0]["profile_id"]
    masked = _get(client, keys, "marketer", "/v1/search", q=pid[:6].lower()).json()["results"]
    assert masked[0]["last_name"] == "П***" and masked[0]["profile_id"] == pid and masked[0]["term"] == pid.lower()


def test_health_metrics_and_openapi(served):
    _, client, keys, _ = served
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["rows"]["profiles"] == 2
    _get(client, keys, "admin", "/v1/segments")
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'cx360_http_requests_total{method="GET",route="/v1/segments",status="200"}' in metrics.text
    assert 'cx360_http_request_duration_seconds_bucket{le="0.001",route="/v1/segments"}' in metrics.text
    for name in (
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "python_info",
        "python_gc_objects_collected_total",
        "cx360_index_age_seconds",
        "cx360_audit_backlog_bytes",
        "cx360_http_requests_in_progress",
    ):
        assert f"\n{name}" in metrics.text, name
    assert metrics.headers["x-request-id"]
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/v1/profiles",
        "/v1/profiles/{profile_id}",
        "/v1/profiles/{profile_id}/timeline",
        "/v1/segments",
        "/v1/search",
        "/health",
        "/metrics",
    } <= set(paths)


def test_index_is_reused_while_the_warehouse_is_unchanged(served):
    root, *_ = served
    assert not index.ensure(root / "warehouse.duckdb").rebuilt


def test_keys_and_audit_commands(served, monkeypatch):
    from cx360.cli import app, output

    # the console's width is fixed at import, from the COLUMNS of the process (80 in an xdist worker)
    monkeypatch.setattr(output.out, "width", 250)

    root, client, *_ = served
    runner = CliRunner()
    result = runner.invoke(app, ["keys", "create", "--role", "agent", "--name", "desk-7", "-w", str(root)])
    assert result.exit_code == 0, result.output
    key = next(line for line in result.output.splitlines() if line.startswith("cx360_"))
    assert (
        client.get(
            "/v1/profiles", params={"email": "boris@x.ru"}, headers={"Authorization": f"Bearer {key}"}
        ).status_code
        == 200
    )
    client.app.state.ctx.audit.flush()
    assert key.split("_", 2)[2] not in (root / "access.sqlite").read_bytes().decode("latin-1"), "keys are stored hashed"
    result = runner.invoke(app, ["audit", "-w", str(root), "--key", key.split("_")[1]], env={"COLUMNS": "250"})
    assert result.exit_code == 0 and "desk-7" in result.output and "query.email" in result.output
    result = runner.invoke(app, ["keys", "create", "--role", "boss", "-w", str(root)])
    assert result.exit_code != 0 and "admin, agent, analyst, marketer" in str(result.exception) + result.output


def test_dashboard_session_is_a_signed_cookie_that_ends_with_its_key(served):
    root, client, _, _ = served
    key_id, key = create_key(root, "analyst", "session")
    client.cookies.clear()
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    assert client.post("/login", data={"key": key}, follow_redirects=False).status_code == 403, "no CSRF token"
    assert client.post("/login", data={"key": "cx360_x_y", "csrf": csrf}, follow_redirects=False).status_code == 401
    r = client.post("/login", data={"key": key, "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = client.cookies["cx360_session"]
    assert key.split("_", 2)[2] not in cookie
    assert client.get("/segments", follow_redirects=False).status_code == 200
    tampered = cookie.replace(key_id, "ffffffff")
    assert tampered != cookie
    client.cookies.clear()  # one cookie in the jar: the server-set one has a domain, a set() one not
    client.cookies.set("cx360_session", tampered)
    assert client.get("/segments", follow_redirects=False).headers["location"] == "/login", "tampered cookie"
    client.cookies.clear()
    client.cookies.set("cx360_session", cookie)
    assert client.get("/segments", follow_redirects=False).status_code == 200
    revoke_key(root, key_id)
    client.app.state.ctx.keys.ttl = 0
    assert client.get("/segments", follow_redirects=False).headers["location"] == "/login", "revoked key"
    client.cookies.clear()


def test_openapi_documents_types_security_and_error_envelope(served):
    _, client, keys, _ = served
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["HTTPBearer"]["description"],
    }
    for path, ops in spec["paths"].items():
        if not path.startswith("/v1"):
            continue
        for method, op in ops.items():
            if op.get("tags") == ["collector"]:  # write keys, and errors in the shape Segment's SDKs read
                assert op["security"] == [{"WriteKey": []}], path
                for status in ("400", "401", "403", "413", "503"):
                    schema = op["responses"][status]["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/CollectorError"}, (path, status)
                continue
            assert op["security"] == [{"HTTPBearer": []}], path
            ok = "201" if method == "post" and "consents" in path else "200"
            assert "$ref" in op["responses"][ok]["content"]["application/json"]["schema"], path
            statuses = (
                ["401", "403"]
                + (["422"] if op.get("parameters") or op.get("requestBody") else [])
                + (["404"] if "profile" in path else [])
            )
            for status in statuses:
                assert op["responses"][status]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorResponse"
                }, (path, status)
    assert "HTTPValidationError" not in spec["components"]["schemas"], "FastAPI's own 422 body is not what we answer"
    r = _get(client, keys, "admin", "/v1/search", q="an", limit="many")  # FastAPI's own validation, in the envelope
    assert (
        r.status_code == 422
        and r.json()["error"]["type"] == "ValidationError"
        and "limit" in r.json()["error"]["message"]
    )
    assert client.get("/docs").status_code == 200 and "cdn" not in client.get("/docs").text.lower()


def test_segment_members_are_paged_and_filtered_by_entry(served):
    _, client, keys, _ = served
    first = _get(client, keys, "marketer", "/v1/segments/high_value/members", limit=1)
    assert first.status_code == 200, first.text
    body = first.json()
    assert len(body["members"]) == 1 and body["next"] == body["members"][0]["profile_id"]
    everyone, after = [], None
    while True:
        page = _get(
            client, keys, "marketer", "/v1/segments/high_value/members", limit=1, **({"after": after} if after else {})
        )
        everyone += [m["profile_id"] for m in page.json()["members"]]
        after = page.json()["next"]
        if after is None:
            break
    assert len(everyone) == len(set(everyone)) >= 1 and everyone == sorted(everyone)
    assert _anna(client, keys)["profile_id"] in everyone
    later = _get(client, keys, "marketer", "/v1/segments/high_value/members", entered_since="2100-01-01T00:00:00")
    assert later.json()["members"] == []
    assert _get(client, keys, "marketer", "/v1/segments/nope/members").status_code == 404
    assert _get(client, keys, "analyst", "/v1/segments/high_value/members", limit=0).status_code == 422

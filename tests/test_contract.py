"""Contract: schemathesis generates requests from the OpenAPI schema for every operation, with each
role's key and with none, and checks each response against the schema: no server error, and every
status, content type, header and body as documented. Seeded (derandomised) and bounded."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from serve_world import build_world, evaluate_segments, write_churn_scores  # noqa: E402

from cx360.api.access import ROLES, create_key  # noqa: E402
from cx360.api.app import create_app, open_context  # noqa: E402

# Rules OpenAPI cannot state, answered 422 as documented: exactly one identifier in /v1/profiles, a
# timeline's `since` before its `until` and a cursor this API issued, a search term that is not spaces.
CONFIG = """
[[operations]]
include-name = ["GET /v1/profiles", "GET /v1/profiles/{profile_id}/timeline", "GET /v1/search"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "422", "429"]
"""
EXAMPLES = 15  # per operation and caller: about 90 cases per caller, 450 in all


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    build_world(root)
    with (root / "cx360.toml").open("a") as toml:  # the rate limit has its own tests; here it would only answer 429
        toml.write("\n[serve]\nsearch_per_minute = 1000000\nsearch_burst = 1000000\n")
    evaluate_segments(root)
    write_churn_scores(root)
    open_context(root)[0].close()  # builds the serving index once
    return root, {
        role: create_key(root, role, f"contract-{role}", source="web" if role == "writer" else None)[1]
        for role in ROLES
    }


# Requests that find someone, so that full profiles, timelines and search hits are checked too (a
# generated identifier finds nobody).
KNOWN = (
    ("GET /v1/profiles", {"query": {"email": "anna@x.ru"}}),
    ("GET /v1/profiles", {"query": {"phone": "+79160000002"}}),
    ("GET /v1/profiles/{profile_id}", {"path_parameters": {"profile_id": "C1"}}),
    ("GET /v1/profiles/{profile_id}/timeline", {"path_parameters": {"profile_id": "anna@x.ru"}, "query": {"limit": 2}}),
    ("GET /v1/search", {"query": {"q": "Пет"}}),
    ("GET /v1/search", {"query": {"q": "boris@"}}),
    ("GET /v1/audit", {"query": {"limit": 5}}),
)


def run_contract(app, key: str | None, examples: int = EXAMPLES) -> tuple[int, list[str]]:
    """(cases run, one entry per failing operation, naming the checks that failed)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=schemathesis.Config.from_str(CONFIG))
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    cases, failures = 0, []
    operations = {op.label: op for op in (r.ok() for r in schema.get_all_operations())}
    for label, parts in KNOWN:
        cases += 1
        try:
            operations[label].Case(**parts).call_and_validate(headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected: every request is tried
            failures.append(f"{label} {parts}: {exc}")
    for operation in operations.values():

        @given(case=operation.as_strategy())
        @settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            nonlocal cases
            cases += 1
            case.call_and_validate(headers=headers)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected: every operation is tried
            failures.append(f"{operation.label}: {exc}")
    return cases, failures


@pytest.mark.parametrize("role", [*ROLES, None], ids=[*ROLES, "no-key"])
def test_responses_match_the_openapi_schema(api, role):
    root, keys = api
    app = create_app(open_context(root)[0])  # schemathesis runs its lifespan, which closes the context
    cases, failures = run_contract(app, keys.get(role))
    assert cases >= 5 * EXAMPLES, cases
    assert not failures, "\n\n".join(failures)

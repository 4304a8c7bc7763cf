"""One view of the profile: the warehouse reader (`Workspace.profile()`, `cx360 profile show`) and the
API's serving index give the same typed Profile, with churn risk and reasons, segments and archetype."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from serve_world import build_world, evaluate_segments, write_churn_scores

from cx360.api.access import create_key
from cx360.api.app import create_app, open_context
from cx360.profiles.view import Profile
from cx360.workspace import Workspace


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("view")
    build_world(root)
    evaluate_segments(root)
    risks = write_churn_scores(root)
    return root, risks


def test_workspace_profile_has_every_dimension(world):
    root, risks = world
    with Workspace(root) as ws:
        anna = ws.profile("anna@x.ru")
    assert isinstance(anna, Profile)
    assert anna.attributes["last_name"].value == "Петрова" and anna.attributes["last_name"].record == "crm:C1"
    assert str(anna.attributes["birth_date"].value) == "1990-03-15"
    assert anna.identifiers["email"] == ["anna@x.ru"] and anna.traits.calls_total == 1
    assert anna.scores.value_tier in ("bronze", "silver", "gold", "platinum")
    churn = anna.scores.churn
    assert churn.risk == risks[anna.profile_id] and churn.horizon_days == 90
    assert churn.reasons == (["days_since_txn", "calls_90d"] if churn.risk == 0.125 else ["txn_count"])
    assert [m.segment for m in anna.segments] == ["high_value"] and anna.segments[0].exited_at is None
    assert anna.archetype.archetype in ("analog", "wannabe", "mainstreamer", "paranoid", "chameleon", "nomad")
    assert anna.breakdowns["spend_by_category"] == {"Groceries": 10.0}


def test_api_serves_the_same_profile_as_the_warehouse(world):
    root, _ = world
    ctx, _ = open_context(root)
    key = create_key(root, "admin", "view")[1]
    with Workspace(root) as ws:
        expected = {p: json.loads(ws.profile(p).model_dump_json()) for p in ("anna@x.ru", "boris@x.ru")}
    with TestClient(create_app(ctx)) as client:
        for email, want in expected.items():
            got = client.get("/v1/profiles", params={"email": email}, headers={"Authorization": f"Bearer {key}"})
            assert got.status_code == 200, email
            served = got.json()
            assert served.pop("freshness")["origin"] == "batch"  # the warehouse's reader has no serving freshness
            assert served == {k: v for k, v in want.items() if k != "freshness"}, email


def test_profile_show_prints_churn_segments_and_archetype(world):
    root, risks = world
    cli = [sys.executable, "-m", "cx360", "profile", "show", "boris@x.ru", "-w", str(root)]
    shown = subprocess.run([*cli, "--format", "json"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    boris = json.loads(shown.stdout)
    assert boris["scores"]["churn"]["risk"] == risks[boris["profile_id"]]
    assert [s["segment"] for s in boris["segments"]] == ["at_risk"] and boris["archetype"]["archetype"]
    table = subprocess.run(cli, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    for text in (
        "Churn",
        "txn_count" if risks[boris["profile_id"]] == 0.8 else "calls_90d",
        "Segments",
        "at_risk",
        "Archetype",
        "crm:C2",
    ):
        assert text in table.stdout, text

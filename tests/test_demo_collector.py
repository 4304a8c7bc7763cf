"""`cx360 demo --through-collector`: the bank's web and app activity goes through `cx360 serve` with the
real Segment client, and every acknowledged call is in the warehouse once, where the file route puts it."""

from __future__ import annotations

import json

import pytest

from cx360.cli import demo_collect
from cx360.demo import generate_world
from cx360.pipeline import run_stage
from cx360.workspace import Workspace

pytest.importorskip("segment.analytics")


def test_web_and_app_calls_sent_through_the_collector_land_once_each(tmp_path):
    root = tmp_path / "bank"
    generate_world(root, customers=20, seed=5)
    head, *blocks = (root / "cx360.toml").read_text().split("\n# ")  # only web and app: the rest is not on trial
    kept = [b for b in blocks if '\nname = "web"\n' in b or '\nname = "app"\n' in b]
    head = "\n".join(line for line in head.splitlines() if not line.startswith("source_priority"))
    (root / "cx360.toml").write_text("\n# ".join([head, *kept]))
    web_lines = [line for p in sorted((root / "data" / "web").glob("*.jsonl")) for line in p.read_text().splitlines()]
    replays = {r.source: r for r in demo_collect.send(root)}

    assert not (root / "data" / "web").exists() and '\nname = "web"\n' not in (root / "cx360.toml").read_text()
    assert replays["web"].sent == len(web_lines) - 1  # the line cut short in the export cannot be sent
    assert all(r.acknowledged == r.sent and not r.failed for r in replays.values())
    with Workspace(root) as ws:
        assert run_stage(ws, "ingest").status == "ok"  # drains what the server had not loaded yet
        events = ws.engine.table("events").to_pyarrow().to_pylist()
        quarantined = ws.engine.table("quarantine").to_pyarrow().to_pylist()
    for source, replay in replays.items():
        ids = [e["event_id"] for e in events if e["source"] == source]
        held = [q for q in quarantined if q["source"] == source]
        assert len(ids) == len(set(ids)), "an event landed twice"
        assert set(ids) | {json.loads(q["raw"])["messageId"] for q in held} == replay.message_ids
    [heartbeat] = [q for q in quarantined if q["source"] == "web"]  # the one call with no canonical name
    assert "unknown event name 'heartbeat'" in heartbeat["reasons"]
    by_id = {e["event_id"]: e for e in events}
    login = next(e for e in events if e["source"] == "web" and e["name"] == "login")
    assert (login["channel"], login["cookie_id"] is not None, login["customer_no"] is not None) == ("web", True, True)
    screen = next(e for e in events if e["source"] == "app" and e["name"] == "page_viewed")
    assert (screen["channel"], screen["device_id"] is not None) == ("mobile_app", True)
    assert by_id[screen["event_id"]]["ts"].year == 2025  # the bank's time, not the time it was sent

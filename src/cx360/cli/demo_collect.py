"""`cx360 demo --through-collector`: the bank's web and app activity sent through `cx360 serve` with the
real Segment client (cx360.demo.collect), and what of it landed in the warehouse."""

from __future__ import annotations

from pathlib import Path

from cx360.cli.output import out, table
from cx360.demo.collect import Replay


def send(directory: Path) -> list[Replay]:
    """Turn the web and app exports into Segment calls, take them out of the workspace, and send them to a
    `cx360 serve` started for the purpose, each source with a write key of its own."""
    from cx360.api.access import create_key
    from cx360.demo import collect
    from cx360.pipeline import run_stage
    from cx360.workspace import Workspace

    calls = collect.calls_from_world(directory)
    collect.detach_sources(directory)
    with out.status("Ingesting the other sources (the server serves over a warehouse)..."), Workspace(directory) as ws:
        run_stage(ws, "ingest")
    keys = {source: create_key(directory, "writer", f"demo-{source}", source=source)[1] for source in calls}
    total = sum(len(c) for c in calls.values())
    status = out.status(f"Sending {total:,} web and app calls through the collector...")
    with status, collect.serving(directory, directory / "serve.log") as url:
        return collect.replay(url, keys, calls)


def show_landed(ws, replays: list[Replay]) -> None:
    """Sent, acknowledged, and found in the warehouse (events, or quarantine with a reason), per source."""
    engine = ws.engine
    rows = []
    for r in replays:
        events, quarantine = engine.table("events"), engine.table("quarantine")
        loaded = int(engine.scalar(events.filter(events.source == r.source).count(), step="demo: collected events"))
        held = int(engine.scalar(quarantine.filter(quarantine.source == r.source).count(), step="demo: quarantined"))
        rows.append((r.source, f"{r.sent:,}", f"{r.acknowledged:,}", f"{loaded:,}", f"{held:,}"))
    out.print(
        table(
            "Through the collector (segment-analytics-python -> cx360 serve -> event log -> events)",
            ["source", "sent", "acknowledged", "in events", "quarantined"],
            rows,
        )
    )

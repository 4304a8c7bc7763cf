"""`cx360 triggers list|replay`: the outbox of trigger deliveries, and sending dead ones again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit, out

triggers_app = typer.Typer(
    help="Triggers fired by segment entries, exits and events (docs/realtime.md).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(triggers_app, name="triggers")


def _store(workspace: Path):
    from cx360.errors import ConfigError
    from cx360.online.store import open_online
    from cx360.workspace import Workspace

    ws = Workspace(workspace)
    store = open_online(ws.root, ws.config)
    if store is None:
        raise ConfigError(f"{ws.config_path}: the online store lives beside a DuckDB warehouse, or in [online] url")
    return store


@triggers_app.command("list")
def list_(
    workspace: WorkspaceOpt = Path("."),
    status: Annotated[str | None, typer.Option(help="Only pending, delivered or dead deliveries.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    fmt: FormatOpt = Format.table,
) -> None:
    """The latest deliveries: trigger, target, profile, status, tries and the last error."""
    store = _store(workspace)
    rows = store.outbox(status=status, limit=limit)
    emit(
        fmt,
        "trigger deliveries",
        ["key", "trigger", "target", "profile_id", "status", "attempts", "error", "created_at", "delivered_at"],
        [
            [
                r["key"],
                r["trigger"],
                r["target"],
                json.loads(r["payload"])["profile_id"],
                r["status"],
                r["attempts"],
                r["error"],
                r["created_at"],
                r["delivered_at"],
            ]
            for r in rows
        ],
    )


@triggers_app.command("replay")
def replay(
    workspace: WorkspaceOpt = Path("."),
    trigger: Annotated[str | None, typer.Option(help="Only this trigger's dead deliveries.")] = None,
) -> None:
    """Send the dead deliveries again: a running server's deliverer picks them up at once."""
    from cx360.online.triggers import replay as requeue

    n = requeue(_store(workspace), trigger)
    out.print(f"{n} dead deliveries queued again")

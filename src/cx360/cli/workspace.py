"""`cx360 init`, `cx360 status`, `cx360 quarantine`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cx360.cli.output import Format, FormatOpt, emit, emit_json, out, records, table

WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder (holds cx360.toml).")]


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("status")(status)
    app.command("quarantine")(quarantine)


def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the workspace in.")],
    name: Annotated[str | None, typer.Option(help="Workspace name (default: the folder's name).")] = None,
    region: Annotated[str, typer.Option(help="Country for phone numbers without +country code.")] = "US",
    force: Annotated[bool, typer.Option(help="Overwrite an existing cx360.toml.")] = False,
) -> None:
    """Create a workspace with a commented cx360.toml."""
    from cx360.workspace import init_workspace

    path = init_workspace(directory, name=name, region=region.upper(), force=force)
    out.print(f"Created {path}. Add [[sources]] to it, then run [bold]cx360 ingest -w {directory}[/].")


def status(workspace: WorkspaceOpt = Path("."), fmt: FormatOpt = Format.table) -> None:
    """Show what the workspace holds: table sizes and, per source, what was ingested."""
    from cx360.status import dropped_summary, source_status, table_counts
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        cfg = ws.config
        counts = table_counts(ws).items()
        source_columns = ["source", "batches", "read", "loaded", "quarantined", "duplicates", "last batch"]
        sources = [
            (s.source, s.batches, s.rows_read, s.rows_loaded, s.rows_quarantined, s.rows_duplicate, s.last_batch_at)
            for s in source_status(ws)
        ]
        drop_columns = ["source", "kind", "dropped", "for example"]
        dropped = [(d["source"], d["kind"], d["dropped"], d["example"]) for d in dropped_summary(ws)]
    if fmt is Format.json:
        emit_json({"workspace": cfg.workspace.name, "root": ws.root, "engine": cfg.engine.kind,
                   "tables": records(["table", "rows"], counts), "sources": records(source_columns, sources),
                   "dropped_identifiers": records(drop_columns, dropped)})
        return
    out.print(f"[bold]{cfg.workspace.name}[/] at {ws.root} — engine {cfg.engine.kind}")
    out.print(table("Tables", ["table", "rows"], counts))
    out.print(table("Sources", source_columns, [(*s[:-1], s[-1] or "never") for s in sources]))
    if dropped:
        out.print(table("Identifiers dropped at ingest (their rows were loaded)", drop_columns, dropped))


def quarantine(
    workspace: WorkspaceOpt = Path("."),
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    fmt: FormatOpt = Format.table,
    dropped: Annotated[bool, typer.Option("--dropped", help="Show the malformed identifiers dropped from loaded rows instead.")] = False,
) -> None:
    """Show rejected input rows with every reason they were rejected."""
    from cx360.status import dropped_rows, quarantine_rows
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        if source:
            ws.config.source(source)  # an unknown name is an error, not an empty list
        if dropped:
            drops = dropped_rows(ws, source=source, limit=limit)
        else:
            rows = quarantine_rows(ws, source=source, limit=limit)
        if drops if dropped else rows:  # raw input rows and identifier values are personal data
            from cx360.api.audit import record_cli

            record_cli(ws.root, "quarantine", None, ["dropped_identifiers.value" if dropped else "quarantine.raw"])
    if dropped:
        emit(fmt, "Identifiers dropped from loaded rows (newest first)", ["source", "row", "loaded as", "kind", "value", "reason"], [
            (d["source"], d["row_number"], f"{d['entity']}:{d['key']}", d["kind"], d["value"], d["reason"]) for d in drops
        ])
        return
    clip = None if fmt is Format.json else 120
    emit(fmt, "Quarantine (newest first)", ["source", "row", "reasons", "raw"], [
        (r["source"], r["row_number"], r["reasons"], r["raw"][:clip]) for r in rows
    ])

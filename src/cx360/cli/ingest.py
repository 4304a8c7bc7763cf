"""`cx360 ingest`: the pipeline's ingest stage, with progress per input."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit, ok

if TYPE_CHECKING:
    from cx360.sources.ingest import SourceReport


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)


def ingest(
    workspace: WorkspaceOpt = Path("."),
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="Only these sources (repeatable).")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Load every source into the canonical tables; bad rows go to quarantine with their reasons."""
    from cx360.cli.stages import finish, ingest_progress
    from cx360.pipeline import RunReport, run_stage
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        from cx360.stream.drain import connect_between_drains

        connect_between_drains(ws)  # a running server's drain holds the warehouse only for a moment
        if source:
            from cx360.stream.eventlog import sources

            collected = sources(ws.root)
            for name in source:
                if name not in collected:
                    ws.config.source(name)  # an unknown name is an error before anything runs
        with ingest_progress() as on_progress:
            result = run_stage(ws, "ingest", only=source, on_progress=on_progress)
    if result.report is not None:
        print_ingest_report(result.report, fmt)
    finish(RunReport([result], result.seconds), fmt, summary=False)


def print_ingest_report(reports: list[SourceReport], fmt: Format = Format.table) -> None:
    rows = [
        (
            r.source,
            r.inputs,
            r.unchanged,
            r.read,
            r.loaded,
            r.quarantined,
            r.duplicates,
            r.suppressed,
            ok(r.ok),
            r.identifiers_dropped,
            r.error,
        )
        for r in reports
    ]
    columns = [
        "source",
        "inputs",
        "unchanged",
        "read",
        "loaded",
        "quarantined",
        "duplicates",
        "suppressed",
        "status",
        "identifiers_dropped",
        "error",
    ]
    if fmt is Format.table:  # dropped identifiers and errors are printed below the table
        rows, columns = [r[:-2] for r in rows], columns[:-2]
    emit(fmt, "Ingest", columns, rows)

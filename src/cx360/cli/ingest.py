"""`cx360 ingest` and `cx360 run`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cx360.cli.output import Format, FormatOpt, emit, err, fail, ok, out
from cx360.cli.workspace import WorkspaceOpt

if TYPE_CHECKING:
    from cx360.sources.ingest import SourceReport
    from cx360.workspace import Workspace


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("run")(run)


def ingest(
    workspace: WorkspaceOpt = Path("."),
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="Only these sources (repeatable).")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Load every source into the canonical tables; bad rows go to quarantine with their reasons."""
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        reports = ingest_with_progress(ws, source, fmt)
    exit_on_failure(reports)


def run(workspace: WorkspaceOpt = Path(".")) -> None:
    """Run the batch pipeline: ingest every source, resolve identities into profiles, build their traits,
    and evaluate the segments."""
    from cx360.cli.identity import print_identity_report, run_resolve
    from cx360.cli.profile import print_profile_report, run_build
    from cx360.cli.segments import run_evaluate
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        reports = ingest_with_progress(ws, None)
        print_identity_report(run_resolve(ws))
        exit_on_failure(reports)
        if not ws.engine.scalar(ws.engine.table("profiles").count(), step="run: count profiles"):
            out.print("No profiles yet: nothing to describe or segment.")
            return
        print_profile_report(run_build(ws))
        run_evaluate(ws)


def ingest_with_progress(ws: Workspace, only: list[str] | None, fmt: Format = Format.table) -> list[SourceReport]:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from cx360.sources.ingest import ingest as run_ingest

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.fields[rows]:>12,} rows"),
                  TimeElapsedColumn(), console=err, transient=True) as progress:
        tasks: dict[str, int] = {}

        def on_progress(source: str, label: str, rows: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(f"{source}: {Path(label).name}", rows=0)
            progress.update(tasks[label], rows=rows)

        reports = run_ingest(ws, only, on_progress=on_progress)
    print_ingest_report(reports, fmt)
    return reports


def print_ingest_report(reports: list[SourceReport], fmt: Format = Format.table) -> None:
    rows = [(r.source, r.inputs, r.unchanged, r.read, r.loaded, r.quarantined, r.duplicates,
             ok(r.ok), r.identifiers_dropped, r.error) for r in reports]
    columns = ["source", "inputs", "unchanged", "read", "loaded", "quarantined", "duplicates", "status", "identifiers_dropped", "error"]
    if fmt is Format.table:  # dropped identifiers and errors are printed below the table
        rows, columns = [r[:-2] for r in rows], columns[:-2]
    emit(fmt, "Ingest", columns, rows)


def exit_on_failure(reports: list[SourceReport]) -> None:
    failed = [r for r in reports if not r.ok]
    for r in failed:
        fail(f"{r.source}: {r.error}")
    if failed:
        raise typer.Exit(1)
    quarantined = sum(r.quarantined for r in reports)
    if quarantined:
        out.print(f"{quarantined:,} rows quarantined: see them with [bold]cx360 quarantine[/].")
    dropped = sum(r.identifiers_dropped for r in reports)
    if dropped:
        out.print(f"{dropped:,} malformed identifiers dropped from rows that were loaded: "
                  "see them with [bold]cx360 quarantine --dropped[/].")

"""`cx360 privacy retain`: personal data kept only as long as the workspace says."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit_json, out, table

app = typer.Typer(help="Privacy: retention of what cx360 holds.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="privacy")


@app.command("retain")
def retain_cmd(
    workspace: WorkspaceOpt = Path("."),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be removed; remove nothing.")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Delete the rows older than [retention] in cx360.toml allows, rule by rule (`cx360 run` does it
    right after ingest); the tables built from them follow on the next `cx360 run`."""
    from cx360.cli.stages import run_one
    from cx360.errors import ConfigError
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        result = run_one(ws, "retention", dry_run=dry_run)
    if result.status == "skipped":
        raise ConfigError(
            f'{result.error}: declare how long to keep rows, e.g. [retention] events.web = "13 months", '
            'quarantine = "90 days"'
        )
    print_retention_report(result.report, fmt)


def print_retention_report(report, fmt: Format = Format.table) -> None:
    if fmt is Format.json:
        emit_json(report.as_dict())
        return
    verb = "would remove" if report.dry_run else "removed"
    out.print(
        table(
            "Retention" + (" (dry run)" if report.dry_run else ""),
            ["rule", "keep", "older than", verb],
            [
                (r.key, r.keep, r.cutoff.isoformat(sep=" ", timespec="seconds"), f"{r.removed} {r.unit}")
                for r in report.rules
            ],
        )
    )
    for w in report.warnings:
        out.print(f"[yellow]{w}[/]")

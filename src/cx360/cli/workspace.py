"""`cx360 init`, `cx360 status`, `cx360 quarantine`."""

from __future__ import annotations

import csv
import enum
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit_json, err, out, records, table, use_format

config_app = typer.Typer(help="The workspace file, cx360.toml.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("status")(status)
    app.command("quarantine")(quarantine)
    app.add_typer(config_app, name="config")


@config_app.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of cx360.toml, for editors (e.g. Even Better TOML's `schema` setting)."""
    from cx360.config import Config

    schema = Config.model_json_schema(mode="validation")
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "cx360.toml",
        **{k: v for k, v in schema.items() if k != "title"},
    }
    emit_json(schema)


def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the workspace in.")],
    name: Annotated[str | None, typer.Option(help="Workspace name (default: the folder's name).")] = None,
    region: Annotated[str, typer.Option(help="Country for phone numbers without +country code.")] = "US",
    force: Annotated[bool, typer.Option(help="Overwrite an existing cx360.toml.")] = False,
) -> None:
    """Create a workspace with a commented cx360.toml."""
    from cx360.workspace import init_workspace

    path = init_workspace(directory, name=name, region=region.upper(), force=force)
    out.print(
        f"Created {escape(str(path))}. Add {escape('[[sources]]')} to it, then run "
        f"[bold]cx360 ingest -w {escape(str(directory))}[/]."
    )


def status(workspace: WorkspaceOpt = Path("."), fmt: FormatOpt = Format.table) -> None:
    """Show what the workspace holds: table sizes, per source what was ingested, the identifiers dropped
    at ingest, and which tables are stale (built from inputs that have changed since) and why."""
    from cx360.pipeline import table_states
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
        states = table_states(ws)
    state_columns = ["table", "stage", "state", "version", "written", "as of", "why"]
    freshness = [
        (
            t.table,
            t.stage,
            t.state,
            t.version.version if t.version else None,
            t.version.written_at if t.version else None,
            t.version.as_of if t.version else None,
            "; ".join(t.why) or None,
        )
        for t in states
    ]
    if fmt is Format.json:
        emit_json(
            {
                "workspace": cfg.workspace.name,
                "root": ws.root,
                "engine": cfg.engine.kind,
                "tables": records(["table", "rows"], counts),
                "sources": records(source_columns, sources),
                "dropped_identifiers": records(drop_columns, dropped),
                "freshness": records(state_columns, freshness),
            }
        )
        return
    out.print(f"[bold]{cfg.workspace.name}[/] at {ws.root} — engine {cfg.engine.kind}")
    out.print(table("Tables", ["table", "rows"], counts))
    out.print(table("Sources", source_columns, [(*s[:-1], s[-1] or "never") for s in sources]))
    if dropped:
        out.print(table("Identifiers dropped at ingest (their rows were loaded)", drop_columns, dropped))
    out.print(table("Freshness", state_columns, [(*row[:2], _state(row[2]), *row[3:]) for row in freshness]))
    stale = [t for t in states if t.state == "stale"]
    if stale:
        stages = list(dict.fromkeys(t.stage for t in stale))
        out.print(
            f"{len(stale)} stale table(s): run [bold]cx360 run --select {stages[0]}+ -w {workspace}[/] "
            "to rebuild them from what the workspace holds now."
        )


def _state(state: str) -> Text:
    return Text(state, style={"fresh": "green", "stale": "bold yellow"}.get(state, "dim"))


class ExportFormat(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _use_export_format(fmt: ExportFormat) -> ExportFormat:
    use_format(Format.table if fmt is ExportFormat.table else Format.json)  # stdout holds only the document
    return fmt


def quarantine(
    workspace: WorkspaceOpt = Path("."),
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    limit: Annotated[
        int | None, typer.Option(help="Rows to show (default: 20 in a table, all in json or csv).")
    ] = None,
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="table for people; json or csv for scripts (the whole raw row, on stdout).",
            callback=_use_export_format,
            case_sensitive=False,
        ),
    ] = ExportFormat.table,
    replay: Annotated[
        bool,
        typer.Option(
            "--replay",
            help="First run the rows still failing through the source's current mapping (after a fix "
            "to cx360.toml), loading those that now pass.",
        ),
    ] = False,
    dropped: Annotated[
        bool, typer.Option("--dropped", help="Show the malformed identifiers dropped from loaded rows instead.")
    ] = False,
) -> None:
    """Show the input rows still failing now, each once, with every reason they were rejected."""
    from cx360.cli.ingest import print_ingest_report
    from cx360.sources.replay import replay as run_replay
    from cx360.status import dropped_rows, quarantine_counts, quarantine_rows
    from cx360.workspace import Workspace

    if limit is None and fmt is ExportFormat.table:
        limit = 20
    with Workspace(workspace) as ws:
        if source:
            ws.config.source(source)  # an unknown name is an error, not an empty list
        if replay:
            reports = run_replay(ws, [source] if source else None)
            if fmt is ExportFormat.table:
                print_ingest_report(reports)
            else:
                for r in reports:
                    err.print(
                        f"replay {r.source}: read {r.read:,}, loaded {r.loaded:,}, still failing "
                        f"{r.quarantined:,}, duplicates {r.duplicates:,}"
                    )
        if dropped:
            drops = dropped_rows(ws, source=source, limit=limit)
        else:
            rows = quarantine_rows(ws, source=source, limit=limit)
            counts = quarantine_counts(ws, source)
        if drops if dropped else rows:  # raw input rows and identifier values are personal data
            from cx360.api.audit import record_cli

            record_cli(ws.root, "quarantine", None, ["dropped_identifiers.value" if dropped else "quarantine.raw"])
    if dropped:
        _print(
            fmt,
            "Identifiers dropped from loaded rows (newest first)",
            ["source", "row", "loaded as", "kind", "value", "reason"],
            [
                (d["source"], d["row_number"], f"{d['entity']}:{d['key']}", d["kind"], d["value"], d["reason"])
                for d in drops
            ],
        )
        return
    total = sum(counts.values())
    shown = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())) or "none"
    columns = ["source", "input", "row", "reasons", "raw"]
    values = [(r["source"], r["input"], r["row_number"], r["reasons"], r["raw"]) for r in rows]
    if fmt is ExportFormat.table:
        columns, values = ["source", "row", "reasons", "raw"], [(v[0], v[2], v[3], v[4][:120]) for v in values]
    _print(fmt, f"Quarantine: {total:,} rows still failing ({shown}); newest first", columns, values)


def _print(fmt: ExportFormat, title: str, columns: list[str], values: list[tuple]) -> None:
    if fmt is ExportFormat.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(values)
        sys.stdout.flush()
    elif fmt is ExportFormat.json:
        emit_json(records(columns, values))
    else:
        out.print(table(title, columns, values))

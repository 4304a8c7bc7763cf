"""`cx360 privacy retain|erase|export`: personal data kept only as long as the workspace says, erasure
that leaves no trace, and subject access."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit_json, out, table

app = typer.Typer(
    help="Privacy: retention of what cx360 holds, erasure of a person from every store, subject access.",
    no_args_is_help=True,
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="privacy")


@app.command("retain")
def retain_cmd(
    workspace: WorkspaceOpt = Path("."),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be removed; remove nothing.")] = False,
    compact: Annotated[
        bool | None,
        typer.Option(
            "--compact/--no-compact",
            help="Rewrite the DuckDB file after rows were removed, so their bytes are gone from it "
            "(default: [retention] compact).",
        ),
    ] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Delete the rows older than [retention] in cx360.toml allows, rule by rule (`cx360 run` does it
    right after ingest); the tables built from them follow on the next `cx360 run`."""
    from cx360.cli.stages import run_one
    from cx360.errors import ConfigError
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        result = run_one(ws, "retention", dry_run=dry_run, compact=compact)
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
    if report.compacted:
        out.print("The warehouse file was rewritten: the removed rows' bytes are gone from it.")
    for w in report.warnings:
        out.print(f"[yellow]{w}[/]")


@app.command("erase")
def erase_cmd(
    identifier: Annotated[
        str | None,
        typer.Argument(help="E-mail, phone, customer number, any identifier, a profile id or record:SOURCE:ID."),
    ] = None,
    workspace: WorkspaceOpt = Path("."),
    reason: Annotated[
        str | None, typer.Option(help="Why (the request, the legal ground); kept in the receipt.")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Only complete an interrupted erasure.")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Erase one person from every store of the workspace, physically, and suppress them so that no
    later ingest brings them back; write the erasure receipt with its verification scan."""
    from cx360.erasure.erase import erase
    from cx360.erasure.erase import resume as resume_pending
    from cx360.errors import ConfigError
    from cx360.workspace import Workspace

    root = Workspace(workspace, erasing=True).root
    if resume or identifier is None:
        if identifier is not None or not resume:
            raise ConfigError("give the IDENTIFIER to erase and --reason, or --resume alone")
        receipts = resume_pending(root)
        if fmt is Format.json:
            emit_json(receipts)
        elif not receipts:
            out.print("No interrupted erasure: nothing to complete.")
        for r in receipts if fmt is Format.table else []:
            print_receipt(r)
        return
    if not reason or not reason.strip():
        raise ConfigError("--reason: say why the person is erased (the request, the legal ground)")
    receipt = erase(root, identifier, reason.strip())
    if fmt is Format.json:
        emit_json(receipt)
    else:
        print_receipt(receipt)
    if receipt["verification"]["hits"]:
        raise typer.Exit(1)


def print_receipt(r: dict) -> None:
    s = r["subject"]
    out.print(
        f"Erasure [bold]{r['erasure_id']}[/]: {s['profiles']} profile(s), {s['records']} record(s), "
        f"{sum(s['identifiers'].values())} identifier(s), {s['names']} name form(s)."
    )
    if r.get("note"):
        out.print(r["note"])
    if r.get("interrupted"):
        out.print(f"It was interrupted at step {r['interrupted']['at_step']!r} and completed by a later run.")
    warehouse = next(x for x in r["stores"] if x["store"] == "warehouse")
    rows = [(t, n, warehouse["rows_redacted"].get(t, 0)) for t, n in sorted(warehouse["rows_removed"].items()) if n]
    rows += [(t, 0, n) for t, n in sorted(warehouse["rows_redacted"].items()) if t not in warehouse["rows_removed"]]
    out.print(table("Warehouse", ["table", "rows removed", "rows redacted"], rows))
    out.print(table("Other stores", ["store or file", "result"], sorted(r["files"].items())))
    v = r["verification"]
    out.print(
        f"Verification scan: {v['terms']} values in {v['files_scanned']} files ({v['bytes_scanned']:,} bytes, "
        f"{v['tables_scanned']} tables): [bold]{v['hits']} hits[/]."
    )
    for hit in v["where"]:
        out.print(f"  [red]hit[/] {hit['what']} in {hit['file']} ({hit['where']}, store {hit['store']})")
    if r["user_files_holding_the_person"]:
        out.print(
            table(
                "Your raw inputs that still hold the person (cx360 does not change them)",
                ["file", "hits"],
                sorted(r["user_files_holding_the_person"].items()),
            )
        )


@app.command("export")
def export_cmd(
    identifier: Annotated[str, typer.Argument(help="E-mail, phone, any identifier, a profile id or record:SOURCE:ID.")],
    workspace: WorkspaceOpt = Path("."),
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for subject-access.json and .csv.")] = Path(
        "subject-access"
    ),
    fmt: FormatOpt = Format.table,
) -> None:
    """Subject access: write everything cx360 holds on one person, with the source, time and purpose
    of each item, as JSON and CSV (the export is audited)."""
    from cx360.erasure.export import export
    from cx360.workspace import Workspace

    summary = export(Workspace(workspace).root, identifier, output)
    if fmt is Format.json:
        emit_json(summary)
        return
    out.print(table("Subject access export", ["table", "items"], sorted(summary["tables"].items())))
    out.print(f"{summary['items']:,} items written to {', '.join(summary['files'])}")

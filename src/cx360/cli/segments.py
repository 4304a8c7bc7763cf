"""`cx360 segments evaluate|list|members|history|export|sync`: declared segments, RFM cells, clusters."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit_json, err, fail, out, records, table

app = typer.Typer(
    help="Segments: declared audiences, RFM cells, behavioural clusters, digital archetypes.", no_args_is_help=True
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="segments")


@app.command("evaluate")
def evaluate_cmd(workspace: WorkspaceOpt = Path("."), fmt: FormatOpt = Format.table) -> None:
    """Score archetypes and evaluate every segment on the current profiles; record sizes and who entered
    or left."""
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        run_evaluate(ws, fmt)


def run_evaluate(ws, fmt: Format = Format.table) -> None:
    """The archetypes and segments stages; print the summary, and exit 1 when a segment failed."""
    from cx360.cli.stages import run_one

    how = run_one(ws, "archetypes").report
    if fmt is not Format.json:
        out.print(f"archetypes: {how}")
    results = run_one(ws, "segments").report
    print_segment_results(results, fmt)
    failed = [r for r in results if r.status != "ok"]
    for r in failed:
        fail(f"failed: {r.error}")
    if failed:
        raise typer.Exit(1)


def print_segment_results(results, fmt: Format = Format.table) -> None:
    if fmt is Format.json:
        emit_json([dataclasses.asdict(r) for r in results])
        return
    out.print(
        table(
            "Segments",
            ["segment", "kind", "size", "entered", "left", "status"],
            [(r.name, r.kind, r.size, r.entered, r.exited, _status(r.status)) for r in results],
        )
    )


@app.command("list")
def list_cmd(workspace: WorkspaceOpt = Path("."), fmt: FormatOpt = Format.table) -> None:
    """Each segment's size, last evaluation and freshness (stale once profiles are rebuilt)."""
    from cx360.segments.evaluate import listing
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        rows = listing(ws)
    bad = [r for r in rows if r["status"] != "ok"]
    if fmt is Format.json:
        emit_json(rows)
        if bad:
            raise typer.Exit(1)
        return
    out.print(
        table(
            "Segments",
            ["segment", "kind", "size", "evaluated", "as of", "freshness", "description"],
            [
                (
                    r["name"],
                    r["kind"],
                    r["size"],
                    _when(r["evaluated_at"]),
                    _when(r["as_of"]),
                    _fresh(r),
                    r["description"][:70],
                )
                for r in rows
            ],
        )
    )
    for r in bad:
        fail(f"segment '{r['name']}': {r['status']}" + (f": {r['error']}" if r["error"] else ""))
    stale = sum(1 for r in rows if r["status"] == "ok" and not r["fresh"])
    out.print(
        table(
            "Summary",
            ["what", "count"],
            [
                ("segments", len(rows)),
                ("fresh", len(rows) - stale - len(bad)),
                ("stale", stale),
                ("failed or never evaluated", len(bad)),
            ],
        )
    )
    if bad:
        raise typer.Exit(1)


def _require_evaluated(engine, name: str) -> None:
    from cx360.errors import NotFoundError

    seg = engine.table("segments")
    known = [r["name"] for r in engine.to_arrow(seg.select("name"), step="segments: names").to_pylist()]
    if name not in known:
        raise NotFoundError(f"no segment named '{name}'; evaluated segments: {', '.join(sorted(known)) or 'none'}")


@app.command("members")
def members_cmd(
    name: Annotated[str, typer.Argument(help="Segment name.")],
    workspace: WorkspaceOpt = Path("."),
    history: Annotated[bool, typer.Option(help="Include past members (with when they left).")] = False,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    fmt: FormatOpt = Format.table,
) -> None:
    """Who is in a segment, since when (and with --history, who left and when)."""
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        engine = ws.engine
        _require_evaluated(engine, name)
        m = engine.table("segment_members")
        m = m.filter(m.segment == name)
        if not history:
            m = m.filter(m.exited_at.isnull())
        total = engine.scalar(m.count(), step="segments: count members")
        rows = engine.to_arrow(
            m.order_by(["entered_at", "profile_id"]).limit(limit), step="segments: members"
        ).to_pylist()
        if rows:
            from cx360.api.audit import record_cli

            record_cli(ws.root, "segments members", None, [f"segment_members.{name}"])
    member_rows = [(r["profile_id"], _when(r["entered_at"]), _when(r["exited_at"]) or None) for r in rows]
    if fmt is Format.json:
        emit_json(
            {
                "segment": name,
                "rows": total,
                "shown": len(rows),
                "members": records(["profile", "entered", "left"], member_rows),
            }
        )
        return
    out.print(table(f"Segment {name}", ["profile", "entered", "left"], member_rows))
    out.print(table("Summary", ["what", "count"], [("rows", total), ("shown", len(rows))]))


@app.command("history")
def history_cmd(
    name: Annotated[str, typer.Argument(help="Segment name.")],
    workspace: WorkspaceOpt = Path("."),
    fmt: FormatOpt = Format.table,
) -> None:
    """The segment's size after each evaluation that changed it, with who entered and who left."""
    from cx360.cli.output import emit
    from cx360.segments.history import sizes
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        engine = ws.engine
        _require_evaluated(engine, name)
        rows = engine.to_arrow(sizes(engine, name), step=f"segment '{name}': sizes").to_pylist()
    emit(
        fmt,
        f"Segment {name} over time",
        ["as of", "size", "entered", "left"],
        [(_when(r["as_of"]), r["size"], r["entered"], r["left"]) for r in rows],
    )


class FileFormat(enum.StrEnum):
    csv = "csv"
    parquet = "parquet"


@app.command("export")
def export_cmd(
    name: Annotated[str, typer.Argument(help="Segment name.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    workspace: WorkspaceOpt = Path("."),
    file_format: Annotated[
        FileFormat | None, typer.Option("--format", help="csv or parquet (default: from the file's suffix, else csv).")
    ] = None,
    hashed: Annotated[
        bool, typer.Option(help="SHA-256 of the normalised identifiers, as customer-match uploads take them.")
    ] = False,
    purpose: Annotated[
        str | None, typer.Option(help="What the audience is for (the segment's own purpose when it declares one).")
    ] = None,
    channel: Annotated[str | None, typer.Option(help="The channel, for a purpose consented per channel.")] = None,
) -> None:
    """Write the segment's current members, one row each, with the identifiers the purpose allows; members
    whose consent does not allow it are withheld. A failed or stale segment is refused."""
    from cx360.api.audit import record_cli
    from cx360.segments.export import audience, write
    from cx360.workspace import Workspace

    fmt = (file_format or (FileFormat.parquet if output.suffix == ".parquet" else FileFormat.csv)).value
    with Workspace(workspace) as ws:
        aud = audience(ws, name, purpose=purpose, channel=channel, hashed=hashed)
        record_cli(ws.root, "segments export", None, [f"segment_members.{name}", *aud.identifiers])
        write(aud, output, fmt)
    what = aud.purpose + (f" by {aud.channel}" if aud.channel else "")
    err.print(
        f"wrote {aud.members.num_rows:,} members of '{name}' to {output} ({fmt}; for {what}; "
        f"identifiers: {', '.join(aud.identifiers) or 'none'}); {aud.withheld:,} withheld by consent"
    )


@app.command("sync")
def sync_cmd(
    name: Annotated[str, typer.Argument(help="Segment name.")],
    table_name: Annotated[str, typer.Option("--table", help="Destination table (created on the first sync).")],
    url_env: Annotated[
        str, typer.Option(help="Environment variable holding the destination's SQLAlchemy URL.")
    ] = "CX360_DESTINATION_URL",
    workspace: WorkspaceOpt = Path("."),
    hashed: Annotated[
        bool, typer.Option(help="SHA-256 of the normalised identifiers instead of their values.")
    ] = False,
    purpose: Annotated[str | None, typer.Option(help="What the audience is for (as for export).")] = None,
    channel: Annotated[str | None, typer.Option(help="The channel, for a purpose consented per channel.")] = None,
    force: Annotated[bool, typer.Option(help="Rewrite a table that was changed by hand.")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Bring a PostgreSQL table to the segment's current members: add who joined, remove who left; a table
    changed by hand since the last sync is detected and left alone."""
    import os

    from cx360.api.audit import record_cli
    from cx360.errors import ConfigError
    from cx360.segments.destination import sync
    from cx360.segments.export import audience
    from cx360.workspace import Workspace

    url = os.environ.get(url_env)
    if not url:
        raise ConfigError(f"set {url_env} to the destination's URL (postgresql+psycopg://user@host/db)")
    with Workspace(workspace) as ws:
        aud = audience(ws, name, purpose=purpose, channel=channel, hashed=hashed)
        record_cli(ws.root, "segments sync", None, [f"segment_members.{name}", *aud.identifiers])
        report = sync(ws, aud, url, table_name, force=force)
    if fmt is Format.json:
        emit_json(dataclasses.asdict(report))
        return
    out.print(
        table(
            f"Synced {name} to {table_name}",
            ["what", "count"],
            [
                ("added", report.added),
                ("removed", report.removed),
                ("updated", report.updated),
                ("rows", report.rows),
                ("withheld by consent", report.withheld),
            ],
        )
    )


def _status(status: str) -> Text:
    return Text(status, style="green" if status == "ok" else "bold red")


def _fresh(r: dict) -> Text:
    if r["status"] != "ok":
        return Text(r["status"], style="bold red")
    return Text("fresh", style="green") if r["fresh"] else Text("stale", style="yellow")


def _when(value: dt.datetime | None) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if value else ""

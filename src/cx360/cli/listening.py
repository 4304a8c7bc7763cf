"""`cx360 listening build|show|prospects|export`: the watch-list's mentions with their tone over time,
post authors who are not customers, and high-intent mentions out for the CRM."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit_json, err, out, table

app = typer.Typer(
    help="Social listening: brands and keywords in posts and reviews, with their tone.", no_args_is_help=True
)
DATES = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="listening")


class Every(enum.StrEnum):
    day = "day"
    week = "week"
    month = "month"


class FileFormat(enum.StrEnum):
    csv = "csv"
    parquet = "parquet"


@app.command("build")
def build_cmd(workspace: WorkspaceOpt = Path("."), fmt: FormatOpt = Format.table) -> None:
    """Match every post against the watch-list and rebuild mentions and prospects (`cx360 run` does it too)."""
    from cx360.cli.stages import run_one
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        result = run_one(ws, "listening")
    b = result.report
    for w in result.warnings:
        err.print(f"[yellow]warning[/]: {w}")
    if fmt is Format.json:
        emit_json(asdict(b))
        return
    print_built(b)


def print_built(b) -> None:
    out.print(f"listening: {b.posts:,} posts, {b.mentions:,} mentions of the watch-list, {b.prospects:,} prospects")


@app.command("show")
def show_cmd(
    workspace: WorkspaceOpt = Path("."),
    term: Annotated[str | None, typer.Option(help="One term of the watch-list; default: every term.")] = None,
    every: Annotated[Every, typer.Option(help="The period of each row.")] = Every.month,
    since: Annotated[dt.datetime | None, typer.Option(formats=DATES, help="First day (UTC).")] = None,
    until: Annotated[dt.datetime | None, typer.Option(formats=DATES, help="Day after the last (UTC).")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Mentions per period and term: tone (positive, neutral, negative, net), customers and prospects, intent."""
    from cx360.listening.service import trend
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        t = trend(ws, term, every.value, since, until)
    if not t.totals:
        err.print(f"[yellow]note[/]: no mentions of {', '.join(t.terms) or 'the watch-list (it is empty)'}")
    if fmt is Format.json:
        emit_json(t.as_dict())
        return
    cols = ["mentions", "positive", "neutral", "negative", "net tone", "customers", "prospects", "intent"]

    def cells(r):
        return (
            r["mentions"],
            r["positive"],
            r["neutral"],
            r["negative"],
            r["net_tone"],
            r["customers"],
            r["prospects"],
            r["intent"],
        )

    out.print(table("Mentions", ["term", *cols], [(r["term"], *cells(r)) for r in t.totals]))
    out.print(
        table(f"Per {t.every}", [t.every, "term", *cols], [(r["period"], r["term"], *cells(r)) for r in t.periods])
    )


@app.command("prospects")
def prospects_cmd(
    workspace: WorkspaceOpt = Path("."),
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    fmt: FormatOpt = Format.table,
) -> None:
    """Post authors who are not customers, the most intent-laden first."""
    from cx360.api.audit import record_cli
    from cx360.listening.service import prospects
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        total, rows = prospects(ws, limit)
        if rows:
            record_cli(ws.root, "listening prospects", None, ["prospects.social_handle"])
    if fmt is Format.json:
        emit_json({"prospects": total, "shown": len(rows), "rows": rows})
        return
    cols = ["social_handle", "platform", "posts", "mentions", "last_at", "share_negative", "intent", "intent_product"]
    out.print(table(f"Prospects ({total:,})", cols, [[r[c] for c in cols] for r in rows]))


@app.command("export")
def export_cmd(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    workspace: WorkspaceOpt = Path("."),
    file_format: Annotated[
        FileFormat | None, typer.Option("--format", help="csv or parquet (default: from the file's suffix, else csv).")
    ] = None,
    min_intent: Annotated[
        float | None,
        typer.Option(help="Purchase intent from which a mention is a lead (default: [listening].high_intent)."),
    ] = None,
    purpose: Annotated[
        str | None, typer.Option(help="What the leads are for (default: [listening].export_purpose).")
    ] = None,
    channel: Annotated[str | None, typer.Option(help="The channel, for a purpose consented per channel.")] = None,
) -> None:
    """Write the high-intent posts for the CRM, one row each with the terms they mention: customers whose
    consent allows the purpose, prospects when the purpose is opt-out; the handle only when the purpose's
    identifiers allow it."""
    from cx360.api.audit import record_cli
    from cx360.filemodes import write_private_table
    from cx360.listening.service import leads
    from cx360.workspace import Workspace

    fmt = (file_format or (FileFormat.parquet if output.suffix == ".parquet" else FileFormat.csv)).value
    with Workspace(workspace) as ws:
        got = leads(ws, min_intent=min_intent, purpose=purpose, channel=channel)
        record_cli(ws.root, "listening export", None, ["mentions", *got.identifiers])
        write_private_table(got.rows, output, fmt)
    err.print(
        f"wrote {got.rows.num_rows:,} posts with intent >= {got.min_intent:g} to {output} "
        f"({fmt}; for {got.purpose}; "
        f"identifiers: {', '.join(got.identifiers) or 'none'}); {got.withheld:,} withheld by consent"
    )

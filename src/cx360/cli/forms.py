"""`cx360 forms show`: starts, abandonment per field, submit rate, and why people left each form."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cx360.cli.funnels import duration as _dur
from cx360.cli.funnels import percent as _pct
from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit_json, err, out, table

app = typer.Typer(help="Forms: who started, where they left, who submitted.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="forms")


@app.command("show")
def show_cmd(
    form: Annotated[str | None, typer.Argument(help="One form (its `form` property); default: every form.")] = None,
    workspace: WorkspaceOpt = Path("."),
    fmt: FormatOpt = Format.table,
) -> None:
    """Per form: starts, submissions, abandonments and their fields, time to abandonment, the last page
    seen and the errors met before leaving."""
    from cx360.funnels.service import form_report
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        reports = form_report(ws, form)
    if not reports:
        err.print("[yellow]note[/]: no form_started events")
    if fmt is Format.json:
        emit_json([r.as_dict() for r in reports])
        return
    out.print(
        table(
            "Forms",
            ["form", "starts", "submitted", "abandoned", "open", "submit rate", "median to abandon"],
            [
                (
                    r.form,
                    r.starts,
                    r.submitted,
                    r.abandoned,
                    r.open,
                    _pct(r.submit_rate),
                    _dur(r.median_seconds_to_abandon),
                )
                for r in reports
            ],
        )
    )
    for r in (r for r in reports if r.fields):
        out.print(
            table(
                f"{r.form}: where they left",
                ["field", "abandoned", "share", "median to abandon"],
                [
                    (f["field"], f["abandoned"], _pct(f["share"]), _dur(f["median_seconds_to_abandon"]))
                    for f in r.fields
                ],
            )
        )
        if r.last_pages or r.errors:  # every abandonment has a field row, so a leaver is never skipped
            rows = [("last page", p["page"], p["abandoned"]) for p in r.last_pages[:10]]
            rows += [("error before leaving", e["error"], e["abandoned"]) for e in r.errors]
            out.print(table(f"{r.form}: why they left", ["what", "value", "abandoned"], rows))

"""`cx360 funnels list|show`: the funnels declared in cx360.toml, step by step."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit_json, err, out, table

app = typer.Typer(help="Funnels: ordered steps over events of every channel, within a window.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="funnels")


class Breakdown(enum.StrEnum):
    channel = "channel"
    segment = "segment"


@app.command("list")
def list_cmd(workspace: WorkspaceOpt = Path("."), fmt: FormatOpt = Format.table) -> None:
    """The funnels declared in cx360.toml."""
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        funnels = [f.model_dump() for f in ws.config.funnels]
    if fmt is Format.json:
        emit_json(funnels)
        return
    rows = [(f["name"], len(f["steps"]), f["within"], f["breakdown"] or "", f["description"]) for f in funnels]
    out.print(table("Funnels", ["funnel", "steps", "within", "breakdown", "description"], rows))


@app.command("show")
def show_cmd(
    name: Annotated[str, typer.Argument(help="Funnel name, as declared in [[funnels]].")],
    workspace: WorkspaceOpt = Path("."),
    by: Annotated[
        Breakdown | None, typer.Option("--by", help="Break each step down by the first step's channel or by segment.")
    ] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """How many people reached each step, the conversion from the step before, and the median time it took."""
    from cx360.funnels.service import funnel_report
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        report = funnel_report(ws, name, by.value if by else None)
    if report.steps[0].entered == 0:
        err.print(f"[yellow]note[/]: nobody did step 1 of funnel '{name}' ({report.steps[0].condition})")
    if fmt is Format.json:
        emit_json(report.as_dict())
        return
    out.print(_steps_table(f"Funnel {name} (within {report.within})", report.steps))
    for group, steps in report.groups.items():
        out.print(_steps_table(f"{report.breakdown}: {group}", steps))


def _steps_table(title: str, steps) -> object:
    rows = [
        (
            s.step,
            s.condition,
            s.entered,
            percent(s.conversion),
            duration(s.median_seconds_from_previous),
        )
        for s in steps
    ]
    return table(title, ["step", "condition", "entered", "conversion", "median time from previous"], rows)


def percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"

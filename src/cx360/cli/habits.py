"""`cx360 habits show`: how often people change their digital habits (their archetype), per period and
per person, and one person's archetypes and segments over time."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit_json, out, table

app = typer.Typer(help="Digital habits over time: archetype history and change rates.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="habits")


@app.command("show")
def show_cmd(
    workspace: WorkspaceOpt = Path("."),
    profile: Annotated[str | None, typer.Option(help="One person's history, by profile id.")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Change rates of archetype per period and per person; with --profile, one person's history."""
    from cx360.scoring.habits import habits_report, person_habits
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        if profile is not None:
            from cx360.api.audit import record_cli

            one = person_habits(ws, profile)
            record_cli(ws.root, "habits show", one.profile_id, ["archetype_history", "segment_members"])
        else:
            report = habits_report(ws)
    if profile is not None:
        if fmt is Format.json:
            emit_json(one.as_dict())
            return
        out.print(
            table(
                f"Archetypes of {one.profile_id} ({one.changes} change(s))",
                ["archetype", "from", "until"],
                [(r["archetype"], r["entered_at"], r["exited_at"]) for r in one.archetypes],
            )
        )
        out.print(
            table(
                "Segments",
                ["segment", "entered", "left"],
                [(r["segment"], r["entered_at"], r["exited_at"]) for r in one.segments],
            )
        )
        return
    if fmt is Format.json:
        emit_json(report.as_dict())
        return
    rate = "" if report.yearly_change_rate is None else f"; {report.yearly_change_rate:.2f} changes per person-year"
    out.print(
        table(
            f"Archetype changes per period ({report.changers:,} of {report.people:,} people changed{rate})",
            ["since", "until", "people", "changed", "rate"],
            [
                (p["since"], p["until"], p["people"], p["changed"], "" if p["rate"] is None else f"{p['rate']:.1%}")
                for p in report.periods
            ],
        )
    )
    out.print(table("Changes per person", ["changes", "people"], list(report.changes_per_person.items())))
    out.print(
        table(
            "Most common changes",
            ["from", "to", "changes"],
            [(t["from_archetype"], t["to_archetype"], t["changes"]) for t in report.transitions[:10]],
        )
    )

"""`cx360 decide`: the next best action for every profile; `cx360 decide send`: the sends that are due,
checked again against consent, as one file per channel for the campaign tools."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit_json, out, table

app = typer.Typer(help="Decisions: the next best offer, with its channel and hour.", invoke_without_command=True)

AsOfOpt = Annotated[
    str | None, typer.Option("--as-of", help="Decide as of this date or time (UTC); default: the profiles' as_of.")
]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="decide")


def _when(text: str | None, option: str) -> dt.datetime | None:
    from cx360.errors import ConfigError

    if text is None:
        return None
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected a date such as 2026-01-31 or a time 2026-01-31T09:00") from None


@app.callback()
def decide_cmd(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("."),
    as_of: AsOfOpt = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="CSV: profile_id, offer, channel, send_at, expected_value, propensity, reasons."
        ),
    ] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Decide the next best action for every profile into the `decisions` table (and --output)."""
    if ctx.invoked_subcommand is not None:
        return
    from cx360.decisions.decide import decide, export
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        report = decide(ws, as_of=_when(as_of, "--as-of"))
    if output is not None:
        export(report.frame).to_csv(output, index=False)
    if fmt is Format.json:
        emit_json(report.as_dict())
        return
    q = report.quality
    out.print(
        table(
            f"Decisions as of {report.as_of:%Y-%m-%d %H:%M}",
            ["what", "value"],
            [
                ("profiles", report.profiles),
                ("with an offer", report.decided),
                ("explored at random", report.explored),
                ("propensity AUC, held out", round(q.auc, 3)),
                ("log loss (base rate)", f"{q.log_loss:.4f} ({q.base_rate_log_loss:.4f})"),
                ("written to", str(output) if output else "the decisions table"),
            ],
        )
    )
    out.print(
        table(
            "Offers",
            ["offer", "eligible", "open", "chosen"],
            [(o, c["eligible"], c["open"], c["chosen"]) for o, c in report.by_offer.items()],
        )
    )
    out.print(
        table(
            "Ranked by",
            ["offer", "model", "held out", "took it anyway"],
            [(o, g["ranked_by"], g["controls"], g.get("converted", 0)) for o, g in report.uplift.items()],
        )
    )
    out.print(table("Held back", ["rule", "candidates"], sorted(report.suppressed.items())))
    for w in report.warnings:
        out.print(f"[yellow]warning[/]: {w}")


@app.command("send")
def send_cmd(
    workspace: WorkspaceOpt = Path("."),
    at: Annotated[str | None, typer.Option("--at", help="Send what is due by this time (UTC); default: now.")] = None,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for one CSV per channel.")] = Path("sends"),
    fmt: FormatOpt = Format.table,
) -> None:
    """Release the planned decisions due by --at: consent and open complaints are checked again, each send
    goes to its channel's file, and what may no longer be sent is marked suppressed with its rule."""
    from cx360.decisions.send import send
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        report = send(ws, at=_when(at, "--at"), out_dir=out_dir)
    if fmt is Format.json:
        emit_json(report)
        return
    out.print(
        table(
            "Sends",
            ["channel", "sent", "file"],
            [(c, n, str(out_dir / f"{c}.csv")) for c, n in sorted(report["sent"].items())],
        )
    )
    out.print(table("Suppressed at send time", ["rule", "decisions"], sorted(report["suppressed"].items())))

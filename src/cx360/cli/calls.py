"""`cx360 calls train|evaluate|outcomes`: the contact centre's call-reason forecast and its outcomes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit_json, err, out, table

app = typer.Typer(
    help="The contact centre: why customers call, where to route them, what happened next.", no_args_is_help=True
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="calls")


@app.command("train")
def train_cmd(workspace: WorkspaceOpt = Path("."), fmt: FormatOpt = Format.table) -> None:
    """Fit the call-reason forecast on every past call and save it to DIR/models/calls (the API routes
    with it); its card scores it on the last 20% of the calls, trained on the rest."""
    from cx360.calls import forecast
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        _, card = forecast.train(ws)
        unrouted = _unrouted(ws, card["held_out"]["reasons"])
    card["reasons_without_route"] = unrouted
    if fmt is Format.json:
        emit_json(card)
        return
    out.print(f"Trained on {card['calls']:,} calls; saved to {forecast.model_dir(ws)}")
    _print_scores(card["held_out"])
    _warn_unrouted(unrouted)


@app.command("evaluate")
def evaluate_cmd(
    since: Annotated[
        dt.datetime, typer.Option("--since", help="Score the calls from this date on, trained on the calls before it.")
    ],
    workspace: WorkspaceOpt = Path("."),
    fmt: FormatOpt = Format.table,
) -> None:
    """Top-1 and top-3 accuracy of the forecast on the calls since DATE, next to the most frequent reason
    and the person's last reason."""
    from cx360.calls import forecast
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        report = forecast.evaluate(ws, since)
        report["reasons_without_route"] = _unrouted(ws, report["reasons"])
    if fmt is Format.json:
        emit_json(report)
        return
    _print_scores(report)
    _warn_unrouted(report["reasons_without_route"])


@app.command("outcomes")
def outcomes_cmd(workspace: WorkspaceOpt = Path("."), fmt: FormatOpt = Format.table) -> None:
    """First-contact resolution and repeat-call rate per reason, and which queue led to fewer repeats."""
    from cx360.calls import history, outcomes
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        report = outcomes.summarise(history.calls(ws))
    if fmt is Format.json:
        emit_json(report)
        return
    out.print(
        table(
            f"Outcomes ({report['calls']:,} calls; FCR over the {report['observed']:,} with 7 days after them)",
            ["reason", "calls", "first-contact resolution", "repeat-call rate", "fewest repeats in queue"],
            [
                (
                    r,
                    m["calls"],
                    _pct(m["first_contact_resolution"]),
                    _pct(m["repeat_call_rate"]),
                    report["fewest_repeats"].get(r, ""),
                )
                for r, m in report["by_reason"].items()
            ]
            + [
                (
                    "(all)",
                    report["calls"],
                    _pct(report["first_contact_resolution"]),
                    _pct(report["repeat_call_rate"]),
                    "",
                )
            ],
        )
    )


def _unrouted(ws, reasons: list[str]) -> list[str]:
    from cx360.calls.routing import unrouted

    return unrouted(ws.config.calls, set(reasons))


def _warn_unrouted(reasons: list[str]) -> None:
    if reasons:
        err.print(
            f"[yellow]reason codes the routing table does not name[/]: {', '.join(reasons)} "
            "(add routes for them in [calls].routes of cx360.toml)"
        )


def _print_scores(report: dict) -> None:
    base = report["baselines"]
    out.print(
        table(
            f"Call-reason forecast on {report['test_calls']:,} calls since {report['since'][:10]} "
            f"(trained on {report['train_calls']:,} before)",
            ["predictor", "top-1", "top-3"],
            [
                ("forecast", _pct(report["model"]["top1"]), _pct(report["model"]["top3"])),
                ("most frequent reason", _pct(base["most_frequent"]["top1"]), _pct(base["most_frequent"]["top3"])),
                ("the person's last reason", _pct(base["last_reason"]["top1"]), _pct(base["last_reason"]["top3"])),
            ],
        )
    )
    if report["calls_without_reason"]:
        err.print(f"{report['calls_without_reason']:,} calls have no reason code: neither learned from nor scored")
    if report["unseen_in_training"]:
        only = ", ".join(report["unseen_in_training"])
        err.print(f"[yellow]reasons only in the scored period (the forecast cannot predict them)[/]: {only}")


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}%"

"""`cx360 visits places|show`: visitors of malls, branches and stores, per place and period."""

from __future__ import annotations

import datetime as dt
import enum
from pathlib import Path
from typing import Annotated

import typer

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit_json, err, out, table

app = typer.Typer(
    help="Visits: who comes to each place, how often, from where, how long, buying what.", no_args_is_help=True
)

DATES = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="visits")


class PurchasesBy(enum.StrEnum):
    category = "category"
    merchant = "merchant"


@app.command("places")
def places_cmd(workspace: WorkspaceOpt = Path("."), fmt: FormatOpt = Format.table) -> None:
    """The places that visits name."""
    from cx360.visits.service import places
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        names = places(ws)
    if fmt is Format.json:
        emit_json(names)
        return
    out.print(table("Places", ["place"], [(n,) for n in names]))


@app.command("show")
def show_cmd(
    workspace: WorkspaceOpt = Path("."),
    place: Annotated[
        str | None, typer.Option(help="One place (see `cx360 visits places`); default: every place.")
    ] = None,
    since: Annotated[
        dt.datetime | None, typer.Option(formats=DATES, help="First day (UTC); default: the first visit's.")
    ] = None,
    until: Annotated[
        dt.datetime | None,
        typer.Option(formats=DATES, help="Day after the period (UTC); default: after the last visit."),
    ] = None,
    by: Annotated[
        PurchasesBy, typer.Option("--purchases-by", help="Group purchases around visits by this.")
    ] = PurchasesBy.category,
    fmt: FormatOpt = Format.table,
) -> None:
    """Visitors by how often they come, where they live, how long they stay and what they buy around their
    visits; customers and non-customers (profiles no CRM record backs) apart."""
    from cx360.visits.service import visit_report
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        report = visit_report(ws, place, since, until, by.value)
    if report.visits == 0:
        err.print(
            f"[yellow]note[/]: no visits {_where(report)} from {report.since:%Y-%m-%d} to {report.until:%Y-%m-%d}"
        )
    for what, n in report.not_counted.items():
        if n:
            err.print(f"[yellow]note[/]: not counted: {n:,} {what.replace('_', ' ')}")
    if fmt is Format.json:
        emit_json(report.as_dict())
        return
    title = f"Visits {_where(report)}, {report.since:%Y-%m-%d} to {report.until:%Y-%m-%d}"
    out.print(
        table(
            title,
            ["what", "customers", "non-customers", "all"],
            [
                ("visitors", report.customers, report.non_customers, report.visitors),
                ("visits", report.visits - report.non_customer_visits, report.non_customer_visits, report.visits),
                *(
                    (
                        name.replace("_", "-") + " visitors",
                        c["customers"],
                        c["non_customers"],
                        c["customers"] + c["non_customers"],
                    )
                    for name, c in report.frequency.items()
                ),
            ],
        )
    )
    t = report.thresholds
    err.print(
        f"regular: at least {t['regular_min_visits']:g} visits ({t['regular_per_month']:g} per 30 days, at least 2)"
    )
    out.print(
        table(
            "Where visitors live",
            ["district", "visitors", "customers", "non-customers", "share"],
            [
                (r["district"], r["visitors"], r["customers"], r["non_customers"], f"{r['share']:.1%}")
                for r in report.catchment
            ],
        )
    )
    m = report.dwell["minutes"]
    out.print(
        table(
            f"How long they stayed (median {m['p50']} min, p10 {m['p10']}, p90 {m['p90']})",
            ["dwell", "visits"],
            [(b["bucket"], b["visits"]) for b in report.dwell["histogram"]],
        )
    )
    p = report.purchases
    out.print(
        table(
            f"Bought within {p['window_minutes']} min of a visit: {p['payments']:,} payments, {p['buyers']:,} buyers",
            [p["by"], "payments", "amount", "buyers"],
            [(r[p["by"]], r["payments"], f"{r['amount']:,.2f}", r["buyers"]) for r in p["rows"]],
        )
    )
    if report.places:
        out.print(
            table(
                "Per place",
                ["place", "visits", "visitors", "non-customers", "median dwell (min)"],
                [
                    (r["place"], r["visits"], r["visitors"], r["non_customers"], r["median_dwell_minutes"])
                    for r in report.places
                ],
            )
        )


def _where(report) -> str:
    return f"to {report.place}" if report.place else "to every place"

"""`cx360 clv FILE ...`: customer lifetime value from a transactions table, without a workspace."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from cx360.cli.output import Format, FormatOpt, emit_json, err, out, table
from cx360.cli.tables import DecimalOpt, DelimiterOpt, EncodingOpt, csv_options


class Unit(StrEnum):
    W = "W"
    D = "D"


def register(root: typer.Typer) -> None:
    root.command("clv")(clv_cmd)


def clv_cmd(
    file: Annotated[Path, typer.Argument(help="Transactions: CSV or Parquet, one row per purchase.")],
    customer: Annotated[str, typer.Option("--customer", help="Customer id column.")],
    date: Annotated[str, typer.Option("--date", help="Purchase date column (1997-01-31 or 19970131).")],
    amount: Annotated[str, typer.Option("--amount", help="Purchase amount column (>= 0).")],
    calibration_end: Annotated[
        str, typer.Option("--calibration-end", help="Last day the models learn from (YYYY-MM-DD).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV to write: one row per customer.")],
    holdout_end: Annotated[
        str | None,
        typer.Option("--holdout-end", help="Score purchases after calibration up to this day against the forecast."),
    ] = None,
    horizon_months: Annotated[int, typer.Option("--horizon-months", min=1, help="CLV horizon in months.")] = 12,
    discount_rate: Annotated[
        float, typer.Option("--discount-rate", min=0.0, max=0.99, help="Monthly discount rate.")
    ] = 0.01,
    unit: Annotated[
        Unit, typer.Option("--unit", help="Time unit of frequency/recency/T in the output: W (weeks) or D (days).")
    ] = Unit.W,
    fmt: FormatOpt = Format.table,
    delimiter: DelimiterOpt = None,
    decimal: DecimalOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Lifetime value per customer: BG/NBD (how often) x Gamma-Gamma (how much), discounted monthly."""
    from cx360.files import read_table
    from cx360.models.clv_report import clv_from_transactions

    tx = read_table(file, text_columns=(customer,), options=csv_options(delimiter, decimal, encoding))
    report = clv_from_transactions(
        tx,
        customer=customer,
        date=date,
        amount=amount,
        calibration_end=calibration_end,
        holdout_end=holdout_end,
        horizon_months=horizon_months,
        discount_rate=discount_rate,
        freq=unit.value,
    )
    report.scores.to_csv(output, index=False)
    for warning in report.warnings:
        err.print(Text("warning: ", style="bold yellow") + Text(warning))
    if fmt is Format.json:
        emit_json({**report.as_dict(), "output": str(output)})
        return
    b, g = report.bgnbd, report.gamma_gamma
    out.print(
        table(
            "Fitted parameters",
            ["model", "parameters", "log-likelihood"],
            [
                ("BG/NBD", f"r={b.r_:.4g} alpha={b.alpha_:.4g} a={b.a_:.4g} b={b.b_:.4g}", f"{b.log_likelihood_:.2f}"),
                ("Gamma-Gamma", f"p={g.p_:.4g} q={g.q_:.4g} gamma={g.gamma_:.4g}", f"{g.log_likelihood_:.2f}"),
            ],
        )
    )
    if report.holdout:
        out.print(
            table(
                "Holdout purchases per customer",
                ["forecast", "MAE", "RMSE", "total predicted", "total actual", "correlation"],
                [
                    (
                        name,
                        f"{m['mae']:.3f}",
                        f"{m['rmse']:.3f}",
                        f"{m['total_predicted']:.0f}",
                        f"{m['total_actual']:.0f}",
                        f"{m['correlation']:.3f}",
                    )
                    for name, m in report.holdout.items()
                ],
            )
        )
    s = report.scores
    out.print(
        table(
            "CLV",
            ["what", "value"],
            [
                ("customers", report.customers),
                ("repeat customers", report.repeat_customers),
                (f"expected purchases, {horizon_months} months", f"{s['expected_purchases'].sum():,.1f}"),
                (f"total CLV, {horizon_months} months", f"{s['clv'].sum():,.2f}"),
                ("median CLV", f"{s['clv'].median():,.2f}"),
                ("fit seconds", f"{report.seconds:.2f}"),
            ],
        )
    )
    out.print(f"Wrote {output}")

"""`cx360 churn ...`: train, score and evaluate a churn model on any labelled CSV / Parquet table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cx360.cli.output import Format, FormatOpt, emit, emit_json, out, table
from cx360.cli.tables import DecimalOpt, DelimiterOpt, EncodingOpt, csv_options

app = typer.Typer(
    help="Churn risk on a plain customer table: calibrated probability and reasons.", no_args_is_help=True
)
File = Annotated[Path, typer.Argument(help="CSV or Parquet table, one row per customer.")]
ModelDir = Annotated[Path, typer.Option("--model", "-m", help="Model directory (model + model card).")]
Label = Annotated[str, typer.Option("--label", help="Column that says whether the customer churned.")]
OptFile = Annotated[
    Path | None, typer.Argument(help="CSV or Parquet table, one row per customer (or use --workspace).")
]
OptModel = Annotated[
    Path | None,
    typer.Option(
        "--model", "-m", help="Model directory (model + model card); in a workspace, default DIR/models/churn."
    ),
]
WorkspaceDir = Annotated[
    Path | None, typer.Option("--workspace", "-w", help="Train / score on a workspace's profiles instead of a table.")
]
Positive = Annotated[
    str | None, typer.Option("--positive", help="The label value meaning churn (guessed for 1/yes/true/churn).")
]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="churn")


@app.command("train")
def train_cmd(
    file: OptFile = None,
    label: Annotated[str | None, typer.Option("--label", help="Column that says whether the customer churned.")] = None,
    model: OptModel = None,
    workspace: WorkspaceDir = None,
    horizon_days: Annotated[
        int, typer.Option("--horizon-days", min=7, help="Workspace: churn = no activity this many days after as_of.")
    ] = 90,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Workspace: the test snapshot date (needs horizon days of events after it); "
            "default: the latest such date.",
        ),
    ] = None,
    inactive_days: Annotated[
        int,
        typer.Option("--inactive-days", min=1, help="Workspace: gone = no activity in the last N days of the horizon."),
    ] = 30,
    id_column: Annotated[
        str | None, typer.Option("--id", help="Customer id column (kept out of the features).")
    ] = None,
    time: Annotated[
        str | None, typer.Option("--time", help="Date column: train on earlier rows, test on the latest 20%.")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Column to keep out of the features (repeatable).")
    ] = None,
    positive: Positive = None,
    seed: Annotated[int, typer.Option(help="Seed of the split and the boosting.")] = 0,
    fmt: FormatOpt = Format.table,
    delimiter: DelimiterOpt = None,
    decimal: DecimalOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Train on a labelled table, or on a workspace's point-in-time profiles (--workspace); report held-out
    quality next to a one-feature baseline; save the model and its model card."""
    from cx360.errors import ConfigError
    from cx360.files import read_table
    from cx360.models import churn_workflow as wf

    if workspace is not None:
        if file is not None or label is not None:
            raise ConfigError("give either a FILE with --label, or --workspace, not both")
        return _train_workspace(workspace, model, horizon_days, inactive_days, as_of, seed, fmt)
    if file is None or label is None or model is None:
        raise ConfigError("give a FILE, --label and --model (or --workspace DIR to train on a workspace's profiles)")
    df = read_table(file, text_columns=(id_column,), options=csv_options(delimiter, decimal, encoding))
    with out.status("Training the churn model..."):
        result = wf.train(
            df,
            label=label,
            id_column=id_column,
            time_column=time,
            exclude=tuple(exclude or ()),
            positive=positive,
            seed=seed,
            source=str(file),
        )
    wf.save(result, model)
    card = result.card
    if fmt is Format.json:
        emit_json({**card, "saved_to": str(model)})
        return
    for note in card["notes"]:
        out.print(f"[dim]note: {note}[/]")
    _print_report(card["held_out"], card["baseline"], card["selection"])
    s = card["split"]
    out.print(
        table(
            "Churn model",
            ["what", "value"],
            [
                ("rows", card["data"]["rows"]),
                ("churn rate", f"{card['data']['churn_rate']:.1%}"),
                ("split", s["kind"] + (f" (test from {s['test_from']})" if s["kind"] == "time" else "")),
                ("train / test rows", f"{s['train_rows']:,} / {s['test_rows']:,}"),
                ("features", len(card["features"])),
                ("learner", card["selection"]["learner"]),
                ("trees", s.get("trees", "-")),
                ("calibration", s["calibration"]),
                ("saved to", str(model)),
            ],
        )
    )


@app.command("score")
def score_cmd(
    file: OptFile = None,
    model: OptModel = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="CSV to write: id, churn_probability, reasons.")
    ] = None,
    top: Annotated[int, typer.Option("--top", min=0, max=10, help="Reasons per customer.")] = 3,
    workspace: WorkspaceDir = None,
    fmt: FormatOpt = Format.table,
    delimiter: DelimiterOpt = None,
    decimal: DecimalOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Score customers: calibrated churn probability and the top reasons for each. With --workspace, score
    the current profiles into the churn_scores table (churn_risk, churn_reasons), usable by segments."""
    from cx360.errors import ConfigError
    from cx360.files import read_table, require_file
    from cx360.models.churn import ChurnModel

    if workspace is not None:
        if file is not None:
            raise ConfigError("give either a FILE or --workspace, not both")
        return _score_workspace(workspace, model, fmt)
    if file is None or model is None or output is None:
        raise ConfigError("give a FILE, --model and --output (or --workspace DIR to score a workspace's profiles)")
    require_file(file)
    m = ChurnModel.load(model)
    df = read_table(file, text_columns=(m.id_column,), options=csv_options(delimiter, decimal, encoding))
    with out.status("Scoring..."):
        scored = m.score_table(df, top_k=top)
    scored.to_csv(output, index=False)
    for warning in m.extra_.get("warnings", []):
        out.print(f"[yellow]warning (from training): {warning}[/]")
    p = scored["churn_probability"]
    emit(
        fmt,
        "Churn scores",
        ["what", "value"],
        [
            ("rows", len(scored)),
            ("mean probability", round(float(p.mean()), 3) if len(p) else None),
            ("probability >= 0.5", int((p >= 0.5).sum())),
            ("written to", str(output)),
        ],
    )


@app.command("evaluate")
def evaluate_cmd(
    file: File,
    label: Label,
    model: ModelDir,
    positive: Positive = None,
    fmt: FormatOpt = Format.table,
    delimiter: DelimiterOpt = None,
    decimal: DecimalOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Quality of a saved model on a labelled table (new data), next to its baseline."""
    from cx360.files import read_table, require_file
    from cx360.models import churn_workflow as wf
    from cx360.models.churn import ChurnModel

    require_file(file)
    m = ChurnModel.load(model)
    df = read_table(file, text_columns=(m.id_column,), options=csv_options(delimiter, decimal, encoding))
    y, _ = wf.binary_label(df, label, positive or m.extra_.get("positive"))
    report = wf.evaluate(m, df, y)
    baseline = {"feature": m.baseline_.feature_, "why": m.baseline_.why_}
    if fmt is Format.json:
        emit_json({**report, "baseline_feature": baseline})
        return
    _print_report(report, baseline, {"learner": m.learner_, **m.selection_})


def _train_workspace(
    workspace: Path,
    model: Path | None,
    horizon_days: int,
    inactive_days: int,
    as_of: str | None,
    seed: int,
    fmt: Format,
) -> None:
    from cx360.cli.profile import parse_as_of
    from cx360.scoring import churn as cw
    from cx360.workspace import Workspace

    when = parse_as_of(as_of)
    with Workspace(workspace) as ws:
        if when is None:
            when = cw.latest_test_date(ws, horizon_days)
            out.print(
                f"[dim]--as-of {when.date()}: the latest test snapshot with {horizon_days} days of events after it[/]"
            )
        target = model or ws.root / cw.DEFAULT_MODEL_DIR
        with out.status("Training the churn model on point-in-time profiles..."):
            result = cw.train(ws, as_of=when, horizon_days=horizon_days, inactive_days=inactive_days, seed=seed)
        cw.save(result, target)
    card = result.card
    if fmt is Format.json:
        emit_json({**card, "saved_to": str(target)})
        return
    _print_report(card["held_out"], card["baseline"], card["selection"])
    s = card["split"]
    out.print(
        table(
            "Churn model (workspace)",
            ["what", "value"],
            [
                ("label", card["data"]["label"]),
                ("training snapshots", ", ".join(s["train_snapshots"])),
                ("test snapshot", s["test_from"]),
                ("train / test rows", f"{s['train_rows']:,} / {s['test_rows']:,}"),
                ("churn rate", f"{card['data']['churn_rate']:.1%}"),
                ("features", len(card["features"])),
                ("learner", card["selection"]["learner"]),
                ("trees", s.get("trees", "-")),
                ("saved to", str(target)),
            ],
        )
    )


def _score_workspace(workspace: Path, model: Path | None, fmt: Format) -> None:
    from cx360.cli.stages import run_one
    from cx360.scoring import churn as cw
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        print_churn_scores(run_one(ws, "churn", model=model or ws.root / cw.DEFAULT_MODEL_DIR).report, fmt)


def print_churn_scores(scored, fmt: Format = Format.table) -> None:
    for warning in scored.warnings:
        out.print(f"[yellow]warning (from training): {warning}[/]")
    emit(
        fmt,
        "Churn scores",
        ["what", "value"],
        [
            ("profiles", scored.profiles),
            ("as of", scored.as_of if scored.profiles else None),
            ("mean risk", round(scored.mean_risk, 3) if scored.profiles else None),
            ("risk >= 0.5", scored.at_risk),
            ("written to", "churn_scores"),
        ],
    )


def _print_report(report: dict, baseline: dict, selection: dict | None = None) -> None:
    from cx360.models.churn_workflow import METRICS

    out.print(
        table(
            "Calibration by decile of predicted probability",
            ["decile", "rows", "mean predicted", "observed"],
            [(c["decile"], c["rows"], f"{c['predicted']:.3f}", f"{c['observed']:.3f}") for c in report["calibration"]],
        )
    )
    out.print(f"Baseline: one-feature logistic model on {baseline['feature']} ({baseline['why']})")
    out.print(
        table(
            f"Quality on {report['model']['rows']:,} rows",
            ["metric", "model", "baseline"],
            [(name, f"{report['model'][name]:.4f}", f"{report['baseline'][name]:.4f}") for name in METRICS],
        )
    )
    if selection is not None:
        out.print(f"Learner: {selection['learner']} ({selection['why']})")
    for warning in report["warnings"]:
        out.print(f"[yellow]warning: {warning}[/]")

"""Train, evaluate and document a churn model on one labelled table: the split, the held-out figures next
to the baseline, and the model card saved beside the model."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import cx360
from cx360.errors import DataError
from cx360.models.churn import ChurnModel, _time_values
from cx360.models.evaluation import calibration_table, metrics

POSITIVE_WORDS = ("1", "true", "yes", "y", "churn", "churned", "left", "lost")
METRICS = ("roc_auc", "pr_auc", "brier", "top_decile_lift")
LEARNER_NAMES = {"logistic": "logistic regression", "lightgbm": "LightGBM", "blend": "logistic regression + LightGBM"}


@dataclass
class TrainResult:
    model: ChurnModel
    card: dict


def binary_label(df: pd.DataFrame, label: str, positive: str | None = None) -> tuple[np.ndarray, str]:
    """The label as 0/1 and the value read as churn. Rows without a label are an error (say which)."""
    if label not in df.columns:
        raise DataError(f"label column '{label}' is not in the table; columns: {', '.join(map(str, df.columns))}")
    values = df[label]
    if values.isna().any():
        rows = (np.flatnonzero(values.isna().to_numpy()) + 1)[:5]
        raise DataError(
            f"label column '{label}' is empty on {int(values.isna().sum())} row(s) "
            f"(rows {', '.join(map(str, rows))}...)"
        )
    text = values.astype(str).str.strip()
    found = sorted(text.unique().tolist())
    if len(found) != 2:
        shown = ", ".join(map(repr, found[:10])) + (" ..." if len(found) > 10 else "")
        raise DataError(
            f"label column '{label}' must hold exactly two values (churn / not); found {len(found)}: {shown}"
        )
    if positive is None:
        hits = [v for v in found if v.lower() in POSITIVE_WORDS or v in ("1.0", "True")]
        if len(hits) != 1:
            raise DataError(
                f"label column '{label}' holds {found[0]!r} and {found[1]!r}: say which one means churn with --positive"
            )
        positive = hits[0]
    elif positive not in found:
        raise DataError(f"--positive {positive!r} is not a value of '{label}'; found {found[0]!r} and {found[1]!r}")
    return (text == positive).to_numpy().astype(int), positive


def split(
    df: pd.DataFrame, y: np.ndarray, *, time_column: str | None, test_size: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Row positions of train and test: the latest `test_size` by time when a time column is given (rows
    tied with the cut go to test, so no test row is older than a training row), else stratified."""
    if time_column:
        if time_column not in df.columns:
            raise DataError(f"time column '{time_column}' is not in the table")
        t = _time_values(df[time_column], time_column).to_numpy()
        cut = np.quantile(t, 1 - test_size, method="lower")
        test = np.flatnonzero(t >= cut)
        train = np.flatnonzero(t < cut)
        if len(train) == 0 or len(np.unique(y[test])) < 2:
            raise DataError(
                f"time column '{time_column}': the latest {test_size:.0%} of rows cannot be a test set "
                f"(too few distinct times, or one class only)"
            )
        cut_text = str(df[time_column].iloc[test[np.argmin(t[test])]])
        return train, test, {"kind": "time", "time_column": time_column, "test_from": cut_text}
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(len(y)), test_size=test_size, stratify=y, random_state=seed)
    return np.sort(train), np.sort(test), {"kind": "stratified", "seed": seed}


def train(
    df: pd.DataFrame,
    *,
    label: str,
    id_column: str | None = None,
    time_column: str | None = None,
    exclude: tuple[str, ...] = (),
    positive: str | None = None,
    test_size: float = 0.2,
    seed: int = 0,
    source: str = "",
    **params,
) -> TrainResult:
    """Fit on the earlier / training rows, report on the held-out rows next to the baseline."""
    for column in (id_column, *exclude):
        if column and column not in df.columns:
            raise DataError(f"column '{column}' is not in the table; columns: {', '.join(map(str, df.columns))}")
    y, positive = binary_label(df, label, positive)
    train_idx, test_idx, how = split(df, y, time_column=time_column, test_size=test_size, seed=seed)
    model = ChurnModel(
        id_column=id_column, label_column=label, time_column=time_column, exclude=exclude, random_state=seed, **params
    )
    model.fit(df.iloc[train_idx].reset_index(drop=True), y[train_idx])
    report = evaluate(model, df.iloc[test_idx].reset_index(drop=True), y[test_idx])
    card = {
        "model": f"cx360 churn ({LEARNER_NAMES[model.learner_]}, calibrated)",
        "selection": selection(model),
        "cx360_version": cx360.__version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data": {
            "source": source,
            "rows": len(df),
            "columns": int(df.shape[1]),
            "label": label,
            "positive": positive,
            "churn_rate": float(y.mean()),
        },
        "split": {
            **how,
            "train_rows": len(train_idx),
            "test_rows": len(test_idx),
            **model.split_,
            "calibration": model.calibrator_["method"],
        },
        "features": [{"name": f.name, "column": f.column, "kind": f.kind} for f in model.prep_.features],
        "notes": model.prep_.notes,
        "baseline": {"feature": model.baseline_.feature_, "why": model.baseline_.why_},
        "held_out": report,
        "warnings": report["warnings"],
    }
    return TrainResult(model, card)


def selection(model: ChurnModel) -> dict:
    """What the model card says about the learner: which, why, and what it leans on."""
    out = {"learner": model.learner_, **model.selection_}
    if model.linear_ is not None:
        out["strongest_coefficients"] = model.linear_.strongest()
    return out


def baseline_warnings(report: dict) -> list[str]:
    """A line per metric on which the model does worse than its one-feature baseline on these rows."""
    worse = []
    for name in METRICS:
        m, b = report["model"][name], report["baseline"][name]
        if (m > b) if name == "brier" else (m < b):
            worse.append(f"{name} {m:.4f} against the baseline's {b:.4f}")
    if not worse:
        return []
    return ["the model does worse than its one-feature baseline on the held-out rows: " + "; ".join(worse)]


def evaluate(model: ChurnModel, df: pd.DataFrame, y: np.ndarray) -> dict:
    """Metrics of the model and of its baseline on these rows, and the model's calibration by decile."""
    p = model.churn_probability(df)
    report = {
        "model": metrics(y, p),
        "baseline": metrics(y, model.baseline_probability(df)),
        "calibration": calibration_table(y, p),
    }
    return {**report, "warnings": baseline_warnings(report)}


def save(result: TrainResult, path: Path) -> None:
    card = result.card
    extra = {"label": card["data"]["label"], "positive": card["data"]["positive"], "warnings": card["warnings"]}
    result.model.save(path, extra=extra)
    (path / "model_card.json").write_text(json.dumps(result.card, indent=2), encoding="utf-8")
    (path / "model_card.md").write_text(card_markdown(result.card), encoding="utf-8")


def card_markdown(card: dict) -> str:
    d, s, h = card["data"], card["split"], card["held_out"]
    lines = [
        "# Churn model card",
        "",
        f"{card['model']}, cx360 {card['cx360_version']}, trained {card['created']}.",
        "",
        "## Data",
        "",
        f"- source: `{d['source']}`; {d['rows']:,} rows, {d['columns']} columns",
        f"- label `{d['label']}`, churn = `{d['positive']}`; churn rate {d['churn_rate']:.1%}",
        "",
        "## Learner",
        "",
        f"- {card['selection']['learner']}: {card['selection']['why']}",
        *[f"- coefficient: `{c}`" for c in card["selection"].get("strongest_coefficients", [])],
        "",
        "## Split",
        "",
        f"- {s['kind']} split: {s['train_rows']:,} training rows, {s['test_rows']:,} held-out rows"
        + (
            f" (test from {s['time_column']} = {s['test_from']})" if s["kind"] == "time" else f" (seed {s.get('seed')})"
        ),
        (
            f"- of the training rows, {s['calibration_rows']:,} calibrate the probability ({s['calibration']})"
            + (f" and stop the boosting ({s['trees']} trees)" if "trees" in s else "")
        ),
        "",
        "## Held-out quality",
        "",
        f"Baseline: one-feature logistic model on `{card['baseline']['feature']}` ({card['baseline']['why']}).",
        "",
        "| metric | model | baseline |",
        "|---|---|---|",
        *[f"| {m} | {h['model'][m]:.4f} | {h['baseline'][m]:.4f} |" for m in METRICS],
        "",
        *[f"**Warning:** {w}\n" for w in card.get("warnings", [])],
        "| decile | rows | mean predicted | observed |",
        "|---|---|---|---|",
        *[f"| {c['decile']} | {c['rows']} | {c['predicted']:.3f} | {c['observed']:.3f} |" for c in h["calibration"]],
        "",
        "## Features",
        "",
        *[
            f"- `{f['name']}` ({f['kind']}{'' if f['name'] == f['column'] else ', from ' + f['column']})"
            for f in card["features"]
        ],
        "",
        "## Notes",
        "",
        *[f"- {n}" for n in card["notes"]],
        "",
    ]
    return "\n".join(lines)

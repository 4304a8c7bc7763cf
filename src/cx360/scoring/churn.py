"""Churn inside a workspace: the churn model trained on point-in-time profile traits with a behavioural
label, and its scores written to `churn_scores` where segments can use them.

Label: a person *active* before T (a card payment, withdrawal or transfer, or any web / app event in
the `horizon` days before T) *churned* when they have left by the end of the horizon: no such activity
in its last `inactive_days` days ([T + horizon - inactive_days, T + horizon)). So a person who stopped at
any point in the first horizon - inactive_days days counts, and a quiet month early in the horizon
followed by a return does not. Persons without activity before T are left out: they had gone already.

Split in time: the model trains on snapshots whose label windows end by T (traits as of T - horizon,
T - horizon - step, ...), and is judged on the snapshot at T, whose labels it never saw.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

import cx360
from cx360 import schema
from cx360.engine import BATCH_ROWS
from cx360.errors import DataError, StageNotRunError
from cx360.models import churn_workflow as wf
from cx360.models.churn import ChurnModel
from cx360.profiles import texts
from cx360.profiles import traits as trait_stage
from cx360.trait_catalog import TRAITS

if TYPE_CHECKING:
    from cx360.workspace import Workspace

ACTIVITY_EVENTS = ("card_payment", "atm_withdrawal", "transfer")
DIGITAL_CHANNELS = ("web", "mobile_app")
TIMESTAMPS = tuple(t.name for t in TRAITS if t.dtype == "timestamp")
RECENCY_FEATURE = "days_since_active"
DEFAULT_MODEL_DIR = "models/churn"


INACTIVE_DAYS = 30


def activity_counts(engine, t: dt.datetime, horizon_days: int, inactive_days: int = INACTIVE_DAYS) -> ir.Table:
    """(profile_id, before, after): activity in the horizon before t, and in the last `inactive_days` of
    the horizon after t."""
    pe = engine.table("profile_events")
    act = pe.filter(pe.name.isin(ACTIVITY_EVENTS) | pe.channel.isin(DIGITAL_CHANNELS))
    lo, mid, tail, hi = (
        ibis.literal(x, "timestamp")
        for x in (
            t - dt.timedelta(days=horizon_days),
            t,
            t + dt.timedelta(days=horizon_days - inactive_days),
            t + dt.timedelta(days=horizon_days),
        )
    )
    act = act.filter((act.ts >= lo) & (act.ts < hi))
    return act.group_by("profile_id").aggregate(
        before=act.count(where=act.ts < mid), after=act.count(where=act.ts >= tail)
    )


def features(frame: pd.DataFrame) -> pd.DataFrame:
    """Traits as model features: timestamps dropped (their days_since_* twins stay), recency of activity added."""
    out = frame.drop(columns=[c for c in (*TIMESTAMPS, "as_of") if c in frame.columns])
    recency = pd.concat([frame["days_since_txn"], frame["days_since_digital"]], axis=1).astype("float64").min(axis=1)
    out.insert(1, RECENCY_FEATURE, recency)  # first recency-named column: the baseline's feature
    return out


def snapshot(ws: Workspace, t: dt.datetime, horizon_days: int, inactive_days: int = INACTIVE_DAYS) -> pd.DataFrame:
    """Traits as of t, for persons active before t, with `churned` (gone by the end of the horizon)."""
    engine = ws.engine
    # The voice traits (tone, complaints, intent of what the person wrote before t) as the profile stage
    # computes them, so that the model learns from the same traits it will score.
    voice = engine.stage(texts.summarise(engine, t)[0])
    try:
        traits, _ = trait_stage.build(engine, t, voice)
        counts = activity_counts(engine, t, horizon_days, inactive_days)
        j = traits.join(counts.filter(counts.before > 0), "profile_id")
        j = j.mutate(churned=(j.after == 0).cast("int64")).drop("before", "after")
        frame = engine.to_arrow(j, step=f"churn: snapshot {t.date()}").to_pandas()
    finally:
        engine.unstage(voice)
    out = features(frame)
    out["snapshot"] = pd.Timestamp(t)
    return out.sort_values("profile_id", kind="stable").reset_index(drop=True)


def data_range(ws: Workspace) -> tuple[dt.datetime, dt.datetime]:
    pe = ws.engine.table("profile_events")
    lo, hi = (
        ws.engine.to_arrow(pe.aggregate(lo=pe.ts.min(), hi=pe.ts.max()), step="churn: event range")
        .to_pylist()[0]
        .values()
    )
    if lo is None:
        raise StageNotRunError("no profile events", stage="profiles", workspace=ws.root)
    return lo, hi


def latest_test_date(ws: Workspace, horizon_days: int) -> dt.datetime:
    """The latest snapshot date whose label window (horizon_days after it) the events still cover."""
    _, last = data_range(ws)
    return dt.datetime.combine(last.date() + dt.timedelta(days=1), dt.time()) - dt.timedelta(days=horizon_days)


def train(
    ws: Workspace,
    *,
    as_of: dt.datetime,
    horizon_days: int = 90,
    inactive_days: int = INACTIVE_DAYS,
    snapshots: int = 3,
    step_days: int = 30,
    seed: int = 0,
) -> wf.TrainResult:
    """Fit on snapshots whose label windows end by `as_of`; report on the snapshot at `as_of`."""
    if not 0 < inactive_days <= horizon_days:
        raise DataError(f"--inactive-days {inactive_days}: expected between 1 and --horizon-days ({horizon_days})")
    first, last = data_range(ws)
    if as_of + dt.timedelta(days=horizon_days) > last + dt.timedelta(days=1):
        latest = (last - dt.timedelta(days=horizon_days)).date()
        raise DataError(
            f"--as-of {as_of.date()}: its label needs {horizon_days} days of events after it, but the "
            f"latest event is {last.date()}; use --as-of {latest} or earlier (or a shorter --horizon-days)"
        )
    times = [as_of - dt.timedelta(days=horizon_days + i * step_days) for i in range(snapshots)]
    times = [t for t in times if t - dt.timedelta(days=horizon_days) >= first]
    if not times:
        raise DataError(
            f"--as-of {as_of.date()}: no room for a training snapshot before it (events start "
            f"{first.date()}; each snapshot needs {horizon_days} days before and after); use a later --as-of"
        )
    train_df = pd.concat([snapshot(ws, t, horizon_days, inactive_days) for t in sorted(times)], ignore_index=True)
    test_df = snapshot(ws, as_of, horizon_days, inactive_days)
    y_train, y_test = train_df.pop("churned").to_numpy(), test_df.pop("churned").to_numpy()
    for name, y in (("training snapshots", y_train), ("the test snapshot", y_test)):
        if len(np.unique(y)) < 2:
            raise DataError(
                f"{name}: every active person has the same label ({int(y[0]) if len(y) else 'none'}); "
                "churn cannot be learnt or measured here: try another --as-of or --horizon-days"
            )
    model = ChurnModel(id_column="profile_id", time_column="snapshot", random_state=seed).fit(train_df, y_train)
    report = wf.evaluate(model, test_df, y_test)
    card = {
        "model": f"cx360 churn ({wf.LEARNER_NAMES[model.learner_]}, calibrated) on point-in-time profile traits",
        "selection": wf.selection(model),
        "cx360_version": cx360.__version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data": {
            "source": f"workspace {ws.root}",
            "rows": len(train_df) + len(test_df),
            "columns": int(train_df.shape[1]),
            "label": f"gone within {horizon_days} days: no activity in days {horizon_days - inactive_days}-"
            f"{horizon_days} after the snapshot",
            "positive": "1",
            "churn_rate": float(np.concatenate([y_train, y_test]).mean()),
        },
        "split": {
            "kind": "time",
            "time_column": "snapshot",
            "test_from": as_of.date().isoformat(),
            "train_rows": len(train_df),
            "test_rows": len(test_df),
            **model.split_,
            "calibration": model.calibrator_["method"],
            "train_snapshots": [t.date().isoformat() for t in sorted(times)],
        },
        "horizon_days": horizon_days,
        "inactive_days": inactive_days,
        "features": [{"name": f.name, "column": f.column, "kind": f.kind} for f in model.prep_.features],
        "notes": [
            *model.prep_.notes,
            f"label: active (payment, withdrawal, transfer, web or app event) in the {horizon_days} days before "
            f"the snapshot, and no such activity in the last {inactive_days} days of the {horizon_days} after it",
        ],
        "baseline": {"feature": model.baseline_.feature_, "why": model.baseline_.why_},
        "held_out": report,
        "warnings": report["warnings"],
    }
    return wf.TrainResult(model, card)


def save(result: wf.TrainResult, path: Path) -> None:
    wf.save(result, path)
    extra = {
        "horizon_days": result.card["horizon_days"],
        "label": "churned",
        "positive": "1",
        "warnings": result.card["warnings"],
    }
    result.model.save(path, extra=extra)


@dataclass(frozen=True)
class ScoreSummary:
    profiles: int
    as_of: dt.datetime
    mean_risk: float | None
    at_risk: int  # churn_risk >= 0.5
    warnings: tuple[str, ...] = ()  # the model's, from its training: worse than its baseline


@dataclass(frozen=True)
class _Scorer:
    """Scores one batch of traits (with `before`, the activity count in the horizon before as_of); each
    row on its own, so it runs where the batch is (picklable: shipped to Spark's executors)."""

    model: ChurnModel
    horizon: int
    as_of: dt.datetime
    now: dt.datetime

    def __call__(self, batch: pa.Table) -> pd.DataFrame:
        frame = batch.to_pandas()
        active = frame.pop("before").fillna(0).to_numpy() > 0
        X = features(frame).reset_index(drop=True)
        X["snapshot"] = pd.Timestamp(self.as_of)
        risk = np.ones(len(X))
        reasons = [f"no activity in the {self.horizon} days before as_of (lapsed)"] * len(X)
        if active.any():
            idx = np.flatnonzero(active)
            Xa = X.iloc[idx].reset_index(drop=True)
            risk[idx] = self.model.churn_probability(Xa)
            for i, r in zip(idx, self.model.reasons(Xa), strict=True):
                reasons[i] = "; ".join(r)
        return pd.DataFrame(
            {
                "profile_id": X.profile_id,
                "as_of": pd.Timestamp(self.as_of),
                "churn_risk": risk.round(6),
                "churn_reasons": reasons,
                "horizon_days": self.horizon,
                "scored_at": pd.Timestamp(self.now),
            }
        )


def score(
    ws: Workspace, model_dir: Path, *, now: dt.datetime | None = None, batch_rows: int = BATCH_ROWS
) -> ScoreSummary:
    """Score the current profile_traits into `churn_scores`, batch by batch where the traits are (chunks on
    DuckDB, Spark's executors); persons with no activity in the horizon before as_of have lapsed already
    and get risk 1."""
    engine = ws.engine
    model = ChurnModel.load(model_dir)
    horizon = int(model.extra_.get("horizon_days") or 90)
    traits = engine.table("profile_traits")
    as_of = engine.scalar(traits.as_of.max(), step="churn: profile as_of")
    if as_of is None:
        raise StageNotRunError("no profile traits to score", stage="profiles", workspace=ws.root)
    counts = activity_counts(engine, as_of, horizon)
    j = traits.left_join(counts.select("profile_id", "before"), "profile_id").drop("profile_id_right")
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    engine.map_batches(
        j.order_by("profile_id"),
        _Scorer(model, horizon, as_of, now),
        schema.ibis_schema("churn_scores").to_pyarrow(),
        into="churn_scores",
        batch_rows=batch_rows,
        step="churn: score",
    )
    c = engine.table("churn_scores")
    row = engine.to_arrow(
        c.aggregate(n=c.count(), mean=c.churn_risk.mean(), high=(c.churn_risk >= 0.5).sum()), step="churn: summary"
    ).to_pylist()[0]
    warnings = tuple(model.extra_.get("warnings", ()))
    return ScoreSummary(int(row["n"]), as_of, row["mean"], int(row["high"] or 0), warnings)

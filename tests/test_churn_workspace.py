"""Churn inside a workspace: point-in-time training with a behavioural label and a time split, scores in
churn_scores that segments can use."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import WorkspaceFactory
from typer.testing import CliRunner

from cx360.cli import app
from cx360.errors import DataError
from cx360.identity.resolve import resolve
from cx360.models.churn import ChurnModel
from cx360.profiles.build import build
from cx360.scoring import churn as cw
from cx360.segments.evaluate import evaluate
from cx360.sources.ingest import ingest

START = dt.datetime(2025, 1, 1)
N = 160

SOURCES = """
    [identity]
    probabilistic = false

    [segmentation]
    clusters = 0
    rfm = false

    [[sources]]
    name = "crm"
    kind = "csv"
    path = "data/crm.csv"
    [sources.records]
    record_id = "id"
    identifiers = { customer_no = "id", card_token = "card" }

    [[sources]]
    name = "activity"
    kind = "jsonl"
    path = "data/activity.jsonl"
    [sources.events]
    event_id = "id"
    timestamp = { column = "ts", type = "timestamp" }
    name = "name"
    channel = "channel"
    amount = { column = "amount", type = "float" }
    identifiers = { customer_no = "customer", card_token = "card" }
    properties = { reason = "reason" }

    [[segments]]
    name = "likely_to_leave"
    where = "churn_risk >= 0.5"
"""


def _world(factory):
    """N customers paying every few days all year; a third of them leave at a random date from March on,
    calling first to close their account, and slowing down before they go."""
    rng = np.random.default_rng(3)
    leave = {i: START + dt.timedelta(days=int(rng.integers(60, 360))) for i in range(N) if i % 3 == 0}
    lines, k = [], 0
    for i in range(N):
        day = START + dt.timedelta(days=float(rng.uniform(0, 4)))
        end = leave.get(i, START + dt.timedelta(days=365))
        while day < end:
            slowing = i in leave and (end - day).days < 45
            lines.append(
                json.dumps(
                    {
                        "id": f"t{k}",
                        "ts": day.isoformat() + "Z",
                        "name": "card_payment",
                        "channel": "pos",
                        "card": f"TK{i}",
                        "amount": float(rng.uniform(5, 50)),
                    }
                )
            )
            k += 1
            day += dt.timedelta(days=float(rng.uniform(8, 14) if slowing else rng.uniform(2, 5)))
        if i in leave:
            call = end - dt.timedelta(days=20)
            lines.append(
                json.dumps(
                    {
                        "id": f"c{k}",
                        "ts": call.isoformat() + "Z",
                        "name": "call",
                        "channel": "call_centre",
                        "customer": f"C{i}",
                        "reason": "close_account",
                    }
                )
            )
            k += 1
    factory.write("data/crm.csv", "id,card\n" + "".join(f"C{i},TK{i}\n" for i in range(N)))
    factory.write("data/activity.jsonl", "\n".join(lines) + "\n")
    ws = factory.config(SOURCES)
    ingest(ws)
    resolve(ws)
    build(ws)
    return ws


def test_train_on_point_in_time_traits_and_score_into_a_table(duckdb_workspace, tmp_path):
    ws = _world(duckdb_workspace)
    result = cw.train(ws, as_of=dt.datetime(2025, 9, 1), horizon_days=60, inactive_days=30)
    card = result.card
    assert card["split"]["kind"] == "time" and card["split"]["test_from"] == "2025-09-01"
    # every training label window ends by the test snapshot
    assert all(
        dt.date.fromisoformat(t) + dt.timedelta(days=60) <= dt.date(2025, 9, 1)
        for t in card["split"]["train_snapshots"]
    )
    assert card["baseline"]["feature"] == cw.RECENCY_FEATURE
    assert card["held_out"]["model"]["roc_auc"] > 0.8
    model_dir = tmp_path / "model"
    cw.save(result, model_dir)
    assert (model_dir / "model_card.md").read_text().startswith("# Churn model card")

    build(ws, dt.datetime(2025, 10, 1))
    now = dt.datetime(2026, 1, 1)
    summary = cw.score(ws, model_dir, now=now, batch_rows=37)  # batch boundaries do not change a score
    pd.testing.assert_frame_equal(
        _stored_scores(ws), _whole_table_scores(ws, model_dir, dt.datetime(2025, 10, 1), now), check_dtype=False
    )
    scored = ws.engine.table("churn_scores").to_pandas().set_index("profile_id")
    assert summary.profiles == len(scored) == N and scored.churn_risk.between(0, 1).all()
    assert summary.at_risk == int((scored.churn_risk >= 0.5).sum())
    lapsed = scored.churn_reasons.str.contains("lapsed")
    assert lapsed.any() and (scored.churn_risk[lapsed] == 1.0).all()
    assert scored.churn_reasons[~lapsed].str.contains(r"\(\+", regex=True).any()
    # segments read churn_risk by name
    results = {r.name: r for r in evaluate(ws)}
    assert results["likely_to_leave"].status == "ok"
    assert results["likely_to_leave"].size == int((scored.churn_risk >= 0.5).sum())


def test_train_refuses_a_snapshot_without_a_full_horizon_after_it(duckdb_workspace):
    ws = _world(duckdb_workspace)
    with pytest.raises(DataError) as err:
        cw.train(ws, as_of=dt.datetime(2025, 11, 15), horizon_days=90)
    assert "needs 90 days of events after it" in str(err.value) and "use --as-of 2025-10-02 or earlier" in str(
        err.value
    )


def test_snapshots_carry_the_voice_traits_of_their_date(duckdb_workspace, monkeypatch):
    from cx360.profiles import texts

    ws = _world(duckdb_workspace)
    t = dt.datetime(2025, 6, 1)
    people = ws.engine.table("profiles").to_pandas().profile_id
    asked = []

    def summarise(engine, as_of):
        asked.append(as_of)
        voice = pd.DataFrame({"profile_id": people, "texts_total": 3, "share_negative": 0.5})
        for column in texts.voice_schema().names:
            if column not in voice:
                voice[column] = None
        return pa.Table.from_pandas(voice, schema=texts.voice_schema(), preserve_index=False), None

    monkeypatch.setattr(texts, "summarise", summarise)
    frame = cw.snapshot(ws, t, 60)
    assert asked == [t]  # the texts written before the snapshot, as the profile stage reads them
    assert len(frame) > 0 and (frame.texts_total == 3).all() and (frame.share_negative == 0.5).all()


def test_cli_train_and_score_in_a_workspace(duckdb_workspace):
    ws = _world(duckdb_workspace)
    ws.close()
    runner = CliRunner()
    trained = runner.invoke(
        app, ["churn", "train", "--workspace", str(ws.root), "--horizon-days", "60", "--as-of", "2025-09-01"]
    )
    assert trained.exit_code == 0, trained.output
    assert "days_since_active" in trained.output and (ws.root / "models" / "churn" / "model_card.json").is_file()
    scored = runner.invoke(app, ["churn", "score", "--workspace", str(ws.root)])
    assert scored.exit_code == 0, scored.output
    assert "churn_scores" in scored.output
    # without --as-of: the latest date whose horizon the events still cover (the README's command)
    latest = runner.invoke(app, ["churn", "train", "--workspace", str(ws.root), "--horizon-days", "90"])
    assert latest.exit_code == 0, latest.output
    expected = cw.latest_test_date(ws, 90).date()
    assert f"--as-of {expected}: the latest test snapshot with 90 days of events after it" in latest.output
    assert json.loads((ws.root / "models" / "churn" / "model_card.json").read_text())["split"]["test_from"] == str(
        expected
    )


def _whole_table_scores(ws, model_dir, as_of, now):
    """One pass of the batch scorer over every row, as churn scoring ran before it went in batches."""
    traits = ws.engine.table("profile_traits")
    counts = cw.activity_counts(ws.engine, as_of, 60)
    whole = traits.left_join(counts.select("profile_id", "before"), "profile_id").drop("profile_id_right")
    scorer = cw._Scorer(ChurnModel.load(model_dir), 60, as_of, now)
    return scorer(whole.to_pyarrow()).sort_values("profile_id", ignore_index=True)


def _stored_scores(ws):
    return ws.engine.table("churn_scores").to_pandas().sort_values("profile_id", ignore_index=True)


@pytest.mark.parametrize("engine_kind", [pytest.param("spark", marks=pytest.mark.spark)], indirect=True)
def test_spark_scores_on_its_executors_what_duckdb_scores(duckdb_workspace, engine_kind, tmp_path):
    """The same traits and model give the same churn_scores when Spark scores them on its executors, in
    batches of 37 rows, as one pass over the whole table on DuckDB."""
    ws = _world(duckdb_workspace)
    cw.save(cw.train(ws, as_of=dt.datetime(2025, 9, 1), horizon_days=60), tmp_path / "model")
    build(ws, dt.datetime(2025, 10, 1))
    now = dt.datetime(2026, 1, 1)
    expected = _whole_table_scores(ws, tmp_path / "model", dt.datetime(2025, 10, 1), now)
    spark = WorkspaceFactory(tmp_path / "spark", "spark").config(SOURCES)
    try:
        for name in ("profile_traits", "profile_events"):
            spark.engine.replace(name, ws.engine.table(name).to_pyarrow())
        summary = cw.score(spark, tmp_path / "model", now=now, batch_rows=37)
        got = _stored_scores(spark)
    finally:
        spark.close()
    assert summary.profiles == N and 0 < summary.at_risk < N
    pd.testing.assert_frame_equal(got, expected[got.columns], check_dtype=False)

"""Churn model on a seeded synthetic table whose drivers are known: support tickets (planted, strong and
non-linear), a basic plan, recency and tenure; with categoricals, missing values, a date, a constant column
and an empty one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cx360.errors import ConfigError, DataError, ModelError
from cx360.models.churn import ChurnModel
from cx360.models.churn_workflow import binary_label, evaluate, save, train


def make_table(n: int = 3000, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = rng.integers(0, 200, n)
    tickets = rng.poisson(1.5, n)
    plan = rng.choice(["basic", "plus", "premium"], n, p=[0.4, 0.35, 0.25])
    region = rng.choice(["north", "south", "east", "west"], n).astype(object)
    region[rng.random(n) < 0.15] = None
    balance = rng.gamma(2.0, 500.0, n)
    balance[rng.random(n) < 0.2] = np.nan
    tenure = rng.integers(1, 120, n)
    signup = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, n), unit="D")
    logit = -3.0 + 0.008 * days + 1.6 * np.maximum(tickets - 2, 0) + 1.0 * (plan == "basic") - 0.01 * tenure
    churned = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "days_since_last_txn": days,
            "support_tickets": tickets,
            "plan": plan,
            "region": region,
            "balance": balance,
            "tenure_months": tenure,
            "signup_date": signup.strftime("%Y-%m-%d"),
            "snapshot": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 365, n)), unit="D"),
            "email": [f"user{i}@mail.example" for i in range(n)],
            "country": "RU",
            "notes": None,
            "churned": np.where(churned, "yes", "no"),
        }
    )


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return make_table()


@pytest.fixture(scope="module")
def result(table):
    return train(table, label="churned", id_column="customer_id", exclude=("snapshot",), source="synthetic")


def test_model_beats_the_recency_baseline_on_held_out_rows(result):
    held = result.card["held_out"]
    assert result.card["baseline"] == {"feature": "days_since_last_txn", "why": "named like recency"}
    assert held["model"]["roc_auc"] > held["baseline"]["roc_auc"] + 0.1
    assert held["model"]["pr_auc"] > held["baseline"]["pr_auc"]
    assert held["model"]["top_decile_lift"] > held["baseline"]["top_decile_lift"]
    assert held["model"]["rows"] == 600 and result.card["split"]["kind"] == "stratified"


def test_probabilities_are_calibrated(result):
    held = result.card["held_out"]
    assert held["model"]["brier"] < held["baseline"]["brier"]
    deciles = held["calibration"]
    assert len(deciles) == 10 and sum(d["rows"] for d in deciles) == 600
    for d in deciles:
        assert abs(d["predicted"] - d["observed"]) < 0.12, d
    mean_predicted = sum(d["predicted"] * d["rows"] for d in deciles) / 600
    assert abs(mean_predicted - held["model"]["base_rate"]) < 0.03
    assert deciles[-1]["observed"] > 5 * deciles[0]["observed"] + 0.2


def test_reasons_name_the_planted_driver(result, table):
    heavy = table[table.support_tickets >= 6].head(20)
    scored = result.model.score_table(heavy)
    assert list(scored.columns) == ["customer_id", "churn_probability", "reason_1", "reason_2", "reason_3"]
    assert scored.reason_1.str.match(r"support_tickets=\d+ \(\+\d+\.\d\d\)$").all(), scored.reason_1.tolist()
    assert (scored.churn_probability > 0.5).all()
    assert scored.reason_1.iloc[0].startswith(f"support_tickets={heavy.support_tickets.iloc[0]} (+")


def test_columns_are_read_without_preparation(result, table):
    prep = result.model.prep_
    kinds = {f.name: f.kind for f in prep.features}
    assert kinds == {
        "days_since_last_txn": "numeric",
        "support_tickets": "numeric",
        "plan": "category",
        "region": "category",
        "balance": "numeric",
        "tenure_months": "numeric",
        "signup_date_days_ago": "days_ago",
    }
    notes = " | ".join(prep.notes)
    for expected in (
        "customer_id: not a feature (id)",
        "churned: not a feature (label)",
        "snapshot: not a feature (excluded)",
        "country: dropped (one value only: 'RU')",
        "notes: dropped (all values missing)",
        "email: dropped (text with 2,400 distinct values: an identifier or free text)",
    ):
        assert expected in notes
    # An unseen category scores as a missing one; missing numbers are accepted as they are.
    rows = table.head(3).copy()
    unseen, missing = rows.copy(), rows.copy()
    unseen["region"], missing["region"] = "atlantis", None
    np.testing.assert_allclose(result.model.churn_probability(unseen), result.model.churn_probability(missing))
    rows["balance"] = np.nan
    assert np.isfinite(result.model.churn_probability(rows)).all()


def test_save_and_load_give_the_same_scores(result, table, tmp_path):
    save(result, tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {
        "model.txt",
        "churn_model.json",
        "model_card.json",
        "model_card.md",
    }
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    assert card["data"]["rows"] == 3000 and card["data"]["positive"] == "yes" and card["cx360_version"]
    assert "| roc_auc |" in (tmp_path / "m" / "model_card.md").read_text()
    loaded = ChurnModel.load(tmp_path / "m")
    sample = table.sample(200, random_state=1)
    np.testing.assert_allclose(loaded.churn_probability(sample), result.model.churn_probability(sample))
    assert loaded.reasons(sample) == result.model.reasons(sample)
    np.testing.assert_allclose(loaded.baseline_probability(sample), result.model.baseline_probability(sample))


def test_time_split_tests_on_the_latest_rows(table):
    r = train(table.sample(frac=1.0, random_state=3), label="churned", id_column="customer_id", time_column="snapshot")
    split = r.card["split"]
    assert split["kind"] == "time" and split["test_rows"] >= 600 and split["train_rows"] + split["test_rows"] == 3000
    cut = pd.Timestamp(split["test_from"])
    assert (table.snapshot >= cut).sum() == split["test_rows"]
    assert "snapshot: not a feature (time column, used to split)" in r.card["notes"]
    assert r.card["held_out"]["model"]["roc_auc"] > r.card["held_out"]["baseline"]["roc_auc"]


def test_label_errors_say_what_was_found(table):
    with pytest.raises(DataError, match="label column 'gone' is not in the table"):
        binary_label(table, "gone")
    with pytest.raises(DataError, match=r"exactly two values .* found 3: 'basic', 'plus', 'premium'"):
        binary_label(table, "plan")
    two = table.assign(status=np.where(table.churned == "yes", "A", "B"))
    with pytest.raises(DataError, match="say which one means churn with --positive"):
        binary_label(two, "status")
    y, positive = binary_label(two, "status", "A")
    assert positive == "A" and y.sum() == (table.churned == "yes").sum()
    assert binary_label(table.assign(flag=(table.churned == "yes").astype(int)), "flag")[1] == "1"


def test_scoring_a_table_without_training_features_lists_them(result, table):
    with pytest.raises(DataError, match="lacks 2 column\\(s\\) the model was trained on: plan, signup_date"):
        result.model.churn_probability(table.drop(columns=["plan", "signup_date"]))
    with pytest.raises(DataError, match="column 'support_tickets' was numeric in training but holds 'many'"):
        result.model.churn_probability(table.head(2).assign(support_tickets=["3", "many"]))


def test_missing_or_corrupt_model_directory(tmp_path):
    with pytest.raises(ModelError, match="no model directory here"):
        ChurnModel.load(tmp_path / "nope")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "churn_model.json").write_text("{not json")
    with pytest.raises(ModelError, match="not a readable churn model"):
        ChurnModel.load(tmp_path / "bad")
    with pytest.raises(ModelError, match="not fitted"):
        ChurnModel().churn_probability(pd.DataFrame({"a": [1]}))


def cx360(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cx360", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"} | {k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
    )


def test_cli_train_score_evaluate(table, tmp_path):
    csv, parquet, model = tmp_path / "c.csv", tmp_path / "c.parquet", tmp_path / "model"
    table.to_csv(csv, index=False)
    table.drop(columns=["churned"]).to_parquet(parquet)
    trained = cx360(
        "churn",
        "train",
        str(csv),
        "--label",
        "churned",
        "--id",
        "customer_id",
        "--model",
        str(model),
        "--exclude",
        "snapshot",
    )
    assert trained.returncode == 0, trained.stderr
    assert (
        "logistic model on days_since_last_txn (named like recency)" in trained.stdout and "│ roc_auc" in trained.stdout
    )
    assert "note: country: dropped (one value only: 'RU')" in trained.stdout
    scored = cx360("churn", "score", str(parquet), "--model", str(model), "--output", str(tmp_path / "s.csv"))
    assert scored.returncode == 0, scored.stderr
    out = pd.read_csv(tmp_path / "s.csv", dtype={"customer_id": str})
    assert len(out) == 3000 and out.customer_id.iloc[0] == "C00000" and out.churn_probability.between(0, 1).all()
    evaluated = cx360("churn", "evaluate", str(csv), "--label", "churned", "--model", str(model), "--format", "json")
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["model"]["rows"] == 3000 and report["model"]["roc_auc"] > report["baseline"]["roc_auc"]


def test_cli_bad_input_exits_1_with_the_reason(table, tmp_path):
    csv = tmp_path / "c.csv"
    table.to_csv(csv, index=False)
    bad = cx360("churn", "train", str(csv), "--label", "plan", "--model", str(tmp_path / "m"))
    assert bad.returncode == 1
    assert "label column 'plan' must hold exactly two values" in " ".join(bad.stderr.split())
    missing = cx360("churn", "score", str(csv), "--model", str(tmp_path / "none"), "--output", str(tmp_path / "o.csv"))
    assert missing.returncode == 1 and "no model directory here" in missing.stderr
    not_dates = cx360(
        "churn", "train", str(csv), "--label", "churned", "--time", "plan", "--model", str(tmp_path / "m")
    )
    assert not_dates.returncode == 1
    assert "time column 'plan' holds values that are not dates: 'basic'" in " ".join(not_dates.stderr.split())
    nofile = cx360("churn", "evaluate", str(tmp_path / "x.csv"), "--label", "churned", "--model", str(tmp_path / "m"))
    assert nofile.returncode == 1 and "no such file" in nofile.stderr


def test_isotonic_calibration_keeps_the_booster_ranking(table):
    from sklearn.metrics import roc_auc_score

    y = (table.churned == "yes").to_numpy().astype(int)
    model = ChurnModel(id_column="customer_id", label_column="churned", learner="lightgbm", calibration="isotonic").fit(
        table, y
    )
    assert model.calibrator_["method"] == "isotonic"
    p = model.churn_probability(table)
    raw = model.booster_.predict(model.prep_.transform(table), raw_score=True)
    assert roc_auc_score(y, p) == pytest.approx(roc_auc_score(y, raw), abs=1e-12)
    assert ((p >= 0) & (p <= 1)).all()
    with pytest.raises(ConfigError, match="calibration='beta': expected one of auto, isotonic, sigmoid"):
        ChurnModel(calibration="beta").fit(table, y)
    with pytest.raises(ConfigError, match="learner='svm': expected one of auto, logistic, lightgbm, blend"):
        ChurnModel(learner="svm").fit(table, y)


def linear_table(n: int = 600, seed: int = 3) -> pd.DataFrame:
    """Churn that is a logistic function of its columns: what a regression fits and trees only approximate."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    logit = x @ np.array([1.2, -0.9, 0.7, 0.5, 0.0, 0.0]) - 1.0
    df = pd.DataFrame(x, columns=[f"usage_{i}" for i in range(6)])
    df["churned"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def test_selection_prefers_the_regression_where_churn_is_linear(tmp_path):
    r = train(linear_table(), label="churned", source="linear")
    sel = r.card["selection"]
    assert sel["learner"] == "logistic" and set(sel["cv"]) == {"logistic", "lightgbm", "blend"}
    assert sel["cv"]["logistic"] >= max(sel["cv"].values()) - 0.002
    assert sel["why"].startswith("out-of-fold ROC-AUC over 4 folds of the training rows: ")
    assert sel["strongest_coefficients"][0].startswith("usage_0 (+")
    assert r.card["model"] == "cx360 churn (logistic regression, calibrated)" and "trees" not in r.card["split"]
    assert r.card["held_out"]["model"]["roc_auc"] > r.card["held_out"]["baseline"]["roc_auc"]
    save(r, tmp_path / "m")
    assert not (tmp_path / "m" / "model.txt").exists()
    assert "- logistic: out-of-fold ROC-AUC" in (tmp_path / "m" / "model_card.md").read_text()
    loaded = ChurnModel.load(tmp_path / "m")
    rows = linear_table(50, seed=9)
    np.testing.assert_allclose(loaded.churn_probability(rows), r.model.churn_probability(rows))
    assert loaded.reasons(rows) == r.model.reasons(rows)
    high = rows.assign(usage_0=4.0, usage_1=0.0, usage_2=0.0, usage_3=0.0)
    assert all(reasons[0].startswith("usage_0=4 (+") for reasons in loaded.reasons(high))


def test_selection_takes_the_trees_where_churn_is_an_interaction(table):
    # Churn only where two columns are both high (an AND no linear term can express): trees must win.
    rng = np.random.default_rng(5)
    a, b = rng.random(2000), rng.random(2000)
    df = pd.DataFrame({"a": a, "b": b, "noise": rng.random(2000)})
    df["churned"] = ((a > 0.5) == (b > 0.5)) & (rng.random(2000) < 0.8)
    r = train(df.assign(churned=df.churned.astype(int)), label="churned")
    sel = r.card["selection"]
    assert sel["learner"] in ("lightgbm", "blend") and sel["cv"]["lightgbm"] > sel["cv"]["logistic"] + 0.2
    assert r.card["held_out"]["model"]["roc_auc"] > 0.85


def test_a_model_worse_than_its_baseline_is_flagged_in_training_and_evaluation(result, table, tmp_path):
    # On customers whose tickets and plan no longer say anything, recency alone ranks them better.
    rng = np.random.default_rng(11)
    drifted = table.assign(
        support_tickets=rng.permutation(table.support_tickets.to_numpy()),
        plan=rng.permutation(table.plan.to_numpy()),
    )
    y = (table.churned == "yes").to_numpy().astype(int)
    report = evaluate(result.model, drifted, y)
    assert report["model"]["roc_auc"] < report["baseline"]["roc_auc"]
    assert report["warnings"][0].startswith("the model does worse than its one-feature baseline on the held-out rows")
    assert "roc_auc" in report["warnings"][0]
    assert evaluate(result.model, table, y)["warnings"] == []
    csv = tmp_path / "drifted.csv"
    drifted.to_csv(csv, index=False)
    save(result, tmp_path / "m")
    shown = cx360("churn", "evaluate", str(csv), "--label", "churned", "--model", str(tmp_path / "m"))
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "warning: the model does worse than its one-feature baseline" in text
    assert "Learner: blend (out-of-fold ROC-AUC" in text

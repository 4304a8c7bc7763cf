"""Customer lifetime value: the published CDNOW fits, model behaviour on tiny data, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import numpy as np
import pandas as pd
import pytest

from cx360.errors import SourceError
from cx360.models.clv import (
    BetaGeoFitter,
    FitError,
    GammaGammaFitter,
    NotFittedError,
    customer_lifetime_value,
    holdout_metrics,
)
from cx360.models.clv_report import clv_from_transactions
from cx360.models.rfm import rfm_summary

try:
    metadata.distribution("lifetimes")
    HAVE_CDNOW = True
except metadata.PackageNotFoundError:
    HAVE_CDNOW = False
needs_cdnow = pytest.mark.skipif(not HAVE_CDNOW, reason="CDNOW sample ships in lifetimes: pip install 'cx360[test]'")


@pytest.fixture(scope="module")
def cdnow():
    from cx360.models import cdnow

    tx = cdnow.load_cdnow_sample()
    return tx, rfm_summary(tx, "customer", "date", "amount", cdnow.CALIBRATION_END, cdnow.HOLDOUT_END)


@needs_cdnow
def test_cdnow_summary_matches_the_published_one(cdnow):
    from cx360.models.cdnow import lifetimes_file

    _, s = cdnow
    ref = pd.read_csv(lifetimes_file("cdnow_customers_summary_with_transactions.csv"))
    assert len(s) == 2357 and int((s.frequency > 0).sum()) == 946
    assert (s.frequency.to_numpy() == ref.x.to_numpy()).all()
    # The published file rounds to two decimals.
    for ours, theirs in (("recency", "t_x"), ("T", "T"), ("monetary_value", "zbar")):
        assert np.abs(s[ours].to_numpy() - ref[theirs].to_numpy()).max() <= 0.0051


@needs_cdnow
def test_cdnow_bgnbd_and_gamma_gamma_reproduce_the_papers(cdnow):
    from cx360.models.cdnow import PUBLISHED_BGNBD, PUBLISHED_BGNBD_LL, PUBLISHED_GAMMA_GAMMA

    _, s = cdnow
    bgf = BetaGeoFitter().fit(s.frequency, s.recency, s["T"])
    for name, published in PUBLISHED_BGNBD.items():
        assert bgf.params_[name] == pytest.approx(published, rel=0.01), name
    assert bgf.log_likelihood_ == pytest.approx(PUBLISHED_BGNBD_LL, abs=0.1)
    ggf = GammaGammaFitter().fit(s.frequency, s.monetary_value)
    assert ggf.n_customers_ == 946
    for name, published in PUBLISHED_GAMMA_GAMMA.items():
        assert ggf.params_[name] == pytest.approx(published, rel=0.01), name


@needs_cdnow
def test_cdnow_holdout_beats_the_naive_rate(cdnow):
    tx, _ = cdnow
    r = clv_from_transactions(
        tx, customer="customer", date="date", amount="amount", calibration_end="1997-09-30", holdout_end="1998-06-30"
    )
    model, naive = r.holdout["bgnbd"], r.holdout["naive_rate"]
    assert model["total_actual"] == naive["total_actual"] == 1882
    assert model["mae"] < naive["mae"] and model["rmse"] < naive["rmse"]
    assert model["correlation"] > naive["correlation"]
    assert abs(model["total_predicted"] - 1882) < abs(naive["total_predicted"] - 1882)


TINY = pd.DataFrame(
    {
        "cust": ["a", "a", "a", "a", "b", "b", "c", "d"],
        "day": [
            "2024-01-01",
            "2024-01-01",
            "2024-01-15",
            "2024-01-29",
            "2024-01-08",
            "2024-02-05",
            "2024-01-22",
            "2024-02-20",
        ],
        "amount": [10.0, 5.0, 20.0, 40.0, 7.0, 9.0, 3.0, 1.0],
    }
)


def test_rfm_collapses_same_day_and_counts_repeats_only():
    s = rfm_summary(TINY, "cust", "day", "amount", "2024-01-29", holdout_end="2024-02-26").set_index("cust")
    assert list(s.index) == ["a", "b", "c"]  # d first bought after calibration
    assert s.loc["a", "frequency"] == 2 and s.loc["a", "recency"] == 4 and s.loc["a", "T"] == 4
    assert s.loc["a", "monetary_value"] == 30.0  # (20 + 40) / 2; the first day (10 + 5) is not a repeat
    assert s.loc["b", "frequency"] == 0 and s.loc["b", "monetary_value"] == 0 and s.loc["b", "T"] == 3
    assert s.loc["b", "frequency_holdout"] == 1 and s.loc["b", "spend_holdout"] == 9.0
    assert s.loc["c", "duration_holdout"] == 4
    days = rfm_summary(TINY, "cust", "day", "amount", "2024-01-29", freq="D").set_index("cust")
    assert days.loc["a", "recency"] == 28 and days.loc["a", "T"] == 28


@pytest.mark.parametrize(
    "change, message",
    [
        ({"day": ["2024-01-01", "soon", *TINY.day.tolist()[2:]]}, "column 'day': 1 value(s) are not dates"),
        ({"amount": [10.0, -5.0, *TINY.amount.tolist()[2:]]}, "column 'amount': 1 negative amount(s)"),
        ({"amount": ["10", "x", *TINY.amount.tolist()[2:]]}, "column 'amount': 1 value(s) are not numbers"),
    ],
)
def test_rfm_bad_input_names_the_column(change, message):
    with pytest.raises(SourceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rfm_summary(TINY.assign(**change), "cust", "day", "amount", "2024-01-29")
    with pytest.raises(SourceError, match=r"missing column\(s\) \['spend'\]"):
        rfm_summary(TINY, "cust", "day", "spend", "2024-01-29")


def _simulate(
    n: int, r: float, alpha: float, a: float, b: float, T: float, seed: int, holdout: float = 0.0
) -> pd.DataFrame:
    """BG/NBD's own story, customer by customer: Poisson purchases, a coin after each for dropping out.
    Calibration is (0, T]; purchases in (T, T + holdout] are counted apart."""
    rng = np.random.default_rng(seed)
    lam, p = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    rows = []
    for i in range(n):
        t, x, tx, later, alive = 0.0, 0, 0.0, 0, True
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T + holdout:
                break
            if t <= T:
                x, tx = x + 1, t
            else:
                later += 1
            if rng.random() < p[i]:
                alive = t > T
                break
        rows.append((x, tx, T, later, alive))
    return pd.DataFrame(rows, columns=["frequency", "recency", "T", "holdout", "alive"])


def test_bgnbd_recovers_the_parameters_it_simulated():
    truth = {"r": 0.5, "alpha": 6.0, "a": 0.8, "b": 2.5}
    s = _simulate(8000, *truth.values(), T=52.0, seed=7)
    fitted = BetaGeoFitter().fit(s.frequency, s.recency, s["T"]).params_
    for name, value in truth.items():
        assert fitted[name] == pytest.approx(value, rel=0.25), (name, fitted)


def test_bgnbd_forecasts_match_the_process_they_describe():
    truth = {"r": 0.5, "alpha": 6.0, "a": 0.8, "b": 2.5}
    s = _simulate(20000, *truth.values(), T=39.0, holdout=26.0, seed=11)
    bgf = BetaGeoFitter()
    bgf.r_, bgf.alpha_, bgf.a_, bgf.b_ = truth.values()  # the true parameters, no fitting noise
    x, tx, T = s.frequency, s.recency, s["T"]
    # E[X(T)] is the mean calibration count; P(alive) is the share still alive at T;
    # the conditional expectation sums to the purchases that really came next.
    assert bgf.expected_purchases(39.0) == pytest.approx(x.mean(), rel=0.03)
    assert bgf.p_alive(x, tx, T).mean() == pytest.approx(s.alive.mean(), rel=0.03)
    assert bgf.conditional_expected_purchases(26.0, x, tx, T).sum() == pytest.approx(s.holdout.sum(), rel=0.04)
    repeaters = (x >= 3).to_numpy()
    assert bgf.conditional_expected_purchases(26.0, x, tx, T)[repeaters].sum() == pytest.approx(
        s.holdout[repeaters].sum(), rel=0.05
    )


@pytest.mark.parametrize(
    "model, params, data",
    [
        (BetaGeoFitter, [0.4, 5.0, 0.9, 2.2], ([0, 1, 3, 12], [0, 4.5, 20.0, 38.0], [40.0, 39.0, 30.0, 40.0])),
        (GammaGammaFitter, [6.0, 3.5, 15.0], ([1, 2, 7], [12.0, 30.5, 80.0])),
    ],
)
def test_analytic_gradient_matches_finite_differences(model, params, data):
    cols = [np.asarray(c, dtype=float) for c in data]
    ll, grad = model._loglik_grad(np.array(params), *cols)
    for k in range(len(params)):
        step = np.array(params, dtype=float)
        h = 1e-6 * step[k]
        step[k] += h
        numeric = (model._loglik(step, *cols) - ll) / h
        assert grad[:, k] == pytest.approx(numeric, rel=1e-4, abs=1e-6), k


def test_bgnbd_predictions_behave():
    bgf = BetaGeoFitter().fit([0, 1, 2, 5, 0, 3, 10], [0, 5, 10, 30, 0, 20, 38], [40, 40, 40, 40, 30, 35, 39])
    assert bgf.expected_purchases(0) == pytest.approx(0)
    assert np.all(np.diff(bgf.expected_purchases([1, 10, 50, 100])) > 0)
    # Silence since the last purchase makes a customer less likely to be alive; no repeats = alive.
    assert bgf.p_alive(0, 0, 40) == 1
    assert bgf.p_alive(3, 35, 40) > bgf.p_alive(3, 5, 40)
    assert np.all(np.diff(bgf.conditional_expected_purchases([1, 5, 20], 3, 35, 40)) > 0)
    # Heavy buyers stay finite (log-space odds, not overflowing powers).
    big = bgf.conditional_expected_purchases(10, 2000, 39, 40)
    assert np.isfinite(big) and big > 0 and 0 <= bgf.p_alive(2000, 1, 40) < 1e-6


def test_gamma_gamma_shrinks_towards_the_population_mean():
    rng = np.random.default_rng(1)
    x = rng.integers(1, 10, 400)
    m = rng.gamma(6.0, 1 / rng.gamma(4.0, 1 / 15.0, 400)) + 0.01
    ggf = GammaGammaFitter().fit(x, m)
    pop = ggf.p_ * ggf.gamma_ / (ggf.q_ - 1)
    one, many = ggf.conditional_expected_average_spend([1, 50], [200.0, 200.0])
    assert pop < many < one or pop < one < many  # more purchases: closer to the customer's own mean
    assert abs(many - 200) < abs(one - 200)
    assert ggf.conditional_expected_average_spend(0, 0) == pytest.approx(pop)


def test_clv_is_discounted_expected_purchases_times_spend():
    bgf = BetaGeoFitter().fit([0, 1, 2, 5, 0, 3], [0, 5, 10, 30, 0, 20], [40, 40, 40, 40, 30, 35])
    x, tx, T, spend = np.array([2, 0]), np.array([10, 0]), np.array([40, 30]), np.array([25.0, 25.0])
    flat = customer_lifetime_value(bgf, x, tx, T, spend, horizon_months=12, discount_rate=0.0)
    weeks = 12 * 365.25 / 12 / 7
    assert flat == pytest.approx(bgf.conditional_expected_purchases(weeks, x, tx, T) * 25.0)
    discounted = customer_lifetime_value(bgf, x, tx, T, spend, horizon_months=12, discount_rate=0.02)
    longer = customer_lifetime_value(bgf, x, tx, T, spend, horizon_months=24, discount_rate=0.02)
    assert np.all(discounted < flat) and np.all(longer > discounted)


def test_unfitted_and_unfittable_models_say_so():
    with pytest.raises(NotFittedError, match="call fit"):
        BetaGeoFitter().p_alive(1, 1, 2)
    with pytest.raises(NotFittedError, match="call fit"):
        GammaGammaFitter().conditional_expected_average_spend(1, 1)
    with pytest.raises(FitError, match="at least one repeat customer"):
        BetaGeoFitter().fit([0, 0], [0, 0], [5, 5])
    with pytest.raises(FitError, match="recency must not exceed T"):
        BetaGeoFitter().fit([1, 0], [6, 0], [5, 5])
    with pytest.raises(FitError, match="too few repeat customers to fit: 1 of 3"):
        clv_from_transactions(TINY, customer="cust", date="day", amount="amount", calibration_end="2024-01-29")


def test_holdout_metrics():
    m = holdout_metrics([0, 2, 4], [1, 2, 3])
    assert m["mae"] == pytest.approx(2 / 3) and m["rmse"] == pytest.approx(np.sqrt(2 / 3))
    assert m["total_actual"] == 6 and m["total_predicted"] == 6 and m["correlation"] == pytest.approx(1.0)


# --- the CLI, as a user runs it --------------------------------------------------------------------


def cx360(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cx360", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def _synthetic_transactions(path, n: int = 60, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n):
        start = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 60)))
        for k in range(int(rng.integers(1, 6))):
            rows.append(
                (
                    f"c{c:03d}",
                    (start + pd.Timedelta(days=int(k * rng.integers(5, 40)))).date(),
                    round(float(rng.gamma(3, 10)), 2),
                )
            )
    pd.DataFrame(rows, columns=["client", "when", "paid"]).to_csv(path, index=False)


def test_cli_writes_one_row_per_customer_and_json_metrics(tmp_path):
    src, dst = tmp_path / "tx.csv", tmp_path / "clv.csv"
    _synthetic_transactions(src)
    pq = tmp_path / "tx.parquet"
    pd.read_csv(src).to_parquet(pq)
    result = cx360(
        "clv",
        str(pq),
        "--customer",
        "client",
        "--date",
        "when",
        "--amount",
        "paid",
        "--calibration-end",
        "2024-04-30",
        "--holdout-end",
        "2024-08-31",
        "--output",
        str(dst),
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["bgnbd"]) == {"r", "alpha", "a", "b", "log_likelihood"}
    assert set(report["gamma_gamma"]) == {"p", "q", "gamma", "log_likelihood"}
    assert set(report["holdout"]) == {"bgnbd", "naive_rate"} and "mae" in report["holdout"]["bgnbd"]
    out = pd.read_csv(dst)
    assert len(out) == report["customers"] == pd.read_csv(src).client.nunique()
    for col in (
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "expected_purchases",
        "p_alive",
        "expected_spend",
        "clv",
    ):
        assert out[col].notna().all(), col
    assert out.p_alive.between(0, 1).all() and (out.clv >= 0).all()
    table = cx360(
        "clv",
        str(src),
        "--customer",
        "client",
        "--date",
        "when",
        "--amount",
        "paid",
        "--calibration-end",
        "2024-04-30",
        "--output",
        str(dst),
    )
    assert table.returncode == 0, table.stderr
    assert "BG/NBD" in table.stdout and "total CLV, 12 months" in table.stdout
    # Nobody in this synthetic table ever drops out, and the user is told so.
    assert "no sign of customers dropping out" in " ".join(table.stderr.split())


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda df: df.drop(columns=["paid"]), "missing column(s) ['paid']"),
        (
            lambda df: df.assign(when=df["when"].where(df.index != 3, "31/02/2024")),
            "column 'when': 1 value(s) are not dates",
        ),
        (lambda df: df.assign(paid=df["paid"].where(df.index != 5, -4.0)), "column 'paid': 1 negative amount(s)"),
        (lambda df: df.head(4), "too few repeat customers to fit"),
    ],
)
def test_cli_bad_input_exits_1_with_a_clear_error(tmp_path, edit, message):
    src = tmp_path / "tx.csv"
    _synthetic_transactions(src)
    edit(pd.read_csv(src)).to_csv(src, index=False)
    result = cx360(
        "clv",
        str(src),
        "--customer",
        "client",
        "--date",
        "when",
        "--amount",
        "paid",
        "--calibration-end",
        "2024-04-30",
        "--output",
        str(tmp_path / "o.csv"),
    )
    assert result.returncode == 1
    assert message in " ".join(result.stderr.split())
    assert not (tmp_path / "o.csv").exists()

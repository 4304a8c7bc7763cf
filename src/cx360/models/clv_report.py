"""Customer lifetime value on a plain transactions table: summary, both fits, scores, holdout check.

This is what ``cx360 clv`` runs; the profile stage can call ``clv_from_transactions`` on a frame too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cx360.models.clv import (
    BetaGeoFitter,
    FitError,
    GammaGammaFitter,
    holdout_metrics,
    naive_holdout,
    score_frame,
)
from cx360.models.rfm import rfm_summary

# Below this many repeat customers the four BG/NBD and three Gamma-Gamma parameters are noise.
MIN_REPEAT_CUSTOMERS = 5
# Beyond this both dropout parameters only say "the data hold no dropout signal".
NO_DROPOUT = 1e4


@dataclass
class ClvReport:
    scores: pd.DataFrame
    bgnbd: BetaGeoFitter
    gamma_gamma: GammaGammaFitter
    customers: int
    repeat_customers: int
    frequency_spend_correlation: float
    seconds: float
    holdout: dict[str, dict[str, float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "customers": self.customers,
            "repeat_customers": self.repeat_customers,
            "bgnbd": {**self.bgnbd.params_, "log_likelihood": self.bgnbd.log_likelihood_},
            "gamma_gamma": {**self.gamma_gamma.params_, "log_likelihood": self.gamma_gamma.log_likelihood_},
            # Gamma-Gamma assumes spend does not depend on frequency; near 0 means the assumption holds.
            "frequency_spend_correlation": self.frequency_spend_correlation,
            "holdout": self.holdout,
            "fit_seconds": self.seconds,
            "warnings": self.warnings,
        }


def clv_from_transactions(
    transactions: pd.DataFrame,
    *,
    customer: str,
    date: str,
    amount: str,
    calibration_end,
    holdout_end=None,
    horizon_months: int = 12,
    discount_rate: float = 0.01,
    freq: str = "W",
) -> ClvReport:
    """Summarise, fit BG/NBD and Gamma-Gamma on the calibration period, score every customer."""
    if horizon_months < 1:
        raise FitError(f"horizon_months must be >= 1, got {horizon_months}")
    if not 0 <= discount_rate < 1:
        raise FitError(f"discount_rate is a monthly rate in [0, 1), got {discount_rate}")
    summary = rfm_summary(transactions, customer, date, amount, calibration_end, holdout_end, freq=freq)
    repeat = int((summary["frequency"] > 0).sum())
    if repeat < MIN_REPEAT_CUSTOMERS:
        raise FitError(
            f"too few repeat customers to fit: {repeat} of {len(summary)} bought again before "
            f"calibration_end; at least {MIN_REPEAT_CUSTOMERS} are needed (move calibration_end later)"
        )
    started = time.perf_counter()
    bgf = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    ggf = GammaGammaFitter().fit(summary["frequency"], summary["monetary_value"])
    seconds = time.perf_counter() - started
    scores = score_frame(summary, bgf, ggf, horizon_months=horizon_months, discount_rate=discount_rate, freq=freq)
    rep = summary[summary["frequency"] > 0]
    corr = (
        float(np.corrcoef(rep["frequency"], rep["monetary_value"])[0, 1])
        if rep["frequency"].nunique() > 1
        else float("nan")
    )
    report = ClvReport(scores, bgf, ggf, len(summary), repeat, corr, seconds)
    if min(bgf.a_, bgf.b_) > NO_DROPOUT:
        report.warnings.append(
            f"BG/NBD: the calibration data show no sign of customers dropping out (a={bgf.a_:.3g}, b={bgf.b_:.3g}); "
            "p_alive is ~1 for everyone and forecasts are those of a plain NBD (try a longer calibration period)"
        )
    if not np.isnan(corr) and abs(corr) > 0.3:
        report.warnings.append(
            f"Gamma-Gamma assumes spend does not depend on frequency, but their correlation is {corr:.2f}"
        )
    if holdout_end is not None:
        x, tx, T, d = summary["frequency"], summary["recency"], summary["T"], summary["duration_holdout"]
        actual = summary["frequency_holdout"]
        report.holdout = {
            "bgnbd": holdout_metrics(actual, bgf.conditional_expected_purchases(d, x, tx, T)),
            "naive_rate": holdout_metrics(actual, naive_holdout(x, T, d)),
        }
    return report

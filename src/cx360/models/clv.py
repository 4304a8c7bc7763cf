"""Customer lifetime value: BG/NBD for how often, Gamma-Gamma for how much, a discounted sum for both.

BG/NBD: Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science 24(2).
Gamma-Gamma: Fader & Hardie (2013), "The Gamma-Gamma model of monetary value" (note).
Both are fitted by maximum likelihood on log-parameters, with the analytic log-likelihoods written
with ``gammaln`` so that they stay finite for customers with many purchases.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, hyp2f1
from sklearn.base import BaseEstimator

from cx360.errors import FitError, NotFittedError

# Periods per month for the CLV horizon, by the unit the summary is measured in.
PERIODS_PER_MONTH = {"D": 365.25 / 12, "W": 365.25 / 12 / 7}


def _arrays(*columns) -> list[np.ndarray]:
    return [np.asarray(c, dtype=float) for c in columns]


def _distinct(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct customer histories and how many share each: the likelihood is evaluated once per history
    (day-level data repeat a lot: every one-time buyer of one day has the same row)."""
    rows, count = np.unique(np.column_stack(columns), axis=0, return_counts=True)
    return [rows[:, i] for i in range(rows.shape[1])], count.astype(float)


# Log-parameters stay within e^±20: wide enough for any real fit, and it stops the optimiser from
# wandering to infinity when the data carry no signal for a parameter (e.g. nobody ever drops out).
LOG_BOUND = 20.0


def _minimise(loglik_grad, count: np.ndarray, penalizer: float, x0: np.ndarray, what: str) -> tuple[np.ndarray, float]:
    """Maximise Σ count·loglik over log-parameters with L-BFGS-B and the analytic gradient; should it
    stop short (flat or rough likelihood), Nelder-Mead, which needs no gradient, finishes the job."""

    def negll(logp: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(logp)
        ll, grad = loglik_grad(params)
        value = -(count @ ll) + penalizer * float(params @ params)
        # d/d log θ = θ · d/dθ
        return value, -(count @ grad) * params + 2 * penalizer * params**2

    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(x0)
    with np.errstate(all="ignore"):
        res = minimize(
            negll,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 2000},
        )
        # L-BFGS-B often reports a failed line search at an optimum it cannot improve in float64:
        # only a gradient that is still clearly non-zero sends the fit to Nelder-Mead, on a budget
        # (a likelihood flat along a ridge, as with no dropout at all, would keep it going for long).
        if not res.success and np.max(np.abs(res.jac)) > 1e-3 * max(1.0, abs(res.fun)) ** 0.5:
            res = minimize(
                lambda v: negll(v)[0],
                res.x,
                method="Nelder-Mead",
                bounds=bounds,
                options={"xatol": 1e-8, "fatol": 1e-9, "maxiter": 600},
            )
    if not np.isfinite(res.fun):
        raise FitError(f"{what}: the likelihood is not finite at the optimum ({res.message})")
    return np.exp(res.x), -float(res.fun)


class BetaGeoFitter(BaseEstimator):
    """BG/NBD: purchases follow Poisson(λ), λ ~ Gamma(r, α); after each purchase a customer drops out
    with probability p, p ~ Beta(a, b). Inputs per customer: ``frequency`` (repeat purchases x),
    ``recency`` (t_x, time of the last purchase since the first) and ``T`` (age), in one time unit."""

    def __init__(self, *, penalizer: float = 0.0):
        self.penalizer = penalizer

    def fit(self, frequency, recency, T) -> BetaGeoFitter:
        x, tx, T = _arrays(frequency, recency, T)
        _check_rft(x, tx, T)
        x0 = np.log([1.0, max(float(T.mean()), 1e-3), 1.0, 1.0])
        (ux, utx, uT), count = _distinct(x, tx, T)
        params, _ = _minimise(lambda p: self._loglik_grad(p, ux, utx, uT), count, self.penalizer, x0, "BG/NBD")
        self.r_, self.alpha_, self.a_, self.b_ = (float(v) for v in params)
        self.log_likelihood_ = float(count @ self._loglik(params, ux, utx, uT))
        self.n_customers_ = int(x.size)
        return self

    @staticmethod
    def _mixture_terms(params, x, tx, T) -> tuple[np.ndarray, np.ndarray]:
        """ln of "alive at T" and of "left after the last purchase" (−inf for non-repeat customers,
        where that term does not exist; logaddexp then ignores it)."""
        r, alpha, a, b = params
        a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + tx)
        return a3, np.where(x > 0, a4, -np.inf)

    @classmethod
    def _loglik(cls, params, x, tx, T) -> np.ndarray:
        r, alpha, a, b = params
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        return a1 + a2 + np.logaddexp(*cls._mixture_terms(params, x, tx, T))

    @classmethod
    def _loglik_grad(cls, params, x, tx, T) -> tuple[np.ndarray, np.ndarray]:
        """Per-customer log-likelihood and its derivatives in (r, α, a, b)."""
        r, alpha, a, b = params
        ll = cls._loglik(params, x, tx, T)
        a3, a4 = cls._mixture_terms(params, x, tx, T)
        with np.errstate(divide="ignore", invalid="ignore"):
            w3 = np.exp(a3 - np.logaddexp(a3, a4))  # weights of the two terms of the mixture
            w4 = np.where(x > 0, 1 - w3, 0.0)
            inv_b = np.where(x > 0, 1 / np.maximum(b + x - 1, 1e-300), 0.0)
        grad = np.column_stack(
            [
                digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + T) - w4 * np.log(alpha + tx),
                r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + tx)),
                digamma(a + b) - digamma(a + b + x) + w4 / a,
                digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x) - w4 * inv_b,
            ]
        )
        return ll, grad

    @property
    def params_(self) -> dict[str, float]:
        self._check()
        return {"r": self.r_, "alpha": self.alpha_, "a": self.a_, "b": self.b_}

    def _check(self) -> None:
        if not hasattr(self, "r_"):
            raise NotFittedError("BetaGeoFitter is not fitted: call fit(frequency, recency, T) first")

    def expected_purchases(self, t) -> np.ndarray:
        """E[X(t)]: purchases a new customer makes in (0, t]."""
        self._check()
        r, alpha, a, b = self.r_, self.alpha_, self.a_, self.b_
        t = np.asarray(t, dtype=float)
        hyp = hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp)

    def _log_dropout_odds(self, x, tx, T) -> np.ndarray:
        """log of a/(b+x-1) · ((α+T)/(α+t_x))^(r+x): the odds that a repeat customer has already left."""
        r, alpha, a, b = self.r_, self.alpha_, self.a_, self.b_
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = (
                np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
            )
        return np.where(x > 0, odds, -np.inf)

    def p_alive(self, frequency, recency, T) -> np.ndarray:
        """P(still active | x, t_x, T)."""
        self._check()
        x, tx, T = _arrays(frequency, recency, T)
        return np.exp(-np.logaddexp(0.0, self._log_dropout_odds(x, tx, T)))

    def conditional_expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """E[Y(t) | x, t_x, T]: purchases in the next t periods of a customer with this history."""
        self._check()
        r, alpha, a, b = self.r_, self.alpha_, self.a_, self.b_
        x, tx, T = _arrays(frequency, recency, T)
        t = np.asarray(t, dtype=float)
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        head = (a + b + x - 1) / (a - 1)
        body = 1 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * hyp
        return head * body * np.exp(-np.logaddexp(0.0, self._log_dropout_odds(x, tx, T)))


class GammaGammaFitter(BaseEstimator):
    """Gamma-Gamma: each transaction's value ~ Gamma(p, ν), ν ~ Gamma(q, γ) across customers.
    Fitted on repeat customers only, with their mean value per repeat transaction."""

    def __init__(self, *, penalizer: float = 0.0):
        self.penalizer = penalizer

    def fit(self, frequency, monetary_value) -> GammaGammaFitter:
        x, m = _arrays(frequency, monetary_value)
        keep = x > 0
        x, m = x[keep], m[keep]
        if x.size < 2:
            raise FitError(f"Gamma-Gamma needs at least 2 repeat customers (frequency > 0), got {x.size}")
        if np.any(~np.isfinite(m)) or np.any(m <= 0):
            raise FitError("Gamma-Gamma needs a positive monetary value for every repeat customer")
        x0 = np.log([1.0, 1.0, max(float(m.mean()), 1e-3)])
        (ux, um), count = _distinct(x, m)
        params, _ = _minimise(lambda p: self._loglik_grad(p, ux, um), count, self.penalizer, x0, "Gamma-Gamma")
        self.p_, self.q_, self.gamma_ = (float(v) for v in params)
        self.log_likelihood_ = float(count @ self._loglik(params, ux, um))
        self.n_customers_ = int(x.size)
        return self

    @staticmethod
    def _loglik(params, x, m) -> np.ndarray:
        p, q, g = params
        px = p * x
        return (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(g)
            + (px - 1) * np.log(m)
            + px * np.log(x)
            - (px + q) * np.log(g + x * m)
        )

    @classmethod
    def _loglik_grad(cls, params, x, m) -> tuple[np.ndarray, np.ndarray]:
        """Per-customer log-likelihood and its derivatives in (p, q, γ)."""
        p, q, g = params
        px, spend = p * x, g + x * m
        grad = np.column_stack(
            [
                x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - np.log(spend)),
                digamma(px + q) - digamma(q) + np.log(g) - np.log(spend),
                q / g - (px + q) / spend,
            ]
        )
        return cls._loglik(params, x, m), grad

    @property
    def params_(self) -> dict[str, float]:
        self._check()
        return {"p": self.p_, "q": self.q_, "gamma": self.gamma_}

    def _check(self) -> None:
        if not hasattr(self, "p_"):
            raise NotFittedError("GammaGammaFitter is not fitted: call fit(frequency, monetary_value) first")

    def conditional_expected_average_spend(self, frequency, monetary_value) -> np.ndarray:
        """E[Z | z̄, x]: a weighted mean of the population mean pγ/(q-1) and the customer's own z̄."""
        self._check()
        p, q, g = self.p_, self.q_, self.gamma_
        x, m = _arrays(frequency, monetary_value)
        return p * (g + x * m) / (p * x + q - 1)


def customer_lifetime_value(
    bgf: BetaGeoFitter,
    frequency,
    recency,
    T,
    expected_spend,
    *,
    horizon_months: int = 12,
    discount_rate: float = 0.01,
    freq: str = "W",
) -> np.ndarray:
    """Σ_{m=1..M} (E[Y(m·k)] − E[Y((m−1)·k)]) · spend / (1+d)^m, with k periods per month."""
    if freq not in PERIODS_PER_MONTH:
        raise FitError(f"freq must be one of {sorted(PERIODS_PER_MONTH)}, got {freq!r}")
    k = PERIODS_PER_MONTH[freq]
    spend = np.asarray(expected_spend, dtype=float)
    total = np.zeros_like(spend)
    previous = np.zeros_like(spend)
    for month in range(1, horizon_months + 1):
        upto = bgf.conditional_expected_purchases(month * k, frequency, recency, T)
        total += (upto - previous) * spend / (1 + discount_rate) ** month
        previous = upto
    return total


def _check_rft(x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> None:
    if x.size < 2:
        raise FitError(f"BG/NBD needs at least 2 customers, got {x.size}")
    for name, v in (("frequency", x), ("recency", tx), ("T", T)):
        if np.any(~np.isfinite(v)) or np.any(v < 0):
            raise FitError(f"BG/NBD: {name} must be finite and >= 0")
    if np.any(tx > T + 1e-9):
        raise FitError("BG/NBD: recency must not exceed T")
    if not np.any(x > 0):
        raise FitError("BG/NBD needs at least one repeat customer (frequency > 0)")


def holdout_metrics(actual, predicted) -> dict[str, float]:
    """Per-customer MAE/RMSE, totals and Pearson correlation of holdout purchases."""
    y, p = _arrays(actual, predicted)
    corr = float(np.corrcoef(y, p)[0, 1]) if y.size > 1 and y.std() > 0 and p.std() > 0 else float("nan")
    return {
        "mae": float(np.mean(np.abs(y - p))),
        "rmse": float(np.sqrt(np.mean((y - p) ** 2))),
        "total_actual": float(y.sum()),
        "total_predicted": float(p.sum()),
        "correlation": corr,
    }


def naive_holdout(frequency, T, duration) -> np.ndarray:
    """Baseline: each customer keeps repeating at their calibration rate x / T."""
    x, T, d = _arrays(frequency, T, duration)
    return np.where(T > 0, x / np.where(T > 0, T, 1) * d, 0.0)


def score_frame(
    summary: pd.DataFrame,
    bgf: BetaGeoFitter,
    ggf: GammaGammaFitter,
    *,
    horizon_months: int,
    discount_rate: float,
    freq: str,
) -> pd.DataFrame:
    """Per-customer predictions over a summary from ``rfm_summary``."""
    x, tx, T, m = summary["frequency"], summary["recency"], summary["T"], summary["monetary_value"]
    k = PERIODS_PER_MONTH[freq] * horizon_months
    out = summary.copy()
    out["expected_purchases"] = bgf.conditional_expected_purchases(k, x, tx, T)
    out["p_alive"] = bgf.p_alive(x, tx, T)
    out["expected_spend"] = ggf.conditional_expected_average_spend(x, m.where(x > 0, 0.0))
    out["clv"] = customer_lifetime_value(
        bgf, x, tx, T, out["expected_spend"], horizon_months=horizon_months, discount_rate=discount_rate, freq=freq
    )
    return out

"""Quality of a probability on held-out rows, and the simple baseline it is judged against."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from cx360.errors import DataError

# A column named like this is the baseline whatever its strength: recency is what a team already uses.
RECENCY = re.compile(r"recency|days_since", re.IGNORECASE)


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC (average precision), Brier score, top-decile lift and the base rate."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    if len(np.unique(y)) < 2:
        raise DataError("metrics need both churners and non-churners in the table; found one class only")
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "top_decile_lift": top_decile_lift(y, p),
        "base_rate": float(y.mean()),
        "rows": len(y),
    }


def top_decile_lift(y: np.ndarray, p: np.ndarray) -> float:
    """Churn rate among the 10% highest scores over the overall churn rate (ties broken by row order)."""
    n = max(1, round(len(y) * 0.1))
    top = np.argsort(-p, kind="stable")[:n]
    return float(y[top].mean() / y.mean())


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    """Deciles of the predicted probability: rows, mean predicted, observed churn rate."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    rows = []
    for i, idx in enumerate(np.array_split(order, bins), start=1):
        if len(idx):
            rows.append(
                {"decile": i, "rows": len(idx), "predicted": float(p[idx].mean()), "observed": float(y[idx].mean())}
            )
    return rows


class Baseline(BaseEstimator):
    """A one-feature logistic model: the recency column if there is one, else the single most predictive
    feature on the training rows (a category is read as its training churn rate)."""

    STATE = ("feature", "why", "center", "scale", "fill", "coef", "intercept", "rates")

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Baseline:
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score

        y = np.asarray(y, dtype=int)
        recency = [c for c in X.columns if RECENCY.search(c) and not isinstance(X[c].dtype, pd.CategoricalDtype)]
        if recency:
            feature, why, rates = recency[0], "named like recency", None
        else:
            best = -1.0
            for c in X.columns:
                r = _rates(X[c], y)
                x = _raw(X, c, r)
                x = np.where(np.isnan(x), np.nanmedian(x) if np.isfinite(x).any() else 0.0, x)
                strength = abs(roc_auc_score(y, x) - 0.5) if np.unique(x).size > 1 else 0.0
                if strength > best:
                    best, feature, rates = strength, c, r
            why = f"most predictive single feature on the training rows (AUC {0.5 + best:.3f})"
        self.feature_, self.why_ = feature, why
        self.rates_ = rates if isinstance(X[feature].dtype, pd.CategoricalDtype) else None
        x = _raw(X, self.feature_, self.rates_)
        self.fill_ = float(np.nanmedian(x)) if np.isfinite(x).any() else 0.0
        x = np.where(np.isnan(x), self.fill_, x)
        self.center_, self.scale_ = float(x.mean()), float(x.std() or 1.0)
        lr = LogisticRegression().fit(((x - self.center_) / self.scale_).reshape(-1, 1), y)
        self.coef_, self.intercept_ = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """P(churn) per row (one column: this baseline is only ever compared on that probability)."""
        x = _raw(X, self.feature_, self.rates_)
        x = (np.where(np.isnan(x), self.fill_, x) - self.center_) / self.scale_
        return 1.0 / (1.0 + np.exp(-(self.coef_ * x + self.intercept_)))

    def to_dict(self) -> dict:
        """The learned state under the names a saved churn model has always used."""
        return {k: getattr(self, k + "_") for k in self.STATE}

    @classmethod
    def from_dict(cls, state: dict) -> Baseline:
        model = cls()
        for k in cls.STATE:
            setattr(model, k + "_", state[k])
        return model


def _raw(X: pd.DataFrame, feature: str, rates: dict | None) -> np.ndarray:
    values = X[feature]
    if rates is not None:
        return values.astype(object).map(rates).astype("float64").to_numpy()
    return values.astype("float64").to_numpy()


def _rates(values: pd.Series, y: np.ndarray) -> dict | None:
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return None
    frame = pd.DataFrame({"v": values.astype(object), "y": y}).dropna()
    return {str(k): float(v) for k, v in frame.groupby("v")["y"].mean().items()}

"""Quality of a probability on held-out rows, and the simple baseline it is judged against."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

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
            rows.append({"decile": i, "rows": len(idx), "predicted": float(p[idx].mean()),
                         "observed": float(y[idx].mean())})
    return rows


@dataclass
class Baseline:
    """A one-feature logistic model: the recency column if there is one, else the single most predictive
    feature on the training rows (a category is read as its training churn rate)."""

    feature: str = ""
    why: str = ""
    center: float = 0.0
    scale: float = 1.0
    fill: float = 0.0
    coef: float = 0.0
    intercept: float = 0.0
    rates: dict | None = None  # category -> training churn rate, for a categorical feature

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Baseline:
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score

        y = np.asarray(y, dtype=int)
        recency = [c for c in X.columns if RECENCY.search(c) and not isinstance(X[c].dtype, pd.CategoricalDtype)]
        if recency:
            self.feature, self.why = recency[0], "named like recency"
        else:
            best = -1.0
            for c in X.columns:
                self.feature, self.rates = c, _rates(X[c], y)
                x = self._raw(X)
                x = np.where(np.isnan(x), np.nanmedian(x) if np.isfinite(x).any() else 0.0, x)
                strength = abs(roc_auc_score(y, x) - 0.5) if np.unique(x).size > 1 else 0.0
                if strength > best:
                    best, chosen, chosen_rates = strength, c, self.rates
            self.feature, self.rates = chosen, chosen_rates
            self.why = f"most predictive single feature on the training rows (AUC {0.5 + best:.3f})"
        if not isinstance(X[self.feature].dtype, pd.CategoricalDtype):
            self.rates = None
        x = self._raw(X)
        self.fill = float(np.nanmedian(x)) if np.isfinite(x).any() else 0.0
        x = np.where(np.isnan(x), self.fill, x)
        self.center, self.scale = float(x.mean()), float(x.std() or 1.0)
        lr = LogisticRegression().fit(((x - self.center) / self.scale).reshape(-1, 1), y)
        self.coef, self.intercept = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        x = self._raw(X)
        x = (np.where(np.isnan(x), self.fill, x) - self.center) / self.scale
        return 1.0 / (1.0 + np.exp(-(self.coef * x + self.intercept)))

    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        values = X[self.feature]
        if self.rates is not None:
            return values.astype(object).map(self.rates).astype("float64").to_numpy()
        return values.astype("float64").to_numpy()


def _rates(values: pd.Series, y: np.ndarray) -> dict | None:
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return None
    frame = pd.DataFrame({"v": values.astype(object), "y": y}).dropna()
    return {str(k): float(v) for k, v in frame.groupby("v")["y"].mean().items()}

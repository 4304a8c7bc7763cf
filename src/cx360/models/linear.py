"""A regularised logistic regression on `TablePrep` features, as plain JSON state.

Numbers are standardised (a missing value takes the training median and a 0/1 indicator column of its
own); categories become one column per training category (an unseen or missing one is all zeros). The
L2 strength is chosen by cross-validated log-loss. A feature's contribution to a customer's log-odds is
its coefficients times the customer's design values less their training means, so contributions sum to
the log-odds less their training average, as LightGBM's SHAP values do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

# L2 strengths tried (inverse, as scikit-learn's C); standardised features keep one grid valid for any table.
C_GRID = (0.01, 0.1, 1.0, 10.0)


@dataclass
class LinearChurn:
    """State of a fitted logistic regression: how to build its design matrix, and its coefficients."""

    columns: list[str] = field(default_factory=list)  # design column names, "feature" or "feature=category"
    owners: list[str] = field(default_factory=list)  # the feature each design column belongs to
    center: dict[str, float] = field(default_factory=dict)  # numeric feature -> training mean (after filling)
    scale: dict[str, float] = field(default_factory=dict)
    fill: dict[str, float] = field(default_factory=dict)  # numeric feature -> training median
    categories: dict[str, list[str]] = field(default_factory=dict)
    coef: list[float] = field(default_factory=list)
    intercept: float = 0.0
    means: list[float] = field(default_factory=list)  # training mean of each design column
    C: float = 1.0

    @classmethod
    def fit(cls, features: pd.DataFrame, y: np.ndarray, *, seed: int = 0) -> LinearChurn:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_score

        model = cls()
        for name in features.columns:
            values = features[name]
            if isinstance(values.dtype, pd.CategoricalDtype):
                model.categories[name] = [str(c) for c in values.cat.categories]
                continue
            x = values.astype("float64")
            median = float(np.nanmedian(x)) if x.notna().any() else 0.0
            filled = x.fillna(median)
            model.fill[name] = median
            model.center[name] = float(filled.mean())
            model.scale[name] = float(filled.std(ddof=0)) or 1.0
        design = model.design(features, fitting=True)
        folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
        loss = {
            c: cross_val_score(
                LogisticRegression(C=c, solver="newton-cholesky"), design, y, cv=folds, scoring="neg_log_loss"
            ).mean()
            for c in C_GRID
        }
        model.C = max(C_GRID, key=loss.get)
        lr = LogisticRegression(C=model.C, solver="newton-cholesky").fit(design, y)
        model.coef = lr.coef_[0].tolist()
        model.intercept = float(lr.intercept_[0])
        model.means = design.mean(axis=0).tolist()
        return model

    def design(self, features: pd.DataFrame, *, fitting: bool = False) -> np.ndarray:
        """The design matrix; at fit it also records the column names and their features."""
        blocks, names, owners = [], [], []
        for name in features.columns:
            values = features[name]
            if name in self.categories:
                text = values.astype("string")
                for category in self.categories[name]:
                    blocks.append((text == category).fillna(False).to_numpy(dtype=float))
                    names.append(f"{name}={category}")
                    owners.append(name)
                continue
            x = values.astype("float64")
            missing = x.isna().to_numpy()
            blocks.append(((x.fillna(self.fill[name]) - self.center[name]) / self.scale[name]).to_numpy())
            names.append(name)
            owners.append(name)
            if (fitting and missing.any()) or (not fitting and f"{name}:missing" in self.columns):
                blocks.append(missing.astype(float))
                names.append(f"{name}:missing")
                owners.append(name)
        if fitting:
            self.columns, self.owners = names, owners
        return np.column_stack(blocks) if blocks else np.zeros((len(features), 0))

    def raw(self, features: pd.DataFrame) -> np.ndarray:
        """Log-odds of churn."""
        return self.design(features) @ np.asarray(self.coef) + self.intercept

    def contributions(self, features: pd.DataFrame, names: list[str]) -> np.ndarray:
        """Rows x `names`: each feature's push on the log-odds against the training average."""
        terms = (self.design(features) - np.asarray(self.means)) * np.asarray(self.coef)
        out = np.zeros((len(features), len(names)))
        index = {n: i for i, n in enumerate(names)}
        for j, owner in enumerate(self.owners):
            out[:, index[owner]] += terms[:, j]
        return out

    def strongest(self, k: int = 5) -> list[str]:
        """The design columns with the largest coefficients, as `name (+0.83)`: what the model leans on."""
        order = np.argsort(-np.abs(np.asarray(self.coef)), kind="stable")[:k]
        return [f"{self.columns[j]} ({self.coef[j]:+.2f})" for j in order]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LinearChurn:
        return cls(**data)

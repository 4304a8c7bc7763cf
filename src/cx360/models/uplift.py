"""Uplift of a binary outcome: how much more likely it is with the treatment (an offer, an e-mail)
than without, per person, learnt from a randomised experiment with a control group.

A T-learner: one gradient-boosted classifier on the treated, one on the controls; the uplift is the
difference of their calibrated probabilities. Ranking by uplift rather than by propensity targets the
people an action changes, not those who would have answered anyway.
"""

from __future__ import annotations

import numpy as np

from cx360.errors import FitError, NotFittedError


class UpliftModel:
    """fit(X, treatment, y) -> self; predict(X) -> uplift (treated probability minus control probability)."""

    def __init__(self, *, max_iter: int = 150, learning_rate: float = 0.05, max_depth: int = 3, seed: int = 0):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.seed = seed

    def _learner(self):
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            min_samples_leaf=100,
            random_state=self.seed,
        )

    def fit(self, X, treatment, y) -> UpliftModel:
        X, t, y = np.asarray(X, dtype=float), np.asarray(treatment).astype(bool), np.asarray(y).astype(int)
        for name, part in (("treated", t), ("control", ~t)):
            labels = set(np.unique(y[part]))
            if part.sum() < 100 or labels != {0, 1}:
                raise FitError(f"uplift: the {name} group needs at least 100 rows with both outcomes")
        self.treated_ = self._learner().fit(X[t], y[t])
        self.control_ = self._learner().fit(X[~t], y[~t])
        return self

    def predict(self, X) -> np.ndarray:
        if not hasattr(self, "treated_"):
            raise NotFittedError("uplift: call fit first")
        X = np.asarray(X, dtype=float)
        return self.treated_.predict_proba(X)[:, 1] - self.control_.predict_proba(X)[:, 1]

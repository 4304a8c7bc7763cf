"""`CallReasonModel`: the likely reasons of a call from what happened before it, with the features
that speak for each reason (multinomial logistic regression on standardised features, so that a
reason's evidence is the features whose weight times value raise it most)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from cx360.calls import features
from cx360.errors import DataError, StageNotRunError

MODEL_FILE = "model.json"


class CallReasonModel(ClassifierMixin, BaseEstimator):
    """Fit on (families of the events before each call, the call's reason code)."""

    def __init__(self, *, C: float = 0.5, min_family_calls: int = 5, max_iter: int = 2000):
        self.C = C
        self.min_family_calls = min_family_calls
        self.max_iter = max_iter

    def fit(self, fam: pd.DataFrame, keys: list, y) -> CallReasonModel:
        """`fam` from `features.families`; `keys` the calls, `y` their reason codes in the same order."""
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        y = np.asarray(y, dtype=object)
        if len(keys) != len(y):
            raise DataError(f"calls and reasons differ in length: {len(keys)} and {len(y)}")
        if len(set(y)) < 2:
            raise DataError(f"a call-reason model needs calls with at least two reasons; got {sorted(set(y))}")
        seen = fam.drop_duplicates(["key", "family"]).family.value_counts()
        self.vocabulary_ = sorted(seen[seen >= self.min_family_calls].index)
        x = features.matrix(fam, list(keys), self.vocabulary_)
        self.mean_ = x.mean(axis=0)
        self.scale_ = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        lr = LogisticRegression(C=self.C, max_iter=self.max_iter)
        with threadpool_limits(1):  # a small problem: BLAS threads only contend (ten times slower on 2 cores)
            lr.fit((x - self.mean_) / self.scale_, y)
        self.classes_ = np.asarray(lr.classes_, dtype=object)
        self.coef_ = lr.coef_ if len(self.classes_) > 2 else np.vstack([-lr.coef_[0], lr.coef_[0]])
        self.intercept_ = lr.intercept_ if len(self.classes_) > 2 else np.array([-lr.intercept_[0], lr.intercept_[0]])
        return self

    def _check(self) -> None:
        if not hasattr(self, "coef_"):
            raise StageNotRunError("the call-reason model is not fitted", stage="calls", command="cx360 calls train")

    def _scaled(self, raw: np.ndarray) -> np.ndarray:
        return (raw - self.mean_) / self.scale_

    def _proba(self, scaled: np.ndarray) -> np.ndarray:
        z = scaled @ self.coef_.T + self.intercept_
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict_proba(self, fam, keys: list) -> np.ndarray:
        self._check()
        return self._proba(self._scaled(features.matrix(fam, list(keys), self.vocabulary_)))

    def predict(self, fam, keys: list) -> np.ndarray:
        return self.classes_[self.predict_proba(fam, keys).argmax(axis=1)]

    def top(self, fam, keys: list, k: int = 3) -> list[list[tuple[str, float, list[str]]]]:
        """Per key, the k likeliest reasons: (reason, probability, the families that raise it most)."""
        self._check()
        raw = features.matrix(fam, list(keys), self.vocabulary_)
        x = self._scaled(raw)
        proba = self._proba(x)
        v = len(self.vocabulary_)
        present = raw[:, -v:] > 0  # the recency block: the family was seen in the lookback
        out = []
        for i in range(len(keys)):
            best = np.argsort(-proba[i], kind="stable")[:k]
            rows = []
            for c in best:
                # contribution of each family: its features' weight x value, summed, for families present
                contrib = (self.coef_[c] * x[i]).reshape(-1, v).sum(axis=0)
                order = [j for j in np.argsort(-contrib, kind="stable") if present[i, j] and contrib[j] > 0][:2]
                order = [j for j in order if contrib[j] >= max(0.1, 0.3 * contrib[order[0]])]  # drop weak ones
                rows.append((str(self.classes_[c]), float(proba[i, c]), [self.vocabulary_[j] for j in order]))
            out.append(rows)
        return out

    # -- persistence: plain JSON, readable and without pickle -------------------------------------
    def save(self, path: Path, card: dict | None = None) -> None:
        self._check()
        path.mkdir(parents=True, exist_ok=True)
        doc = {
            "params": self.get_params(),
            "vocabulary": self.vocabulary_,
            "classes": [str(c) for c in self.classes_],
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_.tolist(),
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "card": card or {},
        }
        tmp = path / (MODEL_FILE + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")
        tmp.replace(path / MODEL_FILE)

    @classmethod
    def load(cls, path: Path) -> CallReasonModel:
        file = path / MODEL_FILE
        if not file.exists():
            raise StageNotRunError(
                f"no call-reason model at {file}", stage="calls", command=f"cx360 calls train -w {path.parent.parent}"
            )
        doc = json.loads(file.read_text(encoding="utf-8"))
        model = cls(**doc["params"])
        model.vocabulary_ = doc["vocabulary"]
        model.classes_ = np.asarray(doc["classes"], dtype=object)
        model.coef_ = np.asarray(doc["coef"])
        model.intercept_ = np.asarray(doc["intercept"])
        model.mean_ = np.asarray(doc["mean"])
        model.scale_ = np.asarray(doc["scale"])
        model.card_ = doc.get("card", {})
        return model

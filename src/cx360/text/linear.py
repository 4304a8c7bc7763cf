"""One language's trained sentiment classifier: hashed n-grams (+ dense features) -> logistic regression.

Saved as a plain ``.npz`` of arrays (idf, weights, scaling, classes, temperature), not a pickle: loading
runs no code and does not depend on the scikit-learn version that trained it. The temperature
(:mod:`cx360.text.calibration`) is set by the training script from cross-validated predictions; a model
saved without one has 1.0, i.e. uncalibrated probabilities.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from cx360.errors import Cx360Error
from cx360.text import features
from cx360.text.calibration import softmax


class LinearTextModel(BaseEstimator):
    """Multinomial (or binary) logistic regression over :mod:`cx360.text.features`."""

    def __init__(self, *, language: str, C: float = 4.0, dense_weight: float = 1.0, seed: int = 0):
        self.language = language
        self.C = C
        self.dense_weight = dense_weight
        self.seed = seed

    def _matrix(self, texts: list[str]) -> sp.csr_matrix:
        x = features.tfidf(features.counts(self.language, texts), self.idf_)
        d = features.dense(self.language, texts)
        if d is None:
            return x
        d = (d - self.dense_mean_) / self.dense_scale_ * self.dense_weight
        return sp.hstack([x, sp.csr_matrix(d.astype(np.float32))], format="csr")

    def fit(self, texts: list[str], labels: list[str]) -> LinearTextModel:
        from sklearn.linear_model import LogisticRegression

        texts = list(texts)
        self.idf_ = features.fit_idf(features.counts(self.language, texts))
        d = features.dense(self.language, texts)
        if d is not None:
            self.dense_mean_ = d.mean(axis=0)
            scale = d.std(axis=0)
            self.dense_scale_ = np.where(scale > 0, scale, 1.0).astype(np.float32)
        clf = LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed)
        clf.fit(self._matrix(texts), np.asarray(labels))
        self.classes_ = clf.classes_.astype(str)
        self.coef_ = clf.coef_.astype(np.float32)
        self.intercept_ = clf.intercept_.astype(np.float32)
        return self

    def logits(self, texts: list[str]) -> np.ndarray:
        """One column per class in ``classes_`` order (binary: 0 for the first class, the score for the second)."""
        if not hasattr(self, "coef_"):
            raise Cx360Error(f"the {self.language} sentiment model is not fitted: call fit() or load()")
        if len(texts) == 0:
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        z = np.asarray(self._matrix(list(texts)) @ self.coef_.T) + self.intercept_
        if len(self.classes_) == 2:  # binary: one weight vector for the second class
            return np.column_stack([np.zeros(len(z), dtype=z.dtype), z[:, 0]])
        return z

    def predict_proba(self, texts: list[str], *, calibrated: bool = True) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order; divided by the fitted temperature unless
        ``calibrated=False``. Very short texts ("ок", "好") have a temperature of their own: a word or
        two is little evidence, yet their raw probabilities are as extreme as a paragraph's."""
        z = self.logits(texts)
        if not calibrated:
            return softmax(z)
        short = features.is_short(self.language, list(texts))
        t = np.where(short, getattr(self, "temperature_short_", 1.0), getattr(self, "temperature_", 1.0))
        return softmax(z / t[:, None])

    def save(self, path: Path) -> None:
        arrays = {
            "idf": self.idf_,
            "coef": self.coef_,
            "intercept": self.intercept_,
            "classes": np.asarray(self.classes_),
            "language": np.asarray(self.language),
            "dense_weight": np.asarray(self.dense_weight, dtype=np.float32),
            "temperature": np.asarray(getattr(self, "temperature_", 1.0), dtype=np.float32),
            "temperature_short": np.asarray(getattr(self, "temperature_short_", 1.0), dtype=np.float32),
            "keep_above": np.asarray(getattr(self, "keep_above_", 0.0), dtype=np.float32),
        }
        if hasattr(self, "dense_mean_"):
            arrays |= {"dense_mean": self.dense_mean_, "dense_scale": self.dense_scale_}
        # Most hash buckets are unused: store weights sparse-friendly by letting compression squeeze zeros.
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: Path | str) -> LinearTextModel:
        with np.load(path, allow_pickle=False) as z:
            m = cls(language=str(z["language"]), dense_weight=float(z["dense_weight"]))
            m.idf_, m.coef_, m.intercept_ = z["idf"], z["coef"], z["intercept"]
            m.classes_ = z["classes"].astype(str)
            m.temperature_ = float(z["temperature"]) if "temperature" in z else 1.0
            m.temperature_short_ = float(z["temperature_short"]) if "temperature_short" in z else 1.0
            # the confidence above which a question keeps its polar tone (cx360.text.service); 0: rules off
            m.keep_above_ = float(z["keep_above"]) if "keep_above" in z else 0.0
            if "dense_mean" in z:
                m.dense_mean_, m.dense_scale_ = z["dense_mean"], z["dense_scale"]
        return m

"""Sentiment (negative / neutral / positive, with a confidence) behind one small interface.

A backend scores texts of one language at a time; :meth:`SentimentBackend.score` groups a mixed batch
by language. Texts in languages a backend does not cover get no label (None) and confidence NaN,
rather than a guess.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from cx360.errors import ConfigError
from cx360.text import lexicons, service

LABELS = ("negative", "neutral", "positive")
SIGN = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}


@dataclass
class Scores:
    labels: np.ndarray  # object array of "negative" / "neutral" / "positive" / None
    confidence: np.ndarray  # float, NaN where no label


class SentimentBackend(ABC):
    """What every sentiment backend provides."""

    name: str = ""
    languages: tuple[str, ...] = ("ru", "en", "zh")

    @abstractmethod
    def predict(self, texts: list[str], language: str) -> tuple[np.ndarray, np.ndarray]:
        """Labels and confidences for texts that are all in ``language``."""

    def score(self, texts: Sequence[str | None], languages: Sequence[str]) -> Scores:
        n = len(texts)
        labels = np.full(n, None, dtype=object)
        conf = np.full(n, np.nan)
        langs = np.asarray(languages, dtype=object)
        for lang in self.languages:
            idx = np.flatnonzero(langs == lang)
            if idx.size:
                lab, c = self.predict([texts[i] for i in idx], lang)
                labels[idx], conf[idx] = lab, c
        return Scores(labels, conf)


class TrainedSentiment(SentimentBackend):
    """The classifiers shipped in ``cx360/text/models`` (trained by scripts/train_sentiment.py).

    Probabilities are calibrated by each model's temperature (``calibrated=False``: raw). The Chinese
    training data has only two classes, so a text whose positive probability lies within
    ``zh_neutral_band`` of 0.5 is called neutral. With ``service_rules`` (the default) a question,
    request or polite refusal is neutral unless the model is sure of its tone (:mod:`cx360.text.service`,
    threshold stored in the model file).
    """

    name = "trained"

    def __init__(self, *, zh_neutral_band: float = 0.15, calibrated: bool = True, service_rules: bool = True):
        self.zh_neutral_band = zh_neutral_band
        self.calibrated = calibrated
        self.service_rules = service_rules

    def predict(self, texts: list[str], language: str) -> tuple[np.ndarray, np.ndarray]:
        model = load_model(language)
        proba = model.predict_proba(texts, calibrated=self.calibrated)
        if len(model.classes_) == 2:
            p = proba[:, list(model.classes_).index("positive")]
            labels = np.where(p >= 0.5, "positive", "negative").astype(object)
            conf = np.maximum(p, 1.0 - p)
            neutral = np.abs(p - 0.5) < self.zh_neutral_band
            labels[neutral] = "neutral"
            conf[neutral] = 1.0 - 2.0 * np.abs(p[neutral] - 0.5)
        else:
            best = proba.argmax(axis=1)
            labels, conf = model.classes_[best].astype(object), proba[np.arange(len(texts)), best]
        if self.service_rules:
            labels, conf = service.neutralise(texts, language, labels, conf, keep_above=model.keep_above_)
        return labels, conf


@cache
def load_model(language: str):
    """A shipped model, loaded once per process."""
    from cx360.text.linear import LinearTextModel

    path = resources.files("cx360.text") / "models" / f"{language}.npz"
    with resources.as_file(path) as p:
        if not p.exists():
            raise ConfigError(f"no shipped sentiment model for {language!r} at {p}: run scripts/train_sentiment.py")
        return LinearTextModel.load(p)


class LexiconSentiment(SentimentBackend):
    """Word lists: VADER for English (compound >= 0.05 positive, <= -0.05 negative, its authors'
    thresholds); cx360's own lists for Russian and Chinese (:mod:`cx360.text.lexicons`)."""

    name = "lexicon"

    def predict(self, texts: list[str], language: str) -> tuple[np.ndarray, np.ndarray]:
        if language == "en":
            vader = lexicons.vader()
            s = np.array([vader.polarity_scores(t)["compound"] for t in texts])
            labels = np.where(s >= 0.05, "positive", np.where(s <= -0.05, "negative", "neutral")).astype(object)
            return labels, np.where(labels == "neutral", 1.0 - np.abs(s) * 10, 0.5 + np.abs(s) / 2)
        count = lexicons.ru_counts if language == "ru" else lexicons.zh_counts
        pn = np.array([count(t) for t in texts], dtype=float).reshape(-1, 2)
        d = pn[:, 0] - pn[:, 1]
        labels = np.where(d > 0, "positive", np.where(d < 0, "negative", "neutral")).astype(object)
        # Heuristic confidence: grows with the margin; a tie with hits on both sides is less sure.
        conf = np.where(d != 0, 0.5 + 0.5 * np.tanh(np.abs(d)), np.where(pn[:, 0] > 0, 0.4, 0.5))
        return labels, conf

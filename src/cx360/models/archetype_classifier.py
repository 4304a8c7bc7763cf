"""Digital archetypes learned from people whose survey answers label them.

A segmentation survey (the questionnaire that places a respondent in one of the six archetypes)
labels only its respondents. A gradient-boosted classifier learns, from the behaviour every profile
has (app and web use, logins, devices, self-service, consents), which archetype such behaviour
belongs to, and is applied to everyone. Classes are weighted by their inverse frequency, so that the
rare archetypes (paranoids, chameleons, nomads) are not swallowed by the common ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from cx360.errors import DataError
from cx360.models.archetypes import ARCHETYPES

# What every profile has, respondent or not: a survey's own answers (and the rules' scores, which
# weigh them) exist only for the people who answered, so a model that leans on them misreads the
# others (on the demo bank, macro recall 0.43 against 0.54 for the never-surveyed).
FEATURES = (
    "app_events_90d",
    "web_events_90d",
    "logins_90d",
    "active_days_90d",
    "forms_started",
    "devices",
    "digital_channels",
    "consent_share",
)
MIN_LABELS = 20  # fewer labelled people than this: the rules decide


def features(frame: pd.DataFrame) -> pd.DataFrame:
    """The classifier's inputs from a frame of traits; an absent column is a missing value."""
    out = pd.DataFrame(index=frame.index)
    for column in FEATURES:
        values = frame[column] if column in frame else pd.Series(np.nan, index=frame.index)
        out[column] = pd.to_numeric(values, errors="coerce").astype(float)
    return out


class ArchetypeClassifier:
    """fit(traits, labels) -> self; predict(traits) -> archetype names."""

    def __init__(self, *, max_iter: int = 200, learning_rate: float = 0.08, seed: int = 0):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.seed = seed

    def fit(self, traits: pd.DataFrame, labels: pd.Series) -> ArchetypeClassifier:
        labels = pd.Series(labels, index=traits.index)
        unknown = sorted(set(labels.dropna()) - set(ARCHETYPES))
        if unknown:
            raise DataError(f"unknown archetype label(s) {unknown}; labels are {', '.join(ARCHETYPES)}")
        known = labels.notna()
        if known.sum() < MIN_LABELS or labels[known].nunique() < 2:
            raise DataError(
                f"{int(known.sum())} labelled people in {labels[known].nunique()} archetype(s): "
                f"at least {MIN_LABELS} in two archetypes are needed to learn from"
            )
        y = labels[known].to_numpy()
        counts = pd.Series(y).value_counts()
        weight = pd.Series(y).map(len(y) / (len(counts) * counts)).to_numpy()
        x = features(traits[known])
        self.columns_ = [c for c in x.columns if x[c].notna().any()]  # a signal nobody has teaches nothing
        model = HistGradientBoostingClassifier(
            max_iter=self.max_iter, learning_rate=self.learning_rate, random_state=self.seed
        )
        with threadpool_limits(1):  # a few thousand rows: OpenMP threads cost more than they give
            self.model_ = model.fit(x[self.columns_], y, sample_weight=weight)
        self.labels_ = int(known.sum())
        return self

    def predict(self, traits: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise DataError("the archetype classifier is not fitted: call fit first")
        if not len(traits):
            return np.array([], dtype=object)
        with threadpool_limits(1):
            return self.model_.predict(features(traits)[self.columns_]).astype(object)

"""Propensity to accept an offer, from the marketing automation's history (offer made, accepted,
rejected, ignored), calibrated, with the reasons behind each score.

Every past contact is a training row whose features are known *before* it: the person's earlier
acceptance rate, their earlier acceptance on that channel and in that part of the day (each shrunk
towards everyone's), how often they were contacted, which offer and which channel; and, weighed per
offer, how the person spends (cx360.decisions.portrait: a snapshot at the decision's as_of). The model
is a logistic regression, calibrated by cross-validation (sigmoid); reasons are its largest
contributions for the person against an average contact of the offer. Quality is measured on the
latest contacts, held out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cx360.decisions import portrait
from cx360.errors import NotFittedError, TrainingDataError

ACCEPTED = "offer_accepted"
PRIOR = 5.0  # contacts' weight of everyone's rate in a person's shrunk rate
FEATURES = ("prior_rate", "channel_rate", "daypart_rate", "channel_share", "active_near", "log_contacts")
LABELS = {
    "prior_rate": "accepts offers often",
    "channel_rate": "accepts on this channel",
    "daypart_rate": "accepts at this time of day",
    "channel_share": "usually reached on this channel",
    "active_near": "active at this hour",
    "log_contacts": "contacted often",
}


def daypart(hour: pd.Series | np.ndarray) -> np.ndarray:
    return np.asarray(hour) // 3  # eight parts of three hours


def active_near(activity: pd.DataFrame, pids: pd.Series, hours) -> np.ndarray:
    """Share of each person's activity (profile_id, hour, n) within two hours of `hours`, around the clock."""
    if activity.empty:
        return np.zeros(len(pids))
    wide = activity.astype({"n": float}).pivot_table(
        index="profile_id", columns="hour", values="n", aggfunc="sum", fill_value=0.0
    )
    wide = wide.reindex(columns=range(24), fill_value=0.0)
    m = wide.to_numpy(dtype=float)
    near = sum(np.roll(m, k, axis=1) for k in range(-2, 3)) / np.maximum(m.sum(axis=1, keepdims=True), 1.0)
    row = wide.index.get_indexer(pids)
    got = near[np.maximum(row, 0), np.asarray(hours, dtype=int) % 24]
    return np.where(row >= 0, got, 0.0)


def history_features(h: pd.DataFrame, base: float, activity: pd.DataFrame) -> pd.DataFrame:
    """Per contact (h sorted by profile_id, ts; with `hour`, the local hour), the features known before it
    (activity hours: of the year before the decision, a habit rather than an answer)."""
    hit = (h.name == ACCEPTED).astype(float)
    part = daypart(h.hour)

    def before(keys: list) -> tuple[pd.Series, pd.Series]:
        g = hit.groupby(keys)
        return g.cumsum() - hit, g.cumcount().astype(float)

    s, n = before([h.profile_id])
    cs, cn = before([h.profile_id, h.channel])
    ds, dn = before([h.profile_id, pd.Series(part, index=h.index)])
    return pd.DataFrame(
        {
            "prior_rate": (s + PRIOR * base) / (n + PRIOR),
            "channel_rate": (cs + PRIOR * base) / (cn + PRIOR),
            "daypart_rate": (ds + PRIOR * base) / (dn + PRIOR),
            "channel_share": cn / np.maximum(n, 1),
            "active_near": active_near(activity, h.profile_id, h.hour),
            "log_contacts": np.log1p(n),
        },
        index=h.index,
    )


@dataclass
class Quality:
    rows_train: int
    rows_held_out: int
    auc: float
    log_loss: float
    brier: float
    base_rate_log_loss: float  # the baseline: everyone's acceptance rate for every contact
    base_rate_brier: float
    # the held-out contacts in five bins of their score, lowest first: mean score, acceptance rate, contacts
    calibration: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}
        out["calibration"] = [{k: round(v, 4) for k, v in b.items()} for b in self.calibration]
        return out


def calibration(p: np.ndarray, y: np.ndarray, bins: int = 5) -> list[dict]:
    """Mean score against the acceptance rate, in `bins` bins of equal counts of the score."""
    order = np.argsort(p, kind="stable")
    return [
        {"score": float(p[part].mean()), "accepted": float(y[part].mean()), "contacts": float(len(part))}
        for part in np.array_split(order, bins)
        if len(part)
    ]


class PropensityModel:
    """fit(contacts) -> self, where contacts has history_features' columns, offer, channel, `accepted` and
    the person's `traits` (cx360.decisions.portrait's columns)."""

    def __init__(self, *, traits: tuple[str, ...] = (), held_out: float = 0.2, seed: int = 0):
        self.traits = tuple(traits)
        self.held_out = held_out
        self.seed = seed

    def _design(self, x: pd.DataFrame) -> np.ndarray:
        traits = x[list(self.traits)].to_numpy(dtype=float)
        return self.design(x[list(FEATURES)].to_numpy(dtype=float), x.offer.to_numpy(), x.channel.to_numpy(), traits)

    def design(self, features: np.ndarray, offers, channels, traits: np.ndarray | None = None) -> np.ndarray:
        """The model's input rows: FEATURES (columns in that order), the offer and the channel one-hot, then
        the traits (columns in self.traits' order) once per offer, zero but for the row's own offer: each
        offer weighs them its own way."""
        offer = np.asarray(offers, dtype=object)[:, None] == np.array(self.offers_, dtype=object)[None, :]
        channel = np.asarray(channels, dtype=object)[:, None] == np.array(self.channels_, dtype=object)[None, :]
        traits = np.zeros((len(offer), len(self.traits))) if traits is None else np.asarray(traits, dtype=float)
        per_offer = (offer[:, :, None] * traits[:, None, :]).reshape(len(offer), -1)
        return np.hstack([features, offer.astype(float), channel.astype(float), per_offer])

    def fit(self, contacts: pd.DataFrame) -> PropensityModel:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

        y = contacts.accepted.to_numpy(dtype=int)
        if len(contacts) < 50 or y.sum() < 10 or (1 - y).sum() < 10:
            raise TrainingDataError(
                f"propensity: {len(contacts)} past contacts with {int(y.sum())} acceptances; at least 50 contacts "
                "with 10 acceptances and 10 other answers are needed"
            )
        self.offers_ = sorted(contacts.offer.dropna().unique())
        self.channels_ = sorted(contacts.channel.dropna().unique())
        self.base_rate_ = float(y.mean())

        def model(x: np.ndarray, target: np.ndarray):
            lr = LogisticRegression(C=1.0, max_iter=1000)
            return CalibratedClassifierCV(lr, method="sigmoid", cv=3).fit(x, target)

        x = self._design(contacts)
        cut = int(len(contacts) * (1 - self.held_out))
        when = np.argsort(contacts.ts.to_numpy(), kind="stable")  # the latest contacts are held out
        train, later = when[:cut], when[cut:]
        p = model(x[train], y[train]).predict_proba(x[later])[:, 1]
        test, base = y[later], np.full(len(later), y[train].mean())
        self.quality_ = Quality(
            cut,
            len(y) - cut,
            float(roc_auc_score(test, p)) if 0 < test.sum() < len(test) else float("nan"),
            float(log_loss(test, p, labels=[0, 1])),
            float(brier_score_loss(test, p)),
            float(log_loss(test, base, labels=[0, 1])),
            float(brier_score_loss(test, base)),
            calibration(p, test),
        )
        self.model_ = model(x, y)
        coefs = [c.estimator.coef_[0] for c in self.model_.calibrated_classifiers_]
        self.coef_ = np.mean(coefs, axis=0)
        self.mean_ = x.mean(axis=0)
        self.scale_ = x.std(axis=0)
        if self.traits:  # a trait's average contact is one of its own offer's
            start = x.shape[1] - len(self.offers_) * len(self.traits)
            sums = x[:, start:].reshape(len(x), len(self.offers_), len(self.traits)).sum(axis=0)
            contacts = np.maximum(self._one_hot_offer(x).sum(axis=0), 1.0)
            self.mean_[start:] = (sums / contacts[:, None]).reshape(-1)
        return self

    def _one_hot_offer(self, design: np.ndarray) -> np.ndarray:
        return design[:, len(FEATURES) : len(FEATURES) + len(self.offers_)]

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return self.predict_design(self._design(x))

    def predict_design(self, design: np.ndarray) -> np.ndarray:
        """The calibrated model's predict_proba, as numpy arithmetic: each cross-validated logistic
        regression's score through its sigmoid calibration, averaged (a test keeps it equal to
        scikit-learn's; it avoids scikit-learn's per-call checks, which cost milliseconds on one row)."""
        if not hasattr(self, "model_"):
            raise NotFittedError("propensity: call fit first")
        if "linear_" not in self.__dict__:
            parts = [
                (c.estimator.coef_[0], c.estimator.intercept_[0], c.calibrators[0])
                for c in self.model_.calibrated_classifiers_
            ]
            self.linear_ = (
                np.array([w for w, _, _ in parts]),
                np.array([b for _, b, _ in parts]),
                np.array([cal.a_ for _, _, cal in parts]),
                np.array([cal.b_ for _, _, cal in parts]),
            )
        w, b, a, c = self.linear_
        score = design @ w.T + b
        return (1.0 / (1.0 + np.exp(a * score + c))).mean(axis=1)

    def reasons(self, x: pd.DataFrame, top: int = 2) -> list[str]:
        return self.reasons_design(self._design(x), top)

    def names(self) -> list[str]:
        """The design's columns as the reasons name them."""
        names = [LABELS[f] for f in FEATURES] + [f"offer {o}" for o in self.offers_]
        names += [f"channel {c}" for c in self.channels_]
        return names + [portrait.label(t) for _ in self.offers_ for t in self.traits]

    def importance(self, top: int = 10) -> list[tuple[str, float]]:
        """The columns that move the score most: weight × the column's spread over the contacts (the
        logit's change for one standard deviation), largest first; a trait is named with its offer."""
        names = self.names()
        start = len(names) - len(self.offers_) * len(self.traits)
        names[start:] = [f"{o}: {portrait.label(t)}" for o in self.offers_ for t in self.traits]
        effect = self.coef_ * self.scale_
        return [(names[j], float(effect[j])) for j in np.argsort(-np.abs(effect))[:top]]

    def reasons_design(self, design: np.ndarray, top: int = 2) -> list[str]:
        """Per row, the features that raise its score most against an average contact."""
        names = self.names()
        contrib = (design - self.mean_) * self.coef_
        hot = slice(len(FEATURES), len(FEATURES) + len(self.offers_) + len(self.channels_))
        contrib[:, hot] = np.where(design[:, hot] > 0, contrib[:, hot], 0)
        if self.traits:  # only the traits of the row's own offer count
            own = np.repeat(self._one_hot_offer(design) > 0, len(self.traits), axis=1)
            contrib[:, hot.stop :] = np.where(own, contrib[:, hot.stop :], 0)
        order = np.argsort(-contrib, axis=1)[:, :top]
        return [
            ", ".join(names[j] for j in row if contrib[i, j] > 0) or "no feature above average"
            for i, row in enumerate(order)
        ]

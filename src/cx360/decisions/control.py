"""The chance of taking an offer without being contacted, learnt per offer from its control group: the
people its campaigns held out at random (`[uplift]` in cx360.toml says how they are recorded).

With the propensity model, which learns the chance of accepting from the offer's contacts (the treated),
it makes a T-learner of the offer's uplift: propensity minus this chance. Arbitration ranks an offer by
uplift where it has a control group, so that people who would take it anyway are not the ones it goes
to, and by propensity where it has none. The features are the person's, known before the moment (a
control group had no channel and no hour), and how they spend (cx360.decisions.portrait): who takes
an offer uncontacted is told by their interests more than by their answers to other offers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cx360.decisions.propensity import ACCEPTED, PRIOR

FEATURES = ("prior_rate", "offer_rate", "log_contacts")
HELD_OUT = 0.2  # the latest share of an offer's control group, to measure the model on


def shrunk(s, n, base: float):
    return (s + PRIOR * base) / (n + PRIOR)


def features_before(history: pd.DataFrame, controls: pd.DataFrame, base: float) -> pd.DataFrame:
    """FEATURES of each control (profile_id, ts, offer) from the person's contacts before it (history:
    profile_id, ts, name, offer), in the order of `controls`."""
    hit = (history.name == ACCEPTED).astype(float).to_numpy()
    rows = pd.concat(
        [
            pd.DataFrame(
                {"profile_id": history.profile_id, "ts": history.ts, "offer": history.offer, "w": 1.0, "hit": hit}
            ).assign(row=-1),
            pd.DataFrame(
                {"profile_id": controls.profile_id, "ts": controls.ts, "offer": controls.offer, "w": 0.0, "hit": 0.0}
            ).assign(row=np.arange(len(controls))),
        ],
        ignore_index=True,
    )
    rows = rows.sort_values(["profile_id", "ts", "w"], kind="stable")  # a contact at the same moment is not before
    person, offer = rows.groupby("profile_id"), rows.groupby(["profile_id", "offer"])
    n, s = person.w.cumsum() - rows.w, person.hit.cumsum() - rows.hit
    on, os_ = offer.w.cumsum() - rows.w, offer.hit.cumsum() - rows.hit
    at = (rows.row >= 0).to_numpy()
    out = pd.DataFrame(
        {
            "prior_rate": shrunk(s[at], n[at], base).to_numpy(),
            "offer_rate": shrunk(os_[at], on[at], base).to_numpy(),
            "log_contacts": np.log1p(n[at]).to_numpy(),
        },
        index=rows.row[at].to_numpy(),
    )
    return out.sort_index()


@dataclass(frozen=True)
class Group:
    """An offer's control group and what was learnt from it."""

    offer: str
    controls: int
    converted: int
    treated_rate: float  # acceptance of the offer's contacts over the same history
    weights: np.ndarray | None  # the logistic regression: FEATURES' weights then the intercept; None: too few
    log_loss: float | None = None  # on the latest HELD_OUT of the group, held out
    base_log_loss: float | None = None  # the group's earlier conversion rate for every held-out control

    @property
    def rate(self) -> float:
        return self.converted / self.controls if self.controls else 0.0

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "weights"}
        out |= {"ranked_by": "uplift" if self.weights is not None else "propensity", "control_rate": self.rate}
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


class ControlModel:
    """fit(controls, features, treated_rates) -> self; predict(offers, X) -> the chance of taking each offer
    uncontacted, NaN for an offer without a control group of `min_controls` with both outcomes."""

    def __init__(self, *, min_controls: int = 100):
        self.min_controls = min_controls

    def fit(self, controls: pd.DataFrame, x: pd.DataFrame, treated_rate: dict[str, float]) -> ControlModel:
        """controls: ts, offer, converted; x: their FEATURES (features_before), then the
        person's traits (cx360.decisions.portrait), the columns `predict` takes in the same order."""
        from sklearn.metrics import log_loss

        self.groups_ = {}
        for offer, part in controls.groupby("offer", sort=True):
            y = part.converted.to_numpy(dtype=int)
            xs = x.loc[part.index].to_numpy(dtype=float)
            enough = len(y) >= self.min_controls and 0 < y.sum() < len(y)
            weights = _fit(xs, y) if enough else None
            quality = {}
            cut = int(len(y) * (1 - HELD_OUT))
            when = np.argsort(part.ts.to_numpy(), kind="stable") if enough else np.arange(len(y))
            train, later = when[:cut], when[cut:]  # the latest controls are held out
            if enough and 0 < y[train].sum() < cut:
                p = _predict(_fit(xs[train], y[train]), xs[later])
                quality = {
                    "log_loss": float(log_loss(y[later], p, labels=[0, 1])),
                    "base_log_loss": float(log_loss(y[later], np.full(len(later), y[train].mean()), labels=[0, 1])),
                }
            self.groups_[offer] = Group(offer, len(y), int(y.sum()), treated_rate.get(offer, 0.0), weights, **quality)
        return self

    def ranked_by_uplift(self, offer: str) -> bool:
        group = self.groups_.get(offer)
        return group is not None and group.weights is not None

    def predict(self, offers, x: np.ndarray) -> np.ndarray:
        """Per row of x (fit's columns, in that order), the chance of taking its offer uncontacted; NaN: no group."""
        offers = np.asarray(offers, dtype=object)
        out = np.full(len(offers), np.nan)
        for offer in pd.unique(offers):
            if self.ranked_by_uplift(offer):
                at = offers == offer
                out[at] = _predict(self.groups_[offer].weights, x[at])
        return out

    def why_not(self, offer: str) -> str:
        """Why an offer is ranked by propensity: the reason its decisions carry."""
        group = self.groups_.get(offer)
        if group is None:
            return f"no control group for {offer}"
        return (
            f"its control group ({group.controls} held out, {group.converted} took it anyway) is under "
            f"{self.min_controls} or has one outcome only"
        )


def _fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
    return np.append(lr.coef_[0], lr.intercept_[0])


def _predict(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The logistic regression's probability, as numpy arithmetic (one row costs no scikit-learn checks)."""
    return 1.0 / (1.0 + np.exp(-(x @ weights[:-1] + weights[-1])))

"""cx360's estimators are scikit-learn estimators: `clone`, `GridSearchCV` and `Pipeline`
take them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from cx360.identity.matching import MatchModel
from cx360.models.churn import ChurnModel
from cx360.models.clv import BetaGeoFitter, GammaGammaFitter
from cx360.models.evaluation import Baseline
from cx360.text.linear import LinearTextModel

ESTIMATORS = [
    ChurnModel(id_column="customer", n_estimators=40, num_leaves=7, calibration="sigmoid"),
    BetaGeoFitter(penalizer=0.01),
    GammaGammaFitter(penalizer=0.1),
    MatchModel(threshold=0.8, exact_columns=["branch"], max_block_size=50),
    LinearTextModel(language="en", C=2.0),
    Baseline(),
]


def churn_table(n: int = 600, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    days = rng.integers(0, 120, n)
    plan = rng.choice(["basic", "plus", "premium"], n)
    tenure = rng.integers(1, 100, n)
    logit = 0.04 * days - 0.02 * tenure + np.where(plan == "basic", 0.8, -0.4) - 1.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "customer": [f"C{i}" for i in range(n)],
            "days_since_last": days,
            "plan": plan,
            "tenure_months": tenure,
        }
    ), y


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_clone_keeps_the_parameters_and_drops_what_was_learned(estimator):
    copy = clone(estimator)
    assert type(copy) is type(estimator) and copy is not estimator
    assert copy.get_params() == estimator.get_params()
    assert not [k for k in vars(copy) if k.endswith("_")]


def test_a_fitted_model_clones_unfitted_and_set_params_reaches_fit():
    x = np.array([0, 1, 2, 0, 3, 1, 4, 0, 2, 5], dtype=float)
    tx = np.array([0, 5, 9, 0, 20, 3, 30, 0, 12, 33], dtype=float)
    T = np.full(10, 40.0)
    fitted = BetaGeoFitter().fit(x, tx, T)
    fresh = clone(fitted).set_params(penalizer=1.0)
    assert not hasattr(fresh, "r_") and fitted.r_ > 0
    assert fresh.fit(x, tx, T).params_ != fitted.params_  # the stronger penalty moved the estimate


def test_grid_search_tunes_the_churn_model():
    X, y = churn_table()
    search = GridSearchCV(
        ChurnModel(id_column="customer", n_estimators=40, calibration="sigmoid"),
        {"num_leaves": [3, 7]},
        cv=3,
        scoring="roc_auc",
    ).fit(X, y)
    assert search.best_params_["num_leaves"] in (3, 7)
    assert search.best_score_ > 0.7
    p = search.predict_proba(X.head(5))
    assert p.shape == (5, 2) and np.allclose(p.sum(axis=1), 1.0)


def test_the_churn_model_ends_a_pipeline():
    X, y = churn_table(seed=8)
    weeks = FunctionTransformer(lambda t: t.assign(weeks_since_last=t.days_since_last // 7))
    pipe = make_pipeline(weeks, ChurnModel(id_column="customer", n_estimators=40, calibration="sigmoid")).fit(X, y)
    model = pipe[-1]
    assert "weeks_since_last" in model.prep_.names
    assert list(model.classes_) == [0, 1]
    assert 0.0 <= pipe.score(X, y) <= 1.0
    assert pipe.predict(X).shape == (len(X),)

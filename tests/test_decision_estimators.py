"""Off-policy estimates on a synthetic log with a known answer, and uplift that finds who an action
changes on a synthetic experiment."""

from __future__ import annotations

import numpy as np
import pytest

from cx360.decisions.ope import dr, ipw
from cx360.errors import DataError
from cx360.models.uplift import UpliftModel


def test_ipw_and_dr_recover_a_target_policy_value_from_a_random_log():
    rng = np.random.default_rng(3)
    n, actions = 8_000, 4
    truth = np.array([0.05, 0.10, 0.20, 0.30])
    a = rng.integers(0, actions, n)
    r = (rng.random(n) < truth[a]).astype(float)
    logged = np.full(n, 1 / actions)
    target = np.array([0.0, 0.0, 0.2, 0.8])  # mostly the best action
    value = float(target @ truth)
    e = ipw(r, logged, target[a], rounds=300)
    assert e.low <= value <= e.high and e.high - e.low < 0.06
    fitted = np.array([r[a == k].mean() for k in range(actions)])
    d = dr(r, logged, target[a], fitted[a], np.full(n, target @ fitted), rounds=300)
    assert d.low <= value <= d.high and (d.high - d.low) <= (e.high - e.low)
    same = ipw(r, logged, logged, rounds=10)
    assert same.value == pytest.approx(r.mean())
    with pytest.raises(DataError, match="logged probabilities"):
        ipw(r, np.zeros(n), target[a], rounds=10)


def test_uplift_ranks_the_persuadable_above_those_who_answer_anyway():
    rng = np.random.default_rng(5)
    n = 2000
    x = rng.integers(0, 3, n)  # 0: never, 1: answers anyway, 2: answers only when treated
    t = rng.random(n) < 0.5
    p = np.select([x == 0, x == 1, x == 2], [0.02, 0.6, np.where(t, 0.6, 0.05)])
    y = (rng.random(n) < p).astype(int)
    model = UpliftModel(max_iter=20, learning_rate=0.3).fit(np.eye(3)[x], t, y)
    u = model.predict(np.eye(3))
    assert u[2] > 0.4 and abs(u[1]) < 0.1 and abs(u[0]) < 0.1

"""Off-policy evaluation on a decision log: what another policy would have earned, from the actions a
logging policy took with their logged probabilities (the `probability` of the decisions table).

- IPW (inverse propensity weighting): the mean of reward × target probability / logged probability.
- DR (doubly robust): a reward model's value of the target policy, corrected by the IPW of its errors;
  unbiased when either the logged probabilities or the reward model are right, with less variance.

Confidence intervals are percentile bootstraps over the logged rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cx360.errors import DataError


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float  # the bootstrap interval, at `level`
    level: float = 0.95


def _check(reward, logged, target) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r, p, w = (np.asarray(x, dtype=float) for x in (reward, logged, target))
    if not (len(r) == len(p) == len(w)) or len(r) == 0:
        raise DataError("off-policy evaluation: reward, logged and target probabilities need one value per row")
    if (p <= 0).any() or (p > 1).any():
        raise DataError("off-policy evaluation: logged probabilities must be in (0, 1]; the log cannot be used")
    return r, p, w


def _bootstrap(terms: np.ndarray, level: float, rounds: int, seed: int) -> Estimate:
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // len(terms))  # resamples drawn a few at a time: memory stays small
    means = np.concatenate(
        [
            terms[rng.integers(0, len(terms), size=(min(chunk, rounds - i), len(terms)))].mean(axis=1)
            for i in range(0, rounds, chunk)
        ]
    )
    tail = (1 - level) / 2
    return Estimate(float(terms.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail)), level)


def ipw(reward, logged, target, *, level: float = 0.95, rounds: int = 2000, seed: int = 0) -> Estimate:
    """`target`: the target policy's probability of each logged action."""
    r, p, w = _check(reward, logged, target)
    return _bootstrap(r * w / p, level, rounds, seed)


def dr(
    reward, logged, target, predicted, expected, *, level: float = 0.95, rounds: int = 2000, seed: int = 0
) -> Estimate:
    """`predicted`: the reward model's estimate for each logged action; `expected`: its estimate of the
    target policy's reward in each row's context (the sum over actions of target probability × estimate)."""
    r, p, w = _check(reward, logged, target)
    q, e = np.asarray(predicted, dtype=float), np.asarray(expected, dtype=float)
    return _bootstrap(e + w / p * (r - q), level, rounds, seed)

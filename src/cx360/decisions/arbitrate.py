"""Arbitration: each open candidate scored by the workspace's objective (`[decisions] objective`), one
action per person or none, with a small share of random eligible choices, and the probability of every
choice logged so that other policies can be evaluated off-policy on the log.

The objectives: `incremental` (the default) ranks by what the contact adds, uplift × value where the
offer has a control group and propensity × value where it has none; `expected` by propensity × value,
counting those who would have taken the offer anyway; `acceptance` by propensity × the offer's
priority, whatever the offer is worth. A candidate's value already carries its offer's priority."""

from __future__ import annotations

import hashlib
from typing import get_args

import numpy as np
import pandas as pd

from cx360.decisions.settings import Objective

OBJECTIVES = get_args(Objective)


def scores(objective: str, propensity, uplift, value, priority) -> tuple[np.ndarray, np.ndarray]:
    """(expected value, score ranked by) per candidate, on arrays or single numbers; uplift NaN: the offer
    has no control group. The expected value is uplift × value under `incremental`, else propensity × value."""
    propensity, uplift = np.asarray(propensity, dtype=float), np.asarray(uplift, dtype=float)
    if objective == "incremental":
        expected = np.where(np.isnan(uplift), propensity, uplift) * value
        return expected, expected
    expected = propensity * np.asarray(value, dtype=float)
    if objective == "expected":
        return expected, expected
    if objective == "acceptance":
        return expected, propensity * np.asarray(priority, dtype=float)
    raise ValueError(f"objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")


def by_uplift(objective: str, uplift: float | None) -> bool:
    """Whether a candidate with this uplift (None: no control group) is ranked by it."""
    return objective == "incremental" and uplift is not None


def pick(scored: pd.DataFrame, exploration: float, seed: object) -> pd.DataFrame:
    """One row per profile among the open candidates of `scored` (profile_id, score, ...) whose score is
    positive: the best, or with probability `exploration` one drawn uniformly among them. Adds
    `probability` (of the choice under this policy) and `explored`."""
    open_ = scored[scored.suppressed_by.isna() & (scored.score > 0)]
    if open_.empty:
        return open_.assign(probability=pd.Series(dtype=float), explored=pd.Series(dtype=bool))
    open_ = open_.sort_values(["profile_id", "score", "offer", "channel"], ascending=[True, False, True, True])
    group = open_.groupby("profile_id", sort=False)
    n = group.offer.transform("size").to_numpy()
    rank = group.cumcount().to_numpy()
    ids = open_.profile_id.to_numpy()
    u, draw = _uniform(ids, seed)
    explore = u < exploration
    chosen_rank = np.where(explore, np.floor(draw * n).astype(int), 0)
    take = rank == chosen_rank
    out = open_[take].copy()
    n_taken, best = n[take], rank[take] == 0
    out["probability"] = (1 - exploration) * best + exploration / n_taken
    out["explored"] = explore[take] & ~best
    return out


def pick_one(n: int, profile_id: str, exploration: float, seed: object) -> tuple[int, float, bool]:
    """`pick` for one person whose `n` open candidates are in pick's order, best first: (the rank chosen,
    the probability of that choice, whether it was explored)."""
    u, draw = _uniform(np.array([profile_id]), seed)
    explore = bool(u[0] < exploration)
    rank = int(np.floor(draw[0] * n)) if explore else 0
    return rank, (1 - exploration) * (rank == 0) + exploration / n, explore and rank > 0


def _uniform(ids: np.ndarray, seed: object) -> tuple[np.ndarray, np.ndarray]:
    """Two uniform numbers per profile id, the same on every run with the same seed (so a decision can be
    reproduced and its probability checked)."""
    digest = [hashlib.blake2b(f"{seed}:{i}".encode(), digest_size=8).digest() for i in ids]
    raw = np.array([int.from_bytes(d, "little") for d in digest], dtype=np.uint64)
    u = (raw >> np.uint64(32)).astype(float) / 2**32
    draw = (raw & np.uint64(0xFFFFFFFF)).astype(float) / 2**32
    return u, draw

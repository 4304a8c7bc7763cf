"""Arbitration: each candidate scored (propensity × value × the offer's priority), one action per person
or none, with a small share of random eligible choices, and the probability of every choice logged so
that other policies can be evaluated off-policy on the log."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd


def pick(scored: pd.DataFrame, exploration: float, seed: object) -> pd.DataFrame:
    """One row per profile among the open candidates of `scored` (profile_id, expected_value, ...): the
    best, or with probability `exploration` one drawn uniformly among the open ones. Adds `probability`
    (of the choice under this policy) and `explored`."""
    open_ = scored[scored.suppressed_by.isna() & (scored.expected_value > 0)]
    if open_.empty:
        return open_.assign(probability=pd.Series(dtype=float), explored=pd.Series(dtype=bool))
    open_ = open_.sort_values(["profile_id", "expected_value", "offer", "channel"], ascending=[True, False, True, True])
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

"""Clustering scores against hand-counted examples."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from cx360.identity.evaluate import bcubed, by_source_pair, pairwise

FRAME = pd.DataFrame(
    {
        "record": ["a1", "a2", "b1", "b2", "b3"],
        "source": ["a", "a", "b", "b", "b"],
        "cluster": [1, 1, 1, 2, 2],
        "truth": ["x", "x", "y", "y", "z"],
    }
)


def brute_pairs(frame, key):
    return {
        frozenset((p.record, q.record))
        for p, q in itertools.combinations(frame.itertuples(), 2)
        if getattr(p, key) == getattr(q, key)
    }


def test_pairwise_matches_brute_force():
    pred, true = brute_pairs(FRAME, "cluster"), brute_pairs(FRAME, "truth")
    s = pairwise(FRAME)
    assert s.precision == pytest.approx(len(pred & true) / len(pred))
    assert s.recall == pytest.approx(len(pred & true) / len(true))


def test_bcubed_by_hand():
    s = bcubed(FRAME)
    # precision per record: a1 2/3, a2 2/3, b1 1/3, b2 1/2, b3 1/2 ; recall: a1 1, a2 1, b1 1/2, b2 1/2, b3 1
    assert s.precision == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 / 2 + 1 / 2) / 5)
    assert s.recall == pytest.approx((1 + 1 + 1 / 2 + 1 / 2 + 1) / 5)


def test_source_pairs_partition_the_pairwise_counts():
    table = by_source_pair(FRAME).set_index("sources")
    assert table.loc["a × b", "found_pairs"] == 2 and table.loc["a × b", "true_pairs"] == 0
    assert table.loc["a × a", "precision"] == 1.0 and table.loc["b × b", "true_pairs"] == 1
    assert table.found_pairs.sum() == len(brute_pairs(FRAME, "cluster"))

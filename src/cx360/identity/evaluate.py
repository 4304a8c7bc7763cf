"""Score a clustering against the truth: pairwise and B-cubed precision / recall / F1,
and pairwise figures per pair of sources. Counts come from the contingency table, so no
pair is ever enumerated."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _ratio(a: float, b: float) -> float:
    return a / b if b else 1.0


def _pairs(n: pd.Series) -> float:
    return float((n * (n - 1) / 2).sum())


def pairwise(frame: pd.DataFrame) -> Scores:
    """frame: one row per record with `cluster` (predicted) and `truth` (the real entity)."""
    cells = frame.groupby(["cluster", "truth"]).size()
    tp = _pairs(cells)
    return Scores(
        _ratio(tp, _pairs(frame.groupby("cluster").size())), _ratio(tp, _pairs(frame.groupby("truth").size()))
    )


def bcubed(frame: pd.DataFrame) -> Scores:
    cells = frame.groupby(["cluster", "truth"]).size().rename("n").reset_index()
    cells["a"] = cells.cluster.map(frame.groupby("cluster").size())
    cells["b"] = cells.truth.map(frame.groupby("truth").size())
    n = len(frame)
    return Scores(float((cells.n**2 / cells.a).sum() / n), float((cells.n**2 / cells.b).sum() / n))


def by_source_pair(frame: pd.DataFrame) -> pd.DataFrame:
    """Pairwise precision / recall / F1 for pairs of records from each pair of sources."""
    sources = sorted(frame.source.unique())
    counts = {s: frame[frame.source == s] for s in sources}
    rows = []
    for i, s1 in enumerate(sources):
        for s2 in sources[i:]:
            tp = _cross(counts[s1], counts[s2], ["cluster", "truth"], s1 == s2)
            pred = _cross(counts[s1], counts[s2], ["cluster"], s1 == s2)
            true = _cross(counts[s1], counts[s2], ["truth"], s1 == s2)
            s = Scores(_ratio(tp, pred), _ratio(tp, true))
            rows.append(
                {
                    "sources": f"{s1} × {s2}",
                    "true_pairs": int(true),
                    "found_pairs": int(pred),
                    "precision": s.precision,
                    "recall": s.recall,
                    "f1": s.f1,
                }
            )
    return pd.DataFrame(rows)


def _cross(a: pd.DataFrame, b: pd.DataFrame, keys: list[str], same: bool) -> float:
    ca = a.groupby(keys).size()
    if same:
        return _pairs(ca)
    cb = b.groupby(keys).size()
    joined = pd.concat([ca.rename("x"), cb.rename("y")], axis=1, join="inner")
    return float((joined.x * joined.y).sum())

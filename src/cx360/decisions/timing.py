"""Channel and hour per customer: where and when each person accepts offers, from their own answers,
falling back to their segment and then to everyone (as Braze and Airship do).

Rates are shrunk step by step: everyone's rate per channel (or local hour) is the prior of each
segment's, and a segment's is the prior of each of its people's, with `strength` contacts' weight.
A person with no history gets their segment's choice; a person in no segment gets everyone's. Hours
are smoothed over their neighbours (a customer who answers at 19:00 answers at 18:00 too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ACCEPTED = "offer_accepted"


@dataclass(frozen=True)
class Choice:
    value: str | int
    rate: float
    level: str  # person, segment, everyone
    reason: str


class ChannelHourModel:
    """fit(history, segment, hours) -> self; choose(profile_id, options, kind) -> Choice."""

    def __init__(self, *, strength: float = 5.0):
        self.strength = strength

    def fit(self, history: pd.DataFrame, segment: pd.Series, local_hour: pd.Series) -> ChannelHourModel:
        """history: HISTORY_COLUMNS; segment: profile_id -> segment name (missing: none); local_hour: the
        local hour of each history row."""
        h = history.assign(hit=(history.name == ACCEPTED).astype(float), hour=local_hour.to_numpy())
        h = h.assign(segment=h.profile_id.map(segment))
        self.segment_ = segment
        self.tables_ = {kind: self._levels(h, kind) for kind in ("channel", "hour")}
        return self

    def _levels(self, h: pd.DataFrame, kind: str) -> dict[str, pd.DataFrame]:
        def counts(by: list[str]) -> pd.DataFrame:
            g = h.groupby([*by, kind], observed=True).hit.agg(["sum", "count"]).unstack(kind, fill_value=0)
            if kind == "hour":
                g = g.reindex(columns=pd.MultiIndex.from_product([["sum", "count"], range(24)]), fill_value=0)
                g = _smooth(g)
            return g

        return {"everyone": _overall(h, kind), "segment": counts(["segment"]), "person": counts(["profile_id"])}

    def rates(self, pid: str, kind: str, options: list) -> tuple[dict, dict]:
        """(rate per option, level whose own data decided each) for one person."""
        t = self.tables_[kind]
        k = self.strength
        everyone = t["everyone"]
        base = {
            o: (everyone["sum"].get(o, 0.0) + k * _mean(everyone)) / (everyone["count"].get(o, 0.0) + k)
            for o in options
        }
        seg = self.segment_.get(pid)
        level = dict.fromkeys(options, "everyone")
        rate = dict(base)
        for name, key in (("segment", seg), ("person", pid)):
            table = t[name]
            if key is None or key not in table.index:
                continue
            row = table.loc[key]
            for o in options:
                n, s = row["count"].get(o, 0.0), row["sum"].get(o, 0.0)
                rate[o] = (s + k * rate[o]) / (n + k)
                if n > 0:
                    level[o] = name
        return rate, level

    def choose(self, pid: str, kind: str, options: list) -> Choice:
        rate, level = self.rates(pid, kind, options)
        best = max(options, key=lambda o: (rate[o], -options.index(o)))
        where = {
            "person": "from the person's own answers",
            "segment": f"no answers of their own on it: their segment {self.segment_.get(pid)}'s",
            "everyone": "no history of their own or of a segment: everyone's",
        }[level[best]]
        shown = f"{best:02d}:00" if kind == "hour" else best
        return Choice(best, rate[best], level[best], f"{kind} {shown}: acceptance {rate[best]:.1%} {where}")


def _overall(h: pd.DataFrame, kind: str) -> pd.DataFrame:
    g = h.groupby(kind).hit.agg(["sum", "count"])
    if kind == "hour":
        g = g.reindex(range(24), fill_value=0)
        g = pd.DataFrame(
            {"sum": _circular(g["sum"].to_numpy()), "count": _circular(g["count"].to_numpy())}, index=range(24)
        )
    return g


def _mean(t: pd.DataFrame) -> float:
    n = float(t["count"].sum())
    return float(t["sum"].sum()) / n if n else 0.0


def _circular(x: np.ndarray) -> np.ndarray:
    """Each hour with half the weight of its neighbours, around the clock."""
    return x + 0.5 * np.roll(x, 1, axis=-1) + 0.5 * np.roll(x, -1, axis=-1)


def _smooth(g: pd.DataFrame) -> pd.DataFrame:
    out = g.copy()
    for part in ("sum", "count"):
        out[part] = _circular(g[part].to_numpy(dtype=float))
    return out

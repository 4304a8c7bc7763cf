"""Channel and hour per customer: where and when each person answers, from their own responses and
activity, falling back to their segment and then to everyone (as Braze and Airship do).

- Channel: the acceptance rate of offers per channel.
- Hour: how a person's moments spread over the local day: their activity (payments, logins, calls;
  not offers, whose time the marketing system chose) and their acceptances, which weigh
  `response_weight` events each; hours are smoothed with their neighbours.

Each level is shrunk towards the one above with `strength` observations' weight: everyone's is the
prior of a segment's, a segment's the prior of its people's. A person with no history of their own
gets their segment's choice; a person in no segment gets everyone's; the reason says which.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ACCEPTED = "offer_accepted"
LEVELS = ("everyone", "segment", "person")


@dataclass(frozen=True)
class Choice:
    value: str | int
    score: float
    level: str  # the level whose own data decided: person, segment or everyone
    reason: str


class ChannelHourModel:
    """fit(history, segment, local_hour, activity) -> self; choose(profile_id, kind, options) -> Choice."""

    def __init__(self, *, strength: float = 5.0, response_weight: float = 5.0):
        self.strength = strength
        self.response_weight = response_weight

    def fit(
        self, history: pd.DataFrame, segment: pd.Series, local_hour, activity: pd.DataFrame | None = None
    ) -> ChannelHourModel:
        """history: offer events (profile_id, name, channel); segment: profile_id -> segment name;
        local_hour: each history row's local hour; activity: profile_id, hour (local), n."""
        self.segment_ = segment
        self.tables_ = {}
        self._fit(history, local_hour, activity, LEVELS)
        return self

    def with_people(self, history: pd.DataFrame, local_hour, activity: pd.DataFrame | None) -> ChannelHourModel:
        """A copy whose person level comes from `history` and `activity` (everyone's and segments' kept)."""
        out = ChannelHourModel(strength=self.strength, response_weight=self.response_weight)
        out.segment_ = self.segment_
        out.tables_ = {kind: dict(levels) for kind, levels in self.tables_.items()}
        out._fit(history, local_hour, activity, ("person",))
        return out

    def _fit(self, history: pd.DataFrame, local_hour, activity: pd.DataFrame | None, levels: tuple) -> None:
        hit = (history.name == ACCEPTED).astype(float)
        contacts = pd.DataFrame({"profile_id": history.profile_id, "key": history.channel, "s": hit, "n": 1.0})
        moments = pd.DataFrame(
            {
                "profile_id": history.profile_id[hit > 0],
                "key": np.asarray(local_hour)[hit.to_numpy() > 0],
                "s": self.response_weight,
            }
        )
        if activity is not None and len(activity):
            moments = pd.concat(
                [moments, pd.DataFrame({"profile_id": activity.profile_id, "key": activity.hour, "s": activity.n})]
            )
        for kind, tables in (("channel", self._rates(contacts, levels)), ("hour", self._shares(moments, levels))):
            self.tables_.setdefault(kind, {}).update(tables)
        self.keys_ = {k: {lv: set(t.index.get_level_values(0)) for lv, t in v.items()} for k, v in self.tables_.items()}

    def _rates(self, rows: pd.DataFrame, levels: tuple) -> dict[str, pd.DataFrame]:
        """Per level: success and trial counts per (key, option)."""
        rows = rows.assign(segment=rows.profile_id.map(self.segment_), everyone="all")
        return {
            level: rows.groupby([col, "key"]).agg(s=("s", "sum"), n=("n", "sum"))
            for level, col in zip(LEVELS, ("everyone", "segment", "profile_id"), strict=True)
            if level in levels
        }

    def _shares(self, rows: pd.DataFrame, levels: tuple) -> dict[str, pd.DataFrame]:
        """Per level: weight per (key, hour), smoothed around the clock; n is the key's total weight."""
        rows = rows.assign(segment=rows.profile_id.map(self.segment_), everyone="all")
        out = {}
        for level, col in zip(LEVELS, ("everyone", "segment", "profile_id"), strict=True):
            if level not in levels:
                continue
            wide = rows.groupby([col, "key"]).s.sum().unstack("key", fill_value=0.0)
            wide = wide.reindex(columns=range(24), fill_value=0.0)
            values = wide.to_numpy(dtype=float)
            smooth = values + 0.5 * np.roll(values, 1, axis=1) + 0.5 * np.roll(values, -1, axis=1)
            smooth *= values.sum(axis=1, keepdims=True) / np.maximum(smooth.sum(axis=1, keepdims=True), 1e-12)
            long = pd.DataFrame(smooth, index=wide.index, columns=range(24)).stack()
            long.index.names = [col, "key"]
            frame = long.to_frame("s")
            frame["n"] = frame.groupby(level=0).s.transform("sum")
            out[level] = frame
        return out

    def scores(self, pid: str, kind: str, options: list) -> tuple[dict, dict]:
        """(score per option, the level whose own data decided it) for one person: an acceptance rate for
        channels, a share of the day's moments for hours."""
        tables = self.tables_[kind]
        keys = {"everyone": "all", "segment": self.segment_.get(pid), "person": pid}
        score: dict = {}
        level = dict.fromkeys(options, "everyone")
        for name in LEVELS:
            key = keys[name]
            table = tables[name]
            if key is None or key not in self.keys_[kind][name]:
                if name == "everyone":
                    score = dict.fromkeys(options, 0.0)
                continue
            part = table.loc[key]
            for o in options:
                s, n = (float(part.s.get(o, 0.0)), float(part.n.get(o, 0.0))) if o in part.index else (0.0, 0.0)
                if kind == "hour":
                    n = float(part.n.iloc[0]) if len(part) else 0.0
                prior = score.get(o, _mean(part) if kind == "channel" else 1 / 24)
                score[o] = (s + self.strength * prior) / (n + self.strength)
                if name != "everyone" and n > 0:
                    level[o] = name
        return score, level

    def choose(self, pid: str, kind: str, options: list) -> Choice:
        score, level = self.scores(pid, kind, options)
        best = max(options, key=lambda o: (score[o], -options.index(o)))
        where = {
            "person": "from the person's own history",
            "segment": f"nothing of their own: their segment {self.segment_.get(pid)}'s",
            "everyone": "no history of their own or of a segment: everyone's",
        }[level[best]]
        if kind == "hour":
            return Choice(best, score[best], level[best], f"hour {best:02d}:00: {score[best]:.1%} of moments, {where}")
        return Choice(best, score[best], level[best], f"channel {best}: acceptance {score[best]:.1%}, {where}")


def _mean(part: pd.DataFrame) -> float:
    n = float(part.n.sum())
    return float(part.s.sum()) / n if n else 0.0

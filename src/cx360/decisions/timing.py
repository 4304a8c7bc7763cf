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
from typing import Any

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
        for kind in self.tables_:  # everyone's and the segments' tables made wide once, shared by the copies
            for level in ("everyone", "segment"):
                self._wide(kind, level, [], [])
        out = ChannelHourModel(strength=self.strength, response_weight=self.response_weight)
        out.segment_ = self.segment_
        out.tables_ = {kind: dict(levels) for kind, levels in self.tables_.items()}
        out.wide_ = {key: v for key, v in self.__dict__.get("wide_", {}).items() if key[1] != "person"}
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
            for level in tables:
                self.__dict__.get("wide_", {}).pop((kind, level), None)

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
            long = pd.DataFrame(smoothed(wide.to_numpy(dtype=float)), index=wide.index, columns=range(24)).stack()
            long.index.names = [col, "key"]
            frame = long.to_frame("s")
            frame["n"] = frame.groupby(level=0).s.transform("sum")
            out[level] = frame
        return out

    def scores(self, pids: list[str], kind: str, options: list) -> tuple[np.ndarray, np.ndarray]:
        """(score, level) per person and option, as arrays [len(pids), len(options)]: an acceptance rate for
        channels, a share of the day's moments for hours; level 0 everyone, 1 segment, 2 the person."""
        segs = self.segment_.reindex(pd.Index(pids)).to_numpy()
        levels = [
            self._wide(kind, name, options, keys)
            for name, keys in zip(LEVELS, (["all"] * len(pids), segs, pids), strict=True)
        ]
        return self._shrunk(kind, levels)

    def _shrunk(self, kind: str, levels: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """Each level's (s, n) shrunk towards the level above, from everyone's down to the person's."""
        k, priors = self.strength, self.__dict__.setdefault("prior_", {})
        if kind not in priors:
            total = self.tables_[kind]["everyone"]
            priors[kind] = float(total.s.sum() / total.n.sum()) if kind == "channel" and len(total) else 1 / 24
        prior = priors[kind]
        s, n = levels[0]
        score = (s + k * prior) / (n + k)
        level = np.zeros(score.shape, dtype=int)
        for i, (s, n) in enumerate(levels[1:], start=1):
            score = (s + k * score) / (n + k)
            level = np.where(n > 0, i, level)
        return score, level

    def choose_own(self, pid: str, kind: str, options: list, own: tuple[np.ndarray, np.ndarray]) -> Choice:
        """`choose` for one person whose own (s, n) per option is given (see own_channels, own_hours): a
        real-time decision reads everyone's and the segment's rows from a cache, and no table."""
        cache = self.__dict__.setdefault("rows_", {})
        if "segment_of_" not in self.__dict__:  # a pandas look-up costs about 0.3 ms, a dict's nothing
            self.segment_of_ = self.segment_.to_dict()
        seg = self.segment_of_.get(pid)
        for name, key in (("everyone", "all"), ("segment", seg)):
            if (kind, name, key, tuple(options)) not in cache:
                cache[kind, name, key, tuple(options)] = self._wide(kind, name, options, [key])
        levels = [cache[kind, "everyone", "all", tuple(options)], cache[kind, "segment", seg, tuple(options)]]
        score, level = self._shrunk(kind, [*levels, (own[0][None, :], own[1][None, :])])
        return self._choices([pid], kind, options, score, level, segment=seg)[0]

    def _wide(self, kind: str, level: str, options: list, keys) -> tuple[np.ndarray, np.ndarray]:
        """The s and n of `keys` (rows) for `options` (columns), from the level's table made wide once."""
        cache = self.__dict__.setdefault("wide_", {})
        if (kind, level) not in cache:
            table = self.tables_[kind][level]
            s = table.s.unstack(fill_value=0.0) if len(table) else pd.DataFrame(dtype=float)
            if kind == "hour":  # a share of the key's moments: n is the key's total weight
                n = table.n.groupby(level=0).first() if len(table) else pd.Series(dtype=float)
            else:
                n = table.n.unstack(fill_value=0.0) if len(table) else pd.DataFrame(dtype=float)
            cache[kind, level] = (s, n)
        s, n = cache[kind, level]
        index = pd.Index(keys)
        s_ = s.reindex(index=index, columns=options, fill_value=0.0).fillna(0.0).to_numpy(dtype=float)
        if kind == "hour":
            total = n.reindex(index).fillna(0.0).to_numpy(dtype=float)
            return s_, np.repeat(total[:, None], len(options), axis=1)
        return s_, n.reindex(index=index, columns=options, fill_value=0.0).fillna(0.0).to_numpy(dtype=float)

    def choose(self, pid: str, kind: str, options: list) -> Choice:
        return self.choose_many([pid], kind, options)[0]

    def choose_many(self, pids: list[str], kind: str, options: list) -> list[Choice]:
        return self._choices(pids, kind, options, *self.scores(pids, kind, options))

    def _choices(
        self, pids: list[str], kind: str, options: list, score: np.ndarray, level: np.ndarray, segment: Any = None
    ) -> list[Choice]:
        """`segment`: the one person's segment, when the caller looked it up already."""
        best = np.argmax(score, axis=1)  # the first of equal scores
        out = []
        for pid, row, b in zip(pids, range(len(pids)), best, strict=True):
            value, rate, lv = options[b], float(score[row, b]), LEVELS[level[row, b]]
            where = {
                "person": "from the person's own history",
                "segment": "nothing of their own: their segment {}'s",
                "everyone": "no history of their own or of a segment: everyone's",
            }[lv]
            if lv == "segment":  # a look-up per person costs; only this reason names the segment
                where = where.format(self.segment_.get(pid) if segment is None else segment)
            if kind == "hour":
                out.append(Choice(value, rate, lv, f"hour {value:02d}:00: {rate:.1%} of moments, {where}"))
            else:
                out.append(Choice(value, rate, lv, f"channel {value}: acceptance {rate:.1%}, {where}"))
        return out


def smoothed(values: np.ndarray) -> np.ndarray:
    """Weights per hour (rows of 24) spread half onto each neighbouring hour, around the clock, same total."""
    smooth = values + 0.5 * np.roll(values, 1, axis=-1) + 0.5 * np.roll(values, -1, axis=-1)
    return smooth * values.sum(axis=-1, keepdims=True) / np.maximum(smooth.sum(axis=-1, keepdims=True), 1e-12)


def own_channels(channels: list[str | None], accepted: list[bool], options: list) -> tuple[np.ndarray, np.ndarray]:
    """One person's (acceptances, contacts) per channel option, as the person level of `fit` counts them."""
    s, n = np.zeros(len(options)), np.zeros(len(options))
    at = {o: i for i, o in enumerate(options)}
    for ch, hit in zip(channels, accepted, strict=True):
        if ch in at:
            s[at[ch]] += hit
            n[at[ch]] += 1
    return s, n


def own_hours(
    accepted_hours: list[int], activity: np.ndarray, options: list, *, response_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """One person's (smoothed weight, total weight) per hour option: their acceptances (local hours) and
    activity (24 local-hour counts), as the person level of `fit` weighs them."""
    values = activity.astype(float).copy()
    for h in accepted_hours:
        values[h] += response_weight
    smooth = smoothed(values)
    return smooth[options], np.full(len(options), smooth.sum() if values.sum() > 0 else 0.0)

"""The response models of a decision run: propensity per offer, the chance of taking an offer uncontacted
where it has a control group (so its uplift), channel and hour per customer, and the per-person history
they read, fitted on everything before the run's as_of. Saved with the run, they
answer real-time decisions, with the person's own history read afresh."""

from __future__ import annotations

import pickle
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from cx360.decisions import control
from cx360.decisions.control import ControlModel
from cx360.decisions.propensity import ACCEPTED, PRIOR, PropensityModel, active_near, daypart, history_features
from cx360.decisions.timing import ChannelHourModel
from cx360.errors import ModelError

MODEL_FILE = "models.pkl"


class Models:
    """The response models of one decision run, fitted on the history before its as_of."""

    def __init__(
        self,
        history: pd.DataFrame,
        activity: pd.DataFrame,
        segment: pd.Series,
        tz: ZoneInfo,
        *,
        zones: pd.Series | None = None,
        controls: pd.DataFrame | None = None,
        min_controls: int = 100,
        portrait: pd.DataFrame | None = None,
    ):
        """history: offer events; activity: profile_id, hour, n, in each person's local hours; tz: the zone of
        a person without their own in `zones` (profile_id -> zone name); portrait: profile_id -> how each
        person spends (cx360.decisions.portrait), None: not known."""
        self.tz = tz
        h = history.assign(hour=local_hours(history.ts, zone_per_row(history.profile_id, zones, tz)))
        self.activity = activity
        self.portrait_ = portrait if portrait is not None else pd.DataFrame(index=pd.Index([], name="profile_id"))
        self.traits = tuple(self.portrait_.columns)
        self.base_ = float((h.name == ACCEPTED).mean()) if len(h) else 0.0
        self.timing = ChannelHourModel().fit(h, segment, h.hour, self.activity)
        contacts = pd.concat([h, history_features(h, self.base_, self.activity), self.traits_of(h.profile_id)], axis=1)
        contacts = contacts[contacts.offer.notna()].assign(accepted=contacts.name == ACCEPTED)
        self.propensity = PropensityModel(traits=self.traits).fit(contacts)
        controls = (
            controls if controls is not None else pd.DataFrame(columns=["profile_id", "ts", "offer", "converted"])
        )
        controls = controls.reset_index(drop=True)
        treated = contacts.groupby("offer").accepted.mean().to_dict()
        x = pd.concat([control.features_before(h, controls, self.base_), self.traits_of(controls.profile_id)], axis=1)
        self.control = ControlModel(min_controls=min_controls).fit(controls, x, treated)
        self._people(h)

    def traits_of(self, pids: pd.Series) -> pd.DataFrame:
        """The portrait's features of each row's person, zeros for a person without one, on pids' index."""
        got = self.portrait_.reindex(pids.to_numpy()).fillna(0.0)
        return pd.DataFrame(got.to_numpy(dtype=float), index=pids.index, columns=list(self.traits))

    def _people(self, h: pd.DataFrame) -> None:
        hit = (h.name == ACCEPTED).astype(float)
        self.person_ = hit.groupby(h.profile_id).agg(["sum", "count"])
        self.channel_ = hit.groupby([h.profile_id, h.channel]).agg(["sum", "count"])
        self.daypart_ = hit.groupby([h.profile_id, daypart(h.hour)]).agg(["sum", "count"])
        self.offer_ = hit.groupby([h.profile_id, h.offer]).agg(["sum", "count"])

    def with_people(
        self,
        history: pd.DataFrame,
        activity: pd.DataFrame,
        zone: str | None = None,
        portrait: pd.DataFrame | None = None,
    ) -> Models:
        """A copy whose person-level state comes from `history`, `activity` and `portrait` (one person's,
        read now, on the clock of `zone`: theirs, or the policy's when None)."""
        out = object.__new__(Models)
        out.__dict__ = dict(self.__dict__)
        out.portrait_ = (portrait if portrait is not None else self.portrait_.iloc[:0]).reindex(columns=self.traits)
        h = history.assign(hour=local_hours(history.ts, ZoneInfo(zone) if zone else self.tz))
        out.activity = activity
        out.timing = self.timing.with_people(h, h.hour, out.activity)
        out._people(h)
        return out

    def save(self, folder: Path) -> None:
        """The models without anyone's history: that is read again at each real-time decision."""
        folder.mkdir(parents=True, exist_ok=True)
        empty = pd.DataFrame(
            {"profile_id": [], "ts": pd.Series([], dtype="datetime64[us]"), "name": [], "channel": [], "offer": []}
        )
        lean = self.with_people(empty, pd.DataFrame({"profile_id": [], "hour": [], "n": []}))
        (folder / MODEL_FILE).write_bytes(pickle.dumps(lean))

    @staticmethod
    def load(folder: Path) -> Models:
        path = folder / MODEL_FILE
        if not path.is_file():
            raise ModelError(f"no decision models in {folder}: run `cx360 decide` first")
        models = pickle.loads(path.read_bytes())
        if not hasattr(models, "traits"):
            raise ModelError(f"the decision models in {folder} were saved by an older cx360: run `cx360 decide` again")
        return models

    def features(self, c: pd.DataFrame) -> pd.DataFrame:
        """The propensity features at as_of for candidates with profile_id, channel and hour."""

        def shrunk(table: pd.DataFrame, keys: list[pd.Series]) -> tuple[np.ndarray, np.ndarray]:
            idx = pd.MultiIndex.from_arrays(keys) if len(keys) > 1 else pd.Index(keys[0])
            got = table.reindex(idx)
            s, n = got["sum"].fillna(0).to_numpy(), got["count"].fillna(0).to_numpy()
            return (s + PRIOR * self.base_) / (n + PRIOR), n

        prior, n = shrunk(self.person_, [c.profile_id])
        channel, _ = shrunk(self.channel_, [c.profile_id, c.channel])
        part, _ = shrunk(self.daypart_, [c.profile_id, pd.Series(daypart(c.hour), index=c.index)])
        on_channel = self.channel_["count"].reindex(pd.MultiIndex.from_arrays([c.profile_id, c.channel])).fillna(0)
        return c.assign(
            prior_rate=prior,
            channel_rate=channel,
            daypart_rate=part,
            channel_share=on_channel.to_numpy() / np.maximum(n, 1),
            active_near=active_near(self.activity, c.profile_id, c.hour),
            log_contacts=np.log1p(n),
            **self.traits_of(c.profile_id),
        )

    def untreated(self, c: pd.DataFrame) -> np.ndarray:
        """Per candidate (profile_id, offer), the chance of taking the offer uncontacted at as_of; NaN where
        the offer has no control group to learn it from (ranked by propensity)."""
        person = self.person_.reindex(pd.Index(c.profile_id))
        offer = self.offer_.reindex(pd.MultiIndex.from_arrays([c.profile_id, c.offer]))
        n, on = person["count"].fillna(0).to_numpy(), offer["count"].fillna(0).to_numpy()
        x = np.column_stack(
            [
                control.shrunk(person["sum"].fillna(0).to_numpy(), n, self.base_),
                control.shrunk(offer["sum"].fillna(0).to_numpy(), on, self.base_),
                np.log1p(n),
                self.traits_of(c.profile_id).to_numpy(),
            ]
        )
        return self.control.predict(c.offer.to_numpy(), x)


def zone_per_row(pids: pd.Series, zones: pd.Series | None, default: ZoneInfo) -> pd.Series:
    """Each row's zone name: its person's, else the default's."""
    if zones is None:
        return pd.Series(default.key, index=pids.index, dtype=object)
    return pids.map(zones).fillna(default.key).astype(object)


def local_hours(ts: pd.Series, tz: ZoneInfo | pd.Series) -> np.ndarray:
    """The hour each UTC time showed on its clock: one zone, or a zone name per row (daylight saving time
    included: each time converted with its own offset)."""
    if not len(ts):
        return np.array([], int)
    stamps = pd.to_datetime(pd.Series(ts).reset_index(drop=True)).dt.tz_localize("UTC")
    if isinstance(tz, ZoneInfo):
        return stamps.dt.tz_convert(tz).dt.hour.to_numpy()
    zones = pd.Series(tz).reset_index(drop=True)
    hours = np.zeros(len(stamps), dtype=int)
    for zone, rows in zones.groupby(zones, sort=False).groups.items():
        hours[rows] = stamps[rows].dt.tz_convert(zone).dt.hour.to_numpy()
    return hours

"""`cx360 decide`: the next best action for every profile, written to the `decisions` table.

The steps: read the people and their history (inputs), list every (person, offer, channel) with the
rule that holds it back (rules), learn where, when and how likely each person accepts (timing,
propensity) and, for offers with a control group, how likely they take it uncontacted (control), score
the open candidates by the workspace's objective and pick one per person or none (arbitrate), and log each
decision with all its candidates. Nothing here reads the demo's hidden truth: only events.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa

from cx360 import schema
from cx360.decisions import arbitrate, inputs, rules
from cx360.decisions.propensity import Quality
from cx360.decisions.responses import Models
from cx360.errors import ConfigError

if TYPE_CHECKING:
    from cx360.workspace import Workspace

MODEL_DIR = "models/decisions"  # the response models, for real-time decisions
OUTPUT_COLUMNS = ["profile_id", "offer", "channel", "send_at", "expected_value", "propensity", "reasons"]


@dataclass
class DecisionReport:
    as_of: dt.datetime
    traits_as_of: dt.datetime
    profiles: int
    decided: int
    explored: int
    by_offer: dict[str, dict[str, int]]
    suppressed: dict[str, int]  # rule -> candidates it held back
    quality: Quality
    uplift: dict[str, dict] = field(default_factory=dict)  # offer -> its control group and the model ranking it
    warnings: list[str] = field(default_factory=list)
    frame: pd.DataFrame | None = field(default=None, repr=False)  # the decisions, as written

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "frame"}
        out["quality"] = self.quality.as_dict()
        return out


def next_send(as_of: dt.datetime, hour: int, tz: ZoneInfo) -> dt.datetime:
    """The first moment after as_of when the clock in `tz` shows `hour`:00, in naive UTC (as cx360 stores
    times): on each day's own offset, so across a daylight-saving change too; a day whose clock skips
    that hour is passed over."""
    local = as_of.replace(tzinfo=dt.UTC).astimezone(tz)
    day = local.date()
    for _ in range(3):
        wall = dt.datetime.combine(day, dt.time(hour), tzinfo=tz)
        at = wall.astimezone(dt.UTC)
        if at > as_of.replace(tzinfo=dt.UTC) and at.astimezone(tz).hour == hour:  # else: before as_of, or skipped
            return at.replace(tzinfo=None)
        day += dt.timedelta(days=1)
    raise ValueError(f"{tz.key} shows no {hour:02d}:00 in three days after {as_of}")


def decide(ws: Workspace, *, as_of: dt.datetime | None = None, now: dt.datetime | None = None) -> DecisionReport:
    config = ws.config
    if not config.offers:
        raise ConfigError(f"{ws.root / 'cx360.toml'}: no [[offers]] to decide between (see docs/decisions.md)")
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    data = inputs.load(ws.engine, config, as_of, now=max(now, as_of or now))
    report, frame, models = plan(ws, data, now)
    write(ws, frame, data.history)
    models.save(ws.root / MODEL_DIR)
    report.frame = frame
    return report


def segments_for_fallback(ws: Workspace) -> pd.Series:
    """profile_id -> behavioural cluster: the segment a person without history of their own falls back to."""
    engine = ws.engine
    if not engine.has_table("profile_clusters"):
        return pd.Series(dtype=object)
    t = engine.to_arrow(engine.table("profile_clusters").select("profile_id", "cluster"), step="decisions: clusters")
    frame = t.to_pandas()
    return pd.Series(("cluster_" + frame.cluster.astype(str)).to_numpy(), index=frame.profile_id)


CHUNK = 100_000  # profiles scored and logged at a time: the candidates of a chunk are held in memory


def plan(
    ws: Workspace, data: inputs.Inputs, now: dt.datetime, *, chunk: int = CHUNK, progress: bool = False
) -> tuple[DecisionReport, pd.DataFrame, Models]:
    """The response models fitted on everyone's history, then the people decided `chunk` at a time
    (every person's decision depends on their own rows and the shared models only)."""
    config, policy = ws.config, ws.config.contact_policy
    tz = ZoneInfo(policy.time_zone)
    models = Models(
        data.history,
        data.activity,
        segments_for_fallback(ws),
        tz,
        zones=data.zones,
        controls=data.controls,
        portrait=data.portrait,
        min_controls=config.uplift.min_controls,
    )
    frames, held, by_offer = (
        [],
        pd.Series(dtype=int),
        {o.name: dict.fromkeys(("eligible", "open", "chosen"), 0) for o in config.offers},
    )
    for start in range(0, len(data.people), chunk):
        part = _chunk(data, start, chunk) if len(data.people) > chunk else data
        scored, chosen, timing = score(models, config, part)
        frame = pd.DataFrame(
            rows(models, config, part, scored, chosen, timing, now), columns=[c.name for c in schema.DECISIONS]
        )
        held = held.add(scored.suppressed_by.dropna().str.split(":").str[0].value_counts(), fill_value=0)
        for o in config.offers:
            mine = scored[scored.offer == o.name]
            eligible = mine[~mine.suppressed_by.fillna("").str.startswith(HELD_AS_INELIGIBLE)]
            by_offer[o.name]["eligible"] += int(eligible.profile_id.nunique())
            by_offer[o.name]["open"] += int(mine[mine.suppressed_by.isna()].profile_id.nunique())
            by_offer[o.name]["chosen"] += int((frame.offer == o.name).sum())
        frames.append(frame)
        if progress:
            print(f"  decided {start + len(part.people):,} of {len(data.people):,}", flush=True)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame["responded_at"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us]")
    warnings = [
        f"offer '{o.name}': no customer is eligible ({_dates_or_where(o)})"
        for o in config.offers
        if by_offer[o.name]["eligible"] == 0
    ]
    if data.unzoned:
        warnings.append(
            f"{data.unzoned} people's {policy.person_time_zone} is no time zone and not in [contact_policy] zones: "
            f"their hours are on {policy.time_zone}"
        )
    if data.unreadable_controls:
        warnings.append(
            f"{data.unreadable_controls} {config.uplift.control_event} event(s) left out of the control groups: "
            f"no properties.offer, or a properties.{config.uplift.converted} that is not true or false"
        )
    uplift = {
        o.name: models.control.groups_[o.name].as_dict()
        if o.name in models.control.groups_
        else {"offer": o.name, "controls": 0, "ranked_by": "propensity"}
        for o in config.offers
    }
    report = DecisionReport(
        data.as_of,
        data.traits_as_of,
        len(frame),
        int(frame.offer.notna().sum()),
        int(frame.explored.sum()),
        by_offer,
        {k: int(v) for k, v in held.sort_values(ascending=False, kind="stable").items()},
        models.propensity.quality_,
        uplift,
        warnings,
    )
    return report, frame, models


HELD_AS_INELIGIBLE = ("profiling_consent", "eligibility", "offer_dates")  # an offer's people: not these


def _chunk(data: inputs.Inputs, start: int, size: int) -> inputs.Inputs:
    """The people [start, start + size) of `data`, with their own history and activity."""
    from dataclasses import replace

    people = data.people.iloc[start : start + size]
    ids = people.index

    def mine(group: set[str]) -> set[str]:  # the chunk's part of a set of everyone: the rules test few
        return {p for p in ids if p in group}

    return replace(
        data,
        people=people,
        history=data.history[data.history.profile_id.isin(ids)],
        sent=data.sent[data.sent.profile_id.isin(ids)],
        activity=data.activity[data.activity.profile_id.isin(ids)],
        open_complaints=mine(data.open_complaints),
        consent={ch: mine(group) for ch, group in data.consent.items()},
        profiling=None if data.profiling is None else mine(data.profiling),
        zones=None if data.zones is None else data.zones.reindex(ids),
        portrait=None if data.portrait is None else data.portrait[data.portrait.index.isin(ids)],
    )


def score(models: Models, config, data: inputs.Inputs) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(every candidate with its scores or rule, the chosen one per person, the hour chosen per person and channel)."""
    policy = config.contact_policy
    cands = rules.candidates(config.offers, policy, data)
    open_ = cands[cands.suppressed_by.isna()].copy()
    timing = {}
    for ch, part in open_[["profile_id", "channel"]].drop_duplicates().groupby("channel"):
        pids = part.profile_id.tolist()
        hours = models.timing.choose_many(pids, "hour", policy.send_hours(ch))
        timing |= zip(((p, ch) for p in pids), hours, strict=True)
    open_["hour"] = [timing[k].value for k in zip(open_.profile_id, open_.channel, strict=True)]
    open_ = models.features(open_)
    open_["propensity"] = models.propensity.predict(open_) if len(open_) else []
    open_["uplift"] = open_.propensity - models.untreated(open_)  # NaN: no control group
    priority = open_.offer.map({o.name: o.priority for o in config.offers}).to_numpy(dtype=float)
    open_["expected_value"], open_["score"] = arbitrate.scores(
        config.decisions.objective, open_.propensity, open_.uplift, open_.value, priority
    )
    scored = cands.join(open_[["hour", "propensity", "uplift", "expected_value", "score"]], how="left")
    chosen = arbitrate.pick(scored, policy.exploration, f"{policy.seed}:{data.as_of.isoformat()}")
    why = models.propensity.reasons(models.features(chosen)) if len(chosen) else []
    chosen = chosen.assign(model_reasons=why).set_index("profile_id")
    return scored, chosen, timing


def rows(models: Models, config, data: inputs.Inputs, scored, chosen, timing: dict, now: dt.datetime) -> list[dict]:
    """One decision-log row per person of `data`."""
    policy, objective = config.contact_policy, config.decisions.objective
    clocks = {}  # zone name -> ZoneInfo, made once per zone
    catalogue = {o.name: o for o in config.offers}
    run = uuid.uuid4().hex[:8]
    out = []
    best_channel = {}
    for offer, part in chosen.groupby("offer"):
        pids = part.index.tolist()
        best_channel |= zip(pids, models.timing.choose_many(pids, "channel", catalogue[offer].channels), strict=True)
    records = chosen.to_dict("index")
    logged, none = _candidates(scored, objective), _none_reasons(scored)
    for pid in data.people.index:
        row = {
            "decision_id": f"{pid}:{data.as_of:%Y%m%dT%H%M}:{run}",
            "profile_id": pid,
            "decided_at": now,
            "as_of": data.as_of,
            "candidates": logged.get(pid, "[]"),
            "status": "planned",
            "suppressed_by": None,
        }
        if pid in records:
            c = SimpleNamespace(**records[pid])
            t = timing[pid, c.channel]
            channel_choice = best_channel[pid]
            uplift = None if pd.isna(c.uplift) else float(c.uplift)
            ranking = ranked_by(models, objective, c.offer, c.propensity, uplift, c.value, catalogue[c.offer].priority)
            zone = data.zone(pid, policy.time_zone)
            tz = clocks.setdefault(zone, ZoneInfo(zone))
            reason = chosen_reason(c.offer, c.channel, ranking, c.model_reasons, c.explored, t, zone)
            reason += f"; best {channel_choice.reason}"
            row |= {
                "offer": c.offer,
                "channel": c.channel,
                "send_at": next_send(data.as_of, int(t.value), tz),
                "expected_value": float(c.expected_value),
                "propensity": float(c.propensity),
                "probability": float(c.probability),
                "explored": bool(c.explored),
                "reasons": reason,
                "uplift": uplift,
                "model": "uplift" if arbitrate.by_uplift(objective, uplift) else "propensity",
            }
        else:
            row |= no_offer(none.get(pid, "no offer: the catalogue has none for this person"))
        out.append(row)
    return out


def no_offer(reason: str) -> dict[str, Any]:
    """The decision fields of a person who gets no offer (the batch's and the API's alike)."""
    return {
        "offer": None,
        "channel": None,
        "send_at": None,
        "expected_value": 0.0,
        "propensity": None,
        "probability": 1.0,
        "explored": False,
        "reasons": reason,
        "uplift": None,
        "model": None,
    }


def ranked_by(
    models: Models, objective: str, offer: str, propensity: float, uplift: float | None, value: float, priority: float
) -> str:
    """What the chosen action was ranked by under the objective (cx360.decisions.arbitrate), with its value."""
    worth = f"value {value:,.2f}"
    if objective == "acceptance":
        return f"propensity {propensity:.1%} × priority {priority:g} (objective: acceptance; {worth})"
    if objective == "expected":
        return f"propensity {propensity:.1%} (objective: expected value) × {worth}"
    if uplift is None:
        return f"propensity {propensity:.1%} ({models.control.why_not(offer)}: ranked by propensity) × {worth}"
    group = models.control.groups_[offer]
    return (
        f"uplift {uplift:.1%} (propensity {propensity:.1%} minus {propensity - uplift:.1%} who take it "
        f"uncontacted, learnt from {group.controls} held out) × {worth}"
    )


def chosen_reason(offer, channel, ranking, model_reasons, explored, hour, zone: str) -> str:
    """Why the chosen action: what ranked it and what raised its propensity, and why that send hour."""
    return (
        f"{offer} by {channel}: {ranking}; propensity raised by: {model_reasons}"
        f"{' (explored at random)' if explored else ''}; send at {hour.value:02d}:00 {zone}: "
        f"{hour.reason}"
    )


def _dates_or_where(o) -> str:
    return f"where {o.where}" if o.where else f"runs {o.starts} to {o.ends}"


def _candidates(scored: pd.DataFrame, objective: str) -> pd.Series:
    """profile_id -> the JSON list of their candidates: scores for the open ones, the rule for the others.
    Built column-wise: offer and channel names need no escaping (see cx360.decisions.settings)."""
    if scored.empty:
        return pd.Series(dtype=object)
    held = scored.suppressed_by.notna().to_numpy()
    head = '{"offer": "' + scored.offer + '", "channel": "' + scored.channel + '", "value": '
    head = head + scored.value.round(4).astype(str)
    rules = {r: json.dumps(r, ensure_ascii=False) for r in scored.suppressed_by.dropna().unique()}
    why = ', "suppressed_by": ' + scored.suppressed_by.map(rules).astype(object).fillna("") + "}"
    hour = scored.hour.fillna(0).astype(int).astype(str)
    model = pd.Series(', "model": "propensity"', index=scored.index).where(
        scored.uplift.isna() | (objective != "incremental"), ', "model": "uplift"'
    ) + pd.Series("", index=scored.index).where(
        scored.uplift.isna(), ', "uplift": ' + scored.uplift.round(6).astype(str)
    )
    open_ = ', "propensity": ' + scored.propensity.round(6).astype(str) + model + ', "expected_value": '
    open_ = open_ + scored.expected_value.round(6).astype(str) + ', "hour": ' + hour + "}"
    items = head + pd.Series(np.where(held, why, open_), index=scored.index)
    return "[" + items.groupby(scored.profile_id, sort=False).agg(", ".join) + "]"


def _none_reasons(scored: pd.DataFrame) -> pd.Series:
    """profile_id -> why there is no offer, for a person who gets none."""
    if scored.empty:
        return pd.Series(dtype=object)
    code = scored.suppressed_by.str.split(":").str[0]
    counts = code.groupby([scored.profile_id, code]).size().rename("n").reset_index()
    counts.columns = ["profile_id", "rule", "n"]
    counts = counts.sort_values(["profile_id", "n", "rule"], ascending=[True, False, True])
    text = (counts.rule + " " + counts.n.astype(str)).groupby(counts.profile_id).agg(", ".join)
    all_held = scored.suppressed_by.notna().groupby(scored.profile_id).all()
    every = "no offer: every candidate is held back (" + text.reindex(all_held.index).fillna("") + ")"
    return every.where(all_held, "no offer: no open candidate has a positive score")


RESPONSE_DAYS = 30  # an answer to the same offer within this many days of the send belongs to it


def write(ws: Workspace, frame: pd.DataFrame, history: pd.DataFrame | None = None) -> None:
    """Planned decisions replace the earlier plan; what was sent or suppressed stays in the log, and sent
    decisions take the answers that came back as events (history: inputs.HISTORY_COLUMNS)."""
    engine = ws.engine
    target = schema.ibis_schema("decisions").to_pyarrow()
    kept = engine.table("decisions")
    kept = engine.to_arrow(kept.filter(kept.status != "planned"), step="decisions: log").to_pandas()
    if history is not None and len(kept):
        kept = join_responses(kept, history)
    both = pd.concat([kept, frame], ignore_index=True) if len(kept) else frame.copy()
    both["responded_at"] = pd.to_datetime(both.responded_at)  # a new plan has none: NaN, not NaT
    with engine.step("decisions: write"):
        engine.replace("decisions", pa.Table.from_pandas(both[target.names], schema=target, preserve_index=False))


def join_responses(log: pd.DataFrame, history: pd.DataFrame, days: int = RESPONSE_DAYS) -> pd.DataFrame:
    """Sent decisions without an answer yet get the person's first event on the same offer after the
    send and within `days`: accepted, rejected, ignored or an application declined."""
    waiting = log[(log.status == "sent") & log.response.isna()][["decision_id", "profile_id", "offer", "send_at"]]
    if waiting.empty or history.empty:
        return log
    m = waiting.merge(history[["profile_id", "offer", "name", "ts"]], on=["profile_id", "offer"])
    m = m[(m.ts >= m.send_at) & (m.ts < m.send_at + pd.Timedelta(days=days))]
    first = m.sort_values("ts").drop_duplicates("decision_id").set_index("decision_id")
    out = log.assign(response=log.response.astype(object), responded_at=pd.to_datetime(log.responded_at))
    hit = out.decision_id.isin(first.index)
    if not hit.any():
        return out
    out.loc[hit, "response"] = out.decision_id[hit].map(first["name"]).to_numpy()
    out.loc[hit, "responded_at"] = out.decision_id[hit].map(first["ts"]).to_numpy()
    return out


def export(frame: pd.DataFrame) -> pd.DataFrame:
    """The fixed columns of `cx360 decide -o`: one row per profile, offer empty for none."""
    out = frame[OUTPUT_COLUMNS].copy()
    out["offer"] = out.offer.fillna("")
    out["channel"] = out.channel.fillna("")
    return out

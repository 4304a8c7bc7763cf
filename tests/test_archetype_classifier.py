"""Archetypes learned from labelled survey answers, applied to everyone; the rules where none label."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from cx360 import schema
from cx360.engine import DuckDB
from cx360.errors import DataError
from cx360.models.archetype_classifier import ArchetypeClassifier
from cx360.scoring.archetypes import build

AS_OF = dt.datetime(2025, 7, 1)
# Behaviour that the rules' grid misreads: these paranoids use the app a lot and are never tracked on
# the web, these nomads are heavy web users who consent to everything, these analogs do nothing.
KINDS = {
    "paranoid": {"app_events_90d": 40, "web_events_90d": 0, "logins_90d": 20, "active_days_90d": 30, "devices": 1},
    "nomad": {"app_events_90d": 5, "web_events_90d": 30, "logins_90d": 10, "active_days_90d": 25, "devices": 3},
    "analog": {"app_events_90d": 0, "web_events_90d": 0, "logins_90d": 0, "active_days_90d": 2, "devices": 0},
}


def traits(n_per_kind: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for kind, base in KINDS.items():
        for i in range(n_per_kind):
            noisy = {k: max(0, int(v + rng.integers(-2, 3))) for k, v in base.items()}
            rows.append({"profile_id": f"{kind}-{i:02d}", "kind": kind, **noisy})
    frame = pd.DataFrame(rows)
    return frame.assign(
        as_of=AS_OF,
        forms_started=0,
        digital_channels=(frame.app_events_90d > 0).astype(int) + (frame.web_events_90d > 0).astype(int),
        survey_preferred_device=None,
        survey_uses_mobile_payments=None,
        survey_ok_to_share_data=None,
    )


def survey_events(frame: pd.DataFrame) -> pa.Table:
    cols = {c.name: [None] * len(frame) for c in schema.PROFILE_EVENTS}
    cols.update(
        profile_id=list(frame.profile_id),
        event_id=[f"sv-{p}" for p in frame.profile_id],
        ts=[AS_OF - dt.timedelta(days=10)] * len(frame),
        name=["survey_answered"] * len(frame),
        properties=[json.dumps({"archetype": k.upper()}) for k in frame.kind],
    )
    return pa.table(cols, schema=schema.ibis_schema("profile_events").to_pyarrow())


def test_the_classifier_learns_from_labelled_people_and_is_applied_to_everyone():
    frame = traits()
    engine = DuckDB.in_memory()
    types = {"survey_preferred_device": pa.string(), "survey_uses_mobile_payments": pa.string()}
    data = pa.Table.from_pandas(frame.drop(columns="kind"), preserve_index=False)
    for name, kind in {**types, "survey_ok_to_share_data": pa.int64()}.items():
        data = data.set_column(data.schema.get_field_index(name), name, pa.nulls(len(frame), kind))
    t = engine.stage(data)
    table, how = build(engine, AS_OF, t)
    rules = dict(
        zip(
            table.to_pyarrow().column("profile_id").to_pylist(),
            table.to_pyarrow().column("archetype").to_pylist(),
            strict=True,
        )
    )
    assert how == "rules: no survey answer labels an archetype"
    assert sum(rules[p].startswith("paranoid") for p in frame.profile_id[frame.kind == "paranoid"]) < 10

    labelled = frame[frame.profile_id.str[-2:].astype(int) < 14]  # 14 of each kind answered the survey
    engine.append("profile_events", survey_events(labelled), step="test")
    table, how = build(engine, AS_OF, t)
    out = table.to_pandas().merge(frame[["profile_id", "kind"]], on="profile_id")
    assert how == "survey_model: learned from 42 people's survey answers"
    assert set(out.archetype_from) == {"survey_model"} and len(out) == len(frame)
    unseen = out[~out.profile_id.isin(labelled.profile_id)]
    assert (unseen.archetype == unseen.kind).mean() >= 0.9


def test_too_few_or_unknown_labels_are_clear_errors():
    frame = traits(3)
    with pytest.raises(DataError, match="at least 20 in two archetypes"):
        ArchetypeClassifier().fit(frame, frame.kind)
    with pytest.raises(DataError, match=r"unknown archetype label\(s\) \['hipster'\]"):
        ArchetypeClassifier().fit(frame, frame.kind.replace("nomad", "hipster"))
    with pytest.raises(DataError, match="not fitted"):
        ArchetypeClassifier().predict(frame)

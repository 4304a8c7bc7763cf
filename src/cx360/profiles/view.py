"""The one view of a 3D profile, as a typed model: golden attributes with their sources, identifiers,
traits, breakdowns, scores (with churn risk and its reasons), segments and the digital archetype.

`cx360 profile show`, `Workspace.profile()`, the API's response models and the dashboard all use
`Profile`; `assemble` builds it from the rows the stages wrote, whether they were read from the
warehouse (cx360.profiles.read) or from the serving index (cx360.api.store). Traits and scores are
typed from cx360.schema, so a new column shows in every reader and in the OpenAPI schema at once.

Masking (cx360.api.access) works on `Profile.model_dump()`; a masked dump validates as a
`Profile` again, because attribute values and identifiers are plain JSON values.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from cx360 import schema


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# Stored timestamps are naive UTC; as RFC 3339 date-times they need their offset (`...T10:00:00Z`).
UtcDatetime = Annotated[dt.datetime, AfterValidator(_utc)]
_PYTHON_TYPES: dict[str, Any] = {
    "string": str,
    "int64": int,
    "float64": float,
    "boolean": bool,
    "timestamp": UtcDatetime,
    "date": dt.date,
}


def columns_model(name: str, table: str, doc: str, skip: tuple[str, ...] = ("profile_id",)) -> type[BaseModel]:
    """A model with one optional field per column of `table` (NULL: not known or not computed)."""
    fields: dict[str, Any] = {
        c.name: (_PYTHON_TYPES[c.dtype] | None, Field(None, description=c.doc))
        for c in schema.TABLES[table]
        if c.name not in skip
    }
    return create_model(name, __doc__=doc, __config__=ConfigDict(extra="ignore"), **fields)


Traits = columns_model("Traits", "profile_traits", "Every profile trait as of `as_of` (see docs/traits.md).")
ValueScores = columns_model("ValueScores", "profile_scores", "Lifetime value, influence and the value tier.")
Archetype = columns_model("Archetype", "profile_archetypes", "The digital archetype and the two scores that place it.")


class Attribute(BaseModel):
    value: Any = Field(description="the golden value; masked text (`А***`) for a role that may not see personal data")
    record: str | None = Field(None, description="the record it was taken from, `SOURCE:RECORD_ID`")
    rule: str | None = Field(None, description="the survivorship rule that chose it")


class Churn(BaseModel):
    risk: float | None = Field(None, description="calibrated probability of no activity within the horizon")
    reasons: list[str] = Field(default_factory=list, description="the traits that raise this person's risk most")
    horizon_days: int | None = None
    as_of: UtcDatetime | None = Field(None, description="the traits as_of that was scored")
    scored_at: UtcDatetime | None = None


class Scores(ValueScores):  # type: ignore[misc, valid-type]
    churn: Churn | None = Field(None, description="churn risk and its reasons; null until `cx360 churn score` ran")


class Membership(BaseModel):
    segment: str
    entered_at: UtcDatetime | None = Field(
        None, description="as_of of the evaluation that first found the person in it"
    )
    exited_at: UtcDatetime | None = Field(
        None, description="as_of of the evaluation that no longer did; null while a member"
    )
    updated_at: UtcDatetime | None = Field(None, description="when the stream last decided it; null: the batch did")
    event_id: str | None = Field(None, description="the event whose arrival entered or exited it (stream only)")


class Freshness(BaseModel):
    origin: str = Field(description="`batch` (the last `cx360 run`) or `stream` (events applied since)")
    as_of: UtcDatetime | None = Field(None, description="the time the traits are computed at")
    updated_at: UtcDatetime | None = Field(None, description="when this document was computed")
    last_event_id: str | None = Field(None, description="the last event applied to it (stream only)")


class Profile(BaseModel):
    profile_id: str
    sources: list[str] = Field(default_factory=list, description="sources that know the person")
    records: int = Field(0, description="source records merged into the profile")
    attributes: dict[str, Attribute] = Field(default_factory=dict, description="golden attributes that have a value")
    identifiers: dict[str, list[str]] = Field(default_factory=dict, description="every identifier, by kind")
    traits: Traits | None = Field(None, description="null until `cx360 profile build` ran")  # type: ignore[valid-type]
    breakdowns: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="per breakdown, key to count or amount, largest first"
    )
    scores: Scores | None = Field(None, description="null until the profile stage scored value")
    segments: list[Membership] = Field(default_factory=list, description="current memberships first, then past ones")
    archetype: Archetype | None = Field(None, description="null until `cx360 segments evaluate` ran")  # type: ignore[valid-type]
    freshness: Freshness | None = Field(None, description="how fresh this profile is, and the last event applied")
    withheld: str | None = Field(
        None,
        description="why traits, breakdowns, scores, segments and archetype are left out: the API key is not "
        "for the profiling purpose, or the person does not consent to profiling (docs/privacy.md)",
    )


_GOLDEN_META = ("profile_id", "attribute_sources", "identifiers", "records", "sources")


def assemble(
    profile_id: str,
    golden: Mapping[str, Any] | None,
    *,
    traits: Mapping[str, Any] | None = None,
    breakdowns: Iterable[tuple[str, str, float]] = (),
    scores: Mapping[str, Any] | None = None,
    churn: Mapping[str, Any] | None = None,
    segments: Iterable[Mapping[str, Any]] = (),
    archetype: Mapping[str, Any] | None = None,
    freshness: Mapping[str, Any] | None = None,
) -> Profile:
    """The profile from one row of each table (None where the table has no row for it); `breakdowns`
    as (breakdown, key, value) rows, `segments` as segment_members rows."""
    golden = golden or {}
    sources = _json(golden.get("attribute_sources"))
    grouped: dict[str, dict[str, float]] = {}
    for name, key, value in breakdowns:
        grouped.setdefault(name, {})[key] = value
    traits, value_scores, archetype = _row(traits), _row(scores), _row(archetype)
    if churn is not None and churn.get("churn_risk") is not None:
        value_scores = value_scores or {}
        value_scores["churn"] = Churn(
            risk=churn["churn_risk"],
            horizon_days=churn.get("horizon_days"),
            as_of=churn.get("as_of"),
            scored_at=churn.get("scored_at"),
            reasons=[r.strip() for r in (churn.get("churn_reasons") or "").split(";") if r.strip()],
        )
    return Profile(
        profile_id=profile_id,
        sources=[s.strip() for s in (golden.get("sources") or "").split(",") if s.strip()],
        records=golden.get("records") or 0,
        attributes={
            name: {"value": _typed(name, v), **sources.get(name, {})}
            for name, v in golden.items()
            if name not in _GOLDEN_META and name != "k" and v is not None
        },
        identifiers=_json(golden.get("identifiers")),
        traits=traits,
        breakdowns={
            name: dict(sorted(values.items(), key=lambda kv: -kv[1])) for name, values in sorted(grouped.items())
        },
        scores=value_scores,
        segments=sorted(
            segments, key=lambda m: (m.get("exited_at") is not None, str(m.get("exited_at") or ""), m["segment"])
        ),
        archetype=archetype,
        freshness=freshness,
    )


_TEMPORAL = {c.name: _PYTHON_TYPES[c.dtype] for c in schema.ATTRIBUTES if c.dtype in ("date", "timestamp")}


def _typed(name: str, value: Any) -> Any:
    """Dates and times as objects, whether the row came from Arrow or from a JSON document."""
    kind = _TEMPORAL.get(name)
    return kind.fromisoformat(value) if kind is not None and isinstance(value, str) else value


def _row(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The row, or None when there is none (an outer join's row of NULLs)."""
    if not row or all(v is None for k, v in row.items() if k not in ("k", "profile_id")):
        return None
    return dict(row)


def _json(text: str | None) -> dict:
    return json.loads(text) if text else {}

"""Read one 3D profile: golden attributes with their sources, identifiers, traits, breakdowns and scores."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cx360.identity.explain import find_profile
from cx360.workspace import Workspace


@dataclass
class Profile:
    profile_id: str
    attributes: dict[str, Any]
    attribute_sources: dict[str, dict]
    identifiers: dict[str, list[str]]
    sources: list[str]
    traits: dict[str, Any] = field(default_factory=dict)
    breakdowns: dict[str, dict[str, float]] = field(default_factory=dict)
    scores: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile_id": self.profile_id,
            "attributes": {k: {"value": v, **self.attribute_sources.get(k, {})} for k, v in self.attributes.items()},
            "identifiers": self.identifiers,
            "sources": self.sources,
            "traits": self.traits,
            "breakdowns": self.breakdowns,
            "scores": self.scores,
        }


def read(ws: Workspace, key: str) -> Profile:
    """The profile behind a profile id or any identifier (e-mail, phone, customer number, card token,
    cookie, device, social handle, `record:SOURCE:ID`)."""
    engine = ws.engine
    pid = find_profile(ws, key)
    profiles = engine.table("profiles")
    row = engine.to_arrow(profiles.filter(profiles.profile_id == pid), step="profile: golden record").to_pylist()
    golden = row[0] if row else {"profile_id": pid}
    profile = Profile(
        profile_id=pid,
        attributes={k: v for k, v in golden.items()
                    if v is not None and k not in ("profile_id", "attribute_sources", "identifiers", "records", "sources")},
        attribute_sources=json.loads(golden.get("attribute_sources") or "{}"),
        identifiers=json.loads(golden.get("identifiers") or "{}"),
        sources=[s.strip() for s in (golden.get("sources") or "").split(",") if s.strip()],
    )
    traits = engine.table("profile_traits")
    t = engine.to_arrow(traits.filter(traits.profile_id == pid), step="profile: traits").to_pylist()
    if t:
        profile.traits = {k: v for k, v in t[0].items() if k != "profile_id"}
    b = engine.table("profile_breakdowns")
    for r in engine.to_arrow(b.filter(b.profile_id == pid).order_by(["breakdown", "key"]), step="profile: breakdowns").to_pylist():
        profile.breakdowns.setdefault(r["breakdown"], {})[r["key"]] = r["value"]
    if engine.has_table("profile_scores"):
        s = engine.table("profile_scores")
        rows = engine.to_arrow(s.filter(s.profile_id == pid), step="profile: scores").to_pylist()
        if rows:
            profile.scores = {k: v for k, v in rows[0].items() if k != "profile_id"}
    return profile

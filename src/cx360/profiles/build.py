"""The profile stage: identity map and events in; profile_events, profile_traits and
profile_breakdowns out."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cx360.errors import StageNotRunError
from cx360.identity import revealed
from cx360.privacy.consent import Policy, resolved
from cx360.privacy.vault import Vault
from cx360.profiles import events as profile_events
from cx360.profiles import scores, texts, traits

if TYPE_CHECKING:
    from cx360.workspace import Workspace


@dataclass
class ProfileReport:
    as_of: dt.datetime
    profiles: int
    events: int
    events_attributed: int
    texts_scored: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    scores: scores.ScoreReport | None = None


def default_as_of(ws: Workspace) -> dt.datetime:
    """Midnight after the latest event, so a replayed history reads as fresh; but never after today, so
    one event dated in the future cannot move everybody's "now" (ingest quarantines such dates too)."""
    events = ws.engine.table("events")
    latest = ws.engine.scalar(events.ts.max(), step="profiles: latest event")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if latest is None:
        return now
    return dt.datetime.combine(min(latest, now).date() + dt.timedelta(days=1), dt.time())


def build(ws: Workspace, as_of: dt.datetime | None = None, *, score_texts: bool = True) -> ProfileReport:
    """Traits, breakdowns and scores as of `as_of`; new texts are scored first unless the pipeline's
    texts stage has done so (score_texts=False)."""
    engine = ws.engine
    n_profiles = engine.scalar(engine.table("profiles").count(), step="profiles: count")
    if not n_profiles:
        raise StageNotRunError("no profiles to describe yet", stage="identity", workspace=ws.root)
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    attributed = profile_events.attribute(engine.table("events"), engine.table("identity_map"))
    with engine.step("profiles: attribute events", attributed):
        engine.replace("profile_events", attributed)
    seconds["attribute events"] = time.perf_counter() - started

    as_of = as_of or default_as_of(ws)
    started = time.perf_counter()
    texts_scored = texts.score_new(engine, ws.config.text) if score_texts else 0
    voice, voice_breakdowns = (engine.stage(t) for t in texts.summarise(engine, as_of))
    seconds["texts"] = time.perf_counter() - started

    started = time.perf_counter()
    # Consent as of as_of, like every trait: nothing at or after as_of is read.
    with engine.step("profiles: consents"):
        engine.replace("profile_consents", resolved(engine))
    consents = Policy(ws.config.privacy).granted_pairs(engine, as_of - dt.timedelta(microseconds=1))
    vault = Vault.of(ws)
    born = None  # with the vault on, the golden birth dates (for ages) are in a staged table of this stage
    if vault is not None:
        ids = engine.to_arrow(engine.table("profiles").select("profile_id"), step="profiles: ids")
        born = engine.stage(revealed.birth_dates(vault, ids["profile_id"].to_pylist()))
    try:
        trait_table, breakdowns = traits.build(
            engine, as_of, voice, voice_breakdowns, consents, timezone=ws.config.workspace.timezone, born=born
        )
        with engine.step("profiles: traits", trait_table):
            engine.replace("profile_traits", trait_table)
        with engine.step("profiles: breakdowns", breakdowns):
            engine.replace("profile_breakdowns", breakdowns)
    finally:
        for staged in (voice, voice_breakdowns, *([born] if born is not None else [])):
            engine.unstage(staged)
    seconds["traits"] = time.perf_counter() - started

    started = time.perf_counter()
    ids = engine.to_arrow(engine.table("profiles").select("profile_id"), step="profiles: ids")["profile_id"].to_pandas()
    score_table, score_report = scores.build(engine, as_of, ids, token=vault and vault.token)
    engine.replace("profile_scores", score_table)
    seconds["scores"] = time.perf_counter() - started

    return ProfileReport(
        as_of=as_of,
        profiles=n_profiles,
        events=engine.scalar(engine.table("events").count(), step="profiles: count events"),
        events_attributed=engine.scalar(engine.table("profile_events").count(), step="profiles: count attributed"),
        texts_scored=texts_scored,
        seconds=seconds,
        scores=score_report,
    )

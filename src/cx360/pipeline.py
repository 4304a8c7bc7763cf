"""The batch pipeline, declared once: each stage names the tables it reads and writes, and every run of
a stage records what it wrote (see cx360.provenance), so `cx360 status` can say which tables are stale.

`cx360 run` runs the stages in order; `--select STAGE` runs one, `--select STAGE+` it and every stage
downstream of it (every stage that reads, directly or not, what it writes). The noun commands
(`cx360 ingest`, `cx360 profile build`, `cx360 churn score -w`, ...) run their stage through here too.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from cx360 import provenance
from cx360.errors import ConfigError, Cx360Error, StageNotRunError
from cx360.workspace import Workspace


@dataclass
class Outcome:
    """What a stage function returns: its own report (for the CLI), the as_of it produced, and whether it
    changed its tables (an ingest that found nothing new leaves their versions alone)."""

    report: object = None
    as_of: dt.datetime | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None  # the stage ran but failed in part (a source that could not be read)
    skipped: str | None = None  # why the stage did not run (no churn model yet)
    changed: bool = True


@dataclass(frozen=True)
class Stage:
    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    run: Callable[..., Outcome]
    doc: str


@dataclass
class StageResult:
    stage: str
    status: str  # ok, failed, skipped, not run
    seconds: float = 0.0
    rows_written: dict[str, int] = field(default_factory=dict)
    as_of: dt.datetime | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    needs: str | None = None  # the earlier stage it asked for, when it could not start without it
    report: object = None
    exception: Cx360Error | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        out = {
            "stage": self.stage,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "rows_written": self.rows_written,
            "as_of": self.as_of,
            "warnings": self.warnings,
            "error": self.error,
        }
        if hasattr(self.report, "as_dict"):  # a report made for the run report (retention: rows per rule)
            out["report"] = self.report.as_dict()
        return out


@dataclass
class RunReport:
    stages: list[StageResult]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r.status in ("ok", "skipped") for r in self.stages)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "stages": [r.as_dict() for r in self.stages],
            "warnings": [f"{r.stage}: {w}" for r in self.stages for w in r.warnings],
        }


# -- the stages ----------------------------------------------------------------------------------------
def _ingest(ws: Workspace, only: list[str] | None = None, on_progress=None) -> Outcome:
    from cx360.sources.ingest import ingest
    from cx360.stream.drain import drain

    picked = None if only is None else [n for n in only if any(s.name == n for s in ws.config.sources)]
    reports = ingest(ws, picked, on_progress=on_progress) if picked is None or picked else []
    reports += drain(ws, only)  # what the collector logged, after the sources
    failed = "; ".join(f"{r.source}: {r.error}" for r in reports if not r.ok) or None
    return Outcome(reports, error=failed, changed=any(r.inputs > r.unchanged for r in reports))


def _retention(
    ws: Workspace, now: dt.datetime | None = None, dry_run: bool = False, compact: bool | None = None
) -> Outcome:
    from cx360.privacy.retention import apply
    from cx360.stream.eventlog import LOG_DIR
    from cx360.stream.segments import DRAINED

    segments = sorted(ws.root.glob(f"{LOG_DIR}/*/*/*/{DRAINED}/*.jsonl"))  # partition/source/stream/drained
    compact = ws.config.retention.compact if compact is None else compact
    report = apply(ws.engine, ws.config, now=now, dry_run=dry_run, segments=segments, compact=compact)
    if not report.rules:
        return Outcome(skipped="no [retention] rules in cx360.toml", changed=False)
    if compact and report.removed and not dry_run and ws.config.engine.kind == "duckdb":
        ws.engine.compact()
        ws.close()  # the next stage opens the rewritten file
        report.compacted = True
    return Outcome(report, warnings=report.warnings, changed=report.removed > 0 and not dry_run)


def _identity(ws: Workspace) -> Outcome:
    from cx360.identity.resolve import resolve

    report = resolve(ws)
    return Outcome(report, warnings=list(report.warnings))


def _texts(ws: Workspace) -> Outcome:
    from cx360.profiles.texts import score_new

    scored = score_new(ws.engine, ws.config.text)
    return Outcome(scored, changed=scored > 0)


def _profiles(ws: Workspace, as_of: dt.datetime | None = None) -> Outcome:
    from cx360.profiles.build import build

    report = build(ws, as_of, score_texts=False)
    return Outcome(report, as_of=report.as_of, warnings=list(report.scores.warnings if report.scores else []))


def _churn(ws: Workspace, model: Path | None = None) -> Outcome:
    from cx360.scoring import churn as cw

    target = model or ws.root / cw.DEFAULT_MODEL_DIR
    if model is None and not target.exists():
        return Outcome(
            skipped=f"no churn model in {target}: train one with `cx360 churn train -w {ws.root}`", changed=False
        )
    summary = cw.score(ws, target)
    return Outcome(summary, as_of=summary.as_of)


def _archetypes(ws: Workspace) -> Outcome:
    from cx360.scoring import archetypes, habits
    from cx360.segments.builtin import as_of_of

    as_of = as_of_of(ws.engine)
    if as_of is None:
        raise StageNotRunError("no profile traits to describe", stage="profiles", workspace=ws.root)
    with ws.engine.step("archetypes"):
        table, how = archetypes.build(ws.engine, as_of)
        ws.engine.replace("profile_archetypes", table)
        warning = habits.record(ws.engine, as_of)
    return Outcome(how, as_of=as_of, warnings=[warning] if warning else [])


def _segments(ws: Workspace) -> Outcome:
    from cx360.segments.builtin import as_of_of
    from cx360.segments.evaluate import evaluate

    results = evaluate(ws)
    failed = "; ".join(r.error or r.name for r in results if r.status != "ok") or None  # errors name their segment
    return Outcome(results, as_of=as_of_of(ws.engine), error=failed)


def _listening(ws: Workspace) -> Outcome:
    from cx360.listening.build import build

    with ws.engine.step("listening"):
        built = build(ws.engine, ws.config.listening)
    return Outcome(built, warnings=built.warnings)


STAGES: tuple[Stage, ...] = (
    Stage(
        "ingest",
        (),
        ("records", "events", "consents", "quarantine", "dropped_identifiers", "ingest_batches"),
        _ingest,
        "load every source; bad rows to quarantine",
    ),
    Stage(
        "retention",
        (),
        ("events", "records", "quarantine", "dropped_identifiers"),
        _retention,
        "delete what is older than [retention] allows, before anything is built from it",
    ),
    Stage(
        "identity",
        ("records", "events", "identity_overrides"),
        ("identity_links", "identity_map", "profile_ids", "profiles"),
        _identity,
        "link records and identifiers into profiles with golden records",
    ),
    Stage("texts", ("events",), ("text_scores",), _texts, "score new texts: language, tone, complaints, intent"),
    Stage(
        "profiles",
        ("events", "identity_map", "profiles", "text_scores", "consents"),
        ("profile_events", "profile_traits", "profile_breakdowns", "profile_scores", "profile_consents"),
        _profiles,
        "traits, breakdowns, lifetime value and influence as of a date",
    ),
    Stage(
        "churn",
        ("profile_traits", "profile_events"),
        ("churn_scores",),
        _churn,
        "score churn risk with the workspace's churn model, when it has one",
    ),
    Stage(
        "archetypes",
        ("profile_traits", "profile_events"),
        ("profile_archetypes", "archetype_history"),
        _archetypes,
        "digital archetype of each profile, and the history of each person's archetypes",
    ),
    Stage(
        "segments",
        ("profile_traits", "profile_scores", "churn_scores", "profile_archetypes", "profile_events", "consents"),
        ("profile_rfm", "profile_clusters", "segments", "segment_members"),
        _segments,
        "RFM cells, clusters, and every declared segment",
    ),
    Stage(
        "listening",
        ("events", "text_scores", "profile_events", "profiles"),
        ("mentions", "prospects"),
        _listening,
        "mentions of the [listening] watch-list with their tone; post authors who are not customers",
    ),
)
BY_NAME = {s.name: s for s in STAGES}


def downstream(name: str) -> list[str]:
    """The stage and every stage after it that reads, directly or not, what it writes (or rewrites it:
    retention removes from what ingest wrote)."""
    chosen, written = [name], set(BY_NAME[name].writes)
    for s in STAGES[[x.name for x in STAGES].index(name) + 1 :]:
        if written & (set(s.reads) | set(s.writes)):
            chosen.append(s.name)
            written |= set(s.writes)
    return chosen


def select(expression: str | None) -> list[str]:
    """`None` (every stage), `STAGE`, or `STAGE+` (it and everything downstream)."""
    if expression is None:
        return [s.name for s in STAGES]
    name, plus = expression.removesuffix("+"), expression.endswith("+")
    if name not in BY_NAME:
        raise ConfigError(
            f"--select {expression!r}: unknown stage; stages: {', '.join(BY_NAME)} "
            "(add + for the stage and everything downstream)"
        )
    return downstream(name) if plus else [name]


# -- running ---------------------------------------------------------------------------------------
def run_stage(ws: Workspace, name: str, **params) -> StageResult:
    """Run one stage and record its provenance. The stage's own errors give a failed result; a transient
    one (the warehouse is locked by another process) is raised: trying again later is the remedy."""
    stage = BY_NAME[name]
    started = time.perf_counter()
    try:
        outcome = stage.run(ws, **params)
    except Cx360Error as exc:
        if exc.retryable:
            raise
        needs = exc.stage if isinstance(exc, StageNotRunError) else None
        return StageResult(name, "failed", time.perf_counter() - started, error=str(exc), needs=needs, exception=exc)
    result = StageResult(
        name,
        "failed" if outcome.error else "skipped" if outcome.skipped else "ok",
        warnings=outcome.warnings,
        as_of=outcome.as_of,
        error=outcome.error or outcome.skipped,
        report=outcome.report,
    )
    if not outcome.skipped:
        known = provenance.versions(ws.engine)
        if outcome.changed or any(t not in known for t in stage.writes):
            result.rows_written = provenance.record(
                ws.engine, name, reads=stage.reads, writes=stage.writes, as_of=outcome.as_of
            )
    result.seconds = time.perf_counter() - started
    return result


def run(
    ws: Workspace,
    expression: str | None = None,
    *,
    context: Callable[[str], AbstractContextManager[dict]] | None = None,
    on_stage: Callable[[StageResult], None] | None = None,
) -> RunReport:
    """Run the selected stages in order. A failed stage stops the run (the rest are `not run`). A stage
    that cannot start because an earlier stage of this very run produced nothing for it (no profiles
    yet) is skipped, with every stage after it.

    `context(stage)` wraps each stage (a progress display) and gives its parameters; `on_stage` sees
    each result as it comes."""
    started = time.perf_counter()
    results: list[StageResult] = []
    stop: StageResult | None = None
    for name in select(expression):
        if stop is not None:
            result = StageResult(
                name, "skipped" if stop.status == "skipped" else "not run", error=f"{stop.stage} {stop.status}"
            )
        else:
            with (context or _no_context)(name) as params:
                result = run_stage(ws, name, **params)
            if result.status == "failed" and result.needs in {r.stage for r in results if r.status == "ok"}:
                result.status = "skipped"
            if result.status == "failed" or result.needs:
                stop = result
        results.append(result)
        if on_stage:
            on_stage(result)
    return RunReport(results, time.perf_counter() - started)


def _no_context(name: str) -> AbstractContextManager[dict]:
    return nullcontext({})


def table_states(ws: Workspace) -> list[provenance.TableState]:
    return provenance.states(ws.engine, [(s.name, s.reads, s.writes) for s in STAGES])

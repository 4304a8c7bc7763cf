"""`cx360 run`: the batch pipeline (see cx360.pipeline), with each stage's report as it finishes and a
run report at the end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit_json, fail, out, table

if TYPE_CHECKING:
    from cx360.pipeline import RunReport, StageResult

SPINNERS = {"identity": "Resolving identities...", "texts": "Scoring texts...", "profiles": "Building profiles...",
            "churn": "Scoring churn risk...", "archetypes": "Scoring archetypes...", "segments": "Evaluating segments..."}


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    workspace: WorkspaceOpt = Path("."),
    select: Annotated[str | None, typer.Option("--select", help="Only this stage (STAGE), or it and everything downstream (STAGE+); stages: ingest, identity, texts, profiles, churn, archetypes, segments.")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Run the batch pipeline: ingest every source, resolve identities into profiles, score texts, build
    traits, re-score churn (when the workspace has a churn model), score archetypes and evaluate segments."""
    from cx360 import pipeline
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        show = None if fmt is Format.json else print_stage
        report = pipeline.run(ws, select, context=stage_context, on_stage=show)
    finish(report, fmt)


@contextmanager
def stage_context(stage: str) -> Iterator[dict]:
    """A progress display around each stage; the ingest one counts rows per input."""
    if stage == "ingest":
        from cx360.cli.ingest import ingest_progress

        with ingest_progress() as on_progress:
            yield {"on_progress": on_progress}
        return
    with out.status(SPINNERS.get(stage, f"{stage}...")):
        yield {}


def run_one(ws, stage: str, **params) -> StageResult:
    """One stage, for its noun command (`cx360 profile build`, ...): an error is raised as it came."""
    from cx360.pipeline import run_stage

    with stage_context(stage) as extra:
        result = run_stage(ws, stage, **{**extra, **params})
    if result.exception is not None:
        raise result.exception
    return result


def print_stage(result: StageResult) -> None:
    """The stage's own report, as its noun command prints it."""
    from cx360.cli import churn, identity, ingest, profile, segments

    printers = {"ingest": ingest.print_ingest_report, "identity": identity.print_identity_report,
                "profiles": profile.print_profile_report, "churn": churn.print_churn_scores,
                "segments": segments.print_segment_results}
    if result.report is not None and result.stage in printers:
        printers[result.stage](result.report)


def finish(report: RunReport, fmt: Format = Format.table, *, summary: bool = True) -> None:
    """Print the run report (unless the stage's own report said it all); exit 1 when a stage failed."""
    if not summary:
        pass
    elif fmt is Format.json:
        emit_json(report.as_dict())
    else:
        out.print(table("Run", ["stage", "status", "seconds", "rows written", "as of", "note"], [
            (r.stage, _status(r.status), f"{r.seconds:.1f}", sum(r.rows_written.values()) if r.rows_written else None,
             r.as_of.isoformat(sep=" ", timespec="seconds") if r.as_of else None,
             r.error if r.status in ("skipped", "not run") else None)
            for r in report.stages
        ]))
    failed = [r for r in report.stages if r.status == "failed"]
    for r in failed:
        fail(f"{r.stage}: {r.error}")
    if failed:
        raise typer.Exit(1)
    sources = [x for r in report.stages if r.stage == "ingest" and r.report for x in r.report]
    quarantined = sum(x.quarantined for x in sources)
    if quarantined:
        out.print(f"{quarantined:,} rows quarantined: see them with [bold]cx360 quarantine[/].")
    dropped = sum(x.identifiers_dropped for x in sources)
    if dropped:
        out.print(f"{dropped:,} malformed identifiers dropped from rows that were loaded: "
                  "see them with [bold]cx360 quarantine --dropped[/].")


def _status(status: str) -> Text:
    return Text(status, style={"ok": "green", "skipped": "yellow"}.get(status, "bold red"))

"""Running one stage for a command: its progress display, and the run report with the exit code.
Every command that runs stages uses these; `cx360 run` adds the stage reports (cli.run)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from cx360.cli.output import Format, emit_json, err, fail, out, table

if TYPE_CHECKING:
    from cx360.pipeline import RunReport, StageResult

SPINNERS = {
    "identity": "Resolving identities...",
    "texts": "Scoring texts...",
    "profiles": "Building profiles...",
    "churn": "Scoring churn risk...",
    "archetypes": "Scoring archetypes...",
    "segments": "Evaluating segments...",
    "listening": "Matching the watch-list...",
}


@contextmanager
def stage_context(stage: str) -> Iterator[dict]:
    """A progress display around each stage; the ingest one counts rows per input."""
    if stage == "ingest":
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


@contextmanager
def ingest_progress() -> Iterator[Callable[[str, str, int], None]]:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.fields[rows]:>12,} rows"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        tasks: dict[str, int] = {}

        def on_progress(source: str, label: str, rows: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(f"{source}: {Path(label).name}", rows=0)
            progress.update(tasks[label], rows=rows)

        yield on_progress


def finish(report: RunReport, fmt: Format = Format.table, *, summary: bool = True) -> None:
    """Print the run report (unless the stage's own report said it all); exit 1 when a stage failed."""
    if not summary:
        pass
    elif fmt is Format.json:
        emit_json(report.as_dict())
    else:
        out.print(
            table(
                "Run",
                ["stage", "status", "seconds", "rows written", "as of", "note"],
                [
                    (
                        r.stage,
                        _status(r.status),
                        f"{r.seconds:.1f}",
                        sum(r.rows_written.values()) if r.rows_written else None,
                        r.as_of.isoformat(sep=" ", timespec="seconds") if r.as_of else None,
                        r.error if r.status in ("skipped", "not run") else None,
                    )
                    for r in report.stages
                ],
            )
        )
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
        out.print(
            f"{dropped:,} malformed identifiers dropped from rows that were loaded: "
            "see them with [bold]cx360 quarantine --dropped[/]."
        )


def _status(status: str) -> Text:
    return Text(status, style={"ok": "green", "skipped": "yellow"}.get(status, "bold red"))

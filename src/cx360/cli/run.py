"""`cx360 run`: the batch pipeline (see cx360.pipeline), with each stage's report as it finishes and a
run report at the end."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt
from cx360.cli.stages import finish, stage_context

if TYPE_CHECKING:
    from cx360.pipeline import StageResult


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    workspace: WorkspaceOpt = Path("."),
    select: Annotated[
        str | None,
        typer.Option(
            "--select",
            help="Only this stage (STAGE), or it and everything downstream (STAGE+); "
            "stages: ingest, retention, identity, texts, profiles, churn, archetypes, segments, listening.",
        ),
    ] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Run the batch pipeline: ingest every source, delete what [retention] no longer keeps, resolve
    identities into profiles, score texts, build traits, re-score churn (when the workspace has a churn
    model), score archetypes (keeping their history), evaluate segments, and match posts against the
    [listening] watch-list."""
    from cx360 import pipeline
    from cx360.privacy.vault import Vault
    from cx360.stream.drain import connect_between_drains
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        connect_between_drains(ws)  # a running server's drain holds the warehouse only for a moment
        show = None if fmt is Format.json else print_stage
        report = pipeline.run(ws, select, context=stage_context, on_stage=show)
        warehouse = getattr(ws.engine, "path", None)
    if report.ok and warehouse is not None:
        from cx360.api.reconcile import after_batch

        vault = Vault.of(ws)
        try:
            # running servers serve the new profiles at their next request
            done = after_batch(ws.root, ws.config, warehouse, vault)
        finally:
            if vault is not None:
                vault.close()
        if done.index_rebuilt and show is not None:
            print(
                f"serving index rebuilt; online store: {done.profiles_dropped} profiles now served from the batch, "
                f"{done.profiles_kept} with newer events kept"
            )
    finish(report, fmt)


def print_stage(result: StageResult) -> None:
    """The stage's own report, as its noun command prints it."""
    from cx360.cli import churn, identity, ingest, listening, privacy, profile, segments

    printers = {
        "ingest": ingest.print_ingest_report,
        "identity": identity.print_identity_report,
        "retention": privacy.print_retention_report,
        "profiles": profile.print_profile_report,
        "churn": churn.print_churn_scores,
        "segments": segments.print_segment_results,
        "archetypes": lambda how: segments.out.print(f"archetypes: {how}"),
        "listening": listening.print_built,
    }
    if result.report is not None and result.stage in printers:
        printers[result.stage](result.report)

"""`cx360 demo`: build the synthetic bank, run the pipeline on it, and score each stage against the bank's
ground truth as it finishes."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from cx360.cli.output import out, table


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    directory: Annotated[Path, typer.Argument(help="Folder for the demo workspace.")] = Path("cx360-demo"),
    customers: Annotated[int, typer.Option(min=10, help="People in the synthetic bank.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same world.")] = 7,
    force: Annotated[bool, typer.Option(help="Replace the folder if it holds a previous demo.")] = False,
    through_collector: Annotated[
        bool,
        typer.Option(
            help="Send the web and app activity through `cx360 serve` (started on 127.0.0.1) with the Segment "
            "client, instead of reading their files."
        ),
    ] = False,
) -> None:
    """Generate a synthetic multi-source bank into a workspace, ingest it, resolve identities, build
    the profiles, and score them against the bank's ground truth."""
    from cx360.cli.run import print_stage
    from cx360.cli.stages import finish, stage_context
    from cx360.config import CONFIG_FILE
    from cx360.demo import generate_world
    from cx360.demo.scoring import archetype_frame, identity_scores, value_scores
    from cx360.errors import ConfigError
    from cx360.pipeline import run
    from cx360.status import table_counts
    from cx360.workspace import Workspace

    if directory.exists() and any(directory.iterdir()):
        if not force:
            raise ConfigError(f"{directory} is not empty; choose another folder or pass --force to replace it")
        if not (directory / CONFIG_FILE).exists():
            raise ConfigError(f"{directory} does not look like a cx360 demo (no {CONFIG_FILE}); refusing to delete it")
        shutil.rmtree(directory)
    with out.status(f"Generating a bank with {customers:,} customers (seed {seed})..."):
        world = generate_world(directory, customers=customers, seed=seed)
    out.print(table("Synthetic world", ["file", "rows"], sorted(world.rows.items())))
    out.print(f"Ground truth for scoring later stages: {directory / 'truth'} (not read by cx360 itself)")
    replays = None
    if through_collector:
        from cx360.cli import demo_collect

        replays = demo_collect.send(directory)
    with Workspace(directory) as ws:
        truth = directory / "truth"

        def show(result) -> None:
            print_stage(result)
            if result.status != "ok":
                return
            if result.stage == "identity":
                scores = identity_scores(ws, truth)
                out.print(
                    table(
                        "Identity against the ground truth",
                        ["measure", "precision", "recall", "F1"],
                        [
                            (name, f"{s.precision:.4f}", f"{s.recall:.4f}", f"{s.f1:.4f}")
                            for name, s in (("pairwise", scores["pairwise"]), ("B-cubed", scores["bcubed"]))
                        ],
                    )
                )
            elif result.stage == "profiles":
                value = value_scores(ws, truth)
                out.print(
                    table(
                        "Value against the ground truth",
                        ["measure", "value"],
                        [
                            ("customers with a lifetime value", value["customers"]),
                            ("Spearman: clv_12m vs hidden spending level", f"{value['clv_spearman']:.3f}"),
                            ("mean p_alive of people who really left", f"{value['p_alive_churned']:.3f}"),
                            ("mean p_alive of people who stayed", f"{value['p_alive_stayed']:.3f}"),
                        ],
                    )
                )
            elif result.stage == "archetypes":
                arch = archetype_frame(ws, truth)
                majority = arch["true_archetype"].value_counts(normalize=True).iloc[0]
                out.print(
                    table(
                        "Digital archetypes against the ground truth",
                        ["measure", "value"],
                        [
                            ("customers", len(arch)),
                            ("accuracy", f"{(arch['archetype'] == arch['true_archetype']).mean():.3f}"),
                            ("majority-class baseline", f"{majority:.3f}"),
                        ],
                    )
                )

        report = run(ws, context=stage_context, on_stage=show)
        if replays is not None:
            demo_collect.show_landed(ws, replays)
        out.print(table("Workspace tables", ["table", "rows"], table_counts(ws).items()))
    finish(report)
    out.print(
        f"Done. Explore with [bold]cx360 status -w {directory}[/], [bold]cx360 quarantine -w {directory}[/] "
        f"and [bold]cx360 profile show -w {directory} PROFILE_ID[/]."
    )

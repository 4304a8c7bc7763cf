"""The `cx360` command. Each noun lives in its own module; heavy imports happen inside commands,
so that `cx360 --help` answers at once."""

from __future__ import annotations

import sys

import typer

from cx360.cli import churn, clv, demo, identity, ingest, profile, segments, sentiment, serve, workspace

app = typer.Typer(
    name="cx360",
    help="cx360: one explainable 3D profile per customer, and the decisions it drives.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for module in (workspace, ingest, identity, profile, segments, clv, churn, sentiment, serve, demo):
    module.register(app)


def main() -> None:
    from cx360.cli.output import err, fail
    from cx360.errors import Cx360Error

    try:
        app()
    except Cx360Error as exc:
        fail(str(exc))
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]; an unfinished batch is removed on the next run")
        sys.exit(130)

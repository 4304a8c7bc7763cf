"""The `cx360` command. Each noun lives in its own module; heavy imports happen inside commands,
so that `cx360 --help` answers at once."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from cx360.cli import (
    calls,
    churn,
    clv,
    consents,
    decide,
    demo,
    forms,
    funnels,
    habits,
    identity,
    ingest,
    listening,
    privacy,
    profile,
    run,
    segments,
    sentiment,
    serve,
    stream,
    triggers,
    visits,
    workspace,
)

app = typer.Typer(
    name="cx360",
    help="cx360: one explainable 3D profile per customer, and the decisions it drives.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


def _version(value: bool) -> None:
    if value:
        from cx360 import __version__

        typer.echo(f"cx360 {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print cx360's version and exit.")
    ] = False,
) -> None:
    from cx360.cli.output import Format, use_format

    use_format(Format.table)  # each invocation starts in table mode; a command's --format switches it


for module in (
    workspace,
    ingest,
    run,
    identity,
    profile,
    segments,
    funnels,
    visits,
    listening,
    habits,
    forms,
    consents,
    clv,
    churn,
    calls,
    decide,
    sentiment,
    serve,
    stream,
    triggers,
    demo,
    privacy,
):
    module.register(app)


def main() -> None:
    from cx360.cli.output import err, fail
    from cx360.errors import Cx360Error
    from cx360.filemodes import restrict_umask

    restrict_umask()  # what cx360 writes is personal data: owner-only from its first byte
    try:
        app()
    except Cx360Error as exc:
        fail(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]; an unfinished batch is removed on the next run")
        sys.exit(130)
    except Exception as exc:  # a bug: say so in one line; CX360_DEBUG=1 shows where
        if os.environ.get("CX360_DEBUG"):
            raise
        fail(f"unexpected {type(exc).__name__}: {exc} (a bug in cx360; run again with CX360_DEBUG=1 for the traceback)")
        sys.exit(1)

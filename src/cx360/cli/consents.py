"""`cx360 consents grant|deny|withdraw|show`: record a consent change by hand, and read a person's consents."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit, out, table

app = typer.Typer(
    help="Consents: who agreed to which purpose on which channel, and what the one policy check decides.",
    no_args_is_help=True,
)
Identifier = Annotated[str, typer.Argument(help="A profile id, node key (email:...) or identifier value.")]
Purpose = Annotated[str, typer.Option("--purpose", help="A purpose of [privacy.purposes] (see docs/privacy.md).")]
Channel = Annotated[str | None, typer.Option("--channel", help="The channel, for a purpose consented per channel.")]
Basis = Annotated[str | None, typer.Option("--basis", help="Legal basis, e.g. consent or contract.")]
Evidence = Annotated[str | None, typer.Option("--evidence", help="What proves it: a form, a call recording...")]
At = Annotated[str | None, typer.Option("--at", help="When it happened (ISO date or time, UTC); default: now.")]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="consents")


def _record(status: str, identifier: str, purpose: str, channel, basis, evidence, at, workspace: Path) -> None:
    from cx360.api.audit import audit_cli_read
    from cx360.cli.profile import parse_as_of
    from cx360.identity.explain import find_profile
    from cx360.privacy import ledger
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        pid = find_profile(ws, identifier)
        c = ledger.change(
            ws.config.privacy,
            pid,
            purpose,
            status,
            channel=channel,
            at=parse_as_of(at),
            source="cli",
            legal_basis=basis,
            evidence=evidence,
        )
        new = ledger.append(ws.engine, [c.row()])
        audit_cli_read(ws.root, "consent", pid, identifier, [f"consents.{purpose}"])
    what = purpose if channel is None else f"{purpose} by {channel}"
    out.print(
        table(
            "Consent recorded" if new else "Consent already recorded",
            ["profile", "purpose", "status", "at"],
            [(pid, what, status, c.ts)],
        )
    )


@app.command("grant")
def grant(
    identifier: Identifier,
    purpose: Purpose,
    channel: Channel = None,
    basis: Basis = None,
    evidence: Evidence = None,
    at: At = None,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Record that the person granted consent."""
    _record("granted", identifier, purpose, channel, basis, evidence, at, workspace)


@app.command("deny")
def deny(
    identifier: Identifier,
    purpose: Purpose,
    channel: Channel = None,
    basis: Basis = None,
    evidence: Evidence = None,
    at: At = None,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Record that the person refused consent."""
    _record("denied", identifier, purpose, channel, basis, evidence, at, workspace)


@app.command("withdraw")
def withdraw(
    identifier: Identifier,
    purpose: Purpose,
    channel: Channel = None,
    basis: Basis = None,
    evidence: Evidence = None,
    at: At = None,
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Record that the person withdrew a consent given before."""
    _record("withdrawn", identifier, purpose, channel, basis, evidence, at, workspace)


@app.command("show")
def show(
    identifier: Identifier, at: At = None, workspace: WorkspaceOpt = Path("."), fmt: FormatOpt = Format.table
) -> None:
    """What the policy check decides for the person, per purpose and channel, and why."""
    import datetime as dt

    from cx360.api.audit import audit_cli_read
    from cx360.cli.profile import parse_as_of
    from cx360.identity.explain import find_profile
    from cx360.privacy.consent import Policy, resolved
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        pid = find_profile(ws, identifier)
        when = parse_as_of(at) or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        rows = resolved(ws.engine)
        mine = ws.engine.to_arrow(rows.filter(rows.profile_id == pid), step="consents: the person's").to_pylist()
        policy = Policy(ws.config.privacy)
        decisions = [policy.decide(mine, p, c, when) for p, c in policy.pairs()]
        audit_cli_read(ws.root, "consents", pid, identifier, ["consents"])
    emit(
        fmt,
        f"Consents of {pid} at {when:%Y-%m-%d %H:%M}",
        ["purpose", "channel", "allowed", "status", "since", "source", "reason"],
        [(d.purpose, d.channel, d.allowed, d.status, d.since, d.source, d.reason) for d in decisions],
    )

"""`cx360 identity ...`: resolve, explain, block, unblock, split, dedupe."""

from __future__ import annotations

import dataclasses
import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit, emit_json, err, out, table
from cx360.cli.tables import DecimalOpt, DelimiterOpt, EncodingOpt, csv_options

app = typer.Typer(help="Identity resolution: who is who, why, and how to correct it.", no_args_is_help=True)
By = Annotated[str, typer.Option("--by", help="Who makes the change (default: the OS user).")]
Reason = Annotated[str, typer.Option("--reason", help="Why: kept in the history.")]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="identity")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"


@app.command("resolve")
def resolve_cmd(workspace: WorkspaceOpt = Path("."), fmt: FormatOpt = Format.table) -> None:
    """Link records and identifiers into profiles, and build the golden records."""
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        print_identity_report(run_resolve(ws), fmt)


def run_resolve(ws):
    from cx360.cli.stages import run_one

    return run_one(ws, "identity").report


def print_identity_report(r, fmt: Format = Format.table) -> None:
    if fmt is Format.json:
        emit_json(dataclasses.asdict(r))
        return
    out.print(
        table(
            "Identity",
            ["what", "count"],
            [
                ("records", r.records),
                ("active links", r.links_active),
                ("blocked links", r.links_blocked),
                ("probabilistic links", r.probabilistic_links),
                ("profiles", r.profiles),
                ("new profiles", r.profiles_new),
                ("profiles merged this run", r.profiles_merged),
                ("seconds", f"{r.seconds:.1f}"),
            ],
        )
    )
    for warning in r.warnings:
        err.print(Text("warning: ", style="bold yellow") + Text(warning))


@app.command("explain")
def explain_cmd(
    key: Annotated[
        str, typer.Argument(help="Profile id, record:SOURCE:ID, KIND:VALUE, or a bare e-mail / phone / number.")
    ],
    workspace: WorkspaceOpt = Path("."),
    fmt: FormatOpt = Format.table,
) -> None:
    """Show why these records and identifiers are one person."""
    from cx360 import node_keys
    from cx360.api.access import personal_fields
    from cx360.api.audit import audit_cli_miss, audit_cli_read
    from cx360.errors import NotFoundError
    from cx360.identity.explain import explain
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        try:
            e = explain(ws, key)
        except NotFoundError:
            audit_cli_miss(ws.root, "identity explain", key)
            raise
        kinds = sorted({node_keys.kind_of(n["node"]) for n in e.nodes if n.get("node")})
        audit_cli_read(
            ws.root,
            "identity explain",
            e.profile_id,
            key,
            [*personal_fields(e.golden, kinds, records=bool(e.sources)), "identity.links"],
        )
    if fmt is Format.json:
        emit_json(dataclasses.asdict(e))
        return
    if e.profile_id is None:
        out.print(
            f"[bold]{', '.join(n['node'] for n in e.nodes)}[/] belongs to no profile: every link it has is blocked"
        )
    else:
        out.print(f"[bold]Profile {e.profile_id}[/]: {len(e.nodes)} nodes")
    out.print(
        table(
            "Golden record",
            ["attribute", "value", "from", "rule"],
            [
                (k, v, e.sources.get(k, {}).get("record"), e.sources.get(k, {}).get("rule"))
                for k, v in e.golden.items()
                if v is not None and k != "profile_id"
            ],
        )
    )
    out.print(
        table(
            "Links holding it together",
            ["left", "right", "rule", "confidence", "evidence"],
            [(l["left"], l["right"], l["rule"], f"{l['confidence']:.3f}", _evidence(l["evidence"])) for l in e.links],
        )
    )
    if e.blocked:
        out.print(
            table(
                "Blocked links (not used)",
                ["left", "right", "rule", "why", "evidence"],
                [(l["left"], l["right"], l["rule"], l["blocked_reason"], _evidence(l["evidence"])) for l in e.blocked],
            )
        )
    if e.history:
        out.print(
            table(
                "History",
                ["at", "by", "action", "left", "right", "reason"],
                [(h["at"], h["by"], h["action"], h["left"], h["right"], h["reason"]) for h in e.history],
            )
        )


def _evidence(ev: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in ev.items())


@app.command("block")
def block_cmd(
    left: Annotated[str, typer.Argument(help="A node: record:SOURCE:ID or KIND:VALUE.")],
    right: Annotated[str, typer.Argument(help="The other node.")],
    reason: Reason,
    by: By = "",
    workspace: WorkspaceOpt = Path("."),
    fmt: FormatOpt = Format.table,
) -> None:
    """Keep two nodes apart on every later run (then resolves again)."""
    _override("block", left, right, reason, by, workspace, fmt)


@app.command("unblock")
def unblock_cmd(
    left: Annotated[str, typer.Argument(help="A node.")],
    right: Annotated[str, typer.Argument(help="The other node.")],
    reason: Reason,
    by: By = "",
    workspace: WorkspaceOpt = Path("."),
    fmt: FormatOpt = Format.table,
) -> None:
    """Undo a block (then resolves again)."""
    _override("unblock", left, right, reason, by, workspace, fmt)


def _override(action: str, left: str, right: str, reason: str, by: str, workspace: Path, fmt: Format) -> None:
    from cx360.identity import explain
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        getattr(explain, action)(ws, left, right, by=by or _user(), reason=reason)
        print_identity_report(run_resolve(ws), fmt)


@app.command("split")
def split_cmd(
    profile: Annotated[str, typer.Argument(help="The profile (or any of its identifiers).")],
    node: Annotated[list[str], typer.Option("--node", help="A node to detach (repeatable).")],
    reason: Reason,
    by: By = "",
    workspace: WorkspaceOpt = Path("."),
    fmt: FormatOpt = Format.table,
) -> None:
    """Detach records / identifiers from a profile; the split holds on every later run."""
    from cx360.identity.explain import split
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        cut = split(ws, profile, node, by=by or _user(), reason=reason)
        out.print(f"Blocked {len(cut)} link(s) between the detached part and the rest.")
        print_identity_report(run_resolve(ws), fmt)


@app.command("dedupe")
def dedupe_cmd(
    files: Annotated[list[Path], typer.Argument(help="CSV or Parquet files to link and deduplicate.")],
    key: Annotated[str, typer.Option("--key", help="Column that identifies a row within its file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV to write: file, key, cluster_id.")],
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="SOURCE_COLUMN=FIELD for columns not named by a canonical field (repeatable); "
            "FIELD may be document or document:SCHEME (ru.inn, us.ssn, ru.snils, ru.passport, ...).",
        ),
    ] = None,
    threshold: Annotated[
        float, typer.Option(min=0.01, max=0.99, help="Match probability needed to link two rows.")
    ] = 0.9,
    fmt: FormatOpt = Format.table,
    delimiter: DelimiterOpt = None,
    decimal: DecimalOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Find the rows that describe the same person across files, without a workspace."""
    from cx360.identity.dedupe import dedupe_files, parse_map

    with out.status("Training the matcher and linking..."):
        result = dedupe_files(
            files, key, parse_map(map_ or []), threshold=threshold, options=csv_options(delimiter, decimal, encoding)
        )
    result.to_csv(output, index=False)
    for note in result.attrs.get("notes", []):
        out.print(f"[dim]note: {note}[/]")
    sizes = result.groupby("cluster_id").size()
    emit(
        fmt,
        "Dedupe",
        ["what", "count"],
        [
            ("rows", len(result)),
            ("clusters", int(sizes.size)),
            ("rows in multi-row clusters", int(sizes[sizes > 1].sum())),
            ("written to", str(output)),
        ],
    )

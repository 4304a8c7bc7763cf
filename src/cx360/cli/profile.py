"""`cx360 profile build|show` and `cx360 traits`."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit, emit_json, err, out, table

app = typer.Typer(
    help="The 3D profile: traits from every source, scores, and reading one person's profile.", no_args_is_help=True
)
AsOf = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="Describe profiles as of this date or time (ISO); default: the day after the latest event."
    ),
]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="profile")
    root.command("traits")(traits_cmd)


def parse_as_of(value: str | None) -> dt.datetime | None:
    from cx360.errors import ConfigError

    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError:
        raise ConfigError(
            f"--as-of: expected an ISO date or time such as 2025-06-30 or 2025-06-30T12:00, got {value!r}"
        ) from None


@app.command("build")
def build_cmd(workspace: WorkspaceOpt = Path("."), as_of: AsOf = None, fmt: FormatOpt = Format.table) -> None:
    """Compute every profile's traits and scores as of a point in time."""
    from cx360.workspace import Workspace

    with Workspace(workspace) as ws:
        print_profile_report(run_build(ws, parse_as_of(as_of)), fmt)


def run_build(ws, as_of=None):
    """The texts and profiles stages; the report of the profiles one."""
    from cx360.cli.stages import run_one

    scored = run_one(ws, "texts").report
    report = run_one(ws, "profiles", as_of=as_of).report
    report.texts_scored = scored
    return report


def print_profile_report(r, fmt: Format = Format.table) -> None:
    if fmt is Format.json:
        emit_json(dataclasses.asdict(r))
        return
    rows = [
        ("as of", r.as_of.isoformat(sep=" ")),
        ("profiles", r.profiles),
        ("events", r.events),
        ("events attributed to a profile", r.events_attributed),
        ("texts scored this run", r.texts_scored),
    ]
    if r.scores:
        rows += [
            ("customers with card payments", r.scores.customers_with_purchases),
            ("repeat customers (fit lifetime value)", r.scores.repeat_customers),
            ("mention links (fit influence)", r.scores.influence_edges),
        ]
        rows += [(k, f"{v:.4g}") for k, v in r.scores.clv_params.items()]
    rows += [(f"seconds: {k}", f"{v:.1f}") for k, v in r.seconds.items()]
    out.print(table("Profiles", ["what", "value"], rows))
    for warning in r.scores.warnings if r.scores else []:
        err.print(Text("warning: ", style="bold yellow") + Text(warning))


@app.command("show")
def show_cmd(
    key: Annotated[
        str, typer.Argument(help="Profile id, e-mail, phone, customer number, card token, cookie or device id.")
    ],
    workspace: WorkspaceOpt = Path("."),
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Print one person's 3D profile: attributes with their sources, identifiers, scores with churn risk,
    segments, archetype, traits and breakdowns."""
    from cx360.api.access import personal_fields
    from cx360.api.audit import audit_cli_miss, audit_cli_read
    from cx360.errors import ConfigError, NotFoundError
    from cx360.profiles.read import read
    from cx360.workspace import Workspace

    if fmt not in ("table", "json"):
        raise ConfigError(f"--format: expected table or json, got {fmt!r}")
    with Workspace(workspace) as ws:
        try:
            p = read(ws, key)
        except NotFoundError:
            audit_cli_miss(ws.root, "profile show", key)
            raise
        traits = [t for t, v in (p.traits.model_dump() if p.traits else {}).items() if v is not None]
        audit_cli_read(
            ws.root,
            "profile show",
            p.profile_id,
            key,
            personal_fields(
                p.attributes, p.identifiers, traits, p.breakdowns, records=any(a.record for a in p.attributes.values())
            ),
        )
    if fmt == "json":
        out.print_json(p.model_dump_json())
        return
    out.print(Text(f"Profile {p.profile_id}", style="bold") + Text(f"  sources: {', '.join(p.sources)}"))
    out.print(
        table(
            "Attributes",
            ["attribute", "value", "from", "rule"],
            [(k, _fmt(a.value), a.record, a.rule) for k, a in p.attributes.items()],
        )
    )
    out.print(table("Identifiers", ["kind", "values"], [(k, ", ".join(v)) for k, v in sorted(p.identifiers.items())]))
    if p.scores:
        values = p.scores.model_dump(exclude={"churn"})
        out.print(table("Scores", ["score", "value"], [(k, _fmt(v)) for k, v in values.items() if v is not None]))
    churn = p.scores.churn if p.scores else None
    out.print(
        table(
            "Churn",
            ["what", "value"],
            [
                ("risk", _fmt(churn.risk)),
                ("reasons", "; ".join(churn.reasons)),
                ("horizon days", churn.horizon_days),
                ("as of", _fmt(churn.as_of)),
            ]
            if churn
            else [("risk", "not scored yet: run `cx360 churn score`")],
        )
    )
    out.print(
        table(
            "Segments",
            ["segment", "entered", "left"],
            [(m.segment, _fmt(m.entered_at), _fmt(m.exited_at) if m.exited_at else "") for m in p.segments]
            or [("(none)", "", "")],
        )
    )
    if p.archetype:
        out.print(table("Archetype", ["what", "value"], [(k, _fmt(v)) for k, v in p.archetype.model_dump().items()]))
    if p.traits:
        out.print(
            table(
                "Traits", ["trait", "value"], [(k, _fmt(v)) for k, v in p.traits.model_dump().items() if v is not None]
            )
        )
    for name, values in p.breakdowns.items():
        top = list(values.items())[:8]  # largest first
        out.print(table(name, ["key", "value"], [(k, _fmt(v)) for k, v in top]))


def _fmt(value: object) -> object:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return value


def traits_cmd(
    group: Annotated[str | None, typer.Option(help="Only this group (demographics, contact, campaigns, ...).")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """List every profile trait: name, type, meaning, what it reads, its time window."""
    from cx360.errors import ConfigError
    from cx360.trait_catalog import GROUPS, TRAITS

    if group is not None and group not in GROUPS:
        raise ConfigError(f"--group: expected one of {', '.join(GROUPS)}, got {group!r}")
    emit(
        fmt,
        "Profile traits",
        ["trait", "group", "type", "meaning", "reads", "window"],
        [(t.name, t.group, t.dtype, t.doc, t.sources, t.window) for t in TRAITS if group in (None, t.group)],
    )

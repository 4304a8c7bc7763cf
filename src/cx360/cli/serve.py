"""`cx360 serve`, `cx360 keys create|list|revoke`, `cx360 audit [export]`."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from cx360.cli.output import Format, FormatOpt, WorkspaceOpt, emit, out, table

keys_app = typer.Typer(help="API keys for the REST API and the dashboard.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log of personal-data reads: show it, or export it for a SIEM.")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
    app.add_typer(audit_app, name="audit")


def serve(
    workspace: WorkspaceOpt = Path("."),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8360,
    reindex: Annotated[
        bool, typer.Option(help="Rebuild the serving index even if the warehouse did not change.")
    ] = False,
    threads: Annotated[
        int, typer.Option(min=1, help="Worker threads per process (each gets its own DuckDB cursor).")
    ] = 16,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (each opens the serving index read-only).")] = 1,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="Address or network (CIDR) of a proxy whose X-Forwarded-For and X-Forwarded-Proto "
            "are believed (repeatable; adds to [serve] trusted_proxies).",
        ),
    ] = None,
    log_format: Annotated[
        str,
        typer.Option("--log-format", help="text or json: the access log (a line per request) and errors, on stderr."),
    ] = "text",
    online: Annotated[
        bool,
        typer.Option(
            help="Apply collected events to the online profile store as they arrive (--no-online: only "
            "`cx360 run` changes profiles; [serve] online in cx360.toml sets the default)."
        ),
    ] = True,
) -> None:
    """Serve the REST API (/v1, docs at /docs) and the dashboard (/) over the workspace."""
    import logging.config
    import os

    from cx360.api import logs
    from cx360.errors import ConfigError

    if log_format not in logs.FORMATS:
        raise ConfigError(f"--log-format: expected {' or '.join(logs.FORMATS)}, got {log_format!r}")
    logging.config.dictConfig(logs.config(log_format))
    if trusted_proxy:
        import ipaddress

        for p in trusted_proxy:
            try:
                ipaddress.ip_network(p, strict=False)
            except ValueError:
                raise ConfigError(
                    f"--trusted-proxy: {p!r} is not an IP address or network such as 10.0.0.0/8"
                ) from None
        os.environ["CX360_TRUSTED_PROXIES"] = ",".join(trusted_proxy)  # read by every worker's context
    if not online:
        os.environ["CX360_ONLINE"] = "0"  # read by every worker's context
    try:
        import uvicorn

        from cx360.api.app import create_app, open_context
    except ImportError as exc:
        from cx360.errors import MissingDependencyError

        raise MissingDependencyError("cx360 serve", "serve") from exc

    with out.status("Preparing the serving index..."):
        ctx, report = open_context(workspace, reindex=reindex)
    if workers == 1:
        ctx.collector()  # its log partition now: it seals and drains what a previous server left
    out.print(
        table(
            "Serving index",
            ["what", "value"],
            [
                ("file", report.path),
                ("rebuilt", "yes" if report.rebuilt else "no (warehouse unchanged)"),
                ("seconds", f"{report.seconds:.1f}"),
                ("profiles", report.rows.get("profiles", 0)),
                ("identifiers", report.rows.get("lookup", 0)),
                ("events", report.rows.get("events", 0)),
                ("url", f"http://{host}:{port}/  (API docs: /docs)"),
                ("collector", f"http://{host}:{port}/v1/batch  (write keys: cx360 keys create --role writer)"),
            ],
        )
    )
    # uvicorn's own access log is off: cx360.api.observe writes one with the route template and key id
    options = {
        "host": host,
        "port": port,
        "log_config": logs.config(log_format),
        "log_level": "warning",
        "access_log": False,
    }
    if workers == 1:
        with _metrics_dir(create=False):
            uvicorn.run(create_app(ctx, threads=threads), **options)
        return
    import secrets

    ctx.close()  # the index is built; each worker opens its own context
    os.environ.update(
        CX360_SERVE_ROOT=str(ctx.root),
        CX360_SERVE_THREADS=str(threads),
        CX360_SERVE_SECRET=os.environ.get("CX360_SERVE_SECRET") or secrets.token_hex(32),
    )
    with _metrics_dir():
        uvicorn.run("cx360.api.app:app_from_env", factory=True, workers=workers, **options)


@contextmanager
def _metrics_dir(*, create: bool = True):
    """PROMETHEUS_MULTIPROC_DIR for the workers, so that /metrics counts every worker's requests:
    the one the environment names (emptied first, as prometheus_client requires) or, when `create`,
    a fresh one."""
    import os
    import shutil
    import tempfile

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        for stale in Path(given).glob("*.db"):
            stale.unlink()
        yield
        return
    if not create:
        yield
        return
    folder = tempfile.mkdtemp(prefix="cx360-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin, analyst, marketer, agent or writer (see docs/api.md).")],
    name: Annotated[str | None, typer.Option(help="Who or what uses the key.")] = None,
    purpose: Annotated[
        list[str] | None,
        typer.Option(
            "--purpose",
            help="What the key's user uses the data for (repeatable; see docs/privacy.md); default: profiling. "
            "Traits and scores are answered only to keys with the profiling purpose.",
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help="A writer key's source: the events it posts to the collector belong to it."),
    ] = None,
    workspace: WorkspaceOpt = Path("."),
    fmt: FormatOpt = Format.table,
) -> None:
    """Create a key and print it once (alone on the last line): only its salted hash is kept."""
    import json

    from cx360.api.access import DEFAULT_KEY_PURPOSES, create_key
    from cx360.workspace import Workspace

    ws = Workspace(workspace)
    purposes = purpose or list(DEFAULT_KEY_PURPOSES)
    for p in purposes:
        ws.config.privacy.purpose(p)  # a purpose the workspace does not declare is an error naming those it does
    root = ws.root
    key_id, key = create_key(root, role, name, purposes, source)
    if fmt is Format.json:
        print(json.dumps({"key": key, "id": key_id, "role": role, "purposes": sorted(set(purposes)), "source": source}))
        return
    rows = [("id", key_id), ("role", role), ("purposes", ", ".join(sorted(set(purposes))))]
    rows += [("source", source)] if source else []
    out.print(table("Key", ["what", "value"], [*rows, ("stored in", root / "access.sqlite")]))
    out.print(f"Key {key_id} ({role}). Copy it now, it is not shown again:")
    print(key)


@keys_app.command("list")
def keys_list(workspace: WorkspaceOpt = Path("."), fmt: FormatOpt = Format.table) -> None:
    """List keys (never the keys themselves)."""
    from cx360.api.access import list_keys
    from cx360.workspace import Workspace

    rows = list_keys(Workspace(workspace).root)
    emit(
        fmt,
        "API keys",
        ["id", "name", "role", "purposes", "source", "created", "revoked"],
        [
            (r["key_id"], r["name"], r["role"], r["purposes"], r["source"], r["created_at"], r["revoked_at"])
            for r in rows
        ],
    )


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id.")], workspace: WorkspaceOpt = Path(".")
) -> None:
    """Revoke a key; a running server refuses it within seconds."""
    from cx360.api.access import revoke_key
    from cx360.workspace import Workspace

    revoke_key(Workspace(workspace).root, key_id)
    out.print(table("Revoked", ["id"], [(key_id,)]))


def _since(since: str | None):
    import datetime as dt

    from cx360.errors import ConfigError

    try:
        return dt.datetime.fromisoformat(since) if since else None
    except ValueError:
        raise ConfigError(
            f"--since: expected an ISO date or time such as 2026-01-31 or 2026-01-31T12:00, got {since!r}"
        ) from None


SinceOpt = Annotated[str | None, typer.Option(help="Only entries at or after this ISO date or time (UTC).")]


@audit_app.command("export")
def audit_export(
    output: Annotated[Path, typer.Option("--output", "-o", help="JSON-lines file to write; - for stdout.")],
    workspace: WorkspaceOpt = Path("."),
    since: SinceOpt = None,
) -> None:
    """Export the audit log as JSON lines for a SIEM: one entry per line, oldest first, with its id."""
    from cx360.api.audit_export import export
    from cx360.cli.output import err
    from cx360.workspace import Workspace

    start = _since(since)
    ws = Workspace(workspace)
    n = export(ws.root, None if str(output) == "-" else output, since=start, workspace=ws.config.workspace.name)
    if str(output) != "-":
        err.print(f"{n:,} audit entries written to {output}")


@audit_app.callback(invoke_without_command=True)
def audit(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("."),
    since: SinceOpt = None,
    key: Annotated[str | None, typer.Option(help="Only this key id.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many entries, newest first.")] = 100,
    fmt: FormatOpt = Format.table,
) -> None:
    """Show who read which personal data, when and from where (`cx360 audit export` for a SIEM)."""
    from cx360.api.audit import read_audit
    from cx360.workspace import Workspace

    if ctx.invoked_subcommand is not None:
        return
    start = _since(since)
    rows = read_audit(Workspace(workspace).root, since=start, key_id=key, limit=limit)
    emit(
        fmt,
        "Audit log",
        ["at", "key", "name", "role", "action", "profile", "fields", "client"],
        [
            (r["at"], r["key_id"], r["key_name"], r["role"], r["action"], r["profile_id"], r["fields"], r["client"])
            for r in rows
        ],
    )
    if fmt is Format.table:
        out.print(table("Summary", ["what", "count"], [("entries shown", len(rows))]))

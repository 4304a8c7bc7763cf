"""The workspace's data files are personal data: readable by their owner only.

cx360 writes with a umask of 077 (files 0600, folders 0700), so that what DuckDB, SQLite and the
ingest write is private from its first byte, and `secure_workspace` narrows the modes of files an
older cx360 (or a user's `cp`) left world-readable. The configuration file stays as the user made it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

UMASK = 0o077
# Everything in a workspace that holds personal data: the warehouse and its WAL, the serving index,
# keys and the audit log, the audit journals, the collector's event log, and the folders quarantine
# and exports write into.
DATA_GLOBS = (
    "*.duckdb",
    "*.duckdb.wal",
    "*.duckdb.tmp",
    "access.sqlite*",
    "audit-journal",
    "eventlog",
    "quarantine",
    "exports",
    "spark-warehouse",
    "models",
)


def restrict_umask() -> None:
    """Make every file this process creates private (a process-wide setting, as umask is)."""
    os.umask(UMASK)


def private(path: Path) -> None:
    """Narrow `path` (and, for a folder, what it holds) to its owner, if it exists."""
    restrict_umask()
    if not path.exists():
        return
    _narrow(path)
    if path.is_dir():
        for child in path.rglob("*"):
            _narrow(child)


def secure_workspace(root: Path) -> None:
    """Private modes for every data file of the workspace at `root`."""
    restrict_umask()
    for pattern in DATA_GLOBS:
        for path in root.glob(pattern):
            private(path)


def _narrow(path: Path) -> None:
    if path.is_symlink():
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    wanted = mode & 0o700
    if mode != wanted:
        with contextlib.suppress(PermissionError):  # not ours: leave it, the owner's umask decides
            os.chmod(path, wanted)


def write_private_table(table, path: Path, fmt: str) -> None:
    """An Arrow table as CSV or Parquet at `path`, written whole or not at all, readable by its owner
    only: what audiences and leads leave the system as."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from cx360.errors import ConfigError

    if fmt not in ("csv", "parquet"):
        raise ConfigError(f"unknown export format {fmt!r}; use csv or parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    (pq.write_table if fmt == "parquet" else pacsv.write_csv)(table, partial)
    private(partial)
    partial.replace(path)

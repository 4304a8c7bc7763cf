"""Every store of a workspace, as the files it owns: erasure covers each, and a file that belongs to
none is reported (and fails the test that walks a full workspace), so a new store cannot be forgotten."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from cx360.config import Config, DuckDBEngine
from cx360.privacy import vault


@dataclass(frozen=True)
class Store:
    name: str
    patterns: tuple[str, ...]  # glob patterns relative to the workspace root; "dir/**" is everything under dir
    erased: str  # what erasure does to it
    user: bool = False  # the user's own files: listed when they hold the person, never changed

    def owns(self, relative: str) -> bool:
        return any(_match(relative, p) for p in self.patterns)


def _match(relative: str, pattern: str) -> bool:
    if pattern.endswith("/**"):
        return relative.startswith(pattern[:-2])
    return fnmatch.fnmatchcase(relative, pattern)


SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def stores(config: Config) -> list[Store]:
    engine = config.engine
    if isinstance(engine, DuckDBEngine):
        warehouse = (engine.path, f"{engine.path}.wal", f"{engine.path}.rewrite")
    else:
        warehouse = (f"{Path(engine.warehouse).as_posix()}/**",)
    return [
        Store("warehouse", warehouse, "rows deleted, free text redacted, then the file rewritten"),
        Store(
            "serving index",
            ("serve.duckdb", "serve.duckdb.tmp", "serve-points-*.sqlite", "serve-points-*.sqlite.tmp"),
            "rebuilt from the rewritten warehouse",
        ),
        Store(
            "audit log",
            ("access.sqlite", "access.sqlite-wal", "access.sqlite-shm", "access.sqlite-journal", "audit-journal/**"),
            "the person's entries deleted, one tombstone kept, the file vacuumed",
        ),
        Store(
            "consents intake",
            ("consents.sqlite", "consents.sqlite-wal", "consents.sqlite-shm", "consents.sqlite-journal"),
            "the person's consent changes deleted, the file vacuumed",
        ),
        Store(
            "online store",
            ("online.sqlite", "online.sqlite-wal", "online.sqlite-shm", "online.sqlite-journal"),
            "the person's nodes, events, documents, memberships and trigger deliveries deleted, "
            + (
                "in the PostgreSQL the servers share ([online] url), its tables vacuumed"
                if config.online.shared
                else "the file vacuumed"
            ),
        ),
        Store(
            "event log",
            ("eventlog/**",),
            "the person's messages removed from every segment no running server holds",
        ),
        *(
            [Store("redis streams", (), "the person's entries removed from the collector's streams, the log rewritten")]
            if config.collector.transport == "redis"
            else []
        ),
        Store("suppression list", ("privacy/suppression.key", "privacy/suppressed.jsonl"), "keyed hashes added"),
        *(
            [
                Store(
                    "vault",
                    tuple(f"{vault.FOLDER}/{f}{x}" for f in vault.FILES for x in SQLITE_SUFFIXES),
                    "the person's subjects crypto-shredded (data keys and ciphertexts deleted), both files compacted",
                )
            ]
            if config.privacy.vault
            else []
        ),
        Store("erasure receipts", ("erasure/**",), "the receipt written; the journal removed when done"),
        Store("models", ("models/**",), "scanned: models are fitted on traits and hold no personal values"),
        Store("exports", ("exports/**", "quarantine/**"), "rows naming the person removed from each file"),
        Store("demo ground truth", ("truth/**",), "rows naming the person removed from each file"),
        Store("configuration", ("cx360.toml",), "scanned: edit it if it names the person", user=True),
        Store("raw inputs", ("data/**",), "listed when they hold the person: they are the user's", user=True),
    ]


def owner(config: Config, relative: str) -> Store | None:
    return next((s for s in stores(config) if s.owns(relative)), None)


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def unclaimed(root: Path, config: Config) -> list[str]:
    """Files under the workspace that no store owns."""
    return [rel for p in files(root) if owner(config, rel := p.relative_to(root).as_posix()) is None]

"""The PII vault: personal data held apart from the behavioural store, encrypted per person.

With `[privacy] vault = true`, the warehouse holds keyed pseudonymous tokens in place of identifiers
and no personal attributes; their clear values live here. A token is deterministic, so joins,
deterministic links and identity resolution work on tokens as they did on values:

    tk_ + the first 32 hex digits of SHA-256(k || SHA-256(k || "KIND:VALUE"))

with `k` the hex of a secret token key: a keyed hash like HMAC (the outer hash makes length extension
useless), written with string functions only so that DuckDB and Spark compute it in SQL, vectorised.

Values are kept per *subject*, and each subject belongs to one person: an identifier node
(`email:tk_…`), a record node (`record:SRC:ID`, one item per record version) or a profile
(`profile:ID`, the golden record). Each subject has its own random data key (AES-256-GCM); each data
key is wrapped by the workspace key (envelope encryption). Erasure deletes a subject's wrapped data
key, so its ciphertexts can no longer be read anywhere (backups included), then deletes the
ciphertexts and rewrites both files so that the bytes are gone (`compact`).

Files, under `privacy/`: `vault.sqlite` (ciphertexts), `vault_keys.sqlite` (wrapped data keys and the
wrapped token key); both are SQLite in WAL mode with secure_delete on. The workspace key is the
environment variable CX360_VAULT_KEY (base64 of 32 bytes), or else `privacy/vault.key`, created
owner-only on first use. Lose that key or `vault_keys.sqlite` and the vault cannot be read, and new
tokens would differ from the stored ones: back both up, apart from each other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa

from cx360.errors import ConfigError, DataError
from cx360.filemodes import private
from cx360.privacy.keyfile import secret_at

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from cx360.workspace import Workspace

FOLDER = "privacy"
VAULT_FILE = "vault.sqlite"
KEYS_FILE = "vault_keys.sqlite"
KEY_FILE = "vault.key"
FILES = (VAULT_FILE, KEYS_FILE, KEY_FILE)
ENV_KEY = "CX360_VAULT_KEY"
TOKEN_PREFIX = "tk_"
TOKEN_DIGITS = 32
_TOKEN_KEY = "token_key"
_CHUNK = 900  # subjects per IN (...) query, under SQLite's default limit of variables


def _aesgcm(key: bytes) -> AESGCM:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _workspace_key(root: Path) -> bytes:
    given = os.environ.get(ENV_KEY)
    if given is None:
        return secret_at(root / FOLDER / KEY_FILE)
    try:
        key = base64.b64decode(given, validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 32:
        raise ConfigError(f"{ENV_KEY} must be the base64 of 32 random bytes (e.g. `openssl rand -base64 32`)")
    return key


def _connect(path: Path, schema: str) -> sqlite3.Connection:
    con = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA secure_delete=ON")  # deleted cells are overwritten, not left in free pages
    con.execute("PRAGMA synchronous=FULL")
    con.executescript(schema)
    return con


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


def _marks(n: int) -> str:
    return ",".join("?" * n)


class Vault:
    """The clear values of a workspace's personal data, by subject and item."""

    def __init__(self, root: Path, workspace_key: bytes):
        self.root = Path(root)
        folder = self.root / FOLDER
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        private(folder)
        self._kek = _aesgcm(workspace_key)
        self._lock = threading.Lock()
        self._keys = _connect(
            folder / KEYS_FILE,
            "CREATE TABLE IF NOT EXISTS data_keys (subject TEXT PRIMARY KEY, wrapped BLOB NOT NULL) WITHOUT ROWID;"
            "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, wrapped BLOB NOT NULL) WITHOUT ROWID;",
        )
        self._items = _connect(
            folder / VAULT_FILE,
            "CREATE TABLE IF NOT EXISTS items (subject TEXT NOT NULL, item TEXT NOT NULL, sealed BLOB NOT NULL,"
            " PRIMARY KEY (subject, item)) WITHOUT ROWID;",
        )
        for name in FILES[:2]:
            private(folder / name)
        self._token_hex = self._token_key().hex()

    @classmethod
    def open(cls, root: Path | str) -> Vault:
        return cls(Path(root), _workspace_key(Path(root)))

    @classmethod
    def of(cls, workspace: Workspace) -> Vault | None:
        """The workspace's vault, or None when `[privacy] vault` is off."""
        return cls.open(workspace.root) if workspace.config.privacy.vault else None

    def close(self) -> None:
        self._keys.close()
        self._items.close()

    # -- keys

    def _wrap(self, aad: str, key: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._kek.encrypt(nonce, key, aad.encode())

    def _unwrap(self, aad: str, wrapped: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag

        try:
            return self._kek.decrypt(wrapped[:12], wrapped[12:], aad.encode())
        except InvalidTag:
            raise ConfigError(
                f"the workspace key does not open the vault in {self.root / FOLDER}: {ENV_KEY} or "
                f"{FOLDER}/{KEY_FILE} is not the key this vault was made with"
            ) from None

    def _token_key(self) -> bytes:
        with self._lock:
            self._keys.execute(
                "INSERT OR IGNORE INTO meta VALUES (?, ?)", (_TOKEN_KEY, self._wrap(_TOKEN_KEY, os.urandom(32)))
            )
            (wrapped,) = self._keys.execute("SELECT wrapped FROM meta WHERE name = ?", (_TOKEN_KEY,)).fetchone()
        return self._unwrap(_TOKEN_KEY, wrapped)

    def _data_keys(self, subjects: list[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for chunk in _chunks(subjects):
            rows = self._keys.execute(
                f"SELECT subject, wrapped FROM data_keys WHERE subject IN ({_marks(len(chunk))})", chunk
            )
            found.update((s, self._unwrap(s, w)) for s, w in rows)
        return found

    # -- tokens

    def token(self, kind: str, value: str) -> str:
        """The token of one normalised identifier value."""
        k = self._token_hex
        inner = hashlib.sha256(f"{k}{kind}:{value}".encode()).hexdigest()
        return TOKEN_PREFIX + hashlib.sha256(f"{k}{inner}".encode()).hexdigest()[:TOKEN_DIGITS]

    def token_expr(self, kind: str, column: ir.StringValue) -> ir.StringValue:
        """`token` as an Ibis expression over a column of normalised values (null stays null)."""
        k = ibis.literal(self._token_hex)
        inner = (k + f"{kind}:" + column).hexdigest("sha256")
        return TOKEN_PREFIX + (k + inner).hexdigest("sha256").left(TOKEN_DIGITS)

    def token_sql(self, kind: str, column_sql: str, dialect: str = "duckdb") -> str:
        """`token` as SQL text over a column of normalised values (null stays null)."""
        k = self._token_hex
        if dialect == "duckdb":
            return (
                f"('{TOKEN_PREFIX}' || left(sha256('{k}' || sha256('{k}' || '{kind}:' || ({column_sql}))),"
                f" {TOKEN_DIGITS}))"
            )
        if dialect in ("spark", "pyspark"):
            return (
                f"concat('{TOKEN_PREFIX}', left(sha2(concat('{k}', sha2(concat('{k}', '{kind}:', {column_sql}), 256)),"
                f" 256), {TOKEN_DIGITS}))"
            )
        raise DataError(f"no token SQL for dialect {dialect!r}; expected duckdb or spark")

    # -- items

    def put(self, items: Iterable[tuple[str, str, dict[str, Any]]], *, replace: bool = True) -> int:
        """Store (subject, item, payload) triples, each sealed with its subject's data key (a new subject
        gets a new key). With `replace=False` an item already held is left as it is (immutable items such
        as a record version). Returns the number of items written."""
        wanted: dict[tuple[str, str], dict[str, Any]] = {(s, i): p for s, i, p in items}
        if not wanted:
            return 0
        with self._lock:
            if not replace:
                for subject, item in self._held(list(wanted)):
                    wanted.pop((subject, item), None)
            subjects = sorted({s for s, _ in wanted})
            keys = self._data_keys(subjects)
            new = {s: os.urandom(32) for s in subjects if s not in keys}
            if new:
                # Keys are committed before the items they seal: a crash between leaves a key unused, never
                # an item that nothing can open.
                self._keys.execute("BEGIN")
                self._keys.executemany(
                    "INSERT INTO data_keys VALUES (?, ?)", [(s, self._wrap(s, k)) for s, k in new.items()]
                )
                self._keys.execute("COMMIT")
                keys.update(new)
            ciphers = {s: _aesgcm(k) for s, k in keys.items()}
            rows = []
            for (subject, item), payload in wanted.items():
                nonce = os.urandom(12)
                plain = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str).encode()
                rows.append(
                    (subject, item, nonce + ciphers[subject].encrypt(nonce, plain, f"{subject}\0{item}".encode()))
                )
            self._items.execute("BEGIN")
            self._items.executemany("INSERT OR REPLACE INTO items VALUES (?, ?, ?)", rows)
            self._items.execute("COMMIT")
        return len(rows)

    def _held(self, pairs: list[tuple[str, str]]) -> Iterator[tuple[str, str]]:
        by_subject: dict[str, set[str]] = {}
        for s, i in pairs:
            by_subject.setdefault(s, set()).add(i)
        for chunk in _chunks(list(by_subject)):
            for s, i in self._items.execute(
                f"SELECT subject, item FROM items WHERE subject IN ({_marks(len(chunk))})", chunk
            ):
                if i in by_subject[s]:
                    yield s, i

    def _open(self, subjects: list[str]) -> Iterator[tuple[str, str, str]]:
        """(subject, item, payload JSON) of every item of these subjects that can still be opened."""
        for chunk in _chunks(sorted(set(subjects))):
            keys = self._data_keys(chunk)
            ciphers = {s: _aesgcm(k) for s, k in keys.items()}
            rows = self._items.execute(
                f"SELECT subject, item, sealed FROM items WHERE subject IN ({_marks(len(chunk))})"
                " ORDER BY subject, item",
                chunk,
            ).fetchall()
            for subject, item, sealed in rows:
                if subject in ciphers:  # a subject whose key is shredded cannot be read, even if bytes remain
                    aad = f"{subject}\0{item}".encode()
                    yield subject, item, ciphers[subject].decrypt(sealed[:12], sealed[12:], aad).decode()

    def reveal(self, subjects: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """subject -> item -> payload, for the subjects the vault holds (unknown or shredded: absent)."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        with self._lock:
            for subject, item, payload in self._open(list(subjects)):
                out.setdefault(subject, {})[item] = json.loads(payload)
        return out

    def reveal_table(self, subjects: pa.Table) -> pa.Table:
        """In bulk, for stages: the items of the subjects in column `subject` of `subjects` (and only the
        items named in its column `item`, when it has one), as subject, item, payload (JSON text)."""
        names = subjects.column("subject").to_pylist()
        items = (
            set(zip(names, subjects.column("item").to_pylist(), strict=True))
            if "item" in subjects.column_names
            else None
        )
        cols: dict[str, list[str]] = {"subject": [], "item": [], "payload": []}
        with self._lock:
            for subject, item, payload in self._open([n for n in names if n is not None]):
                if items is None or (subject, item) in items:
                    cols["subject"].append(subject)
                    cols["item"].append(item)
                    cols["payload"].append(payload)
        return pa.table(cols, schema=pa.schema([(n, pa.string()) for n in cols]))

    def subjects(self, prefix: str = "") -> Iterator[str]:
        """The subjects that hold a data key, in order, those starting with `prefix` only."""
        with self._lock:
            rows = self._keys.execute(
                "SELECT subject FROM data_keys WHERE subject >= ? AND subject < ? ORDER BY subject",
                (prefix, prefix + "\U0010ffff"),
            ).fetchall()
        yield from (s for (s,) in rows)

    def shred(self, subjects: Iterable[str]) -> int:
        """Delete the subjects' data keys, then their items; the number of keys deleted. Once a key is gone
        its items cannot be opened, so a crash between the two steps leaves nothing readable."""
        names = sorted(set(subjects))
        gone = 0
        with self._lock:
            for chunk in _chunks(names):
                self._keys.execute("BEGIN")
                gone += self._keys.execute(
                    f"DELETE FROM data_keys WHERE subject IN ({_marks(len(chunk))})", chunk
                ).rowcount
                self._keys.execute("COMMIT")
                self._items.execute("BEGIN")
                self._items.execute(f"DELETE FROM items WHERE subject IN ({_marks(len(chunk))})", chunk)
                self._items.execute("COMMIT")
        return gone

    def compact(self) -> None:
        """Rewrite both files, and empty their write-ahead logs, so that deleted bytes leave the disk."""
        with self._lock:
            for con in (self._keys, self._items):
                con.execute("VACUUM")
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def counts(self) -> dict[str, int]:
        """Subjects with a key and items held, for receipts and status."""
        with self._lock:
            (subjects,) = self._keys.execute("SELECT count(*) FROM data_keys").fetchone()
            (items,) = self._items.execute("SELECT count(*) FROM items").fetchone()
        return {"subjects": subjects, "items": items}

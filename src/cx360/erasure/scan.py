"""The verification scan: every file of the workspace searched for each of the person's identifiers
(in clear and, with the vault on, as tokens) and full names, in its raw bytes and, where the store
compresses, in what it decodes to (DuckDB tables by query, Parquet columns, gzip). Hits in the user's
own files (data/, cx360.toml) are listed apart: cx360 does not change them. With the vault on, the
vault must hold no subject of theirs any more."""

from __future__ import annotations

import gzip
import re
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from cx360.config import Config
from cx360.erasure.stores import files, owner
from cx360.erasure.subject import Subject
from cx360.privacy.vault import Vault

UNKNOWN = "(no store)"
_BLOCK = 64 << 20  # bytes read and searched at a time


@dataclass
class ScanResult:
    terms: int = 0
    files: int = 0
    bytes: int = 0
    tables: int = 0
    hits: list[dict] = field(default_factory=list)  # store, file, where, what: none of them is the value itself
    user_files: dict[str, int] = field(default_factory=dict)  # the user's files that still hold the person
    namesakes: int = 0  # rows of other people with the same first and last name
    streams: dict[str, int] = field(default_factory=dict)  # Redis streams searched: their entries still theirs
    vault_subjects_left: int | None = None  # with the vault on: their subjects it still holds (0 after erasure)

    def as_dict(self) -> dict:
        return {
            "terms": self.terms,
            "files_scanned": self.files,
            "bytes_scanned": self.bytes,
            "tables_scanned": self.tables,
            "streams_scanned": sorted(self.streams),
            "hits": len(self.hits),
            "where": self.hits,
            "namesakes": self.namesakes,
            **({} if self.vault_subjects_left is None else {"vault_subjects_left": self.vault_subjects_left}),
        }


def labelled_terms(subject: Subject) -> list[tuple[str, str]]:
    """(what, term): what says which kind of value a hit was, without the value."""
    kinds = {v: k for k, values in subject.identifiers.items() for v in values}  # tokens, with the vault on
    kinds.update({v: k for k, values in subject.clear_identifiers.items() for v in values})
    kinds.update({v.lstrip("+"): "phone" for v in subject.clear_identifiers.get("phone", [])})
    return [(kinds.get(t, "name"), t) for t in subject.terms()]


def scan(root: Path, config: Config, subject: Subject, *, skip: tuple[Path, ...] = ()) -> ScanResult:
    terms = labelled_terms(subject)
    result = ScanResult(terms=len(terms))
    if config.privacy.vault:  # no subject of theirs may be left in the vault, whatever its files hold
        with closing(Vault.open(root)) as vault:
            left = [s for s in subject.vault_subjects if s in set(vault.subjects(s))]
        result.vault_subjects_left = len(left)
        if left:
            result.hits.append({"store": "vault", "file": "privacy", "where": "subjects", "what": f"{len(left)}"})
    if not terms:
        return result
    names = {n.lower() for n in subject.names}
    for path in files(root):
        if path in skip:
            continue
        rel = path.relative_to(root).as_posix()
        store = owner(config, rel)
        found = _file_hits(path, terms, names, result)
        result.files += 1
        result.bytes += path.stat().st_size
        if store is not None and store.user:
            if found:
                result.user_files[rel] = len(found)
            continue
        for where, what in found:
            result.hits.append({"store": store.name if store else UNKNOWN, "file": rel, "where": where, "what": what})
    return result


def _file_hits(path: Path, terms: list[tuple[str, str]], names: set[str], result: ScanResult) -> list[tuple[str, str]]:
    with path.open("rb") as f:
        head = f.read(12)
    found = [("bytes", what) for what in _raw_hits(path, terms)]
    if head[:2] == b"\x1f\x8b":
        try:
            inflated = gzip.decompress(path.read_bytes())
        except (OSError, EOFError):
            inflated = b""
        found += [("gzip", what) for what, term in terms if _in_bytes(inflated, term)]
    if head[:4] == b"PAR1":
        found += _parquet_hits(path, terms)
    if head[8:12] == b"DUCK":
        found += _duckdb_hits(path, terms, names, result)
    return found


def _needles(term: str) -> tuple[bytes | None, set[bytes]]:
    """An ASCII term is searched in lower-cased bytes, so any mix of case is found; another (a Cyrillic
    name: `bytes.lower` folds ASCII only) as written, lower-cased, upper-cased and title-cased."""
    if term.isascii():
        return term.lower().encode(), set()
    return None, {v.encode() for v in (term, term.lower(), term.upper(), term.title())}


def _raw_hits(path: Path, terms: list[tuple[str, str]]) -> list[str]:
    """The kinds of the terms found in the file's raw bytes, read in blocks (memory stays flat however
    large the file): each block is lower-cased once and searched for every term."""
    wanted = {(what, term): _needles(term) for what, term in terms}
    overlap = max((len(n) for lowered, raw in wanted.values() for n in (lowered or b"", *raw)), default=1) - 1
    found: dict[tuple[str, str], None] = {}
    tail = b""
    with path.open("rb") as f:
        while len(found) < len(wanted) and (block := f.read(_BLOCK)):
            data = tail + block
            lowered = data.lower()
            for key, (low, raw) in wanted.items():
                if key not in found and ((low is not None and low in lowered) or any(r in data for r in raw)):
                    found[key] = None
            tail = data[-overlap:] if overlap else b""
    return [what for what, term in wanted if (what, term) in found]


def _in_bytes(data: bytes, term: str) -> bool:
    lowered, raw = _needles(term)
    return (lowered is not None and lowered in data.lower()) or any(r in data for r in raw)


def _parquet_hits(path: Path, terms: list[tuple[str, str]]) -> list[tuple[str, str]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException):
        return [("parquet (unreadable)", "unknown")]
    out = []
    for name in table.column_names:
        column = table[name]
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        for what, term in terms:
            if pc.any(pc.match_substring(column, term, ignore_case=True)).as_py():
                out.append((f"parquet column {name}", what))
    return out


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _duckdb_hits(path: Path, terms: list[tuple[str, str]], names: set[str], result: ScanResult) -> list:
    import duckdb

    out = []
    con = duckdb.connect()  # an instance of its own: never one this process already has open on the path
    try:
        con.execute(f"ATTACH '{str(path).replace(chr(39), chr(39) * 2)}' AS scanned (READ_ONLY)")
        con.execute("USE scanned")
    except duckdb.Error:
        con.close()
        return [("duckdb (unreadable)", "unknown")]
    try:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database()"
        ).fetchall()
        for (table,) in tables:
            result.tables += 1
            columns = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_catalog = current_database() AND table_name = ?",
                [table],
            ).fetchall()
            text = [c for c, t in columns if t == "VARCHAR"]
            quoted = '"' + table.replace('"', '""') + '"'
            pattern = "(?i)" + "|".join(re.escape(term) for _, term in terms)
            if text:  # one pass over the table; the terms one by one only in a column that has a hit
                counts = con.execute(
                    f"SELECT {', '.join(f'count(*) FILTER (WHERE regexp_matches({_ident(c)}, $1))' for c in text)} "
                    f"FROM {quoted}",
                    [pattern],
                ).fetchone()
                for column, n in zip(text, counts, strict=True):
                    for what, term in terms if n else []:
                        found = con.execute(
                            f"SELECT count(*) FROM {quoted} WHERE contains(lower({_ident(column)}), ?)", [term.lower()]
                        ).fetchone()[0]
                        if found:
                            out.append((f"table {table}.{column}", what))
            if {"first_name", "last_name"} <= set(text) and names:
                result.namesakes += con.execute(
                    f"SELECT count(*) FROM {quoted} WHERE lower(first_name || ' ' || last_name) IN "
                    f"({', '.join('?' * len(names))})",
                    sorted(names),
                ).fetchone()[0]
    finally:
        con.close()
    return out

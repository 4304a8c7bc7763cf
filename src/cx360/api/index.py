"""The serving index: a read-only copy of what the API reads, laid out for point lookups.

Built at `cx360 serve` start (only when the warehouse changed since the last build) into
`serve.duckdb` beside the warehouse, then renamed into place, so a crash leaves the old index.

Why a copy and not ART indexes on the warehouse: building an ART index over 3M identifier
strings takes minutes on two cores, while sorting does it in seconds. DuckDB's zone maps then
do the lookup: every table is sorted by an integer key (a 60-bit md5 of the profile id or node,
or the first 7 bytes of a search term), and a filter on that integer reads one row group.
String zone maps would not help: DuckDB keeps only their first 8 bytes, which every
`email:...` node shares.

The reads every profile request makes, node -> profile, profile -> document and the person's consent
changes (for the profiling check), and the history a decision reads (cx360.api.histories), go to a
SQLite copy of those tables (`serve-points-<stamp>.sqlite`, written with the index and named in its
`serve_meta`): a B-tree point read there costs tens of microseconds, a DuckDB query about a
millisecond. A rebuilt index names a new file, so a running server switches both at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cx360 import node_keys
from cx360.api import histories
from cx360.errors import Cx360Error, StageNotRunError

if TYPE_CHECKING:
    from cx360.privacy.vault import Vault

SERVE_FILE = "serve.duckdb"
POINTS_PREFIX = "serve-points-"
VERSION = 11  # bump when the layout changes: an older index is rebuilt
# The same 60-bit key in SQL and in Python (key_hash).
_SQL_HASH = "('0x' || left(md5({col}), 15))::BIGINT"
# First 7 UTF-8 bytes of a term as an integer: monotonic in the sort order of the terms (prefix7).
_SQL_PREFIX7 = "('0x' || rpad(left(hex(encode({col})), 14), 14, '0'))::BIGINT"
OPTIONAL_TABLES = ("profile_scores", "churn_scores", "profile_archetypes", "segments", "segment_members")


def key_hash(text: str) -> int:
    return int(hashlib.md5(text.encode("utf-8")).hexdigest()[:15], 16)


def prefix7(term: str) -> int:
    """The prefix7 key of a term, as the index computes it in SQL."""
    return int.from_bytes(term.encode("utf-8")[:7].ljust(7, b"\0"), "big")


def prefix_range(prefix: str) -> tuple[int, int]:
    """The range of prefix7 values of the terms that start with `prefix`."""
    head = prefix.encode("utf-8")[:7]
    return int.from_bytes(head.ljust(7, b"\0"), "big"), int.from_bytes(head.ljust(7, b"\xff"), "big")


@dataclass
class IndexReport:
    path: Path
    rebuilt: bool
    seconds: float
    rows: dict[str, int]


def serve_path(warehouse: Path) -> Path:
    return warehouse.with_name(SERVE_FILE)


def points_path(target: Path, points: str) -> Path:
    return target.with_name(points)


def fingerprint(warehouse: Path) -> str:
    parts = [VERSION]
    for p in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        if p.exists():
            st = p.stat()
            parts += [p.name, st.st_size, st.st_mtime_ns]
    return json.dumps(parts)


def ensure(warehouse: Path, *, force: bool = False, vault: Vault | None = None) -> IndexReport:
    """Build the serving index unless it already reflects the warehouse as it is now (`vault`: the
    workspace's, when [privacy] vault is on: names are searched by their tokens)."""
    if not warehouse.exists():
        raise StageNotRunError(
            f"no warehouse at {warehouse}", stage="ingest", command=f"cx360 run -w {warehouse.parent}"
        )
    target = serve_path(warehouse)
    wanted = fingerprint(warehouse)
    current = None if force else _current(target)
    if current is not None and current[0] == wanted:
        return IndexReport(target, False, 0.0, current[1])
    started = time.perf_counter()
    rows = build(warehouse, target, wanted, vault)
    return IndexReport(target, True, time.perf_counter() - started, rows)


def _current(target: Path) -> tuple[str, dict[str, int]] | None:
    """The fingerprint and row counts of an existing index; None when there is none, or it cannot be
    read (damaged, or written by an older cx360), so that it is rebuilt."""
    import duckdb

    if not target.exists():
        return None
    try:
        with duckdb.connect(str(target), read_only=True) as con:
            built, points = con.execute("SELECT fingerprint, points FROM serve_meta").fetchone()
            if not points_path(target, points).exists():
                return None
            return built, dict(con.execute("SELECT name, n FROM serve_rows").fetchall())
    except duckdb.Error:
        return None


def build(warehouse: Path, target: Path, stamp: str, vault: Vault | None = None) -> dict[str, int]:
    import duckdb

    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        try:
            con.execute(f"ATTACH '{_quote(str(warehouse))}' AS w (READ_ONLY)")
        except duckdb.Error as exc:
            raise Cx360Error(
                f"cannot read {warehouse} to build the serving index ({exc}); is another cx360 command writing to it?"
            ) from exc
        have = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'w'"
            ).fetchall()
        }
        missing = [t for t in ("profiles", "identity_map", "profile_events") if t not in have]
        if missing:
            raise StageNotRunError(
                f"{warehouse} has no {', '.join(missing)} table",
                stage="profiles",
                command=f"cx360 run -w {warehouse.parent}",
            )
        _latin_names(con)
        _name_tokens(con, vault)
        for sql in _statements(have):
            wide = sql.lstrip().startswith(("CREATE TABLE docs", "CREATE TABLE events"))
            if wide:
                # FSST-compressed strings are decompressed a whole vector at a time: 7 ms to read one
                # profile document, against 0.4 ms stored plain. The other tables stay compressed.
                con.execute("CHECKPOINT")
                con.execute("SET force_compression = 'uncompressed'")
            con.execute(sql)
            if wide:
                con.execute("CHECKPOINT")
                con.execute("SET force_compression = 'auto'")
        counts = {}
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() ORDER BY 1"
        ).fetchall():
            counts[name] = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        con.execute("CREATE TABLE serve_rows (name VARCHAR, n BIGINT)")
        con.executemany("INSERT INTO serve_rows VALUES (?, ?)", list(counts.items()))
        points = f"{POINTS_PREFIX}{hashlib.sha256(f'{stamp}{time.time_ns()}'.encode()).hexdigest()[:16]}.sqlite"
        _write_points(con, points_path(target, points))
        con.execute(
            "CREATE TABLE serve_meta AS SELECT ? AS fingerprint, ?::TIMESTAMP AS built_at, ? AS tables, ? AS points",
            [
                stamp,
                dt.datetime.now(dt.UTC).replace(tzinfo=None),
                ",".join(sorted(have & set(OPTIONAL_TABLES))),
                points,
            ],
        )
        con.execute("DETACH w")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, target)
    for old in target.parent.glob(f"{POINTS_PREFIX}*"):  # a running server keeps its open file until it switches
        if old.name != points:
            old.unlink(missing_ok=True)
    return counts


# The consent rows as Store.consents returns them (cx360.privacy.consent.RESOLVED); `ts` as text.
POINT_CONSENTS = ("profile_id", "consent_id", "ts", "purpose", "channel", "status", "legal_basis", "source")


def _write_points(con, path: Path) -> None:
    """The lookup, docs, consents and histories tables, copied into a SQLite file of their own (see the module's
    docstring)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    out = sqlite3.connect(tmp, isolation_level=None)
    try:
        out.execute("PRAGMA journal_mode = OFF")  # written once, then only read; a crash leaves a .tmp
        out.execute("PRAGMA synchronous = OFF")
        out.execute("CREATE TABLE lookup (node TEXT PRIMARY KEY, profile_id TEXT NOT NULL) WITHOUT ROWID")
        out.execute("CREATE TABLE docs (profile_id TEXT PRIMARY KEY, doc TEXT NOT NULL)")
        out.execute(f"CREATE TABLE consents ({', '.join(POINT_CONSENTS)})")
        out.execute(histories.CREATE)
        copies = [
            ("lookup", "SELECT node, min(profile_id) FROM lookup GROUP BY node ORDER BY node"),
            ("docs", "SELECT profile_id, doc FROM docs ORDER BY profile_id"),
            (histories.TABLE, histories.SELECT),
        ]
        if con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'consents'").fetchone()[0]:
            columns = ", ".join("CAST(ts AS VARCHAR)" if c == "ts" else c for c in POINT_CONSENTS)
            copies.append(("consents", f"SELECT {columns} FROM consents ORDER BY profile_id"))
        out.execute("BEGIN")
        for table, sql in copies:
            result = con.execute(sql)
            while rows := result.fetchmany(50_000):
                out.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
        out.execute("COMMIT")
        out.execute("CREATE INDEX consents_by_profile ON consents (profile_id)")
    finally:
        out.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _latin_names(con) -> None:
    """`latin_names(name, term)`: the Latin spellings of every Cyrillic first and last name, computed
    once per distinct name, so that search finds Иван Петров by "petrov"."""
    import pyarrow as pa

    from cx360.identity.names import transliterations

    names = con.execute(
        "SELECT first_name FROM w.profiles WHERE first_name IS NOT NULL "
        "UNION SELECT last_name FROM w.profiles WHERE last_name IS NOT NULL"
    ).fetchall()
    pairs = [(name, term) for (name,) in names for term in transliterations(name)]
    table = pa.table(
        {"name": [n for n, _ in pairs], "term": [t for _, t in pairs]},
        pa.schema([("name", pa.string()), ("term", pa.string())]),
    )
    con.register("latin_arrow", table)
    con.execute("CREATE TABLE latin_names AS SELECT * FROM latin_arrow")
    con.unregister("latin_arrow")


NAME_TOKEN = "name_token"  # the kind of a search term that is the token of a name term


def name_terms(name: str) -> set[str]:
    """What search finds a name by, lower-cased: the name whole, each of its words, and the same of its
    Latin spellings when it is Cyrillic."""
    from cx360.identity.names import transliterations

    terms: set[str] = set()
    for spelling in (name.lower(), *transliterations(name)):
        terms |= {spelling.strip(), *re.findall(r"\w+", spelling)}
    return {t for t in terms if t}


def _name_tokens(con, vault: Vault | None) -> None:
    """`name_tokens(term, kind, profile_id)`: with the vault on, the profiles hold no names, so search
    finds a name by the tokens of its terms (name_terms), computed here from the vault's golden records.
    Empty with the vault off."""
    import pyarrow as pa

    from cx360.privacy.reveal import golden

    rows: list[tuple[str, str]] = []
    if vault is not None:
        pids = [r[0] for r in con.execute("SELECT profile_id FROM w.profiles").fetchall()]
        for at in range(0, len(pids), 10_000):
            for pid, attrs in golden(vault, pids[at : at + 10_000]).items():
                words = set().union(*(name_terms(attrs[a]) for a in ("first_name", "last_name") if attrs.get(a)))
                rows += [(vault.token(NAME_TOKEN, w), pid) for w in words]
    table = pa.table(
        {"term": [t for t, _ in rows], "kind": [NAME_TOKEN] * len(rows), "profile_id": [p for _, p in rows]},
        pa.schema([("term", pa.string()), ("kind", pa.string()), ("profile_id", pa.string())]),
    )
    con.register("name_tokens_arrow", table)
    con.execute("CREATE TABLE name_tokens AS SELECT * FROM name_tokens_arrow")
    con.unregister("name_tokens_arrow")


def _statements(have: set[str]) -> list[str]:
    h = _SQL_HASH.format
    sql = [
        # Every way into a profile: identifier nodes, the profile id itself, merged ids.
        f"""CREATE TABLE lookup AS SELECT {h(col="node")} AS k, node, profile_id FROM (
              SELECT node, profile_id FROM w.identity_map
              UNION ALL SELECT 'profile:' || profile_id, profile_id FROM w.profiles
              {
            "UNION ALL SELECT 'profile:' || profile_id, merged_into FROM w.profile_ids "
            "WHERE status = 'merged' AND merged_into IS NOT NULL"
            if "profile_ids" in have
            else ""
        }
            ) ORDER BY k""",
        f"CREATE TABLE profiles AS SELECT {h(col='profile_id')} AS k, * FROM w.profiles ORDER BY k",
        f"CREATE TABLE events AS SELECT {h(col='profile_id')} AS k, * FROM w.profile_events "
        "ORDER BY k, ts DESC, event_id DESC",
    ]
    # Who a phone belongs to when the identity graph maps it to nobody (a family's or an office's
    # phone): the profiles whose records or attributed events carry it, for the contact centre.
    sql.append(f"""CREATE TABLE phone_holders AS SELECT {h(col="node")} AS k, node, profile_id FROM (
          SELECT DISTINCT 'phone{node_keys.SEP}' || r.phone AS node, m.profile_id FROM w.records r
              JOIN w.identity_map m ON m.node = 'record{node_keys.SEP}' || r.source || '{node_keys.SEP}' || r.record_id
              WHERE r.phone IS NOT NULL
          UNION SELECT DISTINCT 'phone{node_keys.SEP}' || e.phone, pe.profile_id FROM w.events e
              JOIN w.profile_events pe USING (event_id) WHERE e.phone IS NOT NULL
        ) ORDER BY k""")
    # What the stream processor needs to recompute a profile (cx360.online): its source records, and
    # when each profile id was issued (the oldest survives a merge).
    sql.append(f"""CREATE TABLE records AS SELECT {h(col="m.profile_id")} AS k, m.profile_id, r.* FROM w.records r
          JOIN w.identity_map m ON m.node = 'record{node_keys.SEP}' || r.source || '{node_keys.SEP}' || r.record_id
          ORDER BY k""")
    if "profile_ids" in have:
        sql.append(
            f"CREATE TABLE ages AS SELECT {h(col='profile_id')} AS k, profile_id, created_at FROM w.profile_ids "
            "ORDER BY k"
        )
    for table, name in (
        ("profile_traits", "traits"),
        ("profile_breakdowns", "breakdowns"),
        ("segment_members", "members"),
        ("profile_scores", "scores"),
        ("churn_scores", "churn"),
        ("profile_archetypes", "archetypes"),
        ("profile_consents", "consents"),  # each person's consent changes, for the API's policy check
    ):
        if table in have:
            sql.append(f"CREATE TABLE {name} AS SELECT {h(col='profile_id')} AS k, * FROM w.{table} ORDER BY k")
    if "segments" in have:
        sql.append("CREATE TABLE segments AS SELECT * FROM w.segments ORDER BY name")
    # One JSON document per profile, so that reading a profile is one lookup of one column (a wide
    # traits row costs a column segment read per trait, several milliseconds).
    joins, parts = [], ["'golden', to_json(p)"]
    if "profile_traits" in have:
        joins.append("LEFT JOIN traits t USING (k, profile_id)")
        parts.append("'traits', to_json(t)")
    if "profile_breakdowns" in have:
        joins.append("""LEFT JOIN (SELECT k, profile_id, json_group_object(breakdown, obj) AS doc FROM (
                          SELECT k, profile_id, breakdown, json_group_object(key, value) AS obj
                          FROM breakdowns GROUP BY ALL) GROUP BY ALL) b USING (k, profile_id)""")
        parts.append("'breakdowns', b.doc")
    if "profile_scores" in have:
        joins.append("LEFT JOIN scores s USING (k, profile_id)")
        parts.append("'scores', to_json(s)")
    if "churn_scores" in have:
        joins.append("LEFT JOIN churn c USING (k, profile_id)")
        parts.append("'churn', to_json(c)")
    if "profile_archetypes" in have:
        joins.append("LEFT JOIN archetypes a USING (k, profile_id)")
        parts.append("'archetype', to_json(a)")
    if "segment_members" in have:
        joins.append("""LEFT JOIN (SELECT k, profile_id, to_json(list(json_object('segment', segment,
                          'entered_at', entered_at, 'exited_at', exited_at)
                          ORDER BY exited_at NULLS FIRST, segment)) AS doc
                          FROM members GROUP BY ALL) m USING (k, profile_id)""")
        parts.append("'segments', m.doc")
    sql.append(f"""CREATE TABLE docs AS SELECT k, profile_id, json_object({", ".join(parts)})::VARCHAR AS doc
                   FROM profiles p {" ".join(joins)} ORDER BY k""")
    # Search: names (and the Latin spellings of Cyrillic ones) and identifier values, lower-cased, sorted,
    # keyed by their first 7 bytes.
    sql.append(f"""CREATE TABLE search AS
        WITH terms AS (
          SELECT lower(first_name) AS term, 'first_name' AS kind, profile_id
              FROM w.profiles WHERE first_name IS NOT NULL
          UNION ALL SELECT lower(last_name), 'last_name', profile_id FROM w.profiles WHERE last_name IS NOT NULL
          UNION ALL SELECT lower(first_name || ' ' || last_name), 'name', profile_id FROM w.profiles
                    WHERE first_name IS NOT NULL AND last_name IS NOT NULL
          UNION ALL SELECT lower({node_keys.value_sql("node")}), kind, profile_id FROM w.identity_map
                    WHERE kind <> 'record'
          UNION ALL SELECT lower(profile_id), 'profile_id', profile_id FROM w.profiles
          UNION ALL SELECT l.term, 'first_name_latin', p.profile_id FROM w.profiles p
                    JOIN latin_names l ON l.name = p.first_name
          UNION ALL SELECT l.term, 'last_name_latin', p.profile_id FROM w.profiles p
                    JOIN latin_names l ON l.name = p.last_name
          UNION ALL SELECT f.term || ' ' || l.term, 'name_latin', p.profile_id FROM w.profiles p
                    JOIN latin_names f ON f.name = p.first_name JOIN latin_names l ON l.name = p.last_name
          UNION ALL SELECT term, kind, profile_id FROM name_tokens)
        SELECT {_SQL_PREFIX7.format(col="term")} AS p7, term, kind, profile_id FROM terms ORDER BY term""")
    # Aggregates the dashboard shows, computed once here rather than by a full scan per page.
    # A source that records only the answers (accepted, rejected, ignored) made an offer for each: made
    # is the larger of the offers recorded as made and the answers.
    sql.append("""CREATE TABLE campaigns AS
        SELECT coalesce(json_extract_string(properties, '$.offer'), '(none)') AS offer,
               greatest(count(*) FILTER (WHERE name = 'offer_made'), count(*) FILTER (WHERE name <> 'offer_made'))
                 AS made,
               count(*) FILTER (WHERE name = 'offer_accepted') AS accepted,
               count(*) FILTER (WHERE name = 'offer_rejected') AS rejected,
               count(*) FILTER (WHERE name = 'offer_ignored') AS ignored,
               count(DISTINCT profile_id) AS people
        FROM w.profile_events WHERE name IN ('offer_made', 'offer_accepted', 'offer_rejected', 'offer_ignored')
        GROUP BY ALL ORDER BY made DESC, offer""")
    sql.append("""CREATE TABLE channels AS SELECT channel, count(*) AS events, count(DISTINCT profile_id) AS profiles
        FROM w.profile_events GROUP BY ALL ORDER BY events DESC""")
    return sql


def _quote(text: str) -> str:
    return text.replace("'", "''")

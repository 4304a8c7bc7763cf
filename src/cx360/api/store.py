"""Read access to the serving index: one read-only DuckDB connection, a cursor per worker thread,
point lookups only (see cx360.api.index for why they are cheap).

The store follows its file: when the index is rebuilt under a running server (an erasure rebuilds
it at once), the next request opens the new file, and the old connection is closed a little later,
once the requests that were using it have finished."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import sqlite3
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cx360 import node_keys
from cx360.api import index
from cx360.api.index import POINT_CONSENTS, key_hash, points_path, prefix_range
from cx360.errors import DataError, NotFoundError
from cx360.identity.explain import node_candidates
from cx360.online.store import OnlineStore
from cx360.profiles.view import Profile, assemble

if TYPE_CHECKING:
    from cx360.privacy.vault import Vault

RETIRE_SECONDS = 10.0  # how long a replaced index stays open for the requests still reading it


class Store:
    def __init__(
        self, path: Path, *, region: str | None = None, online: OnlineStore | None = None, vault: Vault | None = None
    ):
        self.path = path
        self.region = region
        self.online = online  # what the stream changed since the index was built (cx360.online.store)
        self.vault = vault  # with [privacy] vault on: the index holds tokens, so lookups tokenise the value
        self._local = threading.local()
        self._reopen = threading.Lock()
        self._generation = 0
        self._open()

    def _open(self) -> None:
        import duckdb

        self._inode = os.stat(self.path).st_ino
        # Attached to an instance of its own: DuckDB hands a second connect() to the same path the
        # instance already open, which would keep reading the replaced file.
        self._con = duckdb.connect()
        self._con.execute(f"ATTACH '{str(self.path).replace(chr(39), chr(39) * 2)}' AS serve (READ_ONLY)")
        self._con.execute("USE serve")
        self._con.execute("SET TimeZone = 'UTC'")
        self.tables = {
            r[0]
            for r in self._con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database()"
            ).fetchall()
        }
        points = self._con.execute("SELECT points FROM serve_meta").fetchone()[0]
        self._points_uri = f"{points_path(self.path, points).resolve().as_uri()}?mode=ro&immutable=1"
        for cached in ("built_at", "campaigns", "channels", "distributions"):
            self.__dict__.pop(cached, None)

    def _follow(self) -> None:
        """Switch to a rebuilt index file (a new inode at the same path); one stat per query."""
        try:
            inode = os.stat(self.path).st_ino
        except FileNotFoundError:  # between an unlink and a rename: keep the current one
            return
        if inode == self._inode:
            return
        with self._reopen:
            if inode == self._inode:
                return
            old = self._con
            self._open()
            self._generation += 1
            timer = threading.Timer(RETIRE_SECONDS, old.close)
            timer.daemon = True
            timer.start()

    def cursor(self):
        self._follow()
        cur = getattr(self._local, "cursor", None)
        if cur is None or getattr(self._local, "generation", -1) != self._generation:
            cur = self._local.cursor = self._new_cursor()
            self._local.generation = self._generation
        return cur

    def points(self) -> sqlite3.Connection:
        """This thread's connection to the index's point-read copy (cx360.api.index), for its generation."""
        self._follow()
        con = getattr(self._local, "points", None)
        if con is None or getattr(self._local, "points_generation", -1) != self._generation:
            if con is not None:
                con.close()
            con = self._local.points = sqlite3.connect(self._points_uri, uri=True, check_same_thread=False)
            self._local.points_generation = self._generation
        return con

    def _new_cursor(self):
        cur = self._con.cursor()
        cur.execute("USE serve")  # each cursor is a connection of its own, in the instance's default catalog
        return cur

    def close(self) -> None:
        self._con.close()

    def _rows(self, sql: str, params: list | None = None) -> list[dict[str, Any]]:
        cur = self.cursor().execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    # -- finding a profile ---------------------------------------------------------
    def resolve(self, text: str, kind: str | None = None) -> str:
        """The profile id behind a profile id, a node key, or an identifier (of `kind` when given)."""
        return self.find(text, kind)[0]

    def find(self, text: str, kind: str | None = None) -> tuple[str, list[str]]:
        """(profile id, the kinds of the nodes that matched: `profile`, `email`, `record`...)."""
        text = text.strip()
        if kind is not None:
            nodes = node_candidates(node_keys.identifier(kind, text), self.region, self.vault) if text else []
        else:
            nodes = [f"profile:{text}", *node_candidates(text, self.region, self.vault)]
        found = self.lookup_nodes(nodes)  # the batch's answer first; the stream's for the nodes it added
        if self.online is not None:
            found.update(self.online.node_profiles([n for n in nodes if n not in found]))
            for node in nodes:  # a profile the stream created or merged is reachable by its id too
                pid = node[len("profile:") :] if node.startswith("profile:") else None
                if pid and node not in found and (self.online.doc(pid) is not None or self.online.survivor(pid) != pid):
                    found[node] = pid
        if self.online is not None:
            found = {n: self.online.survivor(p) for n, p in found.items()}
        if not found:
            what = f"{kind} {text!r}" if kind else repr(text)
            raise NotFoundError(f"no profile holds {what}")
        pids = sorted(set(found.values()))
        if len(pids) > 1:
            raise NotFoundError(
                f"{text!r} is ambiguous: "
                + ", ".join(f"{n} -> {p}" for n, p in found.items())
                + "; give the kind, e.g. ?email=..."
            )
        return pids[0], sorted({n.partition(node_keys.SEP)[0] for n in found})

    def lookup_nodes(self, nodes: list[str]) -> dict[str, str]:
        """node -> profile id, as the last batch resolved them (one query however many nodes)."""
        if not nodes:
            return {}
        found: dict[str, str] = {}
        for at in range(0, len(nodes), 10_000):  # within SQLite's limit on parameters
            part = nodes[at : at + 10_000]
            sql = f"SELECT node, profile_id FROM lookup WHERE node IN ({','.join('?' * len(part))})"
            found.update(self.points().execute(sql, part))
        return found

    def created_at(self, pid: str) -> dt.datetime | None:
        """When the batch issued the profile id (None: not a batch profile)."""
        if "ages" not in self.tables:
            return None
        rows = self._rows("SELECT created_at FROM ages WHERE k = ? AND profile_id = ?", [key_hash(pid), pid])
        return rows[0]["created_at"] if rows else None

    def slice(self, pids: list[str]) -> dict[str, Any]:
        """The batch's rows of these profiles, for the stream processor: profile_events, records, nodes
        (node, profile_id) and docs (profile id -> its document). One query per table for all of them;
        none for profiles the batch does not know (the stream created them)."""
        out: dict[str, Any] = {"profile_events": [], "records": [], "nodes": [], "docs": {}}
        if not pids:
            return out
        keys = [key_hash(p) for p in pids]
        where = "WHERE k IN (SELECT unnest(?)) AND profile_id IN (SELECT unnest(?))"
        for row in self._rows(f"SELECT profile_id, doc FROM docs {where}", [keys, pids]):
            doc = out["docs"][row["profile_id"]] = json.loads(row["doc"])
            ids = json.loads(doc["golden"].get("identifiers") or "{}")
            out["nodes"] += [(node_keys.identifier(kind, v), row["profile_id"]) for kind, vs in ids.items() for v in vs]
        known = list(out["docs"])
        if known:
            args = [[key_hash(p) for p in known], known]
            out["profile_events"] = self._rows(f"SELECT * EXCLUDE (k) FROM events {where}", args)
            if "records" in self.tables:
                out["records"] = self._rows(f"SELECT * EXCLUDE (k) FROM records {where}", args)
        return out

    def _doc(self, pid: str) -> dict[str, Any] | None:
        row = self.points().execute("SELECT doc FROM docs WHERE profile_id = ?", (pid,)).fetchone()
        return json.loads(row[0]) if row else None

    # -- one profile -----------------------------------------------------------------
    def profile(self, pid: str, clear: dict[str, Any] | None = None) -> Profile:
        """The 3D profile (see cx360.profiles.view) from its one JSON document: the stream's, when it
        changed the profile since the index was built, else the batch's. `clear`: the golden record's
        personal attributes from the vault, for a reader who may see them (the document holds none)."""
        live = self.online.doc(pid) if self.online is not None else None
        if live is not None:
            doc = json.loads(live["doc"])
            fresh = {"origin": "stream", "as_of": live["as_of"], "updated_at": live["updated_at"]}
            fresh["last_event_id"] = live["last_event_id"]
        else:
            doc = self._doc(pid)
            if doc is None:
                raise NotFoundError(f"no profile {pid!r}")
            fresh = {"origin": "batch", "as_of": (doc.get("traits") or {}).get("as_of"), "updated_at": self.built_at}
        return assemble(
            pid,
            {**doc["golden"], **(clear or {})},
            traits=doc.get("traits"),
            scores=doc.get("scores"),
            churn=doc.get("churn"),
            breakdowns=[
                (name, key, value)
                for name, values in (doc.get("breakdowns") or {}).items()
                for key, value in values.items()
            ],
            segments=doc.get("segments") or [],
            archetype=doc.get("archetype"),
            freshness=fresh,
        )

    def consents(self, pid: str) -> list[dict[str, Any]]:
        """The person's consent changes as of the index build (see cx360.privacy.consent.RESOLVED)."""
        sql = f"SELECT {', '.join(POINT_CONSENTS)} FROM consents WHERE profile_id = ?"
        rows = [dict(zip(POINT_CONSENTS, r, strict=True)) for r in self.points().execute(sql, (pid,))]
        for r in rows:
            r["ts"] = dt.datetime.fromisoformat(r["ts"]) if r["ts"] is not None else None
        return rows

    def timeline(
        self,
        pid: str,
        *,
        source: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int | None = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """Events newest first; `cursor` (from the previous page's next_cursor) continues after its last event;
        `limit` None: every event, in one page (sorted here: DuckDB's ORDER BY ... LIMIT costs more).
        A profile the stream changed adds the events applied since the index was built, and those of the
        profiles merged into it online."""
        pids = [pid, *(self.online.absorbed(pid) if self.online is not None else [])]
        after = decode_cursor(cursor) if cursor else None
        rows: dict[str, dict[str, Any]] = {}
        for one in pids:
            sql = "SELECT event_id, ts, source, name, channel, amount, properties FROM events "
            sql += "WHERE k = ? AND profile_id = ?"
            params: list[Any] = [key_hash(one), one]
            for cond, value in (("source = ?", source), ("ts >= ?", since), ("ts < ?", until)):
                if value is not None:
                    sql += f" AND {cond}"
                    params.append(value)
            if after:
                sql += " AND (ts < ? OR (ts = ? AND event_id < ?))"
                params += [after[0], after[0], after[1]]
            if limit is not None:
                sql += " ORDER BY ts DESC, event_id DESC LIMIT ?"
                params.append(limit + 1)
            rows.update((r["event_id"], r) for r in self._rows(sql, params))
        if self.online is not None and self.online.doc(pid) is not None:
            for e in self.online.events_of(pids):
                ts = dt.datetime.fromisoformat(e["ts"])
                if (
                    (source is None or e["source"] == source)
                    and (since is None or ts >= since)
                    and (until is None or ts < until)
                    and (after is None or (ts, e["event_id"]) < after)
                ):
                    keep = ("event_id", "source", "name", "channel", "amount", "properties")
                    rows.setdefault(e["event_id"], {**{c: e.get(c) for c in keep}, "ts": ts})
            for m in self.online._rows("SELECT * FROM merged WHERE merged_into = ?", [pid]):
                ts = dt.datetime.fromisoformat(m["at"])  # a merge is an entry of the profile's history
                if after is None or (ts, f"merge:{m['profile_id']}") < after:
                    rows[f"merge:{m['profile_id']}"] = {
                        "event_id": f"merge:{m['profile_id']}",
                        "ts": ts,
                        "source": "cx360",
                        "name": "profile_merged",
                        "channel": None,
                        "amount": None,
                        "properties": json.dumps(
                            {
                                "merged": m["profile_id"],
                                "by_event": m["event_id"],
                                "evidence": json.loads(m["evidence"] or "[]"),
                            }
                        ),
                    }
        ordered = sorted(rows.values(), key=lambda r: (r["ts"], r["event_id"]), reverse=True)
        more = limit is not None and len(ordered) > limit
        ordered = ordered[:limit]
        for r in ordered:
            props = json.loads(r["properties"]) if r["properties"] else {}
            r["properties"] = {k: v for k, v in props.items() if v is not None}
        return {
            "profile_id": pid,
            "events": ordered,
            "next_cursor": encode_cursor(ordered[-1]["ts"], ordered[-1]["event_id"]) if more else None,
        }

    def events_for_call(self, pid: str, at: dt.datetime, lookback: dt.timedelta) -> list[dict[str, Any]]:
        """The events of the `lookback` before `at`, and the last calls and complaints of any age."""
        k = key_hash(pid)
        cols = "event_id, ts, name, amount, properties"
        return self._rows(
            f"SELECT {cols} FROM events WHERE k = ? AND profile_id = ? AND ts < ? AND ts >= ? UNION ALL "
            f"(SELECT {cols} FROM events WHERE k = ? AND profile_id = ? AND ts < ? "
            "AND name IN ('call', 'complaint') ORDER BY ts DESC LIMIT 20)",
            [k, pid, at, at - lookback, k, pid, at - lookback],
        )

    def phone_holders(self, phone: str) -> list[str]:
        """Profiles whose records or events carry this phone (a bare number, normalised here)."""
        phone = phone.strip()
        nodes = node_candidates(node_keys.identifier("phone", phone), self.region, self.vault) if phone else []
        found = set()
        for node in nodes:
            found |= {
                r["profile_id"]
                for r in self._rows(
                    "SELECT profile_id FROM phone_holders WHERE k = ? AND node = ?", [key_hash(node), node]
                )
            }
        return sorted(found)

    # -- many profiles -------------------------------------------------------------------
    def search(self, q: str, *, limit: int = 20, kinds: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """Profiles with a name or identifier (of `kinds`, when given) starting with `q` (case-insensitive)."""
        term = q.strip().lower()
        lo, hi = prefix_range(term)
        only = f" AND kind IN ({', '.join('?' * len(kinds))})" if kinds else ""
        hits = self._rows(
            "SELECT DISTINCT ON (profile_id) profile_id, kind, term FROM search "
            f"WHERE p7 BETWEEN ? AND ? AND starts_with(term, ?){only} LIMIT ?",
            [lo, hi, term, *(kinds or ()), limit],
        )
        if self.vault is not None and kinds is None:
            hits += self._token_hits(q, limit - len(hits), {h["profile_id"] for h in hits})
        out = []
        for h in hits:
            k = key_hash(h["profile_id"])
            p = self._rows(
                "SELECT first_name, last_name, city FROM profiles WHERE k = ? AND profile_id = ?", [k, h["profile_id"]]
            )
            out.append({**h, **(p[0] if p else {})})
        return sorted(out, key=lambda r: (r["term"], r["profile_id"]))

    def _token_hits(self, q: str, limit: int, seen: set[str]) -> list[dict[str, Any]]:
        """With the vault on, the index holds tokens, which no prefix matches: the profiles with an
        identifier equal to `q` once normalised, or whose name terms include every word of `q`. The
        term of a hit is what matched, as the caller wrote it (normalised)."""
        if limit <= 0:
            return []
        wanted = {}
        for node in node_candidates(q, self.region):  # q as each kind of identifier it can be
            kind, value = node_keys.parse(node)
            wanted[self.vault.token(kind, value)] = (kind, value)
        words = list(dict.fromkeys(q.lower().split()))
        names = {self.vault.token(index.NAME_TOKEN, w): w for w in words}
        hits = []
        if wanted:
            hits += [
                {"profile_id": r["profile_id"], "kind": wanted[r["term"]][0], "term": wanted[r["term"]][1]}
                for r in self._rows(
                    "SELECT profile_id, term FROM search WHERE p7 IN (SELECT unnest(?)) AND term IN (SELECT unnest(?))",
                    [[index.prefix7(t) for t in wanted], list(wanted)],
                )
            ]
        hits += [
            {"profile_id": r["profile_id"], "kind": "name", "term": " ".join(words)}
            for r in self._rows(
                "SELECT profile_id FROM search WHERE p7 IN (SELECT unnest(?)) AND term IN (SELECT unnest(?)) "
                "AND kind = ? GROUP BY profile_id HAVING count(DISTINCT term) = ?",
                [[index.prefix7(t) for t in names], list(names), index.NAME_TOKEN, len(names)],
            )
        ]
        out: dict[str, dict[str, Any]] = {}
        for h in hits:
            if h["profile_id"] not in seen:
                out.setdefault(h["profile_id"], h)
        return sorted(out.values(), key=lambda h: h["profile_id"])[:limit]

    def segments(self) -> list[dict[str, Any]] | None:
        if "segments" not in self.tables:
            return None
        return self._rows("SELECT * FROM segments ORDER BY name")

    def segment_members(
        self, name: str, *, entered_since: dt.datetime | None, after: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """A page of the segment's current members by profile id, after `after`, entered at or since a time."""
        if "members" not in self.tables:
            return []
        return self._rows(
            "SELECT profile_id, entered_at FROM members WHERE segment = ? AND exited_at IS NULL "
            "AND (CAST(? AS TIMESTAMP) IS NULL OR entered_at >= ?) AND (CAST(? AS VARCHAR) IS NULL OR profile_id > ?) "
            "ORDER BY profile_id LIMIT ?",
            [name, entered_since, entered_since, after, after, limit],
        )

    @cached_property
    def built_at(self) -> dt.datetime:
        return self._con.execute("SELECT built_at FROM serve_meta").fetchone()[0]

    @cached_property
    def calls(self) -> list[dict[str, Any]]:
        """Every attributed call (key, profile_id, at, reason, queue, outcome), for the outcome metrics."""
        return self._rows(
            "SELECT event_id AS key, profile_id, ts AS at, json_extract_string(properties, '$.reason') AS reason, "
            "json_extract_string(properties, '$.queue') AS queue, "
            "json_extract_string(properties, '$.outcome') AS outcome FROM events WHERE name = 'call' ORDER BY ts"
        )

    @cached_property
    def campaigns(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM campaigns ORDER BY made DESC, offer")

    @cached_property
    def channels(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM channels")

    @cached_property
    def distributions(self) -> dict[str, list[tuple[float, float, int]]]:
        """Equal-width histograms of value (from profile_scores) and churn risk (the churn model's, the
        figure the customer card shows), once per process (not per page view)."""
        out = {}
        horizon = None
        if "churn" in self.tables:
            horizon = self._con.execute("SELECT max(horizon_days) FROM churn").fetchone()[0]
        for table, column, label in (
            ("scores", "clv_12m", "value (CLV over 12 months)"),
            ("churn", "churn_risk", f"churn risk within {horizon} days (churn model)"),
        ):
            if table in self.tables and column in self._columns(table):
                bins = histogram(self._new_cursor(), table, column)
                if bins:
                    out[label] = bins
        return out

    def _columns(self, table: str) -> set[str]:
        sql = "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
        return {r[0] for r in self._con.execute(sql, [table]).fetchall()}

    def counts(self) -> dict[str, int]:
        self._follow()
        return dict(self._new_cursor().execute("SELECT name, n FROM serve_rows").fetchall())


def histogram(cur, table: str, column: str, bins: int = 20) -> list[tuple[float, float, int]]:
    lo, hi = cur.execute(f"SELECT min({column}), max({column}) FROM {table} WHERE {column} IS NOT NULL").fetchone()
    if lo is None:
        return []
    width = (hi - lo) / bins or 1.0
    counts = dict(
        cur.execute(
            f"SELECT least(floor(({column} - ?) / ?)::INT, ?) AS b, count(*) FROM {table} "
            f"WHERE {column} IS NOT NULL GROUP BY b",
            [lo, width, bins - 1],
        ).fetchall()
    )
    return [(lo + i * width, lo + (i + 1) * width, counts.get(i, 0)) for i in range(bins)]


def encode_cursor(ts: dt.datetime, event_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([ts.isoformat(), event_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        ts, event_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return dt.datetime.fromisoformat(ts), str(event_id)
    except (ValueError, TypeError) as exc:
        raise DataError(f"cursor: not a cursor this API returned ({cursor!r}); pass next_cursor as given") from exc

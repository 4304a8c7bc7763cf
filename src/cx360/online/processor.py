"""The stream processor: events of the log applied to the online profile store within a second.

It reads the partitions of the event log it owns (cx360.online.feed: a server its own partition,
`cx360 stream` every partition no other processor holds), in micro-batches: each batch is parsed
(cx360.online.parse), stitched to profiles (cx360.online.stitch), and written with the touched
profiles' new traits, documents and segment memberships in one transaction of the online store, with
how far the batch reached in its partition. A processor killed mid-batch has committed nothing of it
or all of it, and reads again from the committed offset on restart; events are keyed by event_id
besides, so a replay adds nothing twice. Profile state is recomputed from all the profile's events inside the
writer's transaction, so two workers applying events of one person together cannot lose an update,
and the order of arrival does not change the result.

Timers: a profile is evaluated again when one of its events leaves a time window of a trait or a
segment, so that "no card payment in 30 days" starts or ends on the day it becomes true, without a
nightly job. Segment entries and exits queue their triggers (cx360.online.triggers) in the same
transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from cx360 import node_keys
from cx360.identity import revealed
from cx360.online.compute import SliceEngine, as_of_for
from cx360.online.parse import Parsed, Reader
from cx360.online.stitch import Stitcher
from cx360.online.store import OnlineStore, put
from cx360.online.triggers import Triggers
from cx360.trait_catalog import RECENT_DAYS, RECURRING_WEEKS

if TYPE_CHECKING:
    from cx360.api.store import Store
    from cx360.config import Config
    from cx360.online.feed import Feeds
    from cx360.privacy.vault import Vault

log = logging.getLogger("cx360.online")
DAY = dt.timedelta(days=1)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="microseconds")


class Processor:
    def __init__(
        self,
        config: Config,
        store: OnlineStore,
        index: Store,
        feeds: Feeds,
        *,
        clock: Callable[[], dt.datetime] = _now,
        # lines per micro-batch at most: under a light load a batch is what arrived since the last one, so it
        # stays small and quick; behind, batches grow, and the fixed cost of a batch (its SQL) is shared
        batch: int = 5000,
        vault: Vault | None = None,  # the PII vault, when [privacy] vault is on: events keep tokens
    ):
        self.config, self.store, self.index, self.feeds = config, store, index, feeds
        self.vault = vault
        self._vaulted: set[str] = set()  # identifier subjects this process has put in the vault
        self.clock, self.batch = clock, batch
        self.stitcher = Stitcher(store, config.identity, index.created_at)
        self.slices = SliceEngine(config.segments, config.workspace.timezone)
        self.triggers = Triggers(config.triggers)
        self._readers: dict[str, Reader] = {}
        self.windows = sorted(
            {RECENT_DAYS, 7 * RECURRING_WEEKS, *(e.within_days for s in config.segments for e in s.events)}
        )
        self.applied = self.skipped = self.batches = 0
        self.seconds = 0.0
        self._stop = threading.Event()
        self.ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one micro-batch at a time in this process

    # -- the loop ---------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cx360-online", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        now = self.clock()
        self.slices.prepare(as_of_for(now, now))  # compile before the first event, not on it
        self.ready.set()
        while not self._stop.is_set():
            try:
                if not self.step() and not self.tick():
                    self._stop.wait(0.02)
            except Exception:
                log.exception("online: applying events failed; retrying")
                self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.feeds.close()  # gives its partitions to another processor
        self.slices.close()

    def step(self) -> int:
        """Apply what the owned partitions hold now (one micro-batch per source and partition); the number
        of log lines."""
        done = 0
        for feed in self.feeds.current():
            lines = feed.read(self.batch)
            if not lines:
                continue
            try:
                with self._lock:
                    self.apply(feed.source, _decode(lines), offset=(feed.name, lines[-1][0]))
            except BaseException:
                feed.rewind()  # nothing of the batch was committed: read it again
                raise
            feed.commit(lines[-1][0])
            done += len(lines)
        return done

    def tick(self) -> int:
        """Evaluate again the profiles whose timers are due; how many."""
        now = self.clock()
        due = self.store.due(_iso(now))
        if due:
            with self._lock, self.store.write() as con:
                self._refresh(con, set(due), now, {})
        return len(due)

    def health(self) -> dict[str, Any]:
        status = {
            r["status"]: r["n"] for r in self.store._rows("SELECT status, count(*) AS n FROM outbox GROUP BY status")
        }
        return {
            "running": self._thread is not None and self._thread.is_alive(),
            "applied": self.applied,
            "skipped": self.skipped,
            "batches": self.batches,
            "ms_per_batch": round(1000 * self.seconds / self.batches, 2) if self.batches else None,
            "profiles": self.store._rows("SELECT count(*) AS n FROM docs")[0]["n"],
            "triggers_pending": status.get("pending", 0),
            "triggers_dead": status.get("dead", 0),
        }

    # -- one micro-batch ----------------------------------------------------------------------------------
    def _reader(self, source: str) -> Reader:
        if source not in self._readers:
            from cx360.stream.drain import collector_source

            self._readers[source] = Reader(self.config, collector_source(self.config, source), self.vault)
        return self._readers[source]

    def apply(
        self, source: str, messages: list[dict[str, Any] | None], *, offset: tuple[str, int] | None = None
    ) -> set[str]:
        """Apply messages of one source (None: a line that is no JSON object), and commit `offset` (feed,
        last sequence number) with them; the profiles they touched."""
        reader = self._reader(source)
        started, now = time.perf_counter(), self.clock()
        last: dict[str, str] = {}
        applied = 0
        self.skipped += sum(m is None for m in messages)
        batch = [(message, reader.read(message)) for message in messages if message is not None]
        indexed = self.index.lookup_nodes(sorted({n for _, p in batch for n in p.nodes}))  # one query per batch
        self._put_identifiers([p for _, p in batch])
        with self.store.write() as con:
            seen = self._applied_before(con, [p.event["event_id"] for _, p in batch if p.event and not p.skipped])
            for message, parsed in batch:
                if parsed.skipped:
                    self.skipped += 1
                    continue
                row = parsed.event or parsed.record
                key = row["event_id"] if parsed.event else node_keys.record(row["source"], row["record_id"])
                if parsed.event and key in seen:
                    continue  # applied before (a replay after a crash, or twice in this batch)
                placed = self.stitcher.place(con, parsed.nodes, key, _iso(now), indexed, parsed.clear)
                if placed is None:
                    self.skipped += 1
                    continue
                pid, merged = placed
                for gone in merged:
                    last.pop(gone, None)
                if parsed.event:
                    e = parsed.event
                    con.execute(
                        "INSERT INTO events VALUES (?, ?, ?, ?)",
                        (e["event_id"], pid, _iso(e["ts"]), json.dumps(e, default=str)),
                    )
                    self.triggers.queue_event(con, pid, e["name"], _iso(now), e["event_id"])
                    seen.add(key)
                else:
                    put(con, "records", {"node": key, "profile_id": pid, "row": json.dumps(row, default=str)})
                last[pid] = message.get("messageId") or key
                applied += 1
            if last:
                self._refresh(con, set(last), now, last)
            if offset is not None:
                self.store.put_offset(con, *offset)
        self.applied += applied
        self.batches += 1
        self.seconds += time.perf_counter() - started
        return set(last)

    @staticmethod
    def _applied_before(con, event_ids: list[str], chunk: int = 500) -> set[str]:
        """Which of the batch's events the store holds already: one query per `chunk` ids, not one per event
        (each is a round trip on PostgreSQL)."""
        held: set[str] = set()
        for i in range(0, len(event_ids), chunk):
            part = event_ids[i : i + chunk]
            rows = con.execute(f"SELECT event_id FROM events WHERE event_id IN ({','.join('?' * len(part))})", part)
            held.update(r["event_id"] for r in rows.fetchall())
        return held

    def _put_identifiers(self, parsed: list[Parsed]) -> None:
        """The clear values of the batch's new identifier nodes into the vault, before any row names them."""
        if self.vault is None:
            return
        new = {n: v for p in parsed for n, v in p.clear.items() if n not in self._vaulted}
        if new:
            self.vault.put((n, "value", {"value": v}) for n, v in new.items())
            if len(self._vaulted) > 1_000_000:  # a cache, not a record: forgetting only costs a put again
                self._vaulted.clear()
            self._vaulted.update(new)

    def _refresh(self, con, pids: set[str], now: dt.datetime, last: dict[str, str]) -> None:
        """Recompute the documents, memberships and timers of `pids` (survivors), and queue triggers."""
        pids = {self.store.survivor(p) for p in pids}
        as_of = as_of_for(now, now)
        tables, batch_docs, people = self._slice(pids)
        computed = self.slices.compute(as_of, tables)
        updated = _iso(now)
        for pid in pids:
            previous = self.store.doc(pid)
            doc = dict(batch_docs.get(pid) or {})
            person = people[pid]
            doc["golden"] = _golden(doc.get("golden"), pid, person)
            doc["traits"] = {**(doc.get("traits") or {}), **_jsonable(computed.traits.get(pid, {}))}
            doc["breakdowns"] = computed.breakdowns.get(pid, {})
            event_id = last.get(pid) or (previous or {}).get("last_event_id")
            entered, exited = self._memberships(con, pid, computed.segments.get(pid, set()), doc, updated, event_id)
            doc["segments"] = self._segment_docs(pid, doc)
            put(
                con,
                "docs",
                {
                    "profile_id": pid,
                    "doc": json.dumps(doc, default=str),
                    "as_of": _iso(as_of),
                    "updated_at": updated,
                    "last_event_id": event_id,
                },
            )
            self.triggers.queue(con, pid, entered, exited, updated, event_id)
            due = self._next_due(person.times, as_of)
            if due is None:
                con.execute("DELETE FROM timers WHERE profile_id = ?", (pid,))
            else:
                put(con, "timers", {"profile_id": pid, "due_at": _iso(due)})

    def _slice(self, pids: set[str]) -> tuple[dict[str, pa.Table], dict[str, dict], dict[str, Person]]:
        """The batch's rows of the profiles (and of those merged into them online), with the online rows."""
        owner = {pid: pid for pid in pids}
        for pid in pids:
            owner.update(dict.fromkeys(self.store.absorbed(pid), pid))
        batch = self.index.slice(list(owner))
        docs = {pid: batch["docs"][pid] for pid in pids if pid in batch["docs"]}
        events = {r["event_id"]: {**r, "profile_id": owner[r["profile_id"]]} for r in batch["profile_events"]}
        for e in self.store.events_of(pids):
            events[e["event_id"]] = {**e, "ts": dt.datetime.fromisoformat(e["ts"])}
        records = [{**r, "profile_id": owner[r["profile_id"]]} for r in batch["records"]]
        for r in self.store.records_of(pids):
            records.append(_record_row(r))
        nodes = [{"node": n, "kind": node_keys.kind_of(n), "profile_id": owner[p]} for n, p in batch["nodes"]]
        nodes += [{"node": n, "kind": node_keys.kind_of(n), "profile_id": p} for n, p in self.store.nodes_of(pids)]
        for r in records:
            nodes.append(
                {"node": node_keys.record(r["source"], r["record_id"]), "kind": "record", "profile_id": r["profile_id"]}
            )
        born = {r["profile_id"]: r["birth_date"] for r in records if r.get("birth_date")}
        for pid in pids:  # the golden birth date, as the batch chose it (in its document, as text)
            golden = docs.get(pid, {}).get("golden") or {}
            if golden.get("birth_date"):
                born[pid] = dt.date.fromisoformat(str(golden["birth_date"])[:10])
        if self.vault is not None:  # the batch's golden birth dates are in the vault, not in the document
            held = revealed.birth_dates(self.vault, sorted(p for p in pids if p not in born)).to_pylist()
            born.update((r["profile_id"], r["birth_date"]) for r in held if r["birth_date"] is not None)
        profiles = [{"profile_id": pid, "birth_date": born.get(pid)} for pid in pids]  # what the traits read
        tables = {
            "profile_events": _arrow(list(events.values()), "profile_events"),
            "records": _arrow(records, "records"),
            "identity_map": _arrow(nodes, "identity_map"),
            "profiles": _arrow(profiles, "profiles"),
        }
        return tables, docs, _people(list(events.values()), nodes, records)

    def _memberships(self, con, pid: str, now_in: set[str], doc: dict, at: str, event_id: str | None):
        """Stamp entries and exits of the online segments; (entered, exited)."""
        online = {s.name for s in self.slices.online_specs}
        rows = self.store.members_of(pid)
        if rows:
            was_in = {r["segment"] for r in rows if r["exited_at"] is None}
        else:  # first time online: the batch's memberships are the starting point
            was_in = {m["segment"] for m in doc.get("segments") or [] if m.get("exited_at") is None}
            for m in doc.get("segments") or []:
                if m.get("segment") in online and m.get("exited_at") is None:
                    con.execute(
                        "INSERT INTO members VALUES (?, ?, ?, NULL, NULL, ?) ON CONFLICT DO NOTHING",
                        (pid, m["segment"], str(m.get("entered_at")), at),
                    )
        entered = sorted((now_in - was_in) & online)
        exited = sorted((was_in - now_in) & online)
        for segment in entered:
            row = {"profile_id": pid, "segment": segment, "entered_at": at, "exited_at": None}
            put(con, "members", {**row, "event_id": event_id, "updated_at": at})
        for segment in exited:
            con.execute(
                "UPDATE members SET exited_at = ?, event_id = ?, updated_at = ? "
                "WHERE profile_id = ? AND segment = ? AND exited_at IS NULL",
                (at, event_id, at, pid, segment),
            )
        return entered, exited

    def _segment_docs(self, pid: str, doc: dict) -> list[dict]:
        online = {s.name for s in self.slices.online_specs}
        kept = [m for m in doc.get("segments") or [] if m.get("segment") not in online]
        mine = [
            {
                "segment": r["segment"],
                "entered_at": r["entered_at"],
                "exited_at": r["exited_at"],
                "updated_at": r["updated_at"],
                "event_id": r["event_id"],
            }
            for r in self.store._rows("SELECT * FROM members WHERE profile_id = ? ORDER BY entered_at", [pid])
        ]
        return kept + mine

    def _next_due(self, times: list[dt.datetime], as_of: dt.datetime) -> dt.datetime | None:
        """When an event of the profile next leaves a window: the wall-clock time whose as_of passes it."""
        best = None
        for ts in times:
            for days in self.windows:
                edge = dt.datetime.combine((ts + dt.timedelta(days=days)).date() + DAY, dt.time())
                if edge > as_of and (best is None or edge < best):
                    best = edge
        return None if best is None else best - DAY


def _decode(lines: list[tuple[int, bytes]]) -> list[dict[str, Any] | None]:
    out: list[dict[str, Any] | None] = []
    for seq, line in lines:
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            message = None
        if not isinstance(message, dict):
            log.warning("online: log line %d is no JSON object; skipped", seq)
            message = None
        out.append(message)
    return out


def _arrow(rows: list[dict], table: str) -> pa.Table:
    from cx360 import schema

    target = schema.ibis_schema(table).to_pyarrow()
    return pa.Table.from_pydict({f.name: [r.get(f.name) for r in rows] for f in target}, schema=target)


def _record_row(row: dict) -> dict:
    out = dict(row)
    for key in ("updated_at", "registered_at"):
        if isinstance(out.get(key), str):
            out[key] = dt.datetime.fromisoformat(out[key])
    if isinstance(out.get("birth_date"), str):
        out["birth_date"] = dt.date.fromisoformat(out["birth_date"])
    return out


@dataclass
class Person:
    """One profile's part of a slice, grouped once: its event times and sources, nodes and records."""

    times: list[dt.datetime] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)
    nodes: list[str] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)


def _people(events: list[dict], nodes: list[dict], records: list[dict]) -> dict[str, Person]:
    out: dict[str, Person] = defaultdict(Person)
    for e in events:
        out[e["profile_id"]].times.append(e["ts"])
        out[e["profile_id"]].sources.add(e["source"])
    for n in nodes:
        out[n["profile_id"]].nodes.append(n["node"])
    for r in records:
        out[r["profile_id"]].records.append(r)
    return out


def _golden(golden: dict | None, pid: str, person: Person) -> dict:
    """The batch's golden record with the identifiers the stream attached or merged in; for a profile the
    stream created, the attributes of its latest identify call (survivorship is the batch's)."""
    out = dict(golden or {"profile_id": pid})
    ids = json.loads(out["identifiers"]) if isinstance(out.get("identifiers"), str) else (out.get("identifiers") or {})
    for node in person.nodes:
        kind, value = node_keys.parse(node)
        if kind != node_keys.RECORD and value not in ids.setdefault(kind, []):
            ids[kind].append(value)
    out["identifiers"] = json.dumps(ids)
    if golden is None:
        for r in sorted(person.records, key=lambda r: r.get("updated_at") or dt.datetime.min):
            out.update({k: v for k, v in r.items() if v is not None and k in _GOLDEN_ATTRS})
        out["sources"] = ",".join(sorted(person.sources | {r["source"] for r in person.records}))
        out["records"] = len(person.records)
    return out


def _jsonable(row: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, (dt.datetime, dt.date)) else v) for k, v in row.items()}


_GOLDEN_ATTRS = {"first_name", "middle_name", "last_name", "birth_date", "gender", "address", "city", "email", "phone"}

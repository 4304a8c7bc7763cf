"""Erasure in the online store: every row about the person, then the file rewritten (VACUUM with
secure_delete), so that the pages that held them are gone, as in the other SQLite stores."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from cx360.online.store import OnlineStore, online_path


def with_online(subject, ws):
    """The subject with what only the online store knows of them: the profiles merged into theirs and the
    identifiers the stream attached since the last batch (so that the log and the scan cover them too)."""
    from cx360.config import DuckDBEngine

    path = online_path(ws.root / ws.config.engine.path) if isinstance(ws.config.engine, DuckDBEngine) else None
    if path is None or not path.exists():
        return subject
    store = OnlineStore(path)
    try:
        pids = set(subject.profile_ids)
        for pid in list(pids):
            pids |= {store.survivor(pid), *store.absorbed(store.survivor(pid))}
        nodes = sorted(set(subject.nodes) | {n for n, _ in store.nodes_of(pids)})
        return dataclasses.replace(subject, profile_ids=sorted(pids), nodes=nodes)
    finally:
        store.close()


def erase_online(path: Path, profile_ids: list[str], nodes: list[str]) -> int:
    """Delete the person (their profiles, those merged into them online, and their nodes); rows removed."""
    if not path.exists():
        return 0
    store = OnlineStore(path)
    try:
        pids = set(profile_ids)
        pids |= set(store.node_profiles(nodes).values())
        for pid in list(pids):
            pids |= {store.survivor(pid), *store.absorbed(store.survivor(pid))}
        ids, marks = sorted(pids), ",".join("?" * len(pids))
        removed = 0
        con = store._con()
        con.execute("PRAGMA secure_delete = ON")  # freed pages are zeroed, not left as they were
        with store.write() as tx:
            for table in ("nodes", "events", "records", "docs", "members", "timers"):
                removed += tx.execute(f"DELETE FROM {table} WHERE profile_id IN ({marks})", ids).rowcount
            if nodes:
                node_marks = ",".join("?" * len(nodes))
                removed += tx.execute(f"DELETE FROM nodes WHERE node IN ({node_marks})", nodes).rowcount
            removed += tx.execute(
                f"DELETE FROM merged WHERE profile_id IN ({marks}) OR merged_into IN ({marks})", ids + ids
            ).rowcount
            removed += tx.execute(
                f"DELETE FROM outbox WHERE json_extract(payload, '$.profile_id') IN ({marks})", ids
            ).rowcount
        con.execute("VACUUM")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed
    finally:
        store.close()

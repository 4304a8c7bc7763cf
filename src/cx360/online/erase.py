"""Erasure in the online store: every row about the person, then the space they held reclaimed (on SQLite
the file rewritten, VACUUM with secure_delete, so that the pages that held them are gone, as in the other
SQLite stores; on PostgreSQL the tables vacuumed, cx360.online.engines)."""

from __future__ import annotations

import dataclasses

from cx360.online.store import OnlineStore, open_online


def with_online(subject, ws):
    """The subject with what only the online store knows of them: the profiles merged into theirs and the
    identifiers the stream attached since the last batch (so that the log and the scan cover them too)."""
    store = open_online(ws.root, ws.config, create=False)
    if store is None:
        return subject
    try:
        pids = set(subject.profile_ids)
        for pid in list(pids):
            pids |= {store.survivor(pid), *store.absorbed(store.survivor(pid))}
        nodes = sorted(set(subject.nodes) | {n for n, _ in store.nodes_of(pids)})
        return dataclasses.replace(subject, profile_ids=sorted(pids), nodes=nodes)
    finally:
        store.close()


def erase_online(store: OnlineStore, profile_ids: list[str], nodes: list[str]) -> int:
    """Delete the person (their profiles, those merged into them online, and their nodes); rows removed."""
    pids = set(profile_ids)
    pids |= set(store.node_profiles(nodes).values())
    for pid in list(pids):
        pids |= {store.survivor(pid), *store.absorbed(store.survivor(pid))}
    ids, marks = sorted(pids), ",".join("?" * len(pids))
    if not ids and not nodes:
        return 0
    removed = 0
    con = store._con()
    for statement in store.engine.before_erase:
        con.execute(statement)
    with store.write() as tx:
        if ids:
            for table in ("nodes", "events", "records", "docs", "members", "timers"):
                removed += tx.execute(f"DELETE FROM {table} WHERE profile_id IN ({marks})", ids).rowcount
            removed += tx.execute(
                f"DELETE FROM merged WHERE profile_id IN ({marks}) OR merged_into IN ({marks})", ids + ids
            ).rowcount
            removed += tx.execute(f"DELETE FROM outbox WHERE {store.engine.payload_profile} IN ({marks})", ids).rowcount
        if nodes:
            node_marks = ",".join("?" * len(nodes))
            removed += tx.execute(f"DELETE FROM nodes WHERE node IN ({node_marks})", nodes).rowcount
    for statement in store.engine.after_erase:
        con.execute(statement)
    return removed

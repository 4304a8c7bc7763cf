"""`cx360 privacy export`: everything cx360 holds on one person (subject access), with the source,
time and purpose of each item, as JSON and CSV.

What is "theirs" is exactly what erasure would remove (cx360.erasure.warehouse), so the two can
never disagree: their rows of every warehouse table, their consent changes taken by the API, who
read their data (the audit log) and, with `[privacy] vault` on, everything the vault holds on them
(each identifier's clear value, each record version's personal attributes, the golden record's),
the subjects erasure shreds. The export is itself a read of personal data, and is audited.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from cx360.api.access import ACCESS_FILE
from cx360.api.audit import record_cli
from cx360.erasure.subject import resolve
from cx360.erasure.warehouse import their_rows
from cx360.filemodes import private
from cx360.pipeline import STAGES
from cx360.privacy.ledger import intake
from cx360.privacy.vault import Vault
from cx360.workspace import Workspace

JSON_FILE = "subject-access.json"
CSV_FILE = "subject-access.csv"
# Why cx360 holds each kind of data: the purposes of cx360.toml ([privacy.purposes]) it serves.
PURPOSES = {
    "records": "profiling: the golden record, identity resolution",
    "events": "profiling and analytics: traits, scores, segments",
    "consents": "consent management: what the person allowed (legal obligation)",
    "quarantine": "data quality: rows that failed validation, kept to be fixed and replayed",
    "dropped_identifiers": "data quality: malformed identifiers removed from loaded rows",
    "identity": "identity resolution: which records and identifiers are one person",
    "derived": "profiling: traits, scores, segments and archetypes computed about the person",
    "audit": "accountability: who read the person's data (legal obligation)",
    "vault": "profiling and identity resolution: the personal values the other tables hold as tokens",
}
_IDENTITY = {"identity_links", "identity_map", "profile_ids", "identity_overrides"}
_TIMES = ("ts", "updated_at", "at", "entered_at", "scored_at", "as_of", "first_seen_at", "created_at", "ingested_at")
_TIMES += ("quarantined_at", "dropped_at")


def export(root: Path, text: str, out_dir: Path) -> dict[str, Any]:
    """Write everything held on the person behind `text` into `out_dir`; returns a summary."""
    ws = Workspace(root)
    try:
        subject = resolve(ws, text)
        engine = ws.engine
        writers = {t: s.name for s in STAGES for t in s.writes}
        tv = engine.table("table_versions")
        written = {r["table"]: r["written_at"] for r in engine.to_arrow(tv, step="export: versions").to_pylist()}
        tables: dict[str, list[dict]] = {}
        for table, predicate in their_rows(ws, subject).items():
            rows = engine.to_arrow(engine.table(table).filter(predicate), step=f"export: {table}").to_pylist()
            if rows:
                tables[table] = rows
        vault = Vault.of(ws)
        if vault is not None:
            with closing(vault):
                held = vault.reveal(subject.vault_subjects)
            rows = [{"subject": s, "item": i, **p} for s, items in sorted(held.items()) for i, p in items.items()]
            if rows:
                tables["vault"] = rows
    finally:
        ws.close()
    intake_rows = intake(root, subject.profile_ids)
    if intake_rows:
        tables["consents (API intake)"] = intake_rows
    audit = _audit_rows(root, subject.profile_ids)
    if audit:
        tables["audit"] = audit
    items = [_item(table, row, writers, written.get(table)) for table, rows in tables.items() for row in rows]
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "profile_ids": subject.profile_ids,
        "identifiers": subject.clear_identifiers,
        **({"tokens": subject.identifiers} if subject.clear else {}),
        "records": [f"{s}:{r}" for s, r in subject.records],
        "purposes": PURPOSES,
        "items": items,
    }
    (out_dir / JSON_FILE).write_text(json.dumps(document, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    with open(out_dir / CSV_FILE, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["table", "source", "time", "purpose", "field", "value"])
        for item in items:
            for field, value in item["data"].items():
                if value is not None:
                    writer.writerow([item["table"], item["source"], item["time"], item["purpose"], field, _text(value)])
    private(out_dir)
    record_cli(root, "subject_access_export", subject.profile_ids[0], sorted(tables))
    return {
        "profile_ids": subject.profile_ids,
        "items": len(items),
        "tables": {t: len(r) for t, r in tables.items()},
        "files": [str(out_dir / JSON_FILE), str(out_dir / CSV_FILE)],
    }


def _item(table: str, row: dict, writers: dict[str, str], written: dt.datetime | None) -> dict[str, Any]:
    """One row as an item: its source (the source system, or the stage that computed it), its time
    (when it happened or changed, else when cx360 computed it) and the purpose it serves."""
    kind = (
        "consents"
        if table.startswith("consents")
        else "identity"
        if table in _IDENTITY
        else table
        if table in PURPOSES
        else "derived"
    )
    source = row.get("source") or (f"cx360 stage {writers[table]}" if table in writers else "cx360")
    when = next((row[c] for c in _TIMES if row.get(c) is not None), written)
    return {
        "table": table,
        "source": source,
        "time": when.isoformat() if isinstance(when, dt.datetime | dt.date) else when,
        "purpose": PURPOSES[kind],
        "data": row,
    }


def _audit_rows(root: Path, profile_ids: list[str]) -> list[dict]:
    path = root / ACCESS_FILE
    if not path.exists():
        return []
    con = sqlite3.connect(path, timeout=10)
    try:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit'").fetchone():
            return []
        cur = con.execute(
            "SELECT at, key_name, role, action, fields, client FROM audit WHERE profile_id IN "
            f"({', '.join('?' * len(profile_ids))}) ORDER BY at",
            profile_ids,
        )
        names = [d[0] for d in cur.description]
        return [{**dict(zip(names, r, strict=True)), "source": "audit log"} for r in cur.fetchall()]
    finally:
        con.close()


def _text(value: Any) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)

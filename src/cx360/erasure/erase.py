"""`cx360 privacy erase`: a person out of every store, for good, with a receipt that proves it.

The steps, each idempotent, run under a journal (`erasure/pending/ID.json`, owner-only) that holds
what is needed to finish them: the person's ids and identifiers, which the warehouse no longer has
once their rows are gone. While a journal is pending, nothing else reads the workspace
(`Workspace.check_erasures`); the next `cx360 privacy erase` completes it, and its receipt says
the erasure was interrupted. The journal is removed once the receipt is written:

1. suppress: the keyed hashes of their identifiers, records and names join the suppression list,
   so no later ingest brings them back (with the vault on, the journal's subject holds their values,
   revealed when the erasure was planned, so every later step and a resumed run have them);
2. rows: their rows leave every warehouse table; their names leave everyone else's free text;
3. rewrite: the warehouse is copied into a new file (or new Parquet files) so deleted bytes are gone;
4. stores: with `[privacy] vault` on, every vault subject of theirs is crypto-shredded (its data key
   and ciphertexts deleted, both vault files compacted); the serving index is rebuilt, the audit log
   keeps one tombstone, exports and the demo's ground truth lose their rows;
5. verify: every file is scanned for each identifier and full name (cx360.erasure.scan).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import time
import uuid
from pathlib import Path

from cx360 import node_keys
from cx360.config import DuckDBEngine
from cx360.erasure import files as stores_io
from cx360.erasure.scan import scan
from cx360.erasure.stores import stores
from cx360.erasure.streams import erase_event_log, erase_redis
from cx360.erasure.subject import Subject, resolve
from cx360.erasure.warehouse import erase_rows
from cx360.errors import NotFoundError
from cx360.filemodes import private
from cx360.identity.explain import node_candidates
from cx360.online.erase import erase_online, with_online
from cx360.online.store import open_online
from cx360.privacy.ledger import INTAKE_FILE
from cx360.privacy.suppression import Suppression, list_path
from cx360.privacy.vault import Vault
from cx360.workspace import PENDING_ERASURES, Workspace

RECEIPTS = "erasure/receipts"


def erase(root: Path, text: str, reason: str) -> dict:
    """Erase the person behind `text` and return the receipt. Completes interrupted erasures first;
    an identifier erased before answers that erasure's receipt; an unknown one is NotFoundError."""
    resumed = resume(root)
    ws = Workspace(root, erasing=True)
    try:
        try:
            subject = with_online(resolve(ws, text), ws)
        except NotFoundError:
            earlier = _erased_before(ws, text)
            if earlier is None:
                raise NotFoundError(
                    f"no profile holds {text!r}: nothing to erase (give an e-mail, phone, customer number or other "
                    "identifier cx360 knows, a profile id, or record:SOURCE:ID)"
                ) from None
            receipt = read_receipt(root, earlier)
            return {**receipt, "note": "this person was erased before; this is that erasure's receipt"}
        journal = {
            "erasure_id": dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:8],
            "requested_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "reason": reason,
            "by": _user(),
            "step": "planned",
            "runs": 1,
            "subject": subject.as_dict(),
            "removed": {},
            "redacted": {},
            "stores": {},
        }
    finally:
        ws.close()
    _write_journal(root, journal)
    receipt = _run(root, journal)
    if resumed:
        receipt["completed_interrupted"] = [r["erasure_id"] for r in resumed]
    return receipt


def resume(root: Path) -> list[dict]:
    """Complete every interrupted erasure; their receipts."""
    done = []
    for path in sorted((root / PENDING_ERASURES).glob("*.json")):
        journal = json.loads(path.read_text(encoding="utf-8"))
        journal["runs"] = journal.get("runs", 1) + 1
        journal["interrupted_at_step"] = journal.get("interrupted_at_step") or journal["step"]
        _write_journal(root, journal)
        done.append(_run(root, journal))
    return done


def _run(root: Path, journal: dict) -> dict:
    started = journal["_since"] = time.perf_counter()
    subject = Subject.from_dict(journal["subject"])
    eid = journal["erasure_id"]
    ws = Workspace(root, erasing=True)
    try:
        region = ws.config.workspace.default_region
        suppression = Suppression.load(root, region)
        suppression.add(subject.suppressed(), eid)
        journal["suppressed"] = len(subject.suppressed())
        _advance(root, journal, "suppressed")

        removed, redacted = erase_rows(ws, subject, suppression)
        _merge_counts(journal["removed"], removed)
        _merge_counts(journal["redacted"], redacted)
        _advance(root, journal, "rows")

        ws.engine.compact()
        ws.close()
        _advance(root, journal, "rewritten")

        config = ws.config
        vault = Vault.of(ws)
        if vault is not None:  # crypto-shredding: without their data keys, no copy of the ciphertexts opens
            journal["stores"]["vault"] = journal["stores"].get("vault", 0) + vault.shred(subject.vault_subjects)
            vault.compact()
        try:
            if isinstance(config.engine, DuckDBEngine):
                rebuilt = stores_io.rebuild_index(root, root / config.engine.path, vault)
                journal["stores"]["serving index"] = "rebuilt" if rebuilt else "none in this workspace"
        finally:
            if vault is not None:
                vault.close()
        entries = stores_io.erase_audit(root, subject.profile_ids, eid)
        journal["stores"]["audit log"] = journal["stores"].get("audit log", 0) + entries
        messages, busy = erase_event_log(root, subject, region)
        journal["stores"]["event log"] = journal["stores"].get("event log", 0) + messages
        if busy:
            journal["stores"]["event log partitions in use (left as they are)"] = ", ".join(busy)
        for stream, (erased, left) in erase_redis(config, root, subject, region).items():
            journal["stores"][stream] = journal["stores"].get(stream, 0) + erased
            journal.setdefault("redis_left", {})[stream] = left
        store = open_online(root, config, create=False)
        if store is not None:
            try:
                online = erase_online(store, subject.profile_ids, subject.nodes)
            finally:
                store.close()
            journal["stores"]["online store"] = journal["stores"].get("online store", 0) + online
            journal["stores"]["online store at"] = store.where
        consents = stores_io.erase_sqlite_rows(root / INTAKE_FILE, "consents", subject.profile_ids)
        journal["stores"]["consents intake"] = journal["stores"].get("consents intake", 0) + consents
        keys = _row_keys(ws, subject, journal)
        terms = subject.terms()
        for folder in ("exports", "quarantine", "truth"):
            for path in sorted(p for p in (root / folder).rglob("*") if p.is_file()):
                rel = path.relative_to(root).as_posix()
                if path.suffix.lower() in stores_io.TABULAR:
                    n = stores_io.erase_tabular(path, keys)
                    if n:
                        journal["stores"][rel] = journal["stores"].get(rel, 0) + n
                elif stores_io.holds_any(path, terms):  # another export (a subject-access JSON): derived, removed
                    path.unlink()
                    journal["stores"][rel] = "removed"
        _advance(root, journal, "stores")

        journal_path = _journal_path(root, eid)
        result = scan(root, config, subject, skip=(journal_path,))
        for stream, left in journal.get("redis_left", {}).items():
            result.streams[stream] = left
            if left:
                result.hits.append({"store": "redis stream", "file": stream, "where": "entries", "what": f"{left}"})
        _advance(root, journal, "verified")
        receipt = _receipt(journal, config, result, time.perf_counter() - started, suppression)
        _write_receipt(root, receipt)
        journal_path.unlink(missing_ok=True)
        return receipt
    finally:
        ws.close()


def _row_keys(ws: Workspace, subject: Subject, journal: dict) -> set[str]:
    """What identifies the person's rows in a file: identifiers, record ids, profile ids, names."""
    keys = {v.lower() for ids in (subject.identifiers, subject.clear_identifiers) for vs in ids.values() for v in vs}
    keys |= {r.lower() for _, r in subject.records}
    keys |= {p.lower() for p in subject.profile_ids}
    keys |= {n.lower() for n in subject.names}
    return keys


def _receipt(journal: dict, config, result, seconds: float, suppression: Suppression) -> dict:
    subject = Subject.from_dict(journal["subject"])
    return {
        "erasure_id": journal["erasure_id"],
        "requested_at": journal["requested_at"],
        "completed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "by": journal["by"],
        "reason": suppression.redact(journal["reason"]),
        "subject": {
            "profiles": len(subject.profile_ids),
            "records": len(subject.records),
            "identifiers": {k: len(v) for k, v in sorted(subject.identifiers.items())},
            "names": len(subject.names),
        },
        "interrupted": (
            None
            if journal["runs"] == 1
            else {"at_step": journal.get("interrupted_at_step"), "runs": journal["runs"], "completed": True}
        ),
        "stores": [
            {
                "store": s.name,
                "erased": s.erased,
                **(
                    {"rows_removed": journal["removed"], "rows_redacted": journal["redacted"]}
                    if s.name == "warehouse"
                    else {"subjects_shredded": journal["stores"].get("vault", 0)}
                    if s.name == "vault"
                    else {}
                ),
            }
            for s in stores(config)
        ],
        "files": journal["stores"],
        "suppressed_hashes": journal.get("suppressed", 0),
        "verification": result.as_dict(),
        "user_files_holding_the_person": result.user_files,
        "seconds": round(seconds, 2),
        "step_seconds": {k: v for k, v in journal.get("step_seconds", {}).items() if k != "planned"},
    }


def _erased_before(ws: Workspace, text: str) -> str | None:
    """The erasure that suppressed `text`, if one did."""
    suppression = Suppression.load(ws.root, ws.config.workspace.default_region)
    if not suppression:
        return None
    wanted = set()
    for node in node_candidates(text, ws.config.workspace.default_region):  # clear: the list hashes clear values
        kind, value = node_keys.parse(node)
        wanted.add(suppression.hash(kind, value))
    for line in list_path(ws.root).read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("hash") in wanted:
            return entry.get("erasure")
    return None


def read_receipt(root: Path, erasure_id: str) -> dict:
    path = root / RECEIPTS / f"{erasure_id}.json"
    if not path.exists():
        raise NotFoundError(f"no receipt {erasure_id} in {path.parent}")
    return json.loads(path.read_text(encoding="utf-8"))


def _merge_counts(into: dict, new: dict) -> None:
    for k, v in new.items():
        into[k] = into.get(k, 0) + v


def _advance(root: Path, journal: dict, step: str) -> None:
    now = time.perf_counter()
    seconds = journal.setdefault("step_seconds", {})
    seconds[step] = round(seconds.get(step, 0) + now - journal.pop("_since", now), 3)
    journal["_since"] = now
    journal["step"] = step
    _write_journal(root, journal)


def _journal_path(root: Path, erasure_id: str) -> Path:
    return root / PENDING_ERASURES / f"{erasure_id}.json"


def _write_journal(root: Path, journal: dict) -> None:
    _atomic_json(_journal_path(root, journal["erasure_id"]), journal)


def _write_receipt(root: Path, receipt: dict) -> None:
    _atomic_json(root / RECEIPTS / f"{receipt['erasure_id']}.json", receipt)


def _atomic_json(path: Path, data: dict) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    private(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=2, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return f"uid {os.getuid()}"

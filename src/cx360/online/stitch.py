"""Identity online: which profile an event or an identify call belongs to, by the batch graph's rules.

Identifiers seen together (in one event, one identify call, an alias call's previousId and userId)
are one person, as in cx360.identity.graph: a new identifier attaches to the profile it co-occurs
with; two profiles that co-occur merge, and the oldest id survives (batch profiles are older than
those the stream created; among batch profiles, the registry's created_at decides). A profile the
stream creates gets the id batch resolution would give it (cx360.identity.stable_ids). Identifiers
junk by their shape, listed placeholders and [identity].blocked_values link nothing, as in batch.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from cx360 import node_keys
from cx360.config import IdentitySettings
from cx360.identity.junk import pattern_reason
from cx360.identity.stable_ids import new_profile_id
from cx360.online.store import OnlineStore, put

Age = Callable[[str], dt.datetime | None]  # the registry's created_at of a batch profile


class Stitcher:
    def __init__(self, store: OnlineStore, settings: IdentitySettings, age: Age):
        self.store, self.settings, self.age = store, settings, age

    def links(self, node: str, clear: str | None = None) -> bool:
        """Whether the node may join profiles (a record always does; a junk identifier never). `clear` is
        the value of a node that holds a token (the PII vault on)."""
        kind, value = node_keys.parse(node)
        if kind == node_keys.RECORD:
            return True
        value = value if clear is None else clear
        if value in self.settings.blocked(kind):
            return False
        return pattern_reason(kind, value, self.settings) is None

    def place(
        self,
        con,
        nodes: list[str],
        event_id: str,
        at: str,
        indexed: dict[str, str],
        clear: dict[str, str] | None = None,
    ) -> tuple[str, list[str]] | None:
        """The profile of a message naming `nodes` (inside the writer's transaction), given the serving
        index's owners of the micro-batch's nodes; attaches the new nodes and merges the profiles they
        join. Returns (profile id, profiles merged into it); None when every node is junk: as in batch,
        such a message belongs to nobody. `clear`: the values of token nodes."""
        clear = clear or {}
        usable = [n for n in dict.fromkeys(nodes) if self.links(n, clear.get(n))]
        if not usable:
            return None
        batch = {n: indexed[n] for n in usable if n in indexed}  # the last batch's answer first
        online = self.store.node_profiles([n for n in usable if n not in batch])
        owners = {n: self.store.survivor(p) for n, p in {**online, **batch}.items()}
        pids = sorted(set(owners.values()))
        if not pids:
            pid, merged = new_profile_id(min(usable), set()), []
        else:  # ages are looked up only for a merge: most messages name one profile
            pid = pids[0] if len(pids) == 1 else min(pids, key=self._age_key)
            merged = [p for p in pids if p != pid]
        for loser in merged:
            self._merge(con, loser, pid, event_id, at, evidence=[n for n, p in owners.items() if p == loser])
        for node in usable:
            if owners.get(node) != pid:
                con.execute(
                    "INSERT INTO nodes VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (node) DO UPDATE SET profile_id = excluded.profile_id",
                    (node, pid, event_id, at),
                )
        return pid, merged

    def _age_key(self, pid: str) -> tuple[int, str, str]:
        created = self.age(pid)
        if created is not None:
            return 0, created.isoformat(), pid
        rows = self.store._rows("SELECT min(at) AS at FROM nodes WHERE profile_id = ?", [pid])
        return 1, rows[0]["at"] or "", pid

    def _merge(self, con, loser: str, into: str, event_id: str, at: str, evidence: list[str]) -> None:
        row = {"profile_id": loser, "merged_into": into, "event_id": event_id, "at": at}
        put(con, "merged", {**row, "evidence": json.dumps(evidence)})
        for table in ("nodes", "events", "records"):
            con.execute(f"UPDATE {table} SET profile_id = ? WHERE profile_id = ?", (into, loser))
        con.execute("DELETE FROM docs WHERE profile_id = ?", (loser,))
        con.execute("DELETE FROM timers WHERE profile_id = ?", (loser,))
        con.execute("UPDATE members SET exited_at = ? WHERE profile_id = ? AND exited_at IS NULL", (at, loser))

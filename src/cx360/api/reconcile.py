"""After a batch run: rebuild the serving index, and drop from the online store what the batch now covers.

`cx360 run` ends here when the workspace is served (it has a serving index): running servers switch to
the new index at their next request (cx360.api.store follows the file), so the batch's profiles are
served without a restart. A profile the stream changed is dropped from the online store once every
event applied to it online is in the batch's profile_events: from then on the batch's document is
current. A profile with events the batch has not seen yet (collected after the drain) stays online.
The nodes the stream placed, and its merges, are kept: the batch adopts them (cx360.identity.resolve), and
the serving index answers first for every node it knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from cx360.online.store import open_online

if TYPE_CHECKING:
    from cx360.config import Config
    from cx360.privacy.vault import Vault


@dataclass
class Reconciled:
    index_rebuilt: bool
    profiles_dropped: int = 0
    profiles_kept: int = 0


def after_batch(root: Path, config: Config, warehouse: Path, vault: Vault | None = None) -> Reconciled:
    import duckdb

    from cx360.api import index

    target = index.serve_path(warehouse)
    if not target.exists():
        return Reconciled(False)  # never served: `cx360 serve` builds it when it starts
    index.ensure(warehouse, vault=vault)
    store = open_online(root, config, create=False)
    if store is None:
        return Reconciled(True)
    try:
        rows = store._rows("SELECT event_id, profile_id FROM events")
        ids = pa.table({"event_id": [r["event_id"] for r in rows]})
        with duckdb.connect(str(target), read_only=True) as con:
            con.register("online_ids", ids)
            covered = {
                r[0]
                for r in con.execute("SELECT event_id FROM events SEMI JOIN online_ids USING (event_id)").fetchall()
            }
        out = Reconciled(True)
        for pid in [r["profile_id"] for r in store._rows("SELECT profile_id FROM docs")]:
            with store.write() as con:
                mine = [r["event_id"] for r in con.execute("SELECT event_id FROM events WHERE profile_id = ?", (pid,))]
                if not set(mine) <= covered:
                    out.profiles_kept += 1
                    continue
                for table in ("docs", "events", "records", "members", "timers"):
                    con.execute(f"DELETE FROM {table} WHERE profile_id = ?", (pid,))
                out.profiles_dropped += 1
        return out
    finally:
        store.close()

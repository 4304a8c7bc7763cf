"""Each person's history as a decision reads it (cx360.decisions.realtime.History), by point reads.

The serving index's SQLite copy (cx360.api.index) holds one row per person, written at the index build
from its events: the contacts and complaints with the properties a decision reads, the other events'
times by name, and every event id. `read` takes that row (and those of the profiles merged into the
person online) and adds the events the stream applied since the index was built, each once: a
rejection just collected stops its re-offer at once. One B-tree read and a JSON parse, instead of a
DuckDB query and a JSON parse per event.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from cx360.decisions.realtime import MARKED, History

if TYPE_CHECKING:
    from cx360.api.store import Store

TABLE = "histories"
CREATE = f"CREATE TABLE {TABLE} (profile_id TEXT PRIMARY KEY, marked TEXT, times TEXT, ids TEXT)"
_MARKED = ", ".join(f"'{name}'" for name in MARKED)
# From the serving index's `events` (DuckDB): times as microseconds since the epoch, in time order.
SELECT = f"""
WITH e AS (SELECT profile_id, event_id, epoch_us(ts) AS us, name, channel, properties FROM events),
marked AS (
    SELECT profile_id, to_json(list(json_array(us, name, channel, CASE WHEN name = 'complaint'
        THEN json_object('status', json_extract_string(properties, '$.status'),
                         'closed_at', json_extract_string(properties, '$.closed_at'))
        ELSE json_object('offer', json_extract_string(properties, '$.offer')) END) ORDER BY us)) AS marked
    FROM e WHERE name IN ({_MARKED}) GROUP BY profile_id),
times AS (
    SELECT profile_id, json_group_object(name, stamps) AS times FROM (
        SELECT profile_id, name, to_json(list(us ORDER BY us)) AS stamps FROM e
        WHERE name NOT IN ({_MARKED}) GROUP BY profile_id, name) GROUP BY profile_id),
ids AS (SELECT profile_id, to_json(list(event_id)) AS ids FROM e GROUP BY profile_id)
SELECT profile_id, coalesce(marked, '[]'), coalesce(times, '{{}}'), ids
FROM ids LEFT JOIN marked USING (profile_id) LEFT JOIN times USING (profile_id) ORDER BY profile_id
"""


def read(store: Store, pid: str) -> History:
    """The person's history: the batch's, as of the index build, and what the stream applied since."""
    online = store.online
    pids = [pid, *(online.absorbed(pid) if online is not None else [])]
    rows = (
        store.points()
        .execute(f"SELECT marked, times, ids FROM {TABLE} WHERE profile_id IN ({','.join('?' * len(pids))})", pids)
        .fetchall()
    )
    history = History()
    for marked, times, _ in rows:
        history.marked += [tuple(m) for m in json.loads(marked)]
        for name, stamps in json.loads(times).items():
            history.times.setdefault(name, []).extend(stamps)
    if online is not None and online.doc(pid) is not None:  # the stream changed the person since the build
        seen = {i for *_, ids in rows for i in json.loads(ids)}  # an event both in the batch and online: once
        for e in online.events_of(pids):
            if e["event_id"] not in seen:
                seen.add(e["event_id"])
                history.add(e["ts"], e["name"], e.get("channel"), e.get("properties"))
    return history

"""The workspace reports the dashboard shows beside the serving index: funnels, forms, visits, segment
history and exports. They come from the same service functions as the CLI, over the warehouse opened
read-only (so that every worker process can share it), and each is kept until the warehouse changes,
so that a page view does not recount the events. The server's own collector drains into the same
file now and then (DuckDB's one writer): a report waits for its pass to end. While another writer
holds the warehouse (a batch run), the last report computed is shown, or the page says to retry."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cx360.api import index
from cx360.errors import WarehouseLockedError
from cx360.stream.drain import connect_between_drains
from cx360.workspace import Workspace

DRAIN_WAIT_S = 10

_lock = threading.Lock()
_cache: dict[tuple, tuple[str, Any]] = {}


def cached(root: Path, key: tuple, compute: Callable[[Workspace], Any]) -> Any:
    """`compute(ws)` over the read-only warehouse of `root`, again only when the warehouse changed."""
    probe = Workspace(root, read_only=True)
    config = probe.config_path.stat()
    stamp = f"{index.fingerprint(probe.root / probe.config.engine.path)} {config.st_mtime_ns}"  # data or declarations
    with _lock:
        hit = _cache.get((root, *key))
    if hit is not None and hit[0] == stamp:
        return hit[1]
    try:
        result = fresh(root, compute)
    except WarehouseLockedError:
        if hit is None:
            raise
        return hit[1]  # a batch is writing the warehouse: its last state, until the batch ends
    with _lock:
        _cache[(root, *key)] = (stamp, result)
    return result


def fresh(root: Path, compute: Callable[[Workspace], Any]) -> Any:
    """`compute(ws)` now, for what must not be served from memory (an export: consent may have changed)."""
    with Workspace(root, read_only=True) as ws:
        connect_between_drains(ws, wait_s=DRAIN_WAIT_S)
        return compute(ws)

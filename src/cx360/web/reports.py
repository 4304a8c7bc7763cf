"""The workspace reports the dashboard shows beside the serving index: funnels, forms, visits, segment
history and exports. They come from the same service functions as the CLI, over the warehouse opened
read-only (so every worker process and a running batch can share it), and each is kept until the
warehouse changes, so that a page view does not recount the events."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cx360.api import index
from cx360.workspace import Workspace

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
    with Workspace(root, read_only=True) as ws:
        result = compute(ws)
    with _lock:
        _cache[(root, *key)] = (stamp, result)
    return result


def fresh(root: Path, compute: Callable[[Workspace], Any]) -> Any:
    """`compute(ws)` now, for what must not be served from memory (an export: consent may have changed)."""
    with Workspace(root, read_only=True) as ws:
        return compute(ws)

"""Ids unique across processes at the cost of a counter: a random prefix per process, then a count
(uuid4 reads the kernel's random source on every call, a visible share of a profile lookup)."""

from __future__ import annotations

import itertools
import os
import secrets

_pid: int | None = None
_prefix = ""
_count = itertools.count()


def unique_hex() -> str:
    """32 hex digits, as uuid4().hex: 16 random ones drawn once per process, then 16 of a counter."""
    global _pid, _prefix, _count
    if _pid != os.getpid():  # a forked child draws its own prefix
        _pid, _prefix, _count = os.getpid(), secrets.token_hex(8), itertools.count()
    return f"{_prefix}{next(_count):016x}"

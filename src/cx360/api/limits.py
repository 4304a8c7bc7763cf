"""Per-key rate limits: a token bucket per API key, refilled continuously.

A bucket holds up to `burst` tokens and gains `per_minute / 60` a second; each search takes one.
Buckets exist only for authenticated keys (a bounded set) and live in the process: with
`--workers N` each worker keeps its own, so a key may search up to N times the rate.
"""

from __future__ import annotations

import threading
import time

from cx360.errors import RateLimitError


class RateLimiter:
    def __init__(self, per_minute: float, burst: int, *, what: str = "searches"):
        self.rate, self.burst, self.what = per_minute / 60.0, burst, what
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key_id: str) -> None:
        """Spend one token of `key_id`'s bucket, or raise RateLimitError saying when one is back."""
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens < 1.0:
                self._buckets[key_id] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
                raise RateLimitError(
                    f"too many {self.what}: at most {self.rate * 60:g} a minute "
                    f"(bursts of {self.burst}); try again in {wait:.1f} s",
                    retry_after=wait,
                )
            self._buckets[key_id] = (tokens - 1.0, now)

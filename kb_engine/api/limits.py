"""Per-API-key rate limits: one token bucket per key, in this process.

A key allowed N requests a minute (``KB_RATE_LIMIT_PER_MINUTE`` of its role) may make N at once
(the bucket's size) and earns N back per minute, continuously.

The buckets live in this process's memory: with several replicas each counts on its own, so a key
gets up to replicas × N; to share one budget, limit at the gateway in front of them (nginx
``limit_req``, Envoy's rate limit service) or keep the buckets in Redis. Only keys that
authenticated get a bucket, so memory is bounded by the configured keys.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]
_EPSILON = 1e-9  # float rounding must not turn "wait 20 s" into 21 s, or 20 s into not enough


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by API key."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()  # sync routes run their dependencies in a thread pool

    def acquire(self, key: str, limit: int) -> int | None:
        """Take one request from ``key``'s bucket of ``limit`` a minute (0: unlimited).
        None when allowed, else the whole seconds to wait."""
        if limit <= 0:
            return None
        rate = limit / 60.0
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(tokens=float(limit), updated=now)
            bucket.tokens = min(float(limit), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= 1.0 - _EPSILON:
                bucket.tokens -= 1.0
                return None
            return max(1, math.ceil((1.0 - bucket.tokens) / rate - _EPSILON))

"""A circuit breaker for the LLM provider: a dead provider must not add its timeout to every request.

Closed: calls go through; ``failures`` failures in a row open it. Open: calls are refused (the caller
answers without the LLM) for ``cooldown_s``. Then one trial call is let through (half-open): success
closes the circuit, failure opens it for another cool-down. Thread-safe: the API serves requests from
a thread pool and they share one breaker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CircuitBreaker:
    def __init__(
        self, failures: int = 3, cooldown_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._in_a_row = 0
        self._open_until: float | None = None
        self._trial = False  # a half-open trial call is in flight

    def allow(self) -> bool:
        with self._lock:
            if self._open_until is None:
                return True
            if self._clock() < self._open_until or self._trial:
                return False
            self._trial = True  # the cool-down is over: one call may try
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._in_a_row, self._open_until, self._trial = 0, None, False

    def failed(self) -> None:
        with self._lock:
            self._in_a_row += 1
            if self._trial or self._in_a_row >= self.failures:
                self._open_until = self._clock() + self.cooldown_s
            self._trial = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._open_until is None:
                return "closed"
            return "half-open" if self._clock() >= self._open_until else "open"

    def retry_in(self) -> float:
        with self._lock:
            return max(0.0, (self._open_until or 0.0) - self._clock())

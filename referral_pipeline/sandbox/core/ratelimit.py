"""Rate limiters used by the simulators: a token bucket and a fixed window."""
from __future__ import annotations

import threading
import time


class TokenBucket:
    """``rate`` tokens per second, up to ``burst``. ``take()`` -> (allowed, remaining, reset_seconds)."""

    def __init__(self, rate: float, burst: float | None = None, clock=time.monotonic):
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(rate, 1.0))
        self.tokens = self.burst
        self.clock = clock
        self.updated = clock()
        self._lock = threading.Lock()

    def take(self) -> tuple[bool, int, float]:
        with self._lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True, int(self.tokens), (1.0 - self.tokens % 1.0) / self.rate if self.rate else 0.0
            return False, 0, (1.0 - self.tokens) / self.rate if self.rate else 1.0


class FixedWindow:
    """At most ``quota`` requests per ``window_seconds``. ``take()`` -> (allowed, remaining, reset_seconds)."""

    def __init__(self, quota: int, window_seconds: float, clock=time.monotonic):
        self.quota = int(quota)
        self.window = float(window_seconds)
        self.clock = clock
        self.start = clock()
        self.used = 0
        self._lock = threading.Lock()

    def take(self) -> tuple[bool, int, float]:
        with self._lock:
            now = self.clock()
            if now - self.start >= self.window:
                self.start, self.used = now, 0
            reset = self.window - (now - self.start)
            if self.used < self.quota:
                self.used += 1
                return True, self.quota - self.used, reset
            return False, 0, reset

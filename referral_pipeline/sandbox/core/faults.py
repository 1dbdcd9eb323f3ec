"""Deterministic fault injection: each API request draws one number from a seeded RNG."""
from __future__ import annotations

import random
import threading

from .config import FaultSpec

KINDS = ("429", "500", "502", "503", "slow", "drop", "truncate")


class FaultInjector:
    def __init__(self, spec: FaultSpec):
        self._lock = threading.Lock()
        self.configure(spec)

    def configure(self, spec: FaultSpec) -> None:
        with self._lock:
            self.spec = spec
            self._rng = random.Random(spec.seed if spec.seed is not None else 0)
            self.injected = {k: 0 for k in KINDS}

    def draw(self) -> str | None:
        """The fault to inject for this request, or None."""
        s = self.spec
        if s.total() <= 0:
            return None
        with self._lock:
            u = self._rng.random()
            acc = 0.0
            for kind, p in (("429", s.p_429), ("500", s.p_500), ("502", s.p_502), ("503", s.p_503),
                            ("slow", s.p_slow), ("drop", s.p_drop), ("truncate", s.p_truncate)):
                acc += p
                if u < acc:
                    self.injected[kind] += 1
                    return kind
        return None

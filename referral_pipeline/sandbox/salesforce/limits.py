"""The org's daily API request allocation (``rate_limit.daily_api_requests``, default 15,000).

Every request to ``/services/data/vXX.X/...`` that passes authentication uses one request of a
24-hour window that starts with the first request (a simplification of Salesforce's rolling 24
hours). The count is kept in the simulator's persisted ``meta``, so it survives a restart with
the same data and is cleared by a reset.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from ..core import stamps

WINDOW = timedelta(hours=24)
DEFAULT_DAILY_REQUESTS = 15_000


class ApiUsage:
    """``used`` / ``max_requests`` of the current window; ``take`` counts one request."""

    def __init__(self, sim):
        self.sim = sim

    @property
    def max_requests(self) -> int:
        return int(self.sim.config.rate_limit.get("daily_api_requests", DEFAULT_DAILY_REQUESTS))

    def _window(self, now: datetime) -> dict:
        state = self.sim.meta.get("api_usage")
        if state is None or now - stamps.parse_any(state["window_start"]) >= WINDOW:
            state = {"window_start": stamps.fmt_iso_millis_z(now), "used": 0}
            self.sim.meta["api_usage"] = state
        return state

    @property
    def used(self) -> int:
        return int(self._window(self.sim.now())["used"])

    def take(self) -> bool:
        """Count one request; False when the allocation is already used up."""
        state = self._window(self.sim.now())
        if state["used"] >= self.max_requests:
            return False
        state["used"] += 1
        return True

    def header(self) -> str:
        """The ``Sforce-Limit-Info`` value."""
        return f"api-usage={self.used}/{self.max_requests}"

"""Who may call the Yotpo simulator, and how often: credential checks and the per-GUID rate limit.

Credentials come from the ``x-guid`` / ``x-api-key`` headers (any case), the ``guid`` / ``api_key``
query parameters, or the Swell-era ``merchant_id`` / ``x-merchant-id`` form. The limit is a token
bucket per GUID (``ratelimit-*`` headers) plus a one-minute window (``x-ratelimit-*-minute``),
the headers Yotpo's gateway puts on every response.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from starlette.requests import Request

from ..core.ratelimit import FixedWindow, TokenBucket
from .settings import RateLimitSettings


def credential(request: Request, header: str, param: str) -> str | None:
    """A credential from its header (case-insensitive) or else its query parameter."""
    return request.headers.get(header) or request.query_params.get(param) or None


@dataclass(frozen=True)
class Account:
    guid: str
    api_key: str
    merchant_id: str

    def authenticate(self, request: Request) -> str | None:
        """The account's GUID when the request carries valid credentials, else None."""
        if credential(request, "x-api-key", "api_key") != self.api_key:
            return None
        if credential(request, "x-guid", "guid") == self.guid:
            return self.guid
        if credential(request, "x-merchant-id", "merchant_id") == self.merchant_id:
            return self.guid
        return None


@dataclass
class Verdict:
    """The outcome of one rate-limit check: allowed or not, and the headers to send."""

    allowed: bool
    headers: dict[str, str]


class AccountRateLimiter:
    """Token bucket (requests per second, burst) and a minute window, one pair per GUID."""

    def __init__(self, settings: RateLimitSettings, clock=time.monotonic):
        self.settings = settings
        self.clock = clock
        self._limits: dict[str, tuple[TokenBucket, FixedWindow]] = {}

    def _pair(self, guid: str) -> tuple[TokenBucket, FixedWindow]:
        pair = self._limits.get(guid)
        if pair is None:
            s = self.settings
            pair = (TokenBucket(s.requests_per_second, s.burst, self.clock),
                    FixedWindow(s.requests_per_minute, 60.0, self.clock))
            self._limits[guid] = pair
        return pair

    def take(self, guid: str) -> Verdict:
        """Spend one request of ``guid``'s allowance."""
        if not self.settings.enabled:
            return Verdict(True, {})
        bucket, window = self._pair(guid)
        allowed, remaining, reset = bucket.take()
        if not allowed:
            return self._verdict(False, self.settings.requests_per_second, 0, reset, window)
        allowed, minute_remaining, minute_reset = window.take()
        if not allowed:
            return self._verdict(False, self.settings.requests_per_minute, 0, minute_reset, window)
        return self._verdict(True, self.settings.requests_per_second, remaining, reset, window)

    def peek(self, guid: str) -> dict[str, str]:
        """Headers describing ``guid``'s allowance without spending any (401s, injected 429s)."""
        if not self.settings.enabled:
            return {}
        bucket, window = self._pair(guid)
        tokens = min(bucket.burst, bucket.tokens + (self.clock() - bucket.updated) * bucket.rate)
        return self._verdict(True, self.settings.requests_per_second, int(tokens), 1.0, window).headers

    def throttled_headers(self, guid: str, retry_after: float) -> dict[str, str]:
        """Headers of a 429 that was not caused by the bucket (an injected fault)."""
        headers = self.peek(guid) or _headers(5, 0, 1, 300, 0)
        wait = _whole_seconds(retry_after)
        headers.update({"ratelimit-remaining": "0", "ratelimit-reset": str(wait), "retry-after": str(wait)})
        return headers

    def _verdict(self, allowed: bool, limit: float, remaining: int, reset: float, window: FixedWindow) -> Verdict:
        window_open = self.clock() - window.start < window.window
        minute_left = max(0, window.quota - window.used) if window_open else window.quota
        wait = _whole_seconds(reset)
        headers = _headers(limit, remaining, wait, window.quota, minute_left)
        if not allowed:
            headers["retry-after"] = str(wait)
        return Verdict(allowed, headers)


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds - 1e-9))


def _headers(limit: float, remaining: int, reset: int, minute_limit: int, minute_remaining: int) -> dict[str, str]:
    return {
        "ratelimit-limit": str(int(limit) if float(limit).is_integer() else limit),
        "ratelimit-remaining": str(remaining),
        "ratelimit-reset": str(reset),
        "x-ratelimit-limit-minute": str(minute_limit),
        "x-ratelimit-remaining-minute": str(minute_remaining),
    }

"""Retry classification and waits, shared by every client (no I/O, no Dagster).

Which responses and errors are worth retrying, and how long to wait: the API's own hints first
(``Retry-After``, BigCommerce ``X-Rate-Limit-Time-Reset-Ms``, Yotpo ``ratelimit-reset``), else
exponential backoff with full jitter.
"""
from __future__ import annotations

import email.utils
import random
import time
from typing import Mapping

RETRYABLE_STATUS = frozenset({408, 423, 429, 500, 502, 503, 504})
AUTH_STATUS = frozenset({401})
CONFLICT_STATUS = frozenset({409})
# (requests left, time until the window resets, reset units per second)
QUOTA_HEADERS = (("x-rate-limit-requests-left", "x-rate-limit-time-reset-ms", 1000.0),
                 ("ratelimit-remaining", "ratelimit-reset", 1.0))


def classify_status(status: int) -> str:
    """``ok`` (2xx/3xx), ``retry`` (transient), ``auth`` (refresh the token once), ``conflict``
    (re-read the version once), or ``fail`` (permanent for this payload)."""
    if status < 400:
        return "ok"
    if status in RETRYABLE_STATUS:
        return "retry"
    if status in AUTH_STATUS:
        return "auth"
    if status in CONFLICT_STATUS:
        return "conflict"
    return "fail"


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def wait_hint_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from any of the headers the APIs use, or None."""
    h = _lower(headers)
    value = h.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                dt = email.utils.parsedate_to_datetime(value)
                return max(0.0, dt.timestamp() - (now if now is not None else time.time()))
            except (TypeError, ValueError):
                pass
    # quota headers (BigCommerce and Yotpo send them on every response): the time until the window
    # resets is a wait hint only when the quota is used up or the response does not say what is
    # left; a 5xx in a window with requests left backs off exponentially instead
    for left_key, reset_key, scale in QUOTA_HEADERS:
        value = h.get(reset_key)
        if value and not _requests_left(h.get(left_key)):
            try:
                return max(0.0, float(value) / scale)
            except ValueError:
                pass
    return None


def _requests_left(value: str | None) -> bool:
    """True when a quota header reports requests left in the window (absent or unreadable: False)."""
    try:
        return value is not None and int(float(value)) > 0
    except ValueError:
        return False


def quota_exhausted_wait(headers: Mapping[str, str]) -> float | None:
    """When a response says no requests are left in the window, how long until it resets."""
    h = _lower(headers)
    for left_key, reset_key, scale in QUOTA_HEADERS:
        left = h.get(left_key)
        if left is None:
            continue
        try:
            if int(float(left)) <= 0:
                return max(0.0, float(h.get(reset_key, "1")) / scale)
        except ValueError:
            return None
    return None


def backoff_seconds(attempt: int, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter for the given attempt (1 = first retry)."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(0, ceiling)

"""One HTTP layer for every external system: retries, rate limits, token refresh, metrics.

``ApiClient.request`` sends through a ``requests.Session``, reads the whole body (so a connection
cut mid-body is caught), and retries with tenacity: transient statuses (408/423/429/5xx) wait for
the server's own hint (``Retry-After``, ``X-Rate-Limit-Time-Reset-Ms``, ``ratelimit-reset``) or
back off exponentially with jitter; dropped connections and timeouts are retried for idempotent
calls (and for writes only when the caller says the write is idempotent). A 401 refreshes the
token once. A client-side token bucket keeps us under the destination's limit, and a response
that says the quota is exhausted pauses the next request until the window resets.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

import requests
import requests.auth
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from .retry import backoff_seconds, classify_status, quota_exhausted_wait, wait_hint_seconds

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
TRANSPORT_ERRORS = (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError)


class ApiError(Exception):
    """A response the caller must handle (4xx after refresh, or retries exhausted)."""

    def __init__(self, method: str, url: str, status: int | None, body: str, message: str | None = None,
                 headers: Mapping[str, str] | None = None):
        self.method, self.url, self.status, self.body = method, url, status, body
        self.headers = dict(headers or {})
        super().__init__(message or f"{method} {url} -> {status}: {body[:500]}")


class TransientError(ApiError):
    """A retryable outcome (transient status, dropped connection, timeout)."""

    def __init__(self, *args, wait_hint: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.wait_hint = wait_hint


class InDoubtError(ApiError):
    """A non-idempotent write whose outcome is unknown (the connection failed after sending)."""


class Auth(Protocol):
    def headers(self) -> dict[str, str]: ...
    def invalidate(self) -> None: ...


class CredentialsInHeaders(requests.auth.AuthBase):
    """The ``auth`` of every request: our credentials travel as explicit headers (from ``Auth``),
    so requests must not add any. Passing it also stops requests from looking for ``~/.netrc`` on
    every call (a file-system lookup per request; secrets come from environment variables only)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


HEADERS_ONLY = CredentialsInHeaders()


class StaticHeaders:
    """Credentials that never expire (API keys)."""

    def __init__(self, headers: Mapping[str, str]):
        self._headers = dict(headers)

    def headers(self) -> dict[str, str]:
        return dict(self._headers)

    def invalidate(self) -> None:  # nothing to refresh
        pass


def token_cache_key(kind: str, base_url: str, key_id: str | None, secret: str | None, *extra: Any) -> tuple:
    """The key under which clients of the same credentials share a token: the secret only as a
    SHA-256 digest (the cache is in memory and never written anywhere)."""
    digest = hashlib.sha256((secret or "").encode()).hexdigest()
    return (kind, base_url.rstrip("/"), key_id or "", digest, *extra)


class TokenCache:
    """Tokens shared by every client of one process that has the same credentials, so a run
    makes one token request per destination instead of one per asset. An entry is
    ``(token, expires_monotonic)``."""

    def __init__(self) -> None:
        self._entries: dict[tuple, tuple[str, float]] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, key: tuple) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: tuple) -> tuple[str, float] | None:
        return self._entries.get(key)

    def put(self, key: tuple, token: str, expires: float) -> None:
        self._entries[key] = (token, expires)

    def discard(self, key: tuple, token: str | None) -> None:
        """Forget the entry if it still holds ``token`` (a newer token fetched meanwhile stays)."""
        with self._guard:
            if token is not None and self._entries.get(key, (None,))[0] == token:
                del self._entries[key]

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()


SHARED_TOKENS = TokenCache()


class BearerToken:
    """A bearer token fetched by ``fetch() -> (token, ttl_seconds)``, refreshed before expiry or after a 401.

    With ``cache_key`` (``token_cache_key(...)``) the token is shared through ``SHARED_TOKENS``
    with every other ``BearerToken`` of the same key: the first one to need a token fetches it
    (with its own client, so the request counts in that client's statistics), the others reuse it
    until it expires or a 401 invalidates it."""

    def __init__(self, fetch: Callable[[], tuple[str, float]], scheme: str = "Bearer", margin_seconds: float = 60,
                 cache_key: tuple | None = None, cache: TokenCache | None = None):
        self._fetch, self._scheme, self._margin = fetch, scheme, margin_seconds
        self._token: str | None = None
        self._expires = 0.0
        self._cache_key = cache_key
        self._cache = cache or SHARED_TOKENS
        self._lock = self._cache.lock(cache_key) if cache_key is not None else threading.Lock()

    def _fresh(self, expires: float) -> bool:
        return time.monotonic() < expires - self._margin

    def headers(self) -> dict[str, str]:
        with self._lock:
            if self._token is None or not self._fresh(self._expires):
                shared = self._cache.get(self._cache_key) if self._cache_key is not None else None
                if shared is not None and self._fresh(shared[1]):
                    self._token, self._expires = shared
                else:
                    token, ttl = self._fetch()
                    self._token, self._expires = token, time.monotonic() + float(ttl)
                    if self._cache_key is not None:
                        self._cache.put(self._cache_key, self._token, self._expires)
            value = f"{self._scheme} {self._token}" if self._scheme else self._token
        return {"Authorization": value}

    def invalidate(self) -> None:
        with self._lock:
            if self._cache_key is not None:
                self._cache.discard(self._cache_key, self._token)
            self._token = None


class RateLimiter:
    """Client-side token bucket: at most ``rate`` requests per second (burst ``burst``)."""

    def __init__(self, rate: float | None, burst: float | None = None, sleep: Callable[[float], None] = time.sleep):
        self.rate = rate
        self.burst = float(burst or 1.0)
        self.tokens = self.burst
        self.updated = time.monotonic()
        self.paused_until = 0.0
        self.sleep = sleep
        self._lock = threading.Lock()

    def pause_until(self, when: float) -> None:
        with self._lock:
            self.paused_until = max(self.paused_until, when)

    def acquire(self) -> float:
        """Block until a request may be sent; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                delay = self.paused_until - now
                if delay <= 0 and self.rate:
                    self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
                    self.updated = now
                    if self.tokens >= 1.0:
                        self.tokens -= 1.0
                        return waited
                    delay = (1.0 - self.tokens) / self.rate
                elif delay <= 0:
                    return waited
            self.sleep(delay)
            waited += delay


@dataclass
class RequestStats:
    """Counters for asset metadata: requests sent, retries, statuses, time spent waiting."""

    requests: int = 0
    retries: int = 0
    auth_refreshes: int = 0
    waited_seconds: float = 0.0
    by_status: Counter = field(default_factory=Counter)
    writes: int = 0

    def as_metadata(self) -> dict[str, Any]:
        return {"requests": self.requests, "retries": self.retries, "auth_refreshes": self.auth_refreshes,
                "writes": self.writes, "waited_seconds": round(self.waited_seconds, 3),
                "statuses": {str(k): v for k, v in sorted(self.by_status.items(), key=lambda kv: str(kv[0]))}}


class ApiClient:
    """A base URL plus the retry, rate-limit and auth policy for one API instance."""

    def __init__(self, base_url: str, *, auth: Auth | None = None, session: requests.Session | None = None,
                 timeout: float | tuple[float, float] = (5.0, 60.0), max_attempts: int = 6,
                 backoff_base: float = 0.5, backoff_cap: float = 30.0, max_wait: float = 120.0,
                 rate_limit_per_second: float | None = None, burst: float | None = None,
                 default_headers: Mapping[str, str] | None = None, name: str = "api",
                 sleep: Callable[[float], None] = time.sleep,
                 refused: Callable[[requests.Response], bool] | None = None):
        self.base_url = base_url.rstrip("/")
        # ``refused(response)``: the API's own way of saying "not processed, try again later" with a
        # status that is not transient in general (Salesforce: 403 REQUEST_LIMIT_EXCEEDED for the
        # concurrent-request limit). Such responses are retried like a 429, for every method.
        self.refused = refused
        self.auth = auth
        self.session = session or requests.Session()
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base, self.backoff_cap, self.max_wait = backoff_base, backoff_cap, max_wait
        self.limiter = RateLimiter(rate_limit_per_second, burst, sleep)
        self.default_headers = dict(default_headers or {})
        self.name = name
        self.sleep = sleep
        self.stats = RequestStats()
        self._stats_lock = threading.Lock()   # clients may be used from several threads (prefetch, fan-out)

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    # -- the one entry point ---------------------------------------------------------------------
    def request(self, method: str, path_or_url: str, *, params: Any = None, json: Any = None,
                data: Any = None, headers: Mapping[str, str] | None = None, idempotent: bool | None = None,
                raise_for_status: bool = True) -> requests.Response:
        method = method.upper()
        idempotent = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        url = self.url(path_or_url)
        refreshed = {"done": False}

        def attempt() -> requests.Response:
            return self._attempt(method, url, params, json, data, headers, idempotent, refreshed)

        retrying = Retrying(retry=retry_if_exception(lambda e: isinstance(e, TransientError)),
                            stop=stop_after_attempt(self.max_attempts), wait=self._wait,
                            sleep=self._sleep_counted, reraise=True, before_sleep=self._count_retry)
        response = retrying(attempt)
        if raise_for_status and response.status_code >= 400:
            raise ApiError(method, url, response.status_code, response.text, headers=response.headers)
        return response

    def get_json(self, path_or_url: str, **kwargs) -> Any:
        response = self.request("GET", path_or_url, **kwargs)
        return response.json() if response.content else None

    # -- internals -------------------------------------------------------------------------------
    def _attempt(self, method, url, params, json, data, headers, idempotent, refreshed) -> requests.Response:
        waited = self.limiter.acquire()
        all_headers = {**self.default_headers, **(self.auth.headers() if self.auth else {}), **(headers or {})}
        with self._stats_lock:
            self.stats.waited_seconds += waited
            self.stats.requests += 1
            if method not in ("GET", "HEAD", "OPTIONS"):
                self.stats.writes += 1
        try:
            response = self.session.request(method, url, params=params, json=json, data=data,
                                            headers=all_headers, timeout=self.timeout, auth=HEADERS_ONLY)
            _ = response.content  # read the body now so a cut connection surfaces here
        except requests.exceptions.ConnectTimeout as exc:
            with self._stats_lock:
                self.stats.by_status["connect_timeout"] += 1
            raise TransientError(method, url, None, "", f"{method} {url}: connect timeout: {exc}") from exc
        except TRANSPORT_ERRORS as exc:
            kind = type(exc).__name__
            with self._stats_lock:
                self.stats.by_status[kind] += 1
            if idempotent or _never_sent(exc):
                raise TransientError(method, url, None, "", f"{method} {url}: {kind}: {exc}") from exc
            raise InDoubtError(method, url, None, "", f"{method} {url}: outcome unknown ({kind}: {exc})") from exc
        with self._stats_lock:
            self.stats.by_status[response.status_code] += 1
        self._respect_quota(response)
        outcome = classify_status(response.status_code)
        if outcome != "ok" and self.refused is not None and self.refused(response):
            raise TransientError(method, url, response.status_code, response.text,
                                 wait_hint=wait_hint_seconds(response.headers), headers=response.headers)
        if outcome == "auth" and self.auth is not None and not refreshed["done"]:
            refreshed["done"] = True
            with self._stats_lock:
                self.stats.auth_refreshes += 1
            self.auth.invalidate()
            raise TransientError(method, url, 401, response.text, wait_hint=0.0)
        if outcome == "retry" and (idempotent or response.status_code in (408, 423, 429, 503)):
            raise TransientError(method, url, response.status_code, response.text,
                                 wait_hint=wait_hint_seconds(response.headers), headers=response.headers)
        return response

    def _respect_quota(self, response: requests.Response) -> None:
        wait = quota_exhausted_wait(response.headers)
        if wait:
            self.limiter.pause_until(time.monotonic() + min(wait, self.max_wait))

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hint = getattr(exc, "wait_hint", None)
        if hint is not None:
            return min(hint, self.max_wait)
        return backoff_seconds(state.attempt_number, self.backoff_base, self.backoff_cap)

    def _sleep_counted(self, seconds: float) -> None:
        with self._stats_lock:
            self.stats.waited_seconds += seconds
        if seconds > 0:
            self.sleep(seconds)

    def _count_retry(self, state: RetryCallState) -> None:
        with self._stats_lock:
            self.stats.retries += 1


def _never_sent(exc: Exception) -> bool:
    """True when the request provably never reached the server (connection refused / DNS)."""
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text or "NameResolutionError" in text

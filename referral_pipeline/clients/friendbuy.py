"""Friendbuy Merchant API (MAPI) client and its Dagster resource.

``FriendbuyClient`` is built on the shared ``ApiClient`` (retries, rate limit, stats): it trades
the MAPI key and secret for a 20-minute bearer token (``POST /v1/authorization``), keeps it in a
``BearerToken`` that is refreshed shortly before ``expires`` and once after a 401, and reads the
``/v1/analytics/<report>`` exports page by page (``pageToken``/``pageSize``, no ``nextPageToken``
on the last page). The push side (``/v1/customer``, ``/v1/event/purchase``, ``/v1/event/custom``,
used by ``referral_pipeline.sync.friendbuy``) shares the token, the session and the stats.

``FriendbuyResource.from_env_prefix("FRIENDBUY")`` reads ``FRIENDBUY_MAPI_KEY``,
``FRIENDBUY_MAPI_SECRET`` and ``FRIENDBUY_MAPI_URL`` (default ``https://mapi.fbot.me``) through
``dagster.EnvVar``, so secrets never appear in code, config or run metadata.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping

from dagster import ConfigurableResource

from ..http.jsonbody import decode_json as decode_lenient
from . import bound_env_vars
from ..http.client import ApiClient, ApiError, BearerToken, RequestStats, token_cache_key

log = logging.getLogger(__name__)

DEFAULT_URL = "https://mapi.fbot.me"
TOKEN_TTL_FALLBACK_SECONDS = 1200.0   # documented lifetime, used when ``expires`` is unreadable
TOKEN_REFRESH_MARGIN_SECONDS = 60.0   # refresh this long before expiry (at most 10% of the lifetime)
MAX_PAGE_SIZE = 1000                  # largest pageSize we ask for (configurable per instance)
DEFAULT_PUSH_RATE_PER_SECOND = 10.0   # push pacing; MAPI documents no number (FriendbuyResource)


class FriendbuyError(Exception):
    """A Friendbuy answer the pipeline cannot use (bad credentials, unexpected body)."""


@dataclass(frozen=True)
class AnalyticsPage:
    """One page of an analytics export."""

    results: list[dict]
    next_page_token: str | None
    total_results: int | None


def decode_json(content: bytes) -> Any:
    """A response body (shared lenient decoding: ``referral_pipeline.http.jsonbody``)."""
    try:
        return decode_lenient(content)
    except ValueError as exc:
        raise FriendbuyError(f"response is not JSON: {content[:200]!r}") from exc


def seconds_until(expires: Any, now: datetime | None = None) -> float:
    """Seconds from ``now`` until an ISO-8601 ``expires`` stamp (the documented lifetime if unreadable)."""
    try:
        when = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
    except ValueError:
        return TOKEN_TTL_FALLBACK_SECONDS
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def usable_lifetime(ttl: float) -> float:
    """The part of a token's lifetime we use: refresh a minute early, or 10% early for short tokens."""
    return max(0.0, ttl - min(TOKEN_REFRESH_MARGIN_SECONDS, ttl * 0.1))


class FriendbuyClient:
    """One Friendbuy merchant account: token handling plus typed calls on the shared HTTP layer."""

    def __init__(self, base_url: str, key: str, secret: str, *, timeout: float | tuple[float, float] = (5.0, 60.0),
                 max_attempts: int = 6, backoff_base: float = 0.5, backoff_cap: float = 30.0,
                 rate_limit_per_second: float | None = None, sleep: Callable[[float], None] = time.sleep):
        if not key or not secret:
            raise FriendbuyError("Friendbuy MAPI key and secret are required")
        self._key, self._secret = key, secret
        options = dict(timeout=timeout, max_attempts=max_attempts, backoff_base=backoff_base,
                       backoff_cap=backoff_cap, default_headers={"Accept": "application/json"}, name="friendbuy",
                       sleep=sleep)
        self.api = ApiClient(base_url, rate_limit_per_second=rate_limit_per_second, **options)
        # Token requests go through a second client without auth (a token fetch must not need a
        # token) that shares the session, the rate limiter and the stats of the main one.
        self._auth_api = ApiClient(base_url, session=self.api.session, **options)
        self._auth_api.limiter, self._auth_api.stats = self.api.limiter, self.api.stats
        self._auth_api._stats_lock = self.api._stats_lock
        # one token per account and process: every client of the same key and secret shares it
        self.api.auth = BearerToken(self._fetch_token, scheme="Bearer", margin_seconds=0,
                                    cache_key=token_cache_key("friendbuy", base_url, key, secret))
        self._page_size_refused = False

    @property
    def stats(self) -> RequestStats:
        return self.api.stats

    def _fetch_token(self) -> tuple[str, float]:
        try:
            response = self._auth_api.request("POST", "/v1/authorization", idempotent=True,
                                              json={"key": self._key, "secret": self._secret})
        except ApiError as exc:
            raise FriendbuyError(f"Friendbuy MAPI authorization failed with HTTP {exc.status}: "
                                 f"{exc.body[:300]} (check the MAPI key and secret)") from None
        body = decode_json(response.content)
        token = body.get("token") if isinstance(body, dict) else None
        if not token:
            raise FriendbuyError("Friendbuy MAPI authorization did not return a token")
        return str(token), usable_lifetime(seconds_until(body.get("expires")))

    # ---- analytics (read) ------------------------------------------------------------------------
    def analytics_page(self, report: str, *, from_date: str | None = None, to_date: str | None = None,
                       page_size: int | None = None, page_token: str | None = None,
                       filters: Mapping[str, str] | None = None) -> AnalyticsPage:
        """One page of ``/v1/analytics/<report>``: the first from a window, later ones from a token
        (which fixes window, size and filters, so nothing else is sent with it)."""
        if page_token:
            params: dict[str, Any] = {"pageToken": page_token}
        else:
            params = {"fromDate": from_date, "toDate": to_date, **(filters or {})}
            if page_size:
                params["pageSize"] = str(page_size)
        response = self.api.request("GET", f"/v1/analytics/{report}", params=params)
        body = decode_json(response.content)
        if not isinstance(body, dict) or not isinstance(body.get("results"), list) \
                or not all(isinstance(row, dict) for row in body["results"]):
            raise FriendbuyError(f"unexpected analytics body from {report}: {response.text[:200]}")
        return AnalyticsPage(body["results"], body.get("nextPageToken") or None, body.get("totalResults"))

    def iter_analytics(self, report: str, from_date: str, to_date: str, page_size: int | None = None,
                       filters: Mapping[str, str] | None = None) -> Iterator[AnalyticsPage]:
        """Every page of a window ``[from_date, to_date)``, one request per page."""
        page = self._first_page(report, from_date, to_date, page_size, filters)
        yield page
        while page.next_page_token:
            page = self.analytics_page(report, page_token=page.next_page_token)
            yield page

    def _first_page(self, report: str, from_date: str, to_date: str, page_size: int | None,
                    filters: Mapping[str, str] | None) -> AnalyticsPage:
        """The window's first page. MAPI documents no maximum ``pageSize``: if the account refuses
        ours (422 naming ``pageSize``), fall back to the server's default for this client's life."""
        size = None if self._page_size_refused else page_size
        try:
            return self.analytics_page(report, from_date=from_date, to_date=to_date, page_size=size, filters=filters)
        except ApiError as exc:
            if size is None or exc.status != 422 or "pageSize" not in exc.body:
                raise
        log.warning("friendbuy: pageSize %s refused by %s; using the server's default page size", size, report)
        self._page_size_refused = True
        return self.analytics_page(report, from_date=from_date, to_date=to_date, filters=filters)

    # ---- push (write) ------------------------------------------------------------------------------
    def track_customer(self, body: dict) -> dict:
        """``POST /v1/customer``: an upsert by ``customerId`` (201 created / 200 updated), so a send
        whose outcome is unknown is simply repeated (``idempotent``)."""
        return self._write("/v1/customer", body, idempotent=True)

    def track_purchase(self, body: dict, *, idempotent: bool) -> dict:
        """``POST /v1/event/purchase``. Friendbuy documents no dedupe of a repeated ``orderId``
        (reference §8): pass ``idempotent=True`` only for an account known to ignore or reject it;
        otherwise a dropped connection or timeout raises ``InDoubtError`` instead of a blind repeat."""
        return self._write("/v1/event/purchase", body, idempotent=idempotent)

    def track_custom_event(self, body: dict) -> dict:
        """``POST /v1/event/custom``; Friendbuy never rewards the same (``eventType``,
        ``deduplicationId``) twice, so a body with a ``deduplicationId`` is safe to repeat."""
        return self._write("/v1/event/custom", body, idempotent=bool(body.get("deduplicationId")))

    def _write(self, path: str, body: dict, *, idempotent: bool) -> dict:
        response = self.api.request("POST", path, json=body, idempotent=idempotent)
        try:
            answer = decode_lenient(response.content) if response.content else None
        except ValueError:  # a 2xx without a JSON body still means accepted
            answer = None
        return answer if isinstance(answer, dict) else {}

    def find_referral_purchase(self, order_id: str, customer_id: str, *, from_date: str, to_date: str,
                               page_size: int | None = None) -> dict | None:
        """The ``/v1/analytics/purchases`` row of ``order_id`` (rows carry ``orderId``), looked up by
        the buyer's ``customerId`` in ``[from_date, to_date)``. Only purchases Friendbuy attributed to
        a referral appear there, so ``None`` proves nothing about unattributed ones."""
        for page in self.iter_analytics("purchases", from_date, to_date, page_size,
                                        filters={"customerId": customer_id}):
            for row in page.results:
                if str(row.get("orderId")) == str(order_id):
                    return row
        return None


class FriendbuyResource(ConfigurableResource):
    """Credentials and HTTP policy of one Friendbuy account; ``client()`` gives a ``FriendbuyClient``."""

    mapi_key: str = ""
    mapi_secret: str = ""
    mapi_url: str = DEFAULT_URL
    env_prefix: str = "FRIENDBUY"
    timeout_seconds: float = 60.0
    max_attempts: int = 6
    rate_limit_per_second: float | None = None
    # Client-side limit for the push (``push_client``). MAPI documents 429s from a leaky bucket but
    # no number (reference §8): a conservative default, raise it to the limit agreed with Friendbuy.
    push_rate_limit_per_second: float = DEFAULT_PUSH_RATE_PER_SECOND

    @classmethod
    def from_env_prefix(cls, prefix: str = "FRIENDBUY") -> "FriendbuyResource":
        """Resource reading ``<PREFIX>_MAPI_KEY``/``_MAPI_SECRET``/``_MAPI_URL`` at run time. Only the
        variables set now are bound, so definitions load on a machine without them."""
        fields = {"mapi_key": "MAPI_KEY", "mapi_secret": "MAPI_SECRET", "mapi_url": "MAPI_URL"}
        bound = bound_env_vars(prefix, fields)
        rate = os.environ.get(f"{prefix}_PUSH_RATE_LIMIT_PER_SECOND")   # the limit agreed with Friendbuy
        extra = {"push_rate_limit_per_second": float(rate)} if rate else {}
        return cls(env_prefix=prefix, **bound, **extra)

    def client(self) -> FriendbuyClient:
        if not self.mapi_key or not self.mapi_secret:
            raise FriendbuyError(f"Friendbuy credentials missing: set {self.env_prefix}_MAPI_KEY and "
                                 f"{self.env_prefix}_MAPI_SECRET (and {self.env_prefix}_MAPI_URL for a sandbox)")
        return FriendbuyClient(self.mapi_url or DEFAULT_URL, self.mapi_key, self.mapi_secret,
                               timeout=(5.0, self.timeout_seconds), max_attempts=self.max_attempts,
                               rate_limit_per_second=self.rate_limit_per_second)

    def push_client(self) -> FriendbuyClient:
        """A client for the push (``referral_pipeline.sync.friendbuy``), paced at
        ``push_rate_limit_per_second`` (burst 1) so we stay just under Friendbuy's limit."""
        if not self.mapi_key or not self.mapi_secret:
            return self.client()  # raises, naming the missing variables
        return FriendbuyClient(self.mapi_url or DEFAULT_URL, self.mapi_key, self.mapi_secret,
                               timeout=(5.0, self.timeout_seconds), max_attempts=self.max_attempts,
                               rate_limit_per_second=self.push_rate_limit_per_second or None)

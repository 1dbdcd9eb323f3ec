"""Yotpo Loyalty & Referrals API v2 client and its Dagster resource.

``YotpoClient`` sits on the shared ``ApiClient`` (retries with ``Retry-After`` / ``ratelimit-reset``
hints, exponential backoff with jitter, a client-side token bucket, request stats). Credentials are
static headers (``x-guid``, ``x-api-key``). Writes are keyed by natural keys (customer ``id`` /
email, ``order_id``, refund ``id``), so they are sent as idempotent: a timeout or dropped
connection is retried in-run (Yotpo awards an order's points at most once per ``order_id`` and
ignores a repeated refund ``id``).

``YotpoResource.from_env_prefix("YOTPO")`` reads ``YOTPO_GUID``, ``YOTPO_API_KEY`` and
``YOTPO_API_URL`` (default ``https://loyalty.yotpo.com/api/v2``) through ``dagster.EnvVar``;
``YOTPO_RATE_LIMIT_PER_SECOND`` (optional, read when the definitions load) sets the client-side limit
to the account's plan (default 5/s, the documented minimum).
"""
from __future__ import annotations

import os

import time
from typing import Any, Callable

import orjson
from dagster import ConfigurableResource

from . import bound_env_vars
from ..http.client import ApiClient, ApiError, RequestStats, StaticHeaders

DEFAULT_URL = "https://loyalty.yotpo.com/api/v2"
DEFAULT_RATE_PER_SECOND = 5.0


class YotpoError(Exception):
    """Missing credentials or an answer the pipeline cannot use."""


class YotpoClient:
    """One Yotpo Loyalty account (GUID)."""

    def __init__(self, base_url: str, guid: str, api_key: str, *, timeout: float | tuple[float, float] = (5.0, 30.0),
                 max_attempts: int = 6, backoff_base: float = 0.5, backoff_cap: float = 30.0,
                 rate_limit_per_second: float | None = DEFAULT_RATE_PER_SECOND, burst: float | None = 1.0,
                 sleep: Callable[[float], None] = time.sleep):
        if not guid or not api_key:
            raise YotpoError("Yotpo GUID and API key are required")
        self.api = ApiClient(base_url, auth=StaticHeaders({"x-guid": guid, "x-api-key": api_key}), timeout=timeout,
                             max_attempts=max_attempts, backoff_base=backoff_base, backoff_cap=backoff_cap,
                             rate_limit_per_second=rate_limit_per_second, burst=burst, name="yotpo", sleep=sleep,
                             default_headers={"Accept": "application/json"})

    @property
    def stats(self) -> RequestStats:
        return self.api.stats

    # ---- writes (natural keys: safe to repeat) ---------------------------------------------------
    def upsert_customer(self, payload: dict) -> Any:
        return self._post("/customers", payload)

    def create_order(self, payload: dict) -> Any:
        return self._post("/orders", payload)

    def create_refund(self, payload: dict) -> Any:
        return self._post("/refunds", payload)

    def _post(self, path: str, payload: dict) -> Any:
        response = self.api.request("POST", path, json=payload, idempotent=True)
        return _json(response.content)

    # ---- reads -----------------------------------------------------------------------------------
    def get_customer(self, *, email: str | None = None, customer_id: str | None = None,
                     with_referral_code: bool = False, with_history: bool = False) -> dict | None:
        """``GET /customers`` by email or merchant customer id; ``None`` when Yotpo answers 404."""
        params: dict[str, str] = {}
        if email:
            params["customer_email"] = email
        elif customer_id:
            params["customer_id"] = customer_id
        else:
            raise YotpoError("get_customer needs an email or a customer id")
        if with_referral_code:
            params["with_referral_code"] = "true"
        if with_history:
            params["with_history"] = "true"
        response = self.api.request("GET", "/customers", params=params, raise_for_status=False)
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise ApiError("GET", response.url, response.status_code, response.text, headers=response.headers)
        body = _json(response.content)
        if not isinstance(body, dict):
            raise YotpoError(f"unexpected customer body: {response.text[:200]}")
        return body


def _json(content: bytes) -> Any:
    if not content:
        return None
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


class YotpoResource(ConfigurableResource):
    """Credentials and HTTP policy of one Yotpo Loyalty account; ``client()`` gives a ``YotpoClient``."""

    guid: str = ""
    api_key: str = ""
    api_url: str = DEFAULT_URL
    env_prefix: str = "YOTPO"
    timeout_seconds: float = 30.0
    max_attempts: int = 6
    rate_limit_per_second: float = DEFAULT_RATE_PER_SECOND
    concurrency: int = 4

    @classmethod
    def from_env_prefix(cls, prefix: str = "YOTPO", **overrides: Any) -> "YotpoResource":
        """Resource reading ``<PREFIX>_GUID``/``_API_KEY``/``_API_URL`` at run time; only variables set
        now are bound, so definitions load on a machine without them."""
        fields = {"guid": "GUID", "api_key": "API_KEY", "api_url": "API_URL"}
        bound = bound_env_vars(prefix, fields)
        rate = os.environ.get(f"{prefix}_RATE_LIMIT_PER_SECOND")   # the account's plan, if not the default
        if rate and "rate_limit_per_second" not in overrides:
            overrides["rate_limit_per_second"] = float(rate)
        return cls(env_prefix=prefix, **bound, **overrides)

    def client(self) -> YotpoClient:
        if not self.guid or not self.api_key:
            raise YotpoError(f"Yotpo credentials missing: set {self.env_prefix}_GUID and {self.env_prefix}_API_KEY "
                             f"(and {self.env_prefix}_API_URL for a sandbox)")
        return YotpoClient(self.api_url or DEFAULT_URL, self.guid, self.api_key, timeout=(5.0, self.timeout_seconds),
                           max_attempts=self.max_attempts, rate_limit_per_second=self.rate_limit_per_second or None)

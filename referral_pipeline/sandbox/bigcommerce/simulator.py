"""The BigCommerce simulator: one store under ``/stores/{store_hash}/v2|v3/...``.

Owns what is common to every endpoint: the collections and the order sub-resource store, auth
(``X-Auth-Token``; unknown store hash -> 404), the two error envelopes (v2 arrays, v3 objects,
also for injected faults), the per-store request quota with its ``X-Rate-Limit-*`` headers on
every response, ``POST /_sandbox/records`` semantics per collection, persisted extra state and the
environment variables. The endpoints themselves live in ``customers``, ``orders``, ``refunds``
and ``coupons``.

``rate_limit`` keys: ``requests_per_window`` (default 150; 0 = unlimited, headers then report a
quota of 1,000,000) and ``window_ms`` (default 30000).
``options`` keys: ``limit_over_max`` (``error`` = 413, default; ``clamp`` = serve 250),
``archived_orders_in_list`` (default false: ``is_deleted`` orders only with ``is_deleted=true``),
``refund_touches_order`` (default true: a new refund moves its order's ``date_modified``).
"""
from __future__ import annotations

import math
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from ..core import stamps
from ..core.ratelimit import FixedWindow
from ..core.simulator import Simulator
from ..core.store import CollectionSpec
from . import common
from .common import ApiError, api_version
from .coupons import CouponsApi
from .customers import CustomersApi
from .listing import Lister, TrackedCollection, id_order
from .orders import OrdersApi
from .params import ParamError
from .refunds import RefundsApi

DEFAULT_QUOTA = 150
DEFAULT_WINDOW_MS = 30_000
UNLIMITED_QUOTA = 1_000_000
SUB_RESOURCES = {"products": "order-products", "coupons": "order-coupons",
                 "shipping_addresses": "order-shipping-addresses", "fees": "order-fees"}
ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]

# API version (v2/v3) of the request being served, for answers built without the request
# (injected faults and 429s: the core calls error_response/throttled_response without it).
_current_version: ContextVar[str] = ContextVar("bigcommerce_api_version", default=common.V3)


def fmt_refund_created(dt: datetime) -> str:
    """``2022-06-16T16:44:15+00:00`` (v3 refund ``created``)."""
    return dt.astimezone(stamps.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


class BigCommerceSimulator(Simulator):
    name = "bigcommerce"
    specs = {
        "customers": CollectionSpec("customers", key="id", stamp="date_modified", created="date_created",
                                    stamp_format=stamps.fmt_iso_seconds_z, key_type=int),
        "orders": CollectionSpec("orders", key="id", stamp="date_modified", created="date_created",
                                 stamp_format=stamps.fmt_rfc2822, key_type=int),
        "refunds": CollectionSpec("refunds", key="id", stamp="created", stamp_format=fmt_refund_created, key_type=int),
        "coupons": CollectionSpec("coupons", key="id", created="date_created", stamp_format=stamps.fmt_rfc2822,
                                  key_type=int),
        "customer-attributes": CollectionSpec("customer-attributes", key="id", stamp="date_modified",
                                              created="date_created", stamp_format=stamps.fmt_iso_seconds_z,
                                              key_type=int),
    }
    default_credentials = {"store_hash": "sandboxstore", "access_token": "sandbox-bigcommerce-token",
                           "client_id": "sandbox-bigcommerce-client"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.collections = {n: TrackedCollection(s) for n, s in self.specs.items()}
        self.customers_api, self.orders_api = CustomersApi(self), OrdersApi(self)
        self.refunds_api, self.coupons_api = RefundsApi(self), CouponsApi(self)

    # ---- set-up and configuration ------------------------------------------------------------
    def setup(self) -> None:
        self.lister = Lister()
        self.sub_resources: dict[str, dict[int, list[dict]]] = {kind: {} for kind in SUB_RESOURCES}
        self._archived: tuple[int, int] = (-1, 0)
        self._configure_rate_limit()

    def apply_config(self) -> None:
        self._configure_rate_limit()

    def _configure_rate_limit(self) -> None:
        limits = self.config.rate_limit
        quota = int(limits.get("requests_per_window", DEFAULT_QUOTA))
        window_ms = int(limits.get("window_ms", DEFAULT_WINDOW_MS))
        self.rate_enforced = quota > 0
        self.window = FixedWindow(quota if quota > 0 else UNLIMITED_QUOTA, window_ms / 1000)

    @property
    def store_hash(self) -> str:
        return str(self.credentials["store_hash"])

    @property
    def access_token(self) -> str:
        return str(self.credentials["access_token"])

    @property
    def public_url(self) -> str:
        """Base of the absolute URLs the API puts in bodies (the simulator's own address)."""
        return self.base_url or "https://api.bigcommerce.com"

    @property
    def limit_over_max(self) -> str:
        return str(self.config.options.get("limit_over_max", "error"))

    def options_flag(self, name: str) -> bool:
        defaults = {"archived_orders_in_list": False, "refund_touches_order": True}
        return bool(self.config.options.get(name, defaults.get(name, False)))

    def env_vars(self, base_url: str) -> dict[str, str]:
        return {"BIGCOMMERCE_STORE_HASH": self.store_hash, "BIGCOMMERCE_ACCESS_TOKEN": self.access_token,
                "BIGCOMMERCE_API_URL": base_url}

    # ---- routes, auth and errors ----------------------------------------------------------------
    def api_routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        for api in (self.customers_api, self.orders_api, self.refunds_api, self.coupons_api):
            routes += api.routes(self.endpoint)
        routes.append(Route("/stores/{store_hash}/{rest:path}", self.endpoint(self.unknown_path, None),
                            methods=ALL_METHODS))
        return routes

    def endpoint(self, handler, version: str | None):
        """Wrap a handler: check auth and store hash, render ApiError/ParamError in the API's envelope."""
        async def run(request: Request) -> Response:
            api = version or api_version(request.url.path)
            try:
                self.authorize(request)
                return await handler(request)
            except ParamError as err:
                failure = ApiError.from_param(err, api)
            except ApiError as err:
                failure = err
            return common.error_response(api, failure.status, failure.title, failure.errors)
        run.__name__ = handler.__name__
        return run

    def authorize(self, request: Request) -> None:
        token = request.headers.get("x-auth-token")
        if not token or token != self.access_token:
            raise ApiError(401, "No valid credentials were found in this request.")
        if request.path_params.get("store_hash") != self.store_hash:
            raise ApiError(404, "Store not found.")

    async def unknown_path(self, request: Request) -> Response:
        for route in self._routes()[:-1]:
            match, _ = route.matches(request.scope)
            if match == Match.PARTIAL:
                raise ApiError(405, "The requested method is not allowed on this resource.")
        raise ApiError(404, "The requested resource was not found.")

    def error_response(self, status: int, code: str, message: str) -> Response:
        return common.error_response(_current_version.get(), status, message, {},
                                     headers=self.rate_headers(*self.rate_snapshot()))

    def throttled_response(self, retry_after: float) -> Response:
        headers = self.rate_headers(0, retry_after)
        headers["X-Retry-After"] = str(max(1, math.ceil(retry_after)))
        return common.error_response(_current_version.get(), 429, "Too many requests. The request quota for this "
                                     "store is used up; retry after X-Rate-Limit-Time-Reset-Ms.", {}, headers=headers)

    def app(self):
        return _VersionScope(super().app())

    # ---- rate limit --------------------------------------------------------------------------
    def check_rate_limit(self, request: Request) -> Response | None:
        allowed, remaining, reset = self.window.take()
        request.state.bc_rate = (remaining, reset)
        if allowed or not self.rate_enforced:
            return None
        return self.throttled_response(reset)

    def response_headers(self, request: Request) -> dict[str, str]:
        snapshot = getattr(request.state, "bc_rate", None) or self.rate_snapshot()
        return self.rate_headers(*snapshot)

    def rate_snapshot(self) -> tuple[int, float]:
        """(requests left, seconds to reset) of the current window, without using a request."""
        w = self.window
        elapsed = w.clock() - w.start
        if elapsed >= w.window:
            return w.quota, w.window
        return max(0, w.quota - w.used), w.window - elapsed

    def rate_headers(self, remaining: int, reset_seconds: float) -> dict[str, str]:
        return {"X-Rate-Limit-Time-Window-Ms": str(int(self.window.window * 1000)),
                "X-Rate-Limit-Time-Reset-Ms": str(max(0, math.ceil(reset_seconds * 1000))),
                "X-Rate-Limit-Requests-Quota": str(self.window.quota),
                "X-Rate-Limit-Requests-Left": str(remaining),
                "X-BC-ApiLimit-Remaining": str(remaining)}

    # ---- data: load, sub-resources, ids ------------------------------------------------------
    def prepare_loaded(self, data: dict[str, list[dict]]) -> dict[str, list[dict]]:
        data = dict(data)
        data["orders"] = [self._split_order(order) for order in data.get("orders", [])]
        return data

    def _split_order(self, order: dict) -> dict:
        """Move an order's embedded sub-resource lists to the sub-resource store."""
        if not any(isinstance(order.get(kind), list) for kind in SUB_RESOURCES):
            return order
        order = dict(order)
        for kind in SUB_RESOURCES:
            if isinstance(order.get(kind), list):
                self.sub_resources[kind][id_order(order.get("id"))] = order.pop(kind)
        return order

    def sub_rows(self, kind: str, order_id: Any) -> list[dict]:
        return self.sub_resources[kind].get(id_order(order_id), [])

    def new_id(self, collection: str) -> int:
        """A fresh id above every id the collection has held."""
        keys = self.collections[collection].key_index()
        highest = max((id_order(k) for k in keys[-1:]), default=0)
        counter = f"{collection}:last_id"
        self.meta[counter] = max(int(self.meta.get(counter, 0)), highest)
        return self.next_id(counter)

    def new_attribute_value_id(self) -> int:
        counter = "attribute-values:last_id"
        if counter not in self.meta:
            self.meta[counter] = max((id_order(v.get("id")) for c in self.collections["customers"].values()
                                      for v in (c.get("attributes") or []) if isinstance(v, dict)), default=0)
        return self.next_id(counter)

    def archived_order_count(self) -> int:
        orders = self.collections["orders"]
        generation, count = self._archived
        if generation != orders.generation:
            count = sum(1 for order in orders.values() if order.get("is_deleted"))
            self._archived = (orders.generation, count)
        return count

    # ---- admin upserts ------------------------------------------------------------------------
    def admin_upsert(self, collection: str, record: dict) -> dict:
        record = dict(record)
        if record.get("id") in (None, "") and collection in self.collections:
            record["id"] = self.new_id(collection)
        if collection == "orders":
            return self._upsert_order(record)
        if collection == "refunds":
            return self._upsert_refund(record)
        return super().admin_upsert(collection, record)

    def _upsert_order(self, record: dict) -> dict:
        subs = {kind: record.pop(kind) for kind in SUB_RESOURCES if isinstance(record.get(kind), list)}
        stored = super().admin_upsert("orders", record)
        for kind, rows in subs.items():
            self.sub_resources[kind][id_order(stored["id"])] = rows
        return stored

    def _upsert_refund(self, record: dict) -> dict:
        refunds = self.collections["refunds"]
        old = refunds.get(record["id"])
        merged = {**old, **record} if old else record
        if not merged.get("created"):
            merged["created"] = fmt_refund_created(self.now())
        stored = refunds.put(merged)
        order = self.collections["orders"].get(stored.get("order_id"))
        if old is None and order is not None and self.options_flag("refund_touches_order"):
            self.collections["orders"].put({**order, "date_modified": stamps.fmt_rfc2822(self.now())})
        return stored

    # ---- persisted state beyond the collections -------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {name: {str(order_id): rows for order_id, rows in self.sub_resources[kind].items()}
                for kind, name in SUB_RESOURCES.items()}

    def restore_extra_state(self, state: dict[str, Any]) -> None:
        for kind, name in SUB_RESOURCES.items():
            saved = state.get(name) or {}
            self.sub_resources[kind] = {id_order(order_id): rows for order_id, rows in saved.items()}


class _VersionScope:
    """ASGI wrapper that records the API version of the request for envelope choice."""

    def __init__(self, app):
        self.app = app
        self.sim = app.sim

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        token = _current_version.set(api_version(scope["path"]))
        try:
            await self.app(scope, receive, send)
        finally:
            _current_version.reset(token)

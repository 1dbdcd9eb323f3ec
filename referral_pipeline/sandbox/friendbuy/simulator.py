"""``FriendbuySimulator``: the Friendbuy Merchant API (MAPI, ``/v1``) on loopback.

Owns the routes and the state they touch: bearer tokens (``auth``), tracked customers and events
(``events``), the analytics export collections and the rows derived from attributed events
(``attribution``), paging (``analytics``/``paging``), the error envelope (``errors``), the
duplicate-purchase policy and the leaky-bucket rate limit (``settings``). See
docs/sandbox/friendbuy.md.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import logging
import math
import uuid
from typing import Any, Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..core import stamps
from ..core.ratelimit import TokenBucket
from ..core.simulator import Simulator, json_response
from ..core.store import CollectionSpec
from . import validation
from .analytics import REPORTS, ROW_KEY, AnalyticsExports, Report, synthetic_key
from .attribution import AttributionIndex, RewardedFriends, advocate_reward_row, purchase_row, sign_up_row
from .auth import TokenIssuer, parse_authorization_body
from .errors import MapiError, error_envelope
from .events import EventLog
from .paging import parse_query
from .settings import FriendbuySettings, parse_settings

log = logging.getLogger("referral_pipeline.sandbox.friendbuy")

REWARDS = "distributed-advocate-rewards"
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _analytics_spec(name: str) -> CollectionSpec:
    return CollectionSpec(name, key=ROW_KEY, stamp="createdOn", stamp_format=stamps.fmt_iso_millis_z,
                          auto_key=True)


def mapi_endpoint(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """Turn ``MapiError`` raised anywhere in a handler into the MAPI error envelope."""
    @functools.wraps(handler)
    async def wrapper(*args) -> Response:
        try:
            return await handler(*args)
        except MapiError as exc:
            if exc.status in (400, 409, 422):  # e.g. Segment-shaped bodies: visible in the log, never a crash
                log.info("friendbuy: %s %s -> %d %s", args[-1].method, args[-1].url.path, exc.status, exc.message)
            return error_envelope(exc.status, exc.message)
    return wrapper


def parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MapiError(400, "Invalid input, object invalid: malformed JSON") from None


class FriendbuySimulator(Simulator):
    name = "friendbuy"
    specs = {
        "customers": CollectionSpec("customers", key="customerId", stamp="updatedOn",
                                    stamp_format=stamps.fmt_iso_millis_z, created="createdOn"),
        **{name: _analytics_spec(name) for name in REPORTS},
    }
    default_credentials = {
        "key": "5c8e6f0a-3b1d-4c2e-9f47-8a1b2c3d4e5f",
        "secret": "sandbox-friendbuy-mapi-secret",
        "merchant_id": "0f6b1c9e-7d2a-4e3b-8c5d-6a7b8c9d0e1f",
        "user_email": "integrations@sandbox.example",
    }

    # ---- lifecycle -----------------------------------------------------------------------------
    def setup(self) -> None:
        self.settings = parse_settings(self.config.options, self.config.rate_limit)
        self._remember_applied_config()
        self.tokens = self._token_issuer()
        self.bucket = self._bucket()
        self.events = EventLog()
        self.exports = AnalyticsExports(self.collections)
        self.attribution = AttributionIndex(self.collections)
        self.rewarded = RewardedFriends(self.collections[REWARDS])

    def apply_config(self) -> None:
        """Re-read options after ``POST /_sandbox/faults``. An invalid change is rolled back (the base
        has already stored it in ``self.config``) and re-raised, so the admin call fails with 500."""
        try:
            self.settings = parse_settings(self.config.options, self.config.rate_limit)
        except ValueError:
            log.error("friendbuy: rejected run-time options %s / rate_limit %s", self.config.options,
                      self.config.rate_limit)
            self.config = self.config.model_copy(update={"options": self._applied_options,
                                                         "rate_limit": self._applied_rate_limit})
            raise
        self._remember_applied_config()
        self.tokens = self._token_issuer()
        self.bucket = self._bucket()

    def _remember_applied_config(self) -> None:
        self._applied_options = dict(self.config.options)
        self._applied_rate_limit = dict(self.config.rate_limit)

    def _token_issuer(self) -> TokenIssuer:
        c = self.credentials
        return TokenIssuer(str(c["key"]), str(c["secret"]), str(c["merchant_id"]), str(c["user_email"]),
                           self.settings.token_ttl_seconds)

    def _bucket(self) -> TokenBucket | None:
        s: FriendbuySettings = self.settings
        return TokenBucket(s.requests_per_second, s.burst) if s.requests_per_second > 0 else None

    def extra_state(self) -> dict[str, Any]:
        return {"events": self.events.to_state()}

    def restore_extra_state(self, state: dict[str, Any]) -> None:
        self.events = EventLog.from_state(state.get("events"))

    def env_vars(self, base_url: str) -> dict[str, str]:
        env = {"FRIENDBUY_MAPI_KEY": str(self.credentials["key"]),
               "FRIENDBUY_MAPI_SECRET": str(self.credentials["secret"]),
               "FRIENDBUY_MAPI_URL": base_url}
        # What this account's operator would have agreed with Friendbuy: its rate limit, and whether a
        # repeated purchase orderId is ignored/rejected (then in-doubt purchases may be re-sent).
        if self.settings.requests_per_second:
            env["FRIENDBUY_PUSH_RATE_LIMIT_PER_SECOND"] = f"{self.settings.requests_per_second:g}"
        if self.settings.duplicate_purchase in ("ignore", "reject"):
            env["FRIENDBUY_ORDER_ID_DEDUP"] = "true"
        return env

    # ---- API-specific shapes ---------------------------------------------------------------------
    def error_response(self, status: int, code: str, message: str) -> Response:
        return error_envelope(status, message)

    def throttled_response(self, retry_after: float) -> Response:
        headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if self.settings.retry_after else None
        return error_envelope(429, "Too many requests", headers)

    def check_rate_limit(self, request: Request) -> Response | None:
        if self.bucket is None:
            return None
        allowed, _, wait = self.bucket.take()
        return None if allowed else self.throttled_response(wait)

    def admin_upsert(self, collection: str, record: dict) -> dict:
        if collection in REPORTS and record.get(ROW_KEY) in (None, ""):
            record = {**record, ROW_KEY: synthetic_key(collection, self.next_id(f"row:{collection}"))}
        stored = super().admin_upsert(collection, record)
        self._touched(collection)
        if collection == REWARDS:
            self.rewarded.touched()
        return stored

    # ---- routes ----------------------------------------------------------------------------------
    def api_routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            Route("/v1/authorization", self.post_authorization, methods=["POST"]),
            Route("/v1/customer", self.post_customer, methods=["POST"]),
            Route("/v1/event/purchase", self.post_purchase, methods=["POST"]),
            Route("/v1/event/account-sign-up", self.post_sign_up, methods=["POST"]),
            Route("/v1/event/custom", self.post_custom, methods=["POST"]),
        ]
        routes += [Route(f"/v1/analytics/{name}", self._analytics_endpoint(report), methods=["GET"])
                   for name, report in REPORTS.items()]
        routes.append(Route("/{path:path}", self.unknown_url, methods=ALL_METHODS))
        return routes

    @mapi_endpoint
    async def unknown_url(self, request: Request) -> Response:
        raise MapiError(404, f"Unknown URL {request.url.path}")

    @mapi_endpoint
    async def post_authorization(self, request: Request) -> Response:
        key, secret = parse_authorization_body(parse_json(await request.body()))
        if not self.tokens.credentials_match(key, secret):
            raise MapiError(401, "Unauthorized")
        return json_response(self.tokens.issue(self.now()))

    @mapi_endpoint
    async def post_customer(self, request: Request) -> Response:
        body = await self._authorized_body(request, validation.CUSTOMER)
        customers = self.collections["customers"]
        created_on = self._stamp()
        old = customers.get(body["customerId"])
        record = {**copy.deepcopy(old), **body} if old else {**body, "createdOn": created_on}
        record["updatedOn"] = created_on
        customers.put(record)
        return json_response({"eventId": self._new_event_id(), "createdOn": created_on}, 200 if old else 201)

    @mapi_endpoint
    async def post_purchase(self, request: Request) -> Response:
        body = await self._authorized_body(request, validation.PURCHASE)
        first = self.events.first_purchase(body["orderId"])
        policy = self.settings.duplicate_purchase
        if first is not None and policy == "ignore":
            return self._event_answer(first, 200)
        if first is not None and policy == "reject":
            raise MapiError(409, f"A purchase with orderId {body['orderId']} has already been tracked")
        new_customer = body["isNewCustomer"] if isinstance(body.get("isNewCustomer"), bool) else \
            not self.events.has_purchased(body.get("customerId"), body.get("email"))
        event = self._record_event("purchase", body)
        self._derive_purchase_rows(event, new_customer)
        return self._event_answer(event, 201)

    @mapi_endpoint
    async def post_sign_up(self, request: Request) -> Response:
        body = await self._authorized_body(request, validation.SIGN_UP)
        event = self._record_event("account-sign-up", body)
        attribution = self.attribution.resolve(event)
        if attribution is not None:
            new_customer = body["isNewCustomer"] if isinstance(body.get("isNewCustomer"), bool) else True
            self._add_row("account-sign-ups", sign_up_row(event, attribution, new_customer))
        return self._event_answer(event, 201)

    @mapi_endpoint
    async def post_custom(self, request: Request) -> Response:
        body = await self._authorized_body(request, validation.CUSTOM)
        duplicate = self.events.custom_duplicate(body["eventType"], body.get("deduplicationId"))
        if duplicate is not None:
            return self._event_answer(duplicate, 201)
        return self._event_answer(self._record_event("custom", body), 201)

    def _analytics_endpoint(self, report: Report) -> Callable[[Request], Awaitable[Response]]:
        @mapi_endpoint
        async def endpoint(request: Request) -> Response:
            self._authorize(request)
            query = parse_query(request.query_params, report.filters, self.settings.analytics_max_page_size,
                                report.enums)
            return json_response(self.exports.page(report, query))
        endpoint.__name__ = f"analytics_{report.name.replace('-', '_')}"
        return endpoint

    # ---- helpers -----------------------------------------------------------------------------------
    def _authorize(self, request: Request) -> dict:
        return self.tokens.verify_header(request.headers.get("authorization"), self.now())

    async def _authorized_body(self, request: Request, schema: dict) -> dict:
        """Auth first (401 before anything else), then JSON (400), then fields (422)."""
        self._authorize(request)
        return validation.validate_body(parse_json(await request.body()), schema)

    def _stamp(self) -> str:
        return stamps.fmt_iso_millis_z(self.now())

    def _new_event_id(self) -> str:
        """A uuid4-shaped id, deterministic per data source and sequence number (reproducible runs)."""
        n = self.next_id("event")
        digest = hashlib.sha256(f"{self.source_id}\0event\0{n}".encode()).digest()[:16]
        return str(uuid.UUID(bytes=digest, version=4))

    def _record_event(self, event_type: str, body: dict) -> dict:
        return self.events.append(event_type, {**body, "eventId": self._new_event_id(), "createdOn": self._stamp()})

    @staticmethod
    def _event_answer(event: dict, status: int) -> Response:
        return json_response({"eventId": event["eventId"], "createdOn": event["createdOn"]}, status)

    def _derive_purchase_rows(self, event: dict, new_customer: bool) -> None:
        attribution = self.attribution.resolve(event)
        if attribution is None:
            return
        self._add_row("purchases", purchase_row(event, attribution, new_customer))
        s = self.settings
        if not (s.auto_reward and new_customer):
            return
        if attribution.is_self_referral(event.get("customerId"), event.get("email")):
            log.info("friendbuy: purchase %s is a self-referral; no advocate reward", event.get("orderId"))
            return
        if self.rewarded.contains(attribution.get("campaignId"), event.get("customerId"), event.get("email")):
            return
        reward = advocate_reward_row(event, attribution, s.advocate_reward_type, s.advocate_reward_amount,
                                     self._reward_coupon_code())
        self._add_row(REWARDS, reward)
        self.rewarded.add(reward)

    def _reward_coupon_code(self) -> str | None:
        if self.settings.advocate_reward_type != "Coupon Code":
            return None
        n = self.next_id("reward_code")
        codes = self.settings.advocate_reward_codes
        if n <= len(codes):
            return codes[n - 1]
        return "fbr-" + hashlib.sha256(f"{self.source_id}\0reward\0{n}".encode()).hexdigest()[:10]

    def _add_row(self, collection: str, row: dict) -> dict:
        row[ROW_KEY] = synthetic_key(collection, self.next_id(f"row:{collection}"))
        self.collections[collection].put(row)
        self._touched(collection)
        return row

    def _touched(self, collection: str) -> None:
        self.exports.touched(collection)
        self.attribution.touched(collection)

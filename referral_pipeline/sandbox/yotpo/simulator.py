"""The Yotpo Loyalty & Referrals API v2 simulator (``/api/v2``): routes, auth, rate limit, errors.

HTTP only: requests are authenticated and rate-limited here (``check_rate_limit``), bodies and
queries decoded, and the work handed to ``LoyaltyProgram`` (orders, refunds, points, customers) or
``CustomerBook`` (reads). Errors use Yotpo's ``{"error": "<message>"}`` body; every API response
carries the ``ratelimit-*`` headers. See ``docs/sandbox/yotpo.md``.
"""
from __future__ import annotations

import functools
import logging
import math
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import stamps
from ..core.simulator import Simulator, json_response
from ..core.store import CollectionSpec
from . import validation
from .access import Account, AccountRateLimiter
from .customers import CustomerBook, new_customer, public_view
from .program import LoyaltyProgram, fmt_time
from .settings import RateLimitSettings, YotpoSettings
from .validation import InvalidRequest
from .vip import number, refresh

log = logging.getLogger("referral_pipeline.sandbox.yotpo")

API = "/api/v2"
_RATE_HEADERS_KEY = "yotpo.rate_headers"
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def endpoint(handler):
    """Turn ``InvalidRequest`` raised by a handler into Yotpo's error response."""
    @functools.wraps(handler)
    async def wrapped(self: "YotpoSimulator", request: Request) -> Response:
        try:
            return await handler(self, request)
        except InvalidRequest as exc:
            return self.error_response(exc.status, "invalid_request", str(exc))
    return wrapped


async def read_body(request: Request) -> dict:
    """The request body as a dict: JSON object, or a flat form-encoded body."""
    raw = await request.body()
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("request body is not valid JSON", 400) from None
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object", 400)
    return data


class YotpoSimulator(Simulator):
    name = "yotpo"
    specs = {
        "customers": CollectionSpec("customers", key="email"),
        "vip-tiers": CollectionSpec("vip-tiers", key="id", key_type=int),
        "redemption-options": CollectionSpec("redemption-options", key="id", key_type=int),
        "orders": CollectionSpec("orders", key="order_id"),
        "refunds": CollectionSpec("refunds", key="id"),
    }
    default_credentials = {"guid": "sandbox-yotpo-guid", "api_key": "sandbox-yotpo-api-key",
                           "merchant_id": "sandbox-yotpo-merchant"}

    # ---- lifecycle -------------------------------------------------------------------------------
    def setup(self) -> None:
        creds = self.credentials
        self.account = Account(str(creds["guid"]), str(creds["api_key"]), str(creds["merchant_id"]))
        self.book = CustomerBook(self.collections["customers"])
        self._configure(YotpoSettings.from_options(self.config.options),
                        RateLimitSettings.from_mapping(self.config.rate_limit))

    def _configure(self, settings: YotpoSettings, rate: RateLimitSettings) -> None:
        self.settings = settings
        self.limiter = AccountRateLimiter(rate)
        self.program = LoyaltyProgram(settings, self.book, self.collections["orders"], self.collections["refunds"],
                                      self.collections["vip-tiers"], self.now, self.next_id)

    def apply_config(self) -> None:
        """Take new options / rate limits; invalid ones are refused and the previous ones kept."""
        try:
            settings = YotpoSettings.from_options(self.config.options)
            rate = RateLimitSettings.from_mapping(self.config.rate_limit)
        except (ValueError, TypeError) as exc:
            log.warning("yotpo: refusing configuration change: %s", exc)
            raise ValueError(str(exc)) from exc  # the core answers 400 and keeps the previous config
        self._configure(settings, rate)

    @property
    def _applied(self) -> dict:
        s, r = self.settings, self.limiter.settings
        options = {k: sorted(v) if isinstance(v, frozenset) else v for k, v in vars(s).items()}
        return {"options": options, "rate_limit": {"requests_per_second": r.requests_per_second,
                                                   "burst": r.burst, "requests_per_minute": r.requests_per_minute}}

    def load_records(self, data: dict[str, list[dict]]) -> None:
        super().load_records(data)
        self.book.invalidate()

    def extra_state(self) -> dict:
        return {"customer_email_changes": dict(self.book.email_changes)}

    def restore_extra_state(self, state: dict) -> None:
        self.book.email_changes = dict(state.get("customer_email_changes") or {})
        self.book.invalidate()

    def env_vars(self, base_url: str) -> dict[str, str]:
        env = {"YOTPO_GUID": self.account.guid, "YOTPO_API_KEY": self.account.api_key,
               "YOTPO_API_URL": base_url.rstrip("/") + API}
        rate = self.limiter.settings.requests_per_second
        if rate:   # the merchant's plan: the pipeline's client-side limiter follows it
            env["YOTPO_RATE_LIMIT_PER_SECOND"] = f"{rate:g}"
        return env

    def admin_upsert(self, collection: str, record: dict) -> dict:
        """Customers are merged as an admin edit in Yotpo would (seen now, VIP tier re-derived);
        other collections use the base upsert (orders/refunds written this way move no points)."""
        if collection != "customers":
            return super().admin_upsert(collection, record)
        email = record.get("email")
        if email in (None, ""):
            raise ValueError("record without primary key 'email'")
        now_text = fmt_time(self.now())
        old = self.collections["customers"].get(email)
        merged = {**(old or new_customer(email, now_text, self.settings.default_opt_in)), **record}
        merged["last_seen_at"] = now_text
        if "vip_tier_name" not in record:
            refresh(merged, self.program.ordered_tiers(), now_text)
        return self.book.save(merged)

    # ---- the API's own responses ------------------------------------------------------------------
    def error_response(self, status: int, code: str, message: str) -> Response:
        return json_response({"error": message}, status, self.limiter.peek(self.account.guid))

    def throttled_response(self, retry_after: float) -> Response:
        return json_response({"error": "API rate limit exceeded"}, 429,
                             self.limiter.throttled_headers(self.account.guid, retry_after))

    def check_rate_limit(self, request: Request) -> Response | None:
        """Authenticate (401 otherwise), then spend one request of the GUID's allowance (429)."""
        guid = self.account.authenticate(request)
        if guid is None:
            return self.error_response(401, "unauthorized", "Unauthorized: invalid or missing GUID / API key")
        verdict = self.limiter.take(guid)
        request.scope[_RATE_HEADERS_KEY] = verdict.headers
        if not verdict.allowed:
            return json_response({"error": "API rate limit exceeded"}, 429, verdict.headers)
        return None

    def response_headers(self, request: Request) -> dict[str, str]:
        return request.scope.get(_RATE_HEADERS_KEY, {})

    # ---- routes ------------------------------------------------------------------------------------
    def api_routes(self) -> list[Route]:
        return [
            Route(f"{API}/customers", self.get_customer, methods=["GET"]),
            Route(f"{API}/customers", self.post_customer, methods=["POST"]),
            Route(f"{API}/customers/all", self.list_customers, methods=["GET"]),
            Route(f"{API}/orders", self.post_order, methods=["POST"]),
            Route(f"{API}/refunds", self.post_refund, methods=["POST"]),
            Route("/commerce-cloud/refunds", self.post_refund, methods=["POST"]),
            Route(f"{API}/points/adjust", self.post_points_adjust, methods=["POST"]),
            Route(f"{API}/vip_tiers", self.get_vip_tiers, methods=["GET"]),
            Route(f"{API}/redemption_options", self.get_redemption_options, methods=["GET"]),
            Route("/{path:path}", self.not_found, methods=_ALL_METHODS),
        ]

    @endpoint
    async def get_customer(self, request: Request) -> Response:
        query = request.query_params
        ids = validation.customer_lookup(query)
        with_referral = bool(validation.boolean(query.get("with_referral_code"), "with_referral_code"))
        with_history = bool(validation.boolean(query.get("with_history"), "with_history"))
        customer = self.book.find(ids)
        if customer is None:
            raise InvalidRequest("Customer not found", 404)
        if with_referral:
            customer = self.program.customer_with_referral(customer)
        return json_response(public_view(customer, with_referral, with_history))

    @endpoint
    async def post_customer(self, request: Request) -> Response:
        body = await read_body(request)
        return json_response(public_view(self.program.upsert_customer(body)))

    @endpoint
    async def list_customers(self, request: Request) -> Response:
        page, per_page, since = validation.page_params(request.query_params, self.settings.customers_per_page,
                                                       self.settings.max_per_page)
        records, total = self.book.page_by_last_seen(stamps.to_micros(since) if since else None, page, per_page)
        return json_response({"customers": [public_view(r) for r in records],
                              "links": {"total_pages": math.ceil(total / per_page)}})

    @endpoint
    async def post_order(self, request: Request) -> Response:
        body = await read_body(request)
        self.program.record_order(body)
        return json_response({})

    @endpoint
    async def post_refund(self, request: Request) -> Response:
        body = await read_body(request)
        self.program.record_refund(body)
        return json_response({})

    @endpoint
    async def post_points_adjust(self, request: Request) -> Response:
        body = await read_body(request)
        return json_response(public_view(self.program.adjust_points(body)))

    @endpoint
    async def get_vip_tiers(self, request: Request) -> Response:
        return json_response(self.program.ordered_tiers())

    @endpoint
    async def get_redemption_options(self, request: Request) -> Response:
        """All options, or with a customer identifier only those the customer's balance affords."""
        options = list(self.collections["redemption-options"].values())
        if any(request.query_params.get(f) for f in validation.CUSTOMER_LOOKUP_FIELDS):
            customer = self.book.find(validation.customer_lookup(request.query_params))
            if customer is None:
                raise InvalidRequest("Customer not found", 404)
            balance = number(customer.get("points_balance"))
            options = [o for o in options if number(o.get("amount")) <= balance]
        return json_response(options)

    async def not_found(self, request: Request) -> Response:
        return self.error_response(404, "not_found", "Not Found")

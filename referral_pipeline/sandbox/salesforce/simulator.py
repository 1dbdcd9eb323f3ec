"""``SalesforceSimulator``: the simulated org (REST, sObject Collections, Bulk API 2.0, OAuth).

This module wires the parts together: collections and their keys, the route table, the gate
every data-API request passes (API version, session, per-second limit, daily allocation), the
Salesforce shapes of injected faults and throttling, ``admin_upsert`` and the environment
variables. Behaviour lives in ``rest``, ``composite``, ``bulk``, ``auth``, ``query``, ``soql``,
``writes`` and ``schema``; the operator-facing description is ``docs/sandbox/salesforce.md``.

``rate_limit`` keys: ``daily_api_requests`` (default 15000), ``requests_per_second`` (default
off) and ``burst`` (default = requests_per_second). ``options`` keys: ``token_ttl_seconds``
(7200), ``query_locator_ttl_seconds`` (900), ``max_query_cursors`` (10 per user),
``bulk_polls_to_complete`` (2), ``throttle_style`` (``concurrent_limit`` | ``http_429``),
``login_domain`` (``referral-sandbox.my``).
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from ..core import stamps
from ..core.ratelimit import TokenBucket
from ..core.simulator import Simulator
from ..core.store import CollectionSpec
from .auth import USER_ID, OAuthEndpoint, TokenStore, bearer_token
from .bulk import BulkApi
from .composite import CollectionsApi
from .limits import ApiUsage
from .query import CursorTable
from .responses import SUPPORTED_VERSIONS, SfRoute, error_response, version_of_path
from .rest import RestApi
from .schema import Schema, make_id
from .writes import SObjectRepo, Transaction

SOBJECT_TYPES = ("Account", "Contact", "Order", "OrderItem", "Referral__c", "Referral_Reward__c")
API_VERSION = "62.0"
DEFAULT_LOGIN_DOMAIN = "referral-sandbox.my"

_FAULTS = {
    "INTERNAL_SERVER_ERROR": ("UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if "
                                                   "you contact support: 1730498513-93513 (-1650271245)"),
    "SERVICE_UNAVAILABLE": ("SERVER_UNAVAILABLE", "Server temporarily unavailable. Please try again later."),
}
_BAD_GATEWAY_PAGE = ("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
                     "</center></body></html>")


class SalesforceSimulator(Simulator):
    name = "salesforce"
    specs = {n: CollectionSpec(n, key="Id", stamp="SystemModstamp", stamp_format=stamps.fmt_salesforce,
                               created="CreatedDate") for n in SOBJECT_TYPES}
    default_credentials = {"client_id": "referral-sandbox-client", "client_secret": "referral-sandbox-secret",
                           "username": "integration@referral-sandbox.example", "password": "sandbox-password"}

    # ---- lifecycle ------------------------------------------------------------------------------------
    def setup(self) -> None:
        self.schema = Schema()
        self.repo = SObjectRepo(self.collections, self.schema)
        if not hasattr(self, "tokens"):  # sessions survive a data reset
            self.tokens = TokenStore(self.credentials.get("access_token"))
        self.usage = ApiUsage(self)
        self.bulk = BulkApi(self)
        self.cursors = None
        self.apply_config()

    def apply_config(self) -> None:
        rate = self.config.rate_limit.get("requests_per_second")
        burst = self.config.rate_limit.get("burst", rate)
        self.bucket = TokenBucket(float(rate), float(burst)) if rate else None
        options = self.config.options
        cursors = self.cursors
        self.cursors = CursorTable(self._new_cursor_id, float(options.get("query_locator_ttl_seconds", 900)),
                                   int(options.get("max_query_cursors", 10)))
        if cursors is not None:
            self.cursors.cursors = cursors.cursors

    def prepare_loaded(self, data: dict[str, list[dict]]) -> dict[str, list[dict]]:
        for type_name, records in data.items():
            self.schema.observe(type_name, records)
        return data

    def restore_extra_state(self, state: dict) -> None:
        for type_name, coll in self.collections.items():
            self.schema.observe(type_name, coll.values())

    def env_vars(self, base_url: str) -> dict[str, str]:
        return {"SALESFORCE_INSTANCE_URL": base_url,
                "SALESFORCE_CLIENT_ID": str(self.credentials["client_id"]),
                "SALESFORCE_CLIENT_SECRET": str(self.credentials["client_secret"]),
                "SALESFORCE_DOMAIN": str(self.config.options.get("login_domain", DEFAULT_LOGIN_DOMAIN)),
                "SALESFORCE_API_VERSION": API_VERSION}

    # ---- ids and writes ---------------------------------------------------------------------------------
    def new_record_id(self, prefix: str) -> str:
        type_name = next((n for n, o in self.schema.objects.items() if o.key_prefix == prefix), None)
        while True:
            rid = make_id(prefix, self.next_id(f"id:{prefix}"))
            if type_name is None or self.collections[type_name].get(rid) is None:
                return rid

    def _new_cursor_id(self) -> str:
        return make_id("01g", self.next_id("id:01g"))

    def transaction(self) -> Transaction:
        return Transaction(self.repo, self.now(), USER_ID, self.new_record_id, self.next_id)

    def admin_upsert(self, collection: str, record: dict) -> dict:
        """Create or merge a record as a Salesforce user would: stamps move; no validation (tests
        plant invalid values this way); ``IsDeleted: true`` puts it in the recycle bin."""
        rec = dict(record)
        if not rec.get("Id"):
            rec["Id"] = self.new_record_id(self.schema.objects[collection].key_prefix)
        old = self.collections[collection].get(rec["Id"])
        now = stamps.fmt_salesforce(self.now())
        merged = {**old, **rec} if old else rec
        merged["SystemModstamp"] = merged["LastModifiedDate"] = now
        if not merged.get("CreatedDate"):
            merged["CreatedDate"] = now
        self.schema.observe(collection, [merged])
        return self.repo.put(collection, merged)

    # ---- the gate, faults and headers ----------------------------------------------------------------------
    def check_rate_limit(self, request: Request) -> Response | None:
        """Every data-API request: known version, valid session, per-second limit, daily allocation."""
        version = version_of_path(request.url.path)
        if version is None:
            return None
        if version not in SUPPORTED_VERSIONS:
            return error_response(404, "NOT_FOUND", "The requested resource does not exist")
        token = bearer_token(request)
        session = self.tokens.lookup(token, self.now()) if token else None
        if session is None:
            return error_response(401, "INVALID_SESSION_ID", "Session expired or invalid")
        request.scope["sf.session"] = session
        if self.bucket is not None and not self.bucket.take()[0]:
            return self.throttled_response(1.0)
        if not self.usage.take():
            return error_response(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.",
                                  headers={"Sforce-Limit-Info": self.usage.header()})
        return None

    def response_headers(self, request: Request) -> dict[str, str]:
        if version_of_path(request.url.path) is None:
            return {}
        return {"Sforce-Limit-Info": self.usage.header()}

    def throttled_response(self, retry_after: float) -> Response:
        """Salesforce has no REST 429: by default a throttled request gets the transient 403
        ``REQUEST_LIMIT_EXCEEDED`` of the concurrent-request limit; ``options.throttle_style:
        http_429`` answers 429 with ``Retry-After`` instead."""
        headers = {"Sforce-Limit-Info": self.usage.header()}
        message = "ConcurrentPerOrgLongTxn Limit exceeded."
        if self.config.options.get("throttle_style", "concurrent_limit") == "http_429":
            headers["Retry-After"] = str(max(1, round(retry_after)))
            return error_response(429, "REQUEST_LIMIT_EXCEEDED", message, headers=headers)
        return error_response(403, "REQUEST_LIMIT_EXCEEDED", message, headers=headers)

    def error_response(self, status: int, code: str, message: str) -> Response:
        if status == 502:
            return HTMLResponse(_BAD_GATEWAY_PAGE, 502)
        sf_code, sf_message = _FAULTS.get(code, (code, message))
        return error_response(status, sf_code, sf_message)

    # ---- routes ----------------------------------------------------------------------------------------------
    def api_routes(self) -> list[BaseRoute]:
        rest, collections, bulk = RestApi(self), CollectionsApi(self), _BulkRoutes(self)
        oauth = OAuthEndpoint(self)
        p = "/services/data/v{version}"
        r = SfRoute
        return [
            r("/services/oauth2/token", oauth.token, ["POST"]),
            r("/services/oauth2/revoke", oauth.revoke, ["POST"]),
            r("/services/data", rest.versions, ["GET"]),
            r(p, rest.resources, ["GET"]),
            r(p + "/limits", rest.limits, ["GET"]),
            r(p + "/query", rest.query, ["GET"]),
            r(p + "/queryAll", rest.query_all, ["GET"]),
            r(p + "/query/{locator}", rest.query_more, ["GET"]),
            r(p + "/queryAll/{locator}", rest.query_more, ["GET"]),
            r(p + "/sobjects", rest.describe_global, ["GET"]),
            r(p + "/sobjects/{sobject}", rest.sobject_info, ["GET"]),
            r(p + "/sobjects/{sobject}", rest.create_record, ["POST"]),
            r(p + "/sobjects/{sobject}/describe", rest.describe, ["GET"]),
            r(p + "/sobjects/{sobject}/updated", rest.updated, ["GET"]),
            r(p + "/sobjects/{sobject}/deleted", rest.deleted, ["GET"]),
            r(p + "/sobjects/{sobject}/{record_id}", rest.get_record, ["GET"]),
            r(p + "/sobjects/{sobject}/{record_id}", rest.update_record, ["PATCH"]),
            r(p + "/sobjects/{sobject}/{record_id}", rest.delete_record, ["DELETE"]),
            r(p + "/sobjects/{sobject}/{field}/{value:path}", rest.get_by_external_id, ["GET"]),
            r(p + "/sobjects/{sobject}/{field}/{value:path}", rest.upsert, ["PATCH"]),
            r(p + "/sobjects/{sobject}/{field}/{value:path}", rest.delete_by_external_id, ["DELETE"]),
            r(p + "/composite/sobjects", collections.create, ["POST"]),
            r(p + "/composite/sobjects", collections.update, ["PATCH"]),
            r(p + "/composite/sobjects", collections.delete, ["DELETE"]),
            r(p + "/composite/sobjects/{sobject}", collections.retrieve, ["GET"]),
            r(p + "/composite/sobjects/{sobject}/{field}", collections.upsert, ["PATCH"]),
            *bulk.routes(p),
            Route("/services/{rest:path}", self._unmatched),
        ]

    async def _unmatched(self, request: Request) -> Response:
        """404 for unknown resources, 405 (with the allowed methods) for a known path."""
        path = request.url.path
        allowed = set()
        for route in self._routes():
            if isinstance(route, SfRoute) and route.path_regex.match(path):
                allowed |= route.methods or set()
        allowed.discard("HEAD")
        if allowed:
            methods = ",".join(sorted(allowed))
            return error_response(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed. "
                                  f"Allowed are {methods}", headers={"Allow": methods})
        return error_response(404, "NOT_FOUND", "The requested resource does not exist")


class _BulkRoutes:
    """Bulk API 2.0 routes; the handlers look the job tables up on every call (a reset replaces them)."""

    def __init__(self, sim: SalesforceSimulator):
        self.sim = sim

    def _call(self, name: str):
        async def handler(request: Request) -> Response:
            return await getattr(self.sim.bulk, name)(request)
        handler.__name__ = name
        return handler

    def routes(self, p: str) -> list[BaseRoute]:
        c, r = self._call, SfRoute
        return [
            r(p + "/jobs/query", c("create_query"), ["POST"]),
            r(p + "/jobs/query", c("list_query"), ["GET"]),
            r(p + "/jobs/query/{job_id}", c("get_query"), ["GET"]),
            r(p + "/jobs/query/{job_id}", c("patch_query"), ["PATCH"]),
            r(p + "/jobs/query/{job_id}", c("delete_query"), ["DELETE"]),
            r(p + "/jobs/query/{job_id}/results", c("query_results"), ["GET"]),
            r(p + "/jobs/ingest", c("create_ingest"), ["POST"]),
            r(p + "/jobs/ingest", c("list_ingest"), ["GET"]),
            r(p + "/jobs/ingest/{job_id}", c("get_ingest"), ["GET"]),
            r(p + "/jobs/ingest/{job_id}", c("patch_ingest"), ["PATCH"]),
            r(p + "/jobs/ingest/{job_id}", c("delete_ingest"), ["DELETE"]),
            r(p + "/jobs/ingest/{job_id}/batches", c("upload"), ["PUT"]),
            r(p + "/jobs/ingest/{job_id}/{kind}", c("ingest_results"), ["GET"]),
        ]

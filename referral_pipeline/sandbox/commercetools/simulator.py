"""The commercetools simulator: HTTP API and ``/oauth/token`` on one port.

Routes (all under ``/{projectKey}`` except the token endpoint):
``POST /oauth/token``; ``GET|HEAD /{projectKey}/<resource>`` (query) for ``customers``, ``orders``,
``discount-codes``, ``cart-discounts`` and ``types``; ``GET|HEAD /<resource>/{id}`` and
``/<resource>/key={key}`` (orders: ``/orders/order-number={orderNumber}``); ``POST`` on those for
customers, orders and types (versioned update actions); ``POST /{projectKey}/types`` (create).

This module owns the wiring: authentication and scope checks, the error envelope, faults and the
rate limit, reference expansion, and the simulator state. Query planning is in ``query.py``,
predicates in ``predicates.py``, update actions in ``updates.py``, custom fields in
``customfields.py``, tokens in ``auth.py``. Documentation: docs/sandbox/commercetools.md.
"""
from __future__ import annotations

import bisect
import logging
import uuid
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import stamps
from ..core.ratelimit import TokenBucket
from ..core.simulator import Simulator, json_response
from . import auth, errors, query, resources, updates
from .customfields import validate_type_draft
from .errors import ApiError

Handler = Callable[[Request, str], Awaitable[Response]]
log = logging.getLogger("referral_pipeline.sandbox.commercetools")

_FAULTS = {500: ("General", "Internal Server Error"),
           502: ("BadGateway", "Bad Gateway. The request could not be processed while infrastructure is "
                               "scaling; retry with exponential backoff."),
           503: ("OverCapacity", "The service is over capacity. Retry with exponential backoff.")}
DEFAULT_TOKEN_TTL = 172800
_UUID_NAMESPACE = uuid.UUID("6f1c3a52-5d8e-4c1b-9d0e-3f0a7c2b8e11")


class CommercetoolsSimulator(Simulator):
    """commercetools Composable Commerce HTTP API (see the module docstring)."""

    name = "commercetools"
    specs = resources.SPECS
    default_credentials = {"project_key": "referral-sandbox", "client_id": "sandbox-ct-client",
                           "client_secret": "sandbox-ct-secret"}

    # ---- configuration ------------------------------------------------------------------------
    def setup(self) -> None:
        self.project_key = str(self.credentials["project_key"])
        self.client_scopes = auth.split_scopes(self.credentials.get("scopes")) \
            or [f"manage_project:{self.project_key}"]
        self.apply_config()

    def apply_config(self) -> None:
        """``options``: ``token_ttl_seconds`` (172800), ``strict_fields`` (true: predicates and sorts
        naming an unknown top-level field are refused). ``rate_limit``: ``requests_per_second``,
        ``burst`` (default = rate), ``status`` (429, or 503 to answer like an overloaded API)."""
        options = self.config.options
        self.tokens = auth.TokenIssuer(auth.signing_key(str(self.credentials["client_secret"]), self.project_key),
                                       int(options.get("token_ttl_seconds", DEFAULT_TOKEN_TTL)))
        strict = bool(options.get("strict_fields", True))
        self.schemas = {r: resources.schema(r, strict) for r in resources.RESOURCES}
        limit = self.config.rate_limit
        rate = limit.get("requests_per_second")
        self.limiter = TokenBucket(float(rate), limit.get("burst")) if rate else None
        self.limit_status = int(limit.get("status", 429))

    def env_vars(self, base_url: str) -> dict[str, str]:
        return {"CTP_PROJECT_KEY": self.project_key, "CTP_CLIENT_ID": str(self.credentials["client_id"]),
                "CTP_CLIENT_SECRET": str(self.credentials["client_secret"]),
                "CTP_SCOPES": ",".join(self.client_scopes), "CTP_AUTH_URL": base_url, "CTP_API_URL": base_url}

    # ---- envelopes, faults, limits --------------------------------------------------------------
    def error_response(self, status: int, code: str, message: str) -> Response:
        """Injected 500/502/503 (and the 503 of ``rate_limit.status``) in the API's envelope. The
        core sends these before the app runs, so they carry their own correlation id."""
        if code.isupper():  # the core's injected-fault codes (BAD_GATEWAY, ...) -> the API's own
            code, message = _FAULTS.get(status, (code, message))
        return json_response(errors.error_body(status, code, message), status, _correlation())

    def throttled_response(self, retry_after: float) -> Response:
        wait = max(1, round(retry_after))
        limit = self.config.rate_limit.get("requests_per_second")
        headers = {"Retry-After": str(wait), "X-RateLimit-Remaining": "0", **_correlation()}
        if limit:
            headers["X-RateLimit-Limit"] = str(limit)
        body = errors.error_body(429, "TooManyRequests", "Too many requests. Retry after the time given in "
                                                         "the Retry-After header.")
        return json_response(body, 429, headers)

    def check_rate_limit(self, request: Request) -> Response | None:
        if self.limiter is None:
            return None
        allowed, _, reset = self.limiter.take()
        if allowed:
            return None
        if self.limit_status == 503:
            return self.error_response(503, *_FAULTS[503])
        return self.throttled_response(reset)

    def response_headers(self, request: Request) -> dict[str, str]:
        return _correlation(request.headers.get("x-correlation-id"))

    def _error(self, exc: ApiError) -> Response:
        return json_response(exc.body(), exc.status, exc.headers or None)

    # ---- data -----------------------------------------------------------------------------------
    def prepare_loaded(self, data: dict[str, list[dict]]) -> dict[str, list[dict]]:
        """A record without ``version`` gets version 1 (updates need one); all else is as given."""
        for records in data.values():
            for rec in records:
                if rec.get("version") is None:
                    rec["version"] = 1
        return data

    def new_id(self) -> str:
        """A UUID, deterministic per data source (persisted counter)."""
        return str(uuid.uuid5(_UUID_NAMESPACE, f"{self.source_id}:{self.next_id('uuid')}"))

    def admin_upsert(self, collection: str, record: dict) -> dict:
        """A new record without ``id`` gets a UUID; version and ``lastModifiedAt`` move as usual."""
        if record.get("id") in (None, ""):
            record = {**record, "id": self.new_id()}
        return super().admin_upsert(collection, record)

    def _stamp_change(self, record: dict, client_id: str) -> dict:
        record["version"] = int(record.get("version") or 0) + 1
        record["lastModifiedAt"] = stamps.fmt_iso_millis_z(self.now())
        record["lastModifiedBy"] = {"clientId": client_id, "isPlatformClient": False}
        return record

    # ---- routes ---------------------------------------------------------------------------------
    def api_routes(self) -> list[Route]:
        routes = [Route("/oauth/token", self.token, methods=["POST"])]
        for res in resources.RESOURCES:
            base = f"/{{projectKey}}/{res}"
            segment, _ = resources.KEY_ROUTES[res]
            by_key = f"{base}/{segment}={{{_param(segment)}}}"
            routes.append(Route(base, self._api(res, False, self.query_resources), methods=["GET"]))
            if res == "types":
                routes.append(Route(base, self._api(res, True, self.create_type), methods=["POST"]))
            routes.append(Route(by_key, self._api(res, False, self.get_by_key), methods=["GET"]))
            if res in resources.UPDATABLE:
                routes.append(Route(by_key, self._api(res, True, self.update_by_key), methods=["POST"]))
            routes.append(Route(f"{base}/{{id}}", self._api(res, False, self.get_by_id), methods=["GET"]))
            if res in resources.UPDATABLE:
                routes.append(Route(f"{base}/{{id}}", self._api(res, True, self.update_by_id), methods=["POST"]))
        routes.append(Route("/{path:path}", self.unknown_endpoint,
                            methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]))
        return routes

    def _api(self, resource: str, write: bool, handler: Handler):
        """Authenticate, check the scope for ``resource``, run ``handler``, render ``ApiError``s."""
        async def endpoint(request: Request) -> Response:
            try:
                request.state.token = self._authorize(request, resource, write)
                return await handler(request, resource)
            except ApiError as exc:
                return self._error(exc)
            except Exception:  # a simulator bug: answer like the API's 500, keep the traceback in the log
                log.exception("commercetools: %s %s failed", request.method, request.url.path)
                return self.error_response(500, *_FAULTS[500])
        endpoint.__name__ = f"{handler.__name__}_{resource.replace('-', '_')}"
        return endpoint

    def _authorize(self, request: Request, resource: str, write: bool) -> auth.TokenInfo:
        info = self.tokens.verify(auth.bearer_token(request.headers.get("authorization")), self.now().timestamp())
        if not auth.allows(info.scopes, request.path_params["projectKey"], resource, write):
            needed = auth.required_scope(resource, write)
            message = f"Insufficient scope. One of the following scopes is missing: {needed}, manage_project"
            raise ApiError(403, "insufficient_scope", message, oauth=True)
        return info

    async def unknown_endpoint(self, request: Request) -> Response:
        return self._error(ApiError(404, "ResourceNotFound", f"The endpoint '{request.url.path}' was not found."))

    # ---- OAuth ----------------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        try:
            client_id = self._client_credentials(request, form)
            grant = form.get("grant_type")
            if grant != "client_credentials":
                raise ApiError(400, "unsupported_grant_type", f"Invalid grant type '{grant}'." if grant
                               else "Missing required parameter: grant_type.", oauth=True)
            scopes = self._granted_scopes(form.get("scope"))
        except ApiError as exc:
            return self._error(exc)
        token, ttl = self.tokens.issue(client_id, scopes, self.now().timestamp())
        return json_response({"access_token": token, "token_type": "Bearer", "expires_in": ttl,
                              "scope": " ".join(scopes)}, headers={"Cache-Control": "no-store"})

    def _client_credentials(self, request: Request, form: dict) -> str:
        basic = auth.basic_credentials(request.headers.get("authorization"))
        client_id, secret = basic or (form.get("client_id"), form.get("client_secret"))
        if client_id != self.credentials["client_id"] or secret != self.credentials["client_secret"]:
            raise ApiError(401, "invalid_client", auth.INVALID_CLIENT, oauth=True)
        return client_id

    def _granted_scopes(self, raw: str | None) -> list[str]:
        requested = auth.split_scopes(raw)
        if not requested:
            return list(self.client_scopes)
        bad = [s for s in requested if not auth.grantable(s, self.client_scopes, self.project_key)]
        if bad:
            raise ApiError(400, "invalid_scope", f"Illegal scope requested: '{bad[0]}'.", oauth=True)
        return requested

    # ---- reads ----------------------------------------------------------------------------------
    async def query_resources(self, request: Request, resource: str) -> Response:
        try:
            spec = query.parse_query(request.query_params.multi_items(), self.schemas[resource])
        except query.QueryError as exc:
            raise errors.invalid_input(str(exc)) from None
        coll = self.collections[resource]
        if request.method == "HEAD":
            return Response(status_code=200 if query.exists(coll, spec) else 404)
        return json_response(query.run_query(coll, spec, self.expand))

    async def get_by_id(self, request: Request, resource: str) -> Response:
        rec = self._by_id(resource, request.path_params["id"])
        return self._single(request, rec)

    async def get_by_key(self, request: Request, resource: str) -> Response:
        rec = self._by_key(resource, request)
        return self._single(request, rec)

    def _single(self, request: Request, rec: dict) -> Response:
        if request.method == "HEAD":
            return Response(status_code=200)
        expands = request.query_params.getlist("expand")
        return json_response(self.expand(rec, expands) if expands else rec)

    def _by_id(self, resource: str, resource_id: str) -> dict:
        rec = self.collections[resource].get(resource_id)
        if rec is None:
            raise errors.not_found_id(resource_id)
        return rec

    def _by_key(self, resource: str, request: Request) -> dict:
        segment, field = resources.KEY_ROUTES[resource]
        value = request.path_params[_param(segment)]
        rec = find_by_field(self.collections[resource], field, value)
        if rec is None:
            raise errors.not_found_key(field, value)
        return rec

    # ---- reference expansion ----------------------------------------------------------------------
    def expand(self, rec: dict, paths: list[str]) -> dict:
        """``expand=discountCodes[*].discountCode`` and the like: each Reference on the path gets
        ``obj`` (the referenced resource); unknown paths and dangling references are left alone."""
        for path in paths:
            rec = self._expand(rec, [p for p in path.split(".") if p])
        return rec

    def _expand(self, value: Any, segments: list[str]) -> Any:
        if not segments:
            return self._resolve_reference(value)
        if not isinstance(value, dict):
            return value
        head, rest = segments[0], segments[1:]
        name, each = (head[:-3], True) if head.endswith("[*]") else (head, False)
        if name not in value:
            return value
        sub = value[name]
        if each and isinstance(sub, list):
            return {**value, name: [self._expand(e, rest) for e in sub]}
        return {**value, name: self._expand(sub, rest)}

    def _resolve_reference(self, ref: Any) -> Any:
        if not isinstance(ref, dict) or "typeId" not in ref or "id" not in ref:
            return ref
        collection = resources.COLLECTION_OF_TYPE_ID.get(ref["typeId"])
        target = self.collections[collection].get(ref["id"]) if collection else None
        return {**ref, "obj": target} if target is not None else ref

    # ---- writes ---------------------------------------------------------------------------------
    async def update_by_id(self, request: Request, resource: str) -> Response:
        body = await _json_body(request)
        return self._update(request, resource, self._by_id(resource, request.path_params["id"]), body)

    async def update_by_key(self, request: Request, resource: str) -> Response:
        body = await _json_body(request)
        return self._update(request, resource, self._by_key(resource, request), body)

    def _update(self, request: Request, resource: str, rec: dict, body: Any) -> Response:
        ctx = updates.UpdateContext(self.collections[resource], self.collections["types"],
                                    resources.TYPE_IDS[resource])
        updated, changed = updates.apply_update(resource, rec, body, ctx)
        if changed:
            rec = self.collections[resource].put(self._stamp_change(updated, request.state.token.client_id))
        expands = request.query_params.getlist("expand")
        return json_response(self.expand(rec, expands) if expands else rec)

    async def create_type(self, request: Request, resource: str) -> Response:
        draft = validate_type_draft(await _json_body(request))
        types = self.collections["types"]
        if find_by_field(types, "key", draft["key"]) is not None:
            raise errors.duplicate_field("key", draft["key"])
        stamp = stamps.fmt_iso_millis_z(self.now())
        client = {"clientId": request.state.token.client_id, "isPlatformClient": False}
        record = {"id": self.new_id(), "version": 1, "createdAt": stamp, "lastModifiedAt": stamp,
                  "lastModifiedBy": client, "createdBy": client, **draft}
        return json_response(types.put(record), 201)


def _correlation(given: str | None = None) -> dict[str, str]:
    """``X-Correlation-ID``: the client's own, else a new one (the SDK copies it into its errors)."""
    return {"X-Correlation-ID": given or f"projects-{uuid.uuid4()}"}


def _param(segment: str) -> str:
    """Path parameter name for a ``<segment>=`` route (``order-number`` -> ``orderNumber``)."""
    head, *tail = segment.split("-")
    return head + "".join(t.title() for t in tail)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.invalid_json(f"Request body is not valid JSON: {exc}") from None


def find_by_field(coll, field: str, value: str) -> dict | None:
    """The record whose ``field`` equals ``value``, via an ordering the store caches until the
    next write (O(log n) per lookup)."""
    ordered = coll.sorted_by(f"field:{field}", lambda r: query.sort_value(field, r.get(field)))
    target = query.sort_value(field, value)
    i = bisect.bisect_left(ordered, target, key=lambda r: query.sort_value(field, r.get(field)))
    if i < len(ordered) and ordered[i].get(field) == value:
        return ordered[i]
    return None

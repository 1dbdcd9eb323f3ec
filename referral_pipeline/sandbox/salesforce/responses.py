"""Salesforce's HTTP conventions shared by the handlers: the error array envelope, reading JSON
bodies, the API versions served, and a route class that accepts an optional trailing slash
(simple-salesforce calls ``query/``, ``limits/``, ``sobjects/Contact/``) and answers a wrong
method with Salesforce's 405 body.
"""
from __future__ import annotations

import re
from typing import Any, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.simulator import json_response

MIN_VERSION, MAX_VERSION = 20, 64
SUPPORTED_VERSIONS = [f"{v}.0" for v in range(MIN_VERSION, MAX_VERSION + 1)]
DATA_PREFIX = "/services/data/v"


class SalesforceError(Exception):
    """An error answered as ``[{"message", "errorCode"[, "fields"]}]`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, self.fields)


def error_body(code: str, message: str, fields: list[str] | None = None) -> list[dict]:
    entry: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        entry["fields"] = fields
    return [entry]


def error_response(status: int, code: str, message: str, fields: list[str] | None = None,
                   headers: dict | None = None) -> Response:
    return json_response(error_body(code, message, fields), status, headers)


def not_found(message: str = "The requested resource does not exist") -> SalesforceError:
    return SalesforceError(404, "NOT_FOUND", message)


async def read_json(request: Request) -> Any:
    """The request body as JSON, or a 400 JSON_PARSER_ERROR like Salesforce's."""
    raw = await request.body()
    if not raw.strip():
        raise SalesforceError(400, "JSON_PARSER_ERROR", "The request body is either invalid or incomplete.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SalesforceError(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc.msg} at [line:{exc.lineno}, "
                              f"column:{exc.colno}]") from None


def api_version(request: Request) -> str:
    return request.path_params.get("version", "")


def require_version(request: Request, minimum: float, feature: str) -> None:
    """Resources that appeared in a given API version are 404 below it."""
    try:
        ok = float(api_version(request)) >= minimum
    except ValueError:
        ok = False
    if not ok:
        raise not_found(f"{feature} requires API version {minimum:.1f} or later")


def version_of_path(path: str) -> str | None:
    """``62.0`` for ``/services/data/v62.0/...``; None when the path is not under the data API."""
    if not path.startswith(DATA_PREFIX):
        return None
    return path[len(DATA_PREFIX):].split("/", 1)[0]


def endpoint(fn: Callable) -> Callable:
    """Turn ``SalesforceError`` raised by a handler into its response."""
    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except SalesforceError as err:
            return err.response()
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


class SfRoute(Route):
    """A route whose path also matches with a trailing slash, answering 405 in Salesforce's shape.
    The request-count template stays the path as written."""

    def __init__(self, path: str, handler: Callable, methods: list[str]):
        super().__init__(path, endpoint(handler), methods=methods)
        pattern = self.path_regex.pattern
        if pattern.endswith("$") and not path.endswith("/"):
            self.path_regex = re.compile(pattern[:-1] + "/?$")

    async def handle(self, scope, receive, send) -> None:
        if self.methods and scope["method"] not in self.methods:
            allowed = ",".join(sorted(m for m in self.methods if m != "HEAD"))
            response = error_response(405, "METHOD_NOT_ALLOWED",
                                      f"HTTP Method '{scope['method']}' not allowed. Allowed are {allowed}",
                                      headers={"Allow": allowed})
            await response(scope, receive, send)
            return
        await super().handle(scope, receive, send)

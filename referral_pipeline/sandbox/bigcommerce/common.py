"""Shared pieces of the BigCommerce endpoints: error envelopes, the API-version of a path, and
the v2 / v3 response shapes.

v3 errors are objects ``{"status", "title", "type", "errors": {...}}``; v2 errors are arrays
``[{"status", "message"}]``. v2 lists are bare arrays, and an empty list is ``204 No Content``.
"""
from __future__ import annotations

from typing import Any

from starlette.responses import Response

from ..core.simulator import json_response
from .params import ParamError

ERROR_TYPE = "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes"
V2, V3 = "v2", "v3"

_V2_MESSAGES = {
    400: "The request was invalid.",
    401: "No valid credentials were found in this request.",
    404: "The requested resource was not found.",
    413: "The requested limit is above the maximum.",
    429: "You have exceeded the request rate limit.",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class ApiError(Exception):
    """An error answer: HTTP status, v3 title / v2 message, and v3 ``errors`` details."""

    def __init__(self, status: int, title: str, errors: dict[str, str] | None = None):
        super().__init__(f"{status} {title}")
        self.status, self.title, self.errors = status, title, errors or {}

    @classmethod
    def from_param(cls, err: ParamError, version: str) -> "ApiError":
        if version == V2:
            return cls(err.status or 400, f"The field '{err.param}' is invalid: {err.message}")
        title = "The requested limit is above the maximum." if err.status == 413 else \
            "The filter or parameter was not valid."
        return cls(err.status or 422, title, {err.param: err.message})


def api_version(path: str) -> str:
    """``v2`` or ``v3`` from ``/stores/{hash}/v2/...`` (v3 for anything unrecognised)."""
    parts = path.split("/", 4)
    return V2 if len(parts) > 3 and parts[3] == V2 else V3


def v3_error_body(status: int, title: str, errors: dict | None = None) -> dict:
    body: dict[str, Any] = {"status": status, "title": title, "type": ERROR_TYPE}
    if errors is not None:
        body["errors"] = errors
    return body


def v2_error_body(status: int, message: str | None = None) -> list[dict]:
    return [{"status": status, "message": message or _V2_MESSAGES.get(status, "Error")}]


def error_response(version: str, status: int, title: str, errors: dict | None = None,
                   headers: dict | None = None) -> Response:
    if version == V2:
        return json_response(v2_error_body(status, title), status, headers)
    return json_response(v3_error_body(status, title, errors if errors is not None else {}), status, headers)


def v2_list(items: list) -> Response:
    """A v2 collection: a bare JSON array, or ``204 No Content`` with no body when empty."""
    if not items:
        return Response(status_code=204)
    return json_response(items)


def v3_collection(data: list, meta: dict | None = None) -> Response:
    return json_response({"data": data, "meta": meta if meta is not None else {}})


def v3_single(data: dict) -> Response:
    return json_response({"data": data, "meta": {}})

"""Friendbuy MAPI error envelope and the exception the simulator's helpers raise to produce it.

Every MAPI error body is ``{"error": <name>, "message": <details>, "code": 0, "reference": ""}``
(reference §5 and §1: ``code`` is ``0``, not the HTTP status). 5xx answers carry a reference id,
the string a merchant would quote to Friendbuy support.
"""
from __future__ import annotations

import uuid

from starlette.responses import Response

from ..core.simulator import json_response

ERROR_NAMES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class MapiError(Exception):
    """An error answer: HTTP status plus the envelope's message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def error_body(status: int, message: str) -> dict:
    reference = str(uuid.uuid4()) if status >= 500 else ""
    return {"error": ERROR_NAMES.get(status, "Error"), "message": message, "code": 0, "reference": reference}


def error_envelope(status: int, message: str, headers: dict | None = None) -> Response:
    return json_response(error_body(status, message), status, headers)


def bad_request(message: str = "Invalid input, object invalid") -> MapiError:
    return MapiError(400, message)


def unprocessable(message: str) -> MapiError:
    return MapiError(422, message)


def unauthorized() -> MapiError:
    return MapiError(401, "Unauthorized")

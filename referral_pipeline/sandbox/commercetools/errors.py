"""commercetools error envelopes: ``ErrorResponse`` / ``AuthErrorResponse`` bodies and ``ApiError``.

``{"statusCode": 400, "message": <first error's message>, "errors": [{"code": ..., "message": ...,
...extra}]}``; auth errors add the OAuth fields ``error`` (and ``error_description``). Handlers
raise ``ApiError``; the simulator turns it into the response.
"""
from __future__ import annotations

from typing import Any

import orjson


class ApiError(Exception):
    """An error the API answers with (status, code, message, extra fields of the error object)."""

    def __init__(self, status: int, code: str, message: str, oauth: bool = False,
                 description: str | None = None, headers: dict | None = None, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.oauth, self.description, self.headers, self.extra = oauth, description, headers or {}, extra

    def body(self) -> dict:
        return error_body(self.status, self.code, self.message, oauth=self.oauth,
                          description=self.description, **self.extra)


def error_body(status: int, code: str, message: str, oauth: bool = False, description: str | None = None,
               **extra: Any) -> dict:
    """An ``ErrorResponse``; with ``oauth`` an ``AuthErrorResponse`` (adds ``error`` and
    ``error_description``)."""
    body: dict[str, Any] = {"statusCode": status, "message": message,
                            "errors": [{"code": code, "message": message, **extra}]}
    if oauth:
        body["error"] = code
        description = description or (message if message != code else None)
        if description:
            body["error_description"] = description
    return body


# ---- common errors ------------------------------------------------------------------------------
def invalid_input(message: str) -> ApiError:
    return ApiError(400, "InvalidInput", message)


def invalid_json(detail: str) -> ApiError:
    return ApiError(400, "InvalidJsonInput", "Request body does not contain valid JSON.", detailedErrorMessage=detail)


def invalid_operation(message: str) -> ApiError:
    return ApiError(400, "InvalidOperation", message)


def not_found_id(resource_id: str) -> ApiError:
    return ApiError(404, "ResourceNotFound", f"The Resource with ID '{resource_id}' was not found.")


def not_found_key(what: str, value: str) -> ApiError:
    return ApiError(404, "ResourceNotFound", f"The Resource with {what} '{value}' was not found.")


def concurrent_modification(resource_id: str, expected: Any, current: int) -> ApiError:
    return ApiError(409, "ConcurrentModification",
                    f"Object {resource_id} has a different version than expected. "
                    f"Expected: {expected} - Actual: {current}.", currentVersion=current)


def referenced_not_found(type_id: str, ident: dict) -> ApiError:
    which = f"key '{ident['key']}'" if ident.get("key") is not None else f"ID '{ident.get('id')}'"
    extra = {"typeId": type_id, **({"key": ident["key"]} if ident.get("key") is not None else {"id": ident.get("id")})}
    return ApiError(400, "ReferencedResourceNotFound",
                    f"The referenced object of type '{type_id}' with {which} was not found. It either doesn't "
                    "exist, or it can't be accessed from this endpoint (e.g., if the endpoint filters by store "
                    "or customer account).", **extra)


def invalid_field(field: str, value: Any, message: str | None = None, allowed: list | None = None) -> ApiError:
    extra: dict[str, Any] = {"field": field, "invalidValue": value}
    if allowed is not None:
        extra["allowedValues"] = allowed
    return ApiError(400, "InvalidField", message or f"The value '{_show(value)}' is not valid for field '{field}'.",
                    **extra)


def required_field(field: str) -> ApiError:
    return ApiError(400, "RequiredField", f"A value is required for field '{field}'.", field=field)


def duplicate_field(field: str, value: Any) -> ApiError:
    return ApiError(400, "DuplicateField", f"A duplicate value '{_show(value)}' exists for field '{field}'.",
                    field=field, duplicateValue=value)


def _show(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()

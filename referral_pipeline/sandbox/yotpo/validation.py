"""Parsing and validation of Yotpo request bodies and query parameters.

Each ``parse_*`` function takes the decoded JSON body and returns the checked values, or raises
``InvalidRequest`` (HTTP 422, ``{"error": message}``). Cent amounts may be ints or numeric strings
(Yotpo's own examples send strings); anything else that is not a whole number is refused.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..core import stamps

CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_INT_RE = re.compile(r"^[+-]?\d+$")
_TRUE = {"true", "1", "yes", "t"}
_FALSE = {"false", "0", "no", "f", ""}


class InvalidRequest(ValueError):
    """A request Yotpo refuses: ``status`` and a message for ``{"error": ...}``."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


# ---- scalar fields ---------------------------------------------------------------------------
def whole_number(value: Any, field: str, *, minimum: int | None = 0) -> int:
    """An int or a string of digits (``"15000"``); bools and fractions are refused."""
    if isinstance(value, bool) or value is None:
        raise InvalidRequest(f"{field} must be an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _INT_RE.match(value.strip()):
        number = int(value.strip())
    else:
        raise InvalidRequest(f"{field} must be an integer, got {value!r}")
    if minimum is not None and number < minimum:
        raise InvalidRequest(f"{field} must be >= {minimum}, got {number}")
    return number


def required(body: dict, field: str) -> Any:
    value = body.get(field)
    if value is None or value == "":
        raise InvalidRequest(f"{field} is required")
    return value


def optional_cents(body: dict, field: str) -> int | None:
    value = body.get(field)
    return None if value is None or value == "" else whole_number(value, field)


def currency(value: Any, field: str) -> str:
    if not isinstance(value, str) or not CURRENCY_RE.match(value):
        raise InvalidRequest(f"{field} must be a three-letter ISO 4217 code such as USD, got {value!r}")
    return value


def email(value: Any, field: str = "email") -> str:
    if not isinstance(value, str) or "@" not in value.strip() or value.strip() != value:
        raise InvalidRequest(f"{field} must be an email address, got {value!r}")
    return value


def identifier(value: Any, field: str) -> str:
    """Ids (``order_id``, refund ``id``, customer ids) are strings; ints are accepted as text."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise InvalidRequest(f"{field} must be a non-empty string, got {value!r}")
    return str(value)


def boolean(value: Any, field: str) -> bool | None:
    """JSON bools, or the strings true/false/1/0 (query parameters, form bodies); None stays None."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidRequest(f"{field} must be true or false, got {value!r}")


def timestamp(value: Any, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return stamps.parse_any(str(value))
    except (ValueError, TypeError, OverflowError):
        raise InvalidRequest(f"{field} must be a date-time such as 2019-05-25 20:59:53, got {value!r}") from None


# ---- request bodies --------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderRequest:
    order_id: str
    customer_email: str
    customer_id: str | None
    total_cents: int
    currency_code: str | None
    status: str | None
    created_at: datetime | None


def parse_order(body: dict) -> OrderRequest:
    order_id = identifier(required(body, "order_id"), "order_id")
    customer_email = email(required(body, "customer_email"), "customer_email")
    total = whole_number(required(body, "total_amount_cents"), "total_amount_cents")
    code = body.get("currency_code")
    code = None if code is None else currency(code, "currency_code")
    for field in ("discount_amount_cents", "shipping_amount_cents", "tax_amount_cents", "total_refunded_cents"):
        optional_cents(body, field)
    _check_items(body.get("items"))
    if not isinstance(body.get("customer", {}) or {}, dict):
        raise InvalidRequest("customer must be an object")
    status = body.get("status")
    if status is not None and not isinstance(status, str):
        raise InvalidRequest(f"status must be a string, got {status!r}")
    customer_id = body.get("customer_id")
    return OrderRequest(order_id, customer_email,
                        None if customer_id in (None, "") else identifier(customer_id, "customer_id"),
                        total, code, status, timestamp(body.get("created_at"), "created_at"))


def _check_items(items: Any) -> None:
    if items is None:
        return
    if not isinstance(items, list):
        raise InvalidRequest("items must be an array")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidRequest(f"items[{i}] must be an object")
        if item.get("price_cents") is not None:
            whole_number(item["price_cents"], f"items[{i}].price_cents")
        if item.get("quantity") is not None:
            whole_number(item["quantity"], f"items[{i}].quantity", minimum=1)


@dataclass(frozen=True)
class RefundRequest:
    refund_id: str | None
    order_id: str
    amount_cents: int
    currency: str | None


def refund_id(body: dict) -> str | None:
    value = body.get("id")
    return None if value in (None, "") else identifier(value, "id")


def parse_refund(body: dict, currency_required: bool) -> RefundRequest:
    order_id = identifier(required(body, "order_id"), "order_id")
    amount = whole_number(required(body, "total_amount_cents"), "total_amount_cents", minimum=1)
    code = body.get("currency")
    if code is None and currency_required:
        raise InvalidRequest("currency is required on multi-currency accounts")
    if body.get("items") is not None and not isinstance(body["items"], list):
        raise InvalidRequest("items must be an array")
    return RefundRequest(refund_id(body), order_id, amount, None if code is None else currency(code, "currency"))


@dataclass(frozen=True)
class AdjustmentRequest:
    amount: int
    apply_to_points_earned: bool
    history_title: str | None
    visible_to_customer: bool


def parse_adjustment(body: dict) -> AdjustmentRequest:
    amount = whole_number(required(body, "point_adjustment_amount"), "point_adjustment_amount", minimum=None)
    title = body.get("history_title")
    visible = boolean(body.get("visible_to_customer"), "visible_to_customer")
    return AdjustmentRequest(amount, bool(boolean(body.get("apply_adjustment_to_points_earned"),
                                                  "apply_adjustment_to_points_earned")),
                             None if title is None else str(title), True if visible is None else visible)


CUSTOMER_LOOKUP_FIELDS = ("customer_email", "customer_id", "phone_number", "pos_account_id")


def customer_lookup(values: dict) -> dict[str, str]:
    """The customer identifiers present in a query or body (at least one is required)."""
    found = {f: str(values[f]) for f in CUSTOMER_LOOKUP_FIELDS if values.get(f) not in (None, "")}
    if not found:
        raise InvalidRequest("customer_email or customer_id is required")
    return found


def page_params(query, default_per_page: int, max_per_page: int) -> tuple[int, int, datetime | None]:
    """``page`` (from 1), ``per_page`` (clamped to the maximum) and ``last_seen_at`` of /customers/all."""
    page = whole_number(query.get("page", "1"), "page", minimum=1)
    per_page = whole_number(query.get("per_page", str(default_per_page)), "per_page", minimum=1)
    return page, min(per_page, max_per_page), timestamp(query.get("last_seen_at"), "last_seen_at")

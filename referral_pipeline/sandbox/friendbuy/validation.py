"""Request-body validation of the MAPI write endpoints (reference §5, §6).

One schema per endpoint: field -> (check, required). A check returns ``None`` when the value is
acceptable or a Joi-style problem (``"amount" must be a number``); all problems of a body are
reported together in one 422 message. ``null`` is accepted for optional fields (Segment keeps
nulls) and unknown fields are kept (Segment sends a few undocumented ones). ``additionalProperties``
is never a reason to fail: offending entries (non-string values, values over 128 characters, more
than 10 entries, or a non-object) are dropped silently (reference §1).
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import MapiError

Check = Callable[[str, Any], "str | None"]

MAX_ADDITIONAL_PROPERTIES = 10
MAX_ADDITIONAL_VALUE_LENGTH = 128
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")


def is_string(name: str, value: Any) -> str | None:
    return None if isinstance(value, str) else f'"{name}" must be a string'


def is_nonempty_string(name: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return f'"{name}" must be a string'
    return None if value.strip() else f'"{name}" is not allowed to be empty'


def is_email(name: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return f'"{name}" must be a string'
    return None if _EMAIL.match(value) else f'"{name}" must be a valid email'


def is_boolean(name: str, value: Any) -> str | None:
    return None if isinstance(value, bool) else f'"{name}" must be a boolean'


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_number(name: str, value: Any) -> str | None:
    return None if _is_number(value) else f'"{name}" must be a number'


def is_amount(name: str, value: Any) -> str | None:
    if not _is_number(value):
        return f'"{name}" must be a number'
    return None if value >= 0 else f'"{name}" must be greater than or equal to 0'


def is_integer(name: str, value: Any, low: int | None = None, high: int | None = None) -> str | None:
    if not _is_number(value) or float(value) != int(value):
        return f'"{name}" must be an integer'
    if low is not None and value < low:
        return f'"{name}" must be greater than or equal to {low}'
    if high is not None and value > high:
        return f'"{name}" must be less than or equal to {high}'
    return None


def is_age(name: str, value: Any) -> str | None:
    return is_integer(name, value, 0, 150)


def is_currency(name: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return f'"{name}" must be a string'
    return None if _CURRENCY.match(value) else f'"{name}" must be a 3-letter currency code'


def is_timezone(name: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return f'"{name}" must be a string'
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return f'"{name}" must be a valid IANA time zone'
    return None


def is_birthday(name: str, value: Any) -> str | None:
    if not isinstance(value, dict):
        return f'"{name}" must be of type object'
    for part, low, high, required in (("day", 1, 31, True), ("month", 1, 12, True), ("year", 1000, 9999, False)):
        if part not in value or value[part] is None:
            if required:
                return f'"{name}.{part}" is required'
            continue
        problem = is_integer(f"{name}.{part}", value[part], low, high)
        if problem:
            return problem
    return None


def is_string_list(name: str, value: Any) -> str | None:
    if not isinstance(value, list):
        return f'"{name}" must be an array'
    bad = next((i for i, v in enumerate(value) if not isinstance(v, str)), None)
    return None if bad is None else f'"{name}[{bad}]" must be a string'


_PRODUCT_FIELDS: dict[str, Check] = {"sku": is_nonempty_string, "name": is_string, "quantity": is_integer,
                                     "price": is_number, "description": is_string, "category": is_string,
                                     "url": is_string, "imageUrl": is_string}


def is_products(name: str, value: Any) -> str | None:
    if not isinstance(value, list):
        return f'"{name}" must be an array'
    for i, product in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(product, dict):
            return f'"{where}" must be of type object'
        if product.get("sku") is None:
            return f'"{where}.sku" is required'
        for field, check in _PRODUCT_FIELDS.items():
            if product.get(field) is not None:
                problem = check(f"{where}.{field}", product[field])
                if problem:
                    return problem
    return None


def _schema(required: dict[str, Check], optional: dict[str, Check]) -> dict[str, tuple[Check, bool]]:
    out = {name: (check, False) for name, check in optional.items()}
    out.update({name: (check, True) for name, check in required.items()})
    return out


_PERSON = {"firstName": is_string, "lastName": is_string, "isNewCustomer": is_boolean,
           "ipAddress": is_string, "userAgent": is_string}
_ATTRIBUTION = {"couponCode": is_string, "attributionId": is_string, "referralCode": is_string}

CUSTOMER = _schema({"email": is_email, "customerId": is_nonempty_string},
                   {**_PERSON, "age": is_age, "gender": is_string, "zipCode": is_string, "state": is_string,
                    "city": is_string, "category": is_string, "country": is_string, "language": is_string,
                    "timezone": is_timezone, "birthday": is_birthday, "loyaltyStatus": is_string})
PURCHASE = _schema({"orderId": is_nonempty_string, "customerId": is_nonempty_string, "amount": is_amount,
                    "currency": is_currency},
                   {**_PERSON, **_ATTRIBUTION, "email": is_email, "products": is_products,
                    "giftCardCodes": is_string_list})
SIGN_UP = _schema({"email": is_email, "customerId": is_nonempty_string},
                  {**_PERSON, **_ATTRIBUTION, "timezone": is_timezone, "birthday": is_birthday, "age": is_age,
                   "loyaltyStatus": is_string, "campaignId": is_string})
CUSTOM = _schema({"email": is_email, "eventType": is_nonempty_string},
                 {**_PERSON, **_ATTRIBUTION, "customerId": is_string, "deduplicationId": is_string})


def clean_additional_properties(value: Any) -> dict[str, str] | None:
    """The entries Friendbuy keeps: string values of at most 128 characters, the first 10 of them.
    ``None`` when the value is not an object at all (the whole property is dropped)."""
    if not isinstance(value, dict):
        return None
    kept: dict[str, str] = {}
    for key, item in value.items():
        if len(kept) >= MAX_ADDITIONAL_PROPERTIES:
            break
        if isinstance(item, str) and len(item) <= MAX_ADDITIONAL_VALUE_LENGTH:
            kept[key] = item
    return kept


def validate_body(body: Any, schema: dict[str, tuple[Check, bool]]) -> dict:
    """The accepted body (``additionalProperties`` cleaned), or ``MapiError`` 400/422."""
    if not isinstance(body, dict):
        raise MapiError(400, "Invalid input, object invalid")
    problems = []
    for name, (check, required) in schema.items():
        value = body.get(name)
        if value is None:
            if required:
                problems.append(f'"{name}" is required')
            continue
        problem = check(name, value)
        if problem:
            problems.append(problem)
    if problems:
        raise MapiError(422, "; ".join(problems))
    accepted = dict(body)
    if "additionalProperties" in accepted:
        cleaned = clean_additional_properties(accepted["additionalProperties"])
        if cleaned is None:
            del accepted["additionalProperties"]
        else:
            accepted["additionalProperties"] = cleaned
    return accepted

"""Query parameters and page tokens of the ``/v1/analytics/*`` exports (reference §7.1).

A request carries either ``fromDate`` + ``toDate`` (ISO datetimes; ``fromDate`` inclusive,
``toDate`` exclusive) with an optional ``pageSize`` and report filters, or a ``pageToken``. The
token is unpadded base64url JSON ``{searchAfter: [epochMillis, rowId], fromDate, toDate, pageSize,
zone}`` (plus ``filters`` when the first request had any): window, size and filters come from the
token and cannot change. ``epochMillis`` carries a fraction when a row's stamp has sub-millisecond
digits, so resuming is exact. Unknown parameters are refused (there is no ``limit``).
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from ..core import stamps
from .errors import MapiError
from .settings import DEFAULT_PAGE_SIZE

COMMON_PARAMS = frozenset({"fromDate", "toDate", "pageToken", "pageSize", "zone"})


@dataclass(frozen=True)
class AnalyticsQuery:
    """One page request, resolved: the window in microseconds, size, filters and resume point."""

    from_date: str
    to_date: str
    from_micros: int
    to_micros: int
    page_size: int
    zone: str
    filters: tuple[tuple[str, str], ...] = ()
    search_after: tuple[int, str] | None = None  # (stamp micros, row key) of the last row served


def _unprocessable(message: str) -> MapiError:
    return MapiError(422, message)


def parse_date(name: str, value: str, zone: str) -> int:
    """Microseconds since the epoch of an ISO-8601 date or datetime (naive ones are in ``zone``)."""
    text = value.strip()
    if not text or not text[0].isdigit():
        raise _unprocessable(f'"{name}" must be a valid ISO 8601 date')
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _unprocessable(f'"{name}" must be a valid ISO 8601 date') from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    return stamps.to_micros(parsed)


def parse_zone(value: str | None) -> str:
    if value in (None, ""):
        return "UTC"
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _unprocessable('"zone" must be a valid IANA time zone') from None
    return value


def parse_page_size(value: str | None, max_page_size: int) -> int:
    if value in (None, ""):
        return DEFAULT_PAGE_SIZE
    text = str(value).strip()
    if not text.isdigit():
        raise _unprocessable('"pageSize" must be an integer')
    size = int(text)
    if not 1 <= size <= max_page_size:
        raise _unprocessable(f'"pageSize" must be between 1 and {max_page_size}')
    return size


def parse_query(params: Mapping[str, str], filter_names: frozenset[str], max_page_size: int,
                enums: Mapping[str, tuple[str, ...]] | None = None) -> AnalyticsQuery:
    """Resolve the query string of one analytics request, or raise ``MapiError(422)``."""
    unknown = sorted(set(params) - COMMON_PARAMS - filter_names)
    if unknown:
        raise _unprocessable(f'"{unknown[0]}" is not allowed')
    token = params.get("pageToken")
    if token:
        return decode_page_token(token, max_page_size, filter_names)
    if not params.get("fromDate") or not params.get("toDate"):
        raise _unprocessable('"fromDate" and "toDate" are required unless "pageToken" is given')
    zone = parse_zone(params.get("zone"))
    from_micros = parse_date("fromDate", params["fromDate"], zone)
    to_micros = parse_date("toDate", params["toDate"], zone)
    if to_micros < from_micros:
        raise _unprocessable('"toDate" must be greater than or equal to "fromDate"')
    filters = _parse_filters(params, filter_names, enums or {})
    return AnalyticsQuery(params["fromDate"], params["toDate"], from_micros, to_micros,
                          parse_page_size(params.get("pageSize"), max_page_size), zone, filters)


def _parse_filters(params: Mapping[str, str], filter_names: frozenset[str],
                   enums: Mapping[str, tuple[str, ...]]) -> tuple[tuple[str, str], ...]:
    filters = []
    for name in sorted(filter_names & set(params)):
        value = params[name]
        if value == "":
            raise _unprocessable(f'"{name}" is not allowed to be empty')
        if name in enums and value not in enums[name]:
            raise _unprocessable(f'"{name}" must be one of [{", ".join(enums[name])}]')
        filters.append((name, value))
    return tuple(filters)


def _millis(micros: int) -> int | float:
    return micros // 1000 if micros % 1000 == 0 else micros / 1000


def encode_page_token(query: AnalyticsQuery, last_micros: int, last_key: str) -> str:
    body = {"searchAfter": [_millis(last_micros), last_key], "fromDate": query.from_date,
            "toDate": query.to_date, "pageSize": query.page_size, "zone": query.zone}
    if query.filters:
        body["filters"] = dict(query.filters)
    return base64.urlsafe_b64encode(orjson.dumps(body)).rstrip(b"=").decode("ascii")


def decode_page_token(token: str, max_page_size: int, filter_names: frozenset[str] = frozenset()) -> AnalyticsQuery:
    """The query a ``nextPageToken`` stands for; 422 when it is not one of ours."""
    invalid = _unprocessable('"pageToken" is invalid')
    try:
        body = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise invalid from None
    if not isinstance(body, dict):
        raise invalid
    after = body.get("searchAfter")
    page_size = body.get("pageSize")
    filters = body.get("filters", {})
    if not (isinstance(after, list) and len(after) == 2 and isinstance(after[0], (int, float))
            and not isinstance(after[0], bool) and isinstance(after[1], str)
            and isinstance(body.get("fromDate"), str) and isinstance(body.get("toDate"), str)
            and isinstance(page_size, int) and 1 <= page_size <= max_page_size
            and isinstance(filters, dict) and set(filters) <= filter_names
            and all(isinstance(v, str) for v in filters.values())):
        raise invalid
    try:
        zone = parse_zone(body.get("zone"))
        from_micros = parse_date("fromDate", body["fromDate"], zone)
        to_micros = parse_date("toDate", body["toDate"], zone)
    except MapiError:
        raise invalid from None
    return AnalyticsQuery(body["fromDate"], body["toDate"], from_micros, to_micros, page_size, zone,
                          tuple(sorted(filters.items())), (round(after[0] * 1000), after[1]))

"""Query-parameter parsers of the BigCommerce simulator (pure functions, no HTTP).

BigCommerce v3 filters look like ``date_modified:min=2024-05-14T09:34:00``, ``id:in=1,2,3`` and
``sort=date_modified:asc``; v2 filters like ``min_date_modified=Thu, 20 Apr 2017 11:32:00 -0400``.
Every parser raises ``ParamError`` (parameter name, message, HTTP status) on a bad value; the
endpoints turn it into the API's own error body (v3 422, v2 400, 413 for a ``limit`` above 250).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone

from ..core import stamps

UTC = timezone.utc
MAX_LIMIT = 250
DAY_MICROS = 86_400_000_000

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UNIX = re.compile(r"^\d{9,11}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$")


class ParamError(ValueError):
    """A query parameter (or body field) with an unusable value."""

    def __init__(self, param: str, message: str, status: int | None = None):
        super().__init__(f"{param}: {message}")
        self.param, self.message, self.status = param, message, status


@dataclass(frozen=True)
class Instant:
    """A parsed filter date: ``micros`` since the epoch; ``date_only`` when given as YYYY-MM-DD."""

    micros: int
    date_only: bool = False


def parse_int(value: str, param: str, minimum: int | None = None) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ParamError(param, f"must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ParamError(param, f"must be at least {minimum}, got {number}")
    return number


def parse_number(value: str, param: str) -> float:
    try:
        return float(str(value).strip())
    except ValueError:
        raise ParamError(param, f"must be a number, got {value!r}") from None


def parse_str_list(value: str) -> list[str]:
    """``a,b, c`` -> ``["a", "b", "c"]`` (empty items dropped)."""
    return [item.strip() for item in str(value).split(",") if item.strip()]


def parse_int_list(value: str, param: str) -> list[int]:
    items = parse_str_list(value)
    if not items:
        raise ParamError(param, "must list at least one integer")
    return [parse_int(item, param) for item in items]


def _micros(dt: datetime) -> int:
    return stamps.to_micros(dt)


def parse_v3_instant(value: str, param: str) -> Instant:
    """A v3 filter date: ``2024-05-14``, ``2024-05-14T09:34:00`` (UTC when no offset is given),
    with ``Z``/offset/fraction, or a UNIX timestamp in seconds."""
    s = str(value).strip()
    if _DATE_ONLY.match(s):
        try:
            day = date.fromisoformat(s)
        except ValueError:
            raise ParamError(param, f"is not a valid date: {value!r}") from None
        return Instant(_micros(datetime(day.year, day.month, day.day, tzinfo=UTC)), True)
    if _UNIX.match(s):
        return Instant(int(s) * 1_000_000)
    if _ISO_DATETIME.match(s):
        try:
            return Instant(_micros(stamps.parse_any(s.replace(" ", "T", 1))))
        except ValueError:
            pass
    raise ParamError(param, f"must be an ISO 8601 date or date-time, got {value!r}")


def parse_v2_instant(value: str, param: str) -> Instant:
    """A v2 filter date in RFC 2822 (``Thu, 20 Apr 2017 11:32:00 -0400``) or ISO 8601
    (``2017-04-20T11:32:00.000-04:00``, ``2017-04-20``)."""
    s = str(value).strip()
    try:
        if s[:1].isalpha():
            return Instant(_micros(stamps.parse_any(s)))
        if not _UNIX.match(s):
            return parse_v3_instant(s, param)
    except (ValueError, TypeError, IndexError):  # ParamError is a ValueError too
        pass
    raise ParamError(param, f"must be an RFC 2822 or ISO 8601 date, got {value!r}")


def day_range(instant: Instant) -> tuple[int, int]:
    """Inclusive micros range of an equality filter: the whole day for a date, else the second."""
    if instant.date_only:
        return instant.micros, instant.micros + DAY_MICROS - 1
    start = instant.micros - instant.micros % 1_000_000
    return start, start + 999_999


def parse_sort(value: str | None, allowed: tuple[str, ...], param: str = "sort") -> tuple[str, bool] | None:
    """``field``, ``field:asc`` or ``field:desc`` -> (field, descending); None when absent."""
    if value is None or not str(value).strip():
        return None
    field, _, direction = str(value).strip().partition(":")
    direction = direction.lower() or "asc"
    if field not in allowed or direction not in ("asc", "desc"):
        raise ParamError(param, f"must be one of {', '.join(f'{f}:asc|desc' for f in allowed)}; got {value!r}")
    return field, direction == "desc"


def parse_include(value: str | None, allowed: tuple[str, ...], param: str = "include") -> frozenset[str]:
    if value is None:
        return frozenset()
    items = parse_str_list(value)
    unknown = [item for item in items if item not in allowed]
    if unknown:
        raise ParamError(param, f"unknown value(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return frozenset(items)


@dataclass(frozen=True)
class Paging:
    page: int
    limit: int


def parse_paging(params, default_limit: int = 50, max_limit: int = MAX_LIMIT,
                 over_max: str = "error") -> Paging:
    """``page`` (default 1) and ``limit`` (default 50). A limit above ``max_limit`` is a 413 (the
    status BigCommerce documents for "limit above the maximum"), or is clamped when ``over_max`` is
    ``"clamp"``."""
    page = parse_int(params["page"], "page", minimum=1) if params.get("page") not in (None, "") else 1
    if params.get("limit") in (None, ""):
        return Paging(page, default_limit)
    raw = str(params["limit"]).strip()
    try:
        limit = int(float(raw)) if re.fullmatch(r"\d+(\.0+)?", raw) else int(raw)
    except ValueError:
        raise ParamError("limit", f"must be an integer, got {params['limit']!r}") from None
    if limit < 1:
        raise ParamError("limit", f"must be at least 1, got {limit}")
    if limit > max_limit:
        if over_max == "clamp":
            return Paging(page, max_limit)
        raise ParamError("limit", f"must be at most {max_limit}, got {limit}", status=413)
    return Paging(page, limit)


def joined(params, name: str) -> str | None:
    """A parameter given once or repeated (``include=a&include=b``), joined with commas."""
    values = params.getlist(name) if hasattr(params, "getlist") else ([params[name]] if name in params else [])
    values = [v for v in values if v is not None]
    return ",".join(values) if values else None


def parse_bool(value: str, param: str) -> bool:
    s = str(value).strip().lower()
    if s in ("true", "1"):
        return True
    if s in ("false", "0"):
        return False
    raise ParamError(param, f"must be true or false, got {value!r}")

"""Timestamp formats used by the simulated APIs, and parsing them to a sortable integer.

Every collection orders its records by a modification stamp; the formats differ per API
(Salesforce ``2024-01-01T00:00:00.000+0000``, commercetools ``...000Z``, BigCommerce v2 RFC 2822,
BigCommerce v3 ``...Z``). ``to_micros`` accepts all of them.
"""
from __future__ import annotations

import email.utils
from datetime import datetime, timezone

UTC = timezone.utc


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_any(value: str) -> datetime:
    """Parse ISO-8601 (with ``Z``, ``+0000`` or ``+00:00``), a date, or RFC 2822 into aware UTC."""
    s = str(value).strip()
    if not s:
        raise ValueError("empty timestamp")
    if s[0].isalpha():  # RFC 2822: "Thu, 20 Apr 2017 11:32:00 +0000"
        dt = email.utils.parsedate_to_datetime(s)
    else:
        t = s.replace("Z", "+00:00")
        if len(t) >= 5 and t[-5] in "+-" and t[-3] != ":" and "T" in t:  # +0000 -> +00:00
            t = t[:-2] + ":" + t[-2:]
        dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def to_micros(value) -> int:
    """Sortable integer (microseconds since epoch) for a stamp string or datetime."""
    dt = value if isinstance(value, datetime) else parse_any(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def fmt_salesforce(dt: datetime) -> str:
    """``2024-01-01T00:00:00.000+0000`` (SystemModstamp, CreatedDate)."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def fmt_iso_millis_z(dt: datetime) -> str:
    """``2024-01-01T00:00:00.000Z`` (commercetools, Friendbuy)."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def fmt_iso_seconds_z(dt: datetime) -> str:
    """``2024-01-01T00:00:00Z`` (BigCommerce v3)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_rfc2822(dt: datetime) -> str:
    """``Thu, 20 Apr 2017 11:32:00 +0000`` (BigCommerce v2)."""
    return email.utils.format_datetime(dt.astimezone(UTC).replace(microsecond=0)).replace("-0000", "+0000")

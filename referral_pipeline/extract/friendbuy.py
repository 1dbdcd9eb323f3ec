"""Incremental extraction of the Friendbuy analytics exports (``/v1/analytics/<report>``).

Each export is read by ``createdOn`` window: ``fromDate`` (inclusive) = stored cursor − overlap,
or ``EARLIEST`` on a first run / full refresh; ``toDate`` (exclusive) = now, or the end of a
backfill window. Pages are followed by ``nextPageToken`` (the token pins the window, so rows
created during the read wait for the next run) and streamed one at a time. The cursor is the
greatest ``createdOn`` landed (with its key as tie-breaker); because ``fromDate`` is inclusive
the next run re-reads rows at that instant, and the overlap re-reads late-indexed rows — both
merge into the same keys, so nothing is lost or duplicated.

Export rows carry no id. The primary key is the row's own ``id`` when Friendbuy sends one, else
``row_key``: a hash of the row's canonical JSON (keys sorted) without the display names that
Friendbuy renders at read time (``campaignName``, ``advocateName``, ``friendName``, ``name``).
Re-reading the same event therefore gives the same key, and a renamed campaign updates the row
in place instead of duplicating it. Two rows identical in every other field are one record.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import orjson

from ..clients.friendbuy import MAX_PAGE_SIZE, FriendbuyClient
from ..warehouse.landing import Cursor
from .base import Page, cursor_from_records

# Before any Friendbuy data. Earlier than the epoch on purpose: rows whose createdOn cannot be
# parsed sort before every valid stamp in the export, so a first run still receives them and
# staging quarantines them (``unparseable_date``).
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
DISPLAY_FIELDS = frozenset({"campaignName", "advocateName", "friendName", "name"})

# raw entity name -> (export path under /v1/analytics/, staging kind)
REPORTS: dict[str, tuple[str, str]] = {
    "shares": ("shares", "share"),
    "clicks": ("clicks", "click"),
    "account_sign_ups": ("account-sign-ups", "signup"),
    "purchases": ("purchases", "purchase"),
    "distributed_advocate_rewards": ("distributed-advocate-rewards", "advocate_reward"),
    "distributed_friend_incentives": ("distributed-friend-incentives", "friend_incentive"),
    "widget_views": ("widget-views", "widget_view"),
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def format_mapi_date(dt: datetime) -> str:
    """``2024-01-01T00:00:00.000Z``: UTC with milliseconds, floored (never narrows an inclusive start)."""
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_created_on(value: Any) -> datetime | None:
    """``createdOn`` as an aware UTC datetime; None when absent; ``ValueError`` when unparseable.
    ISO-8601 only (what MAPI documents); a stamp without offset is UTC, the exports' default zone."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"createdOn is not a string: {value!r}")
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def row_key(row: dict) -> str:
    """Stable key of an id-less export row: blake2b-128 of its canonical JSON minus display names."""
    identity = {k: v for k, v in row.items() if k not in DISPLAY_FIELDS}
    return hashlib.blake2b(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


@dataclass
class FriendbuyExtractor:
    """One analytics export of one Friendbuy account (``source`` = instance id)."""

    client: FriendbuyClient
    source: str
    entity: str
    page_size: int = MAX_PAGE_SIZE
    now: Callable[[], datetime] = field(default=utcnow)

    @property
    def report(self) -> str:
        return REPORTS[self.entity][0]

    def window(self, since: Cursor, window_end: datetime | None) -> tuple[datetime, datetime]:
        start = since.value or EARLIEST
        return start, window_end or self.now()

    def pages(self, since: Cursor, window_end: datetime | None = None) -> Iterator[Page]:
        start, end = self.window(since, window_end)
        if end <= start:
            return
        for page in self.client.iter_analytics(self.report, format_mapi_date(start), format_mapi_date(end),
                                               self.page_size):
            yield Page(page.results, cursor_from_records(page.results, self))

    def pk_of(self, record: dict) -> str:
        own = record.get("id")
        if isinstance(own, (str, int)) and not isinstance(own, bool) and str(own) != "":
            return str(own)
        return row_key(record)

    def stamp_of(self, record: dict) -> datetime | None:
        return parse_created_on(record.get("createdOn"))

    def deleted_of(self, record: dict) -> bool:
        return False  # the exports are append-only event logs

    def request_stats(self) -> dict[str, Any]:
        return self.client.stats.as_metadata()


def make_extractor(entity: str) -> Callable[[FriendbuyClient, Any], FriendbuyExtractor]:
    """``EntityDef.make_extractor`` for one export: (client, FriendbuyInstance) -> extractor."""
    if entity not in REPORTS:
        raise KeyError(f"unknown Friendbuy export {entity!r}")

    def build(client: FriendbuyClient, instance: Any) -> FriendbuyExtractor:
        page_size = getattr(instance, "page_size", None) or MAX_PAGE_SIZE
        return FriendbuyExtractor(client, instance.id, entity, page_size=page_size)

    return build

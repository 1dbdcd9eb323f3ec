"""The ``/v1/analytics/*`` exports: which reports exist, their filters, and serving one page.

Rows are walked in (``createdOn``, row key) order with the collection's stamp index, starting at
``fromDate`` or just after the token's ``searchAfter`` position and stopping at ``toDate``
(exclusive), after ``pageSize`` + 1 matches (the extra one only decides whether a
``nextPageToken`` is due). Filters are evaluated lazily during the walk. ``totalResults`` is two
bisections of the index without filters; a filtered count is one scan of the window, cached until
the collection changes. The synthetic row key is never served.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

from ..core.store import Collection
from .paging import AnalyticsQuery, encode_page_token


@dataclass(frozen=True)
class Report:
    """One analytics export: its collection name (= URL segment) and accepted filters."""

    name: str
    filters: frozenset[str]
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)


REPORTS: dict[str, Report] = {r.name: r for r in (
    Report("widget-views", frozenset({"campaignId", "widgetName", "widgetType"}),
           {"widgetType": ("advocateShare", "emailCapture")}),
    Report("shares", frozenset({"campaignId", "advocateEmail", "advocateCustomerId", "channel"})),
    Report("clicks", frozenset({"campaignId", "channel"})),
    Report("account-sign-ups", frozenset({"campaignId", "customerId", "email"})),
    Report("purchases", frozenset({"campaignId", "customerId", "email"})),
    Report("distributed-advocate-rewards", frozenset({"campaignId", "advocateCustomerId", "advocateEmail"})),
    Report("distributed-friend-incentives", frozenset({"campaignId", "friendCustomerId", "friendEmail"})),
    Report("email-captures", frozenset({"campaignId", "emailCaptureType", "email"}),
           {"emailCaptureType": ("advocate", "friend")}),
)}

ROW_KEY = "id"


def synthetic_key(collection: str, n: int) -> str:
    """Key of a row the simulator creates (fixture rows get ``<collection>-<line>`` from the loader)."""
    return f"{collection}-sim-{n:09d}"


def _synthetic_key_pattern(collection: str) -> re.Pattern:
    return re.compile(rf"{re.escape(collection)}-(?:sim-)?\d+")


def _matches(row: dict, filters: tuple[tuple[str, str], ...]) -> bool:
    for name, wanted in filters:
        value = row.get(name)
        if value is None:
            return False
        if "mail" in name:  # email filters are case-insensitive
            if str(value).casefold() != wanted.casefold():
                return False
        elif str(value) != wanted:
            return False
    return True


class AnalyticsExports:
    """Serves pages of the analytics collections of one simulator."""

    def __init__(self, collections: dict[str, Collection]):
        self.collections = collections
        self._key_patterns = {name: _synthetic_key_pattern(name) for name in REPORTS}
        self._generation: dict[str, int] = {name: 0 for name in REPORTS}
        self._count_cache: dict[tuple, tuple[int, int]] = {}

    def touched(self, collection: str) -> None:
        """Call after any write to an analytics collection (invalidates cached counts)."""
        if collection in self._generation:
            self._generation[collection] += 1

    def public_row(self, collection: str, row: dict) -> dict:
        """The row as the API serves it: without the synthetic key."""
        key = row.get(ROW_KEY)
        if isinstance(key, str) and self._key_patterns[collection].fullmatch(key):
            return {k: v for k, v in row.items() if k != ROW_KEY}
        return row

    def page(self, report: Report, query: AnalyticsQuery) -> dict[str, Any]:
        coll = self.collections[report.name]
        rows: list[dict] = []
        more = False
        for row in self._walk(coll, query):
            if len(rows) == query.page_size:
                more = True
                break
            rows.append(row)
        body: dict[str, Any] = {}
        if more:
            last = rows[-1]
            body["nextPageToken"] = encode_page_token(query, coll.stamp_micros(last), last[ROW_KEY])
        body["totalResults"] = self._total(report.name, coll, query)
        body["results"] = [self.public_row(report.name, row) for row in rows]
        return body

    def _walk(self, coll: Collection, query: AnalyticsQuery) -> Iterator[dict]:
        if query.search_after is None:
            rows = coll.iter_by_stamp(query.from_micros, inclusive=True)
        else:
            rows = coll.iter_by_stamp(query.search_after[0], after_key=query.search_after[1])
        for row in rows:
            micros = coll.stamp_micros(row)
            if micros >= query.to_micros:
                return
            if micros < query.from_micros:
                continue
            if not query.filters or _matches(row, query.filters):
                yield row

    def _total(self, name: str, coll: Collection, query: AnalyticsQuery) -> int:
        if not query.filters:
            return _count_in_window(coll, query.from_micros, query.to_micros)
        key = (name, query.from_micros, query.to_micros, query.filters)
        generation = self._generation[name]
        cached = self._count_cache.get(key)
        if cached is not None and cached[0] == generation:
            return cached[1]
        count = sum(1 for _ in self._walk(coll, replace(query, search_after=None)))
        if len(self._count_cache) > 1000:
            self._count_cache.clear()
        self._count_cache[key] = (generation, count)
        return count


def _count_in_window(coll: Collection, from_micros: int, to_micros: int) -> int:
    """Rows with ``from <= stamp < to``: two bisections of the stamp index.

    ``Collection`` has no public range count, so this reads its sorted ``(micros, keysort, key)``
    index directly (see docs/sandbox/friendbuy.md)."""
    index = coll._ensure_stamp_index()  # noqa: SLF001 - no public hook for a range count
    return bisect.bisect_left(index, (to_micros,)) - bisect.bisect_left(index, (from_micros,))

"""Running SOQL against the store, and REST query cursors.

``select_rows`` walks the (SystemModstamp, Id) index from the query's stamp lower bound when the
WHERE clause implies one, stops at LIMIT when ORDER BY agrees with the index order (none,
``SystemModstamp`` or ``SystemModstamp, Id`` ascending) and at the stamp upper bound; otherwise it
filters and sorts. The result is a list of references to the stored record dicts; since writes
never mutate a stored dict, that list is a snapshot of the rows and their values.

``CursorTable`` keeps those snapshots as server-side cursors (``nextRecordsUrl`` =
``/services/data/vXX.X/query/<cursor id>-<offset>``): paging is exact however the data changes
between pages. A cursor expires after ``ttl`` seconds without use, and a user keeps at most
``max_per_owner`` open cursors (the oldest is released), as Salesforce does.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from ..core.store import Collection
from .responses import SalesforceError
from .schema import FieldDef
from .soql import BoundQuery

STAMP_FIELD, KEY_FIELD = "SystemModstamp", "Id"
DEFAULT_BATCH, MIN_BATCH, MAX_BATCH = 2000, 200, 2000


def select_rows(coll: Collection, bound: BoundQuery, include_deleted: bool) -> list[dict]:
    """The records a query returns, in order, after OFFSET and LIMIT."""
    match = bound.match
    rng = bound.stamp_range(STAMP_FIELD)
    index_ordered = bound.ordered_like_stamp_index(STAMP_FIELD, KEY_FIELD)
    want = bound.offset + bound.limit if index_ordered and bound.limit is not None else None
    start = rng.lo if rng is not None else None
    walk = coll.iter_by_stamp(start, inclusive=rng.lo_inclusive) if start is not None else coll.iter_by_stamp()
    hi = rng.hi if rng is not None else None
    rows: list[dict] = []
    for rec in walk:
        if not include_deleted and rec.get("IsDeleted") is True:
            continue
        if match is None or match(rec):
            rows.append(rec)
            if want is not None and len(rows) >= want:
                break
        elif hi is not None and _past(coll.stamp_micros(rec), hi, rng.hi_inclusive):
            break
    if not index_ordered:
        bound.sort(rows)
    end = bound.offset + bound.limit if bound.limit is not None else None
    return rows[bound.offset:end] if bound.offset or end is not None else rows


def _past(micros: int, hi: int, inclusive: bool) -> bool:
    return micros > hi or (micros == hi and not inclusive)


def render_records(rows: list[dict], type_name: str, fields: list[FieldDef], version: str) -> list[dict]:
    """REST records: ``attributes {type, url}`` then the selected fields in SELECT order."""
    url = f"/services/data/v{version}/sobjects/{type_name}/"
    names = [f.name for f in fields]
    checkboxes = [f.name for f in fields if f.type == "boolean"]
    out = []
    for rec in rows:
        item = {"attributes": {"type": type_name, "url": url + str(rec.get("Id"))}}
        for name in names:
            item[name] = rec.get(name)
        for name in checkboxes:
            if item[name] is None:
                item[name] = False  # a checkbox is never null
        out.append(item)
    return out


def batch_size(header: str | None, default: int = DEFAULT_BATCH) -> int:
    """``Sforce-Query-Options: batchSize=N``: clamped to 200..2000 (Salesforce treats it as a hint)."""
    if not header:
        return default
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "batchsize":
            try:
                return max(MIN_BATCH, min(MAX_BATCH, int(value.strip())))
            except ValueError:
                raise SalesforceError(400, "INVALID_QUERY_OPTIONS", f"Invalid batchSize: {value.strip()}") from None
    return default


@dataclass
class Cursor:
    id: str
    owner: str
    type_name: str
    fields: list[FieldDef]
    rows: list[dict]
    last_used: datetime
    batch_size: int = DEFAULT_BATCH  # used by query-more requests that send no batchSize of their own


class CursorTable:
    """Open query cursors by id."""

    def __init__(self, new_id: Callable[[], str], ttl_seconds: float = 900, max_per_owner: int = 10):
        self.new_id = new_id
        self.ttl = timedelta(seconds=ttl_seconds)
        self.max_per_owner = max_per_owner
        self.cursors: OrderedDict[str, Cursor] = OrderedDict()

    def open(self, owner: str, type_name: str, fields: list[FieldDef], rows: list[dict], now: datetime,
             size: int = DEFAULT_BATCH) -> Cursor:
        self._expire(now)
        mine = [c for c in self.cursors.values() if c.owner == owner]
        for old in mine[: max(0, len(mine) - self.max_per_owner + 1)]:
            del self.cursors[old.id]
        cursor = Cursor(self.new_id(), owner, type_name, fields, rows, now, size)
        self.cursors[cursor.id] = cursor
        return cursor

    def get(self, cursor_id: str, now: datetime) -> Cursor | None:
        self._expire(now)
        cursor = self.cursors.get(cursor_id)
        if cursor is not None:
            cursor.last_used = now
        return cursor

    def _expire(self, now: datetime) -> None:
        for cid in [cid for cid, c in self.cursors.items() if now - c.last_used >= self.ttl]:
            del self.cursors[cid]


def page(cursor_rows: list[dict], offset: int, size: int) -> tuple[list[dict], int | None]:
    """Rows of one batch and the offset of the next one (None at the end)."""
    end = min(offset + size, len(cursor_rows))
    return cursor_rows[offset:end], (end if end < len(cursor_rows) else None)

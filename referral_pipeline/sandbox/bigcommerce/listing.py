"""Ordered, filtered, paged listings over the BigCommerce simulator's collections.

A listing request names an ordering (``id``, the modification stamp, or another field), an
optional range on the ordering's leading field, and optional residual predicates. The planner
serves it from an index whenever it can:

- ``id`` order: a sorted key index kept up to date on every write (``TrackedCollection``);
- stamp order (``date_modified``, refunds' ``created``): the core store's stamp index;
- any other order: the core store's cached ``sorted_by`` list (rebuilt after a write).

Ranges on the leading field become bisect bounds, so a delta query is O(log n + page) whether it
is paged by ``page`` or by cursor. Residual predicates (e.g. ``customer_id`` on orders) are
evaluated once per (collection version, query) and the matching records are cached, so paging
through them is O(page) per request after the first.
"""
from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

from ..core import stamps
from ..core.store import Collection

Predicate = Callable[[dict], bool]


def id_order(key: Any) -> int:
    """Numeric order of a BigCommerce id (ids are integers; anything else sorts first)."""
    if isinstance(key, bool):
        return -1
    if isinstance(key, int):
        return key
    try:
        return int(key)
    except (TypeError, ValueError):
        return -1


def micros_or_min(value: Any) -> int:
    """Sortable micros of a date field; missing or unparseable dates sort first (-1)."""
    if value in (None, ""):
        return -1
    try:
        return stamps.to_micros(value)
    except (ValueError, TypeError, OverflowError):
        return -1


@dataclass
class TrackedCollection(Collection):
    """A ``Collection`` that counts its writes (``generation``) and keeps a sorted key index."""

    generation: int = 0
    _key_index: list | None = None

    def put(self, record: dict) -> dict:
        key = self._norm(record[self.spec.key])
        is_new = key not in self.records
        out = super().put(record)
        self.generation += 1
        if is_new and self._key_index is not None:
            bisect.insort(self._key_index, key, key=id_order)
        return out

    def delete(self, key):
        rec = super().delete(key)
        self.generation += 1
        if rec is not None:
            self._key_index = None
        return rec

    def replace_all(self, records) -> None:
        super().replace_all(records)
        self.generation += 1
        self._key_index = None

    def key_index(self) -> list:
        if self._key_index is None:
            self._key_index = sorted(self.records, key=id_order)
        return self._key_index

    def stamp_index(self) -> list:
        """The core store's (micros, keysort, key) index (built on first use)."""
        return self._ensure_stamp_index()


# ---- sources: one ordering of a collection, with bisect by sort key --------------------------
class KeySource:
    """Records in id order."""

    def __init__(self, coll: TrackedCollection):
        self.coll, self.entries = coll, coll.key_index()

    def __len__(self) -> int:
        return len(self.entries)

    def record(self, i: int) -> dict:
        return self.coll.records[self.entries[i]]

    def bisect_left(self, probe: tuple) -> int:
        return bisect.bisect_left(self.entries, probe, key=lambda k: (id_order(k),))

    def bisect_right(self, probe: tuple) -> int:
        return bisect.bisect_right(self.entries, probe, key=lambda k: (id_order(k),))


class StampSource:
    """Records in (modification stamp, id) order, from the core stamp index."""

    def __init__(self, coll: TrackedCollection):
        self.coll, self.entries = coll, coll.stamp_index()

    def __len__(self) -> int:
        return len(self.entries)

    def record(self, i: int) -> dict:
        return self.coll.records[self.entries[i][2]]

    def bisect_left(self, probe: tuple) -> int:
        return bisect.bisect_left(self.entries, probe, key=lambda e: (e[0], id_order(e[2])))

    def bisect_right(self, probe: tuple) -> int:
        return bisect.bisect_right(self.entries, probe, key=lambda e: (e[0], id_order(e[2])))


class ListSource:
    """Records of a list already sorted by ``sort_key``."""

    def __init__(self, records: Sequence[dict], sort_key: Callable[[dict], tuple]):
        self.entries, self.sort_key = records, sort_key

    def __len__(self) -> int:
        return len(self.entries)

    def record(self, i: int) -> dict:
        return self.entries[i]

    def bisect_left(self, probe: tuple) -> int:
        return bisect.bisect_left(self.entries, probe, key=self.sort_key)

    def bisect_right(self, probe: tuple) -> int:
        return bisect.bisect_right(self.entries, probe, key=self.sort_key)


@dataclass
class Window:
    """One page of a view: the records, and whether records exist before / after it."""

    records: list[dict]
    has_before: bool
    has_after: bool


class View:
    """Positions ``lo..hi`` of a source, shown ascending or descending."""

    def __init__(self, source, lo: int, hi: int, descending: bool, sort_key: Callable[[dict], tuple]):
        self.source, self.lo, self.hi, self.descending, self.sort_key = source, lo, max(lo, hi), descending, sort_key

    def __len__(self) -> int:
        return self.hi - self.lo

    def _index(self, position: int) -> int:
        return self.hi - 1 - position if self.descending else self.lo + position

    def _slice(self, start: int, stop: int) -> Window:
        n = len(self)
        start, stop = max(0, start), min(n, stop)
        records = [self.source.record(self._index(p)) for p in range(start, stop)]
        return Window(records, start > 0, stop < n)

    def page(self, offset: int, limit: int) -> Window:
        return self._slice(offset, offset + limit)

    def _clamp(self, i: int) -> int:
        return min(self.hi, max(self.lo, i))

    def after(self, cursor: tuple, limit: int) -> Window:
        """The ``limit`` records that follow the record whose sort key is ``cursor``."""
        if self.descending:
            start = self.hi - self._clamp(self.source.bisect_left(cursor))
        else:
            start = self._clamp(self.source.bisect_right(cursor)) - self.lo
        return self._slice(start, start + limit)

    def before(self, cursor: tuple, limit: int) -> Window:
        """The ``limit`` records that precede the record whose sort key is ``cursor``."""
        if self.descending:
            stop = self.hi - self._clamp(self.source.bisect_right(cursor))
        else:
            stop = self._clamp(self.source.bisect_left(cursor)) - self.lo
        return self._slice(max(0, stop - limit), stop)

    def __iter__(self):
        for p in range(len(self)):
            yield self.source.record(self._index(p))


# ---- orderings and the planner ---------------------------------------------------------------
@dataclass(frozen=True)
class Ordering:
    """A sort order of a collection. ``kind``: ``id`` | ``stamp`` | ``field``. ``value`` maps a
    record to the leading sort value (ints for ranges: ids or micros)."""

    name: str
    kind: str
    value: Callable[[dict], Any]
    key_field: str = "id"

    def sort_key(self, record: dict) -> tuple:
        if self.kind == "id":
            return (id_order(record.get(self.key_field)),)
        return (self.value(record), id_order(record.get(self.key_field)))


def id_ordering(key_field: str = "id") -> Ordering:
    return Ordering("id", "id", lambda r: id_order(r.get(key_field)), key_field)


def stamp_ordering(name: str, stamp_field: str, key_field: str = "id") -> Ordering:
    return Ordering(name, "stamp", lambda r: micros_or_min(r.get(stamp_field)), key_field)


def date_ordering(name: str, date_field: str, key_field: str = "id") -> Ordering:
    return Ordering(name, "field", lambda r: micros_or_min(r.get(date_field)), key_field)


def int_ordering(name: str, int_field: str, key_field: str = "id") -> Ordering:
    return Ordering(name, "field", lambda r: id_order(r.get(int_field)), key_field)


def text_ordering(name: str, text_field: str, key_field: str = "id") -> Ordering:
    return Ordering(name, "field", lambda r: str(r.get(text_field) or "").lower(), key_field)


@dataclass
class Query:
    """What to list: ordering, direction, an inclusive range on the ordering's leading value,
    residual predicates (each with a hashable signature, for caching), or an explicit small set of
    candidate records (``id:in``, ``email:in``) to which every filter applies."""

    ordering: Ordering
    descending: bool = False
    lower: int | None = None
    upper: int | None = None
    predicates: list[tuple[Hashable, Predicate]] = field(default_factory=list)
    candidates: list[dict] | None = None

    def signature(self) -> tuple:
        return (self.ordering.name, self.lower, self.upper, tuple(sig for sig, _ in self.predicates))

    def matches(self, record: dict) -> bool:
        return all(pred(record) for _, pred in self.predicates)


class Lister:
    """Plans queries against a simulator's collections; caches filtered results per version."""

    def __init__(self, cache_size: int = 32):
        self.cache_size = cache_size
        self._cache: OrderedDict = OrderedDict()

    def clear(self) -> None:
        self._cache.clear()

    def view(self, coll: TrackedCollection, query: Query) -> View:
        ordering = query.ordering
        if query.candidates is not None:
            return self._candidate_view(query)
        source = self._source(coll, ordering)
        lo, hi = self._bounds(source, query)
        if not query.predicates:
            return View(source, lo, hi, query.descending, ordering.sort_key)
        matched = self._filtered(coll, query, source, lo, hi)
        return View(ListSource(matched, ordering.sort_key), 0, len(matched), query.descending, ordering.sort_key)

    def _candidate_view(self, query: Query) -> View:
        ordering = query.ordering
        lower = query.lower if query.lower is not None else float("-inf")
        upper = query.upper if query.upper is not None else float("inf")
        unique = {id(r): r for r in query.candidates}.values()
        matched = sorted((r for r in unique if query.matches(r) and _in_range(ordering.value(r), lower, upper)),
                         key=ordering.sort_key)
        return View(ListSource(matched, ordering.sort_key), 0, len(matched), query.descending, ordering.sort_key)

    @staticmethod
    def _source(coll: TrackedCollection, ordering: Ordering):
        if ordering.kind == "id":
            return KeySource(coll)
        if ordering.kind == "stamp":
            return StampSource(coll)
        return ListSource(coll.sorted_by(f"order:{ordering.name}", ordering.sort_key), ordering.sort_key)

    @staticmethod
    def _bounds(source, query: Query) -> tuple[int, int]:
        lo = source.bisect_left((query.lower,)) if query.lower is not None else 0
        hi = source.bisect_left((query.upper + 1,)) if query.upper is not None else len(source)
        return lo, hi

    def _filtered(self, coll: TrackedCollection, query: Query, source, lo: int, hi: int) -> list[dict]:
        cache_key = (id(coll), coll.generation, query.signature())
        hit = self._cache.get(cache_key)
        if hit is not None:
            self._cache.move_to_end(cache_key)
            return hit
        matched = [rec for rec in (source.record(i) for i in range(lo, hi)) if query.matches(rec)]
        self._cache[cache_key] = matched
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return matched


def _in_range(value, lower, upper) -> bool:
    try:
        return lower <= value <= upper
    except TypeError:
        return False

"""In-memory record store of a simulator: one ``Collection`` per API collection.

A collection holds records (plain dicts, in the API's own shape) by primary key and keeps an
index ordered by (modification stamp, key), maintained incrementally, so that delta queries
(``stamp >= X``) and keyset paging cost O(log n + page) instead of a scan. Other orderings are
available as lazily built, write-invalidated indexes (``sorted_by``).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator

from . import stamps


@dataclass(frozen=True)
class CollectionSpec:
    """How a collection is keyed and stamped.

    ``key``: primary-key field. ``stamp``: modification-stamp field (None: the collection has no
    stamp, e.g. Yotpo customers). ``stamp_format``: renders a datetime the way the API does.
    ``version``: an optimistic-concurrency counter field (commercetools ``version``).
    ``created``: creation-stamp field filled on create when missing.
    ``key_type``: ``int`` for APIs with numeric ids (BigCommerce), so ``"5"`` and ``5`` match.
    """

    name: str
    key: str
    stamp: str | None = None
    stamp_format: Callable[[datetime], str] = stamps.fmt_iso_millis_z
    version: str | None = None
    created: str | None = None
    key_type: type = str
    auto_key: bool = False  # fixture records may omit the key; the loader assigns "<collection>-<line>"


def _sort_key_value(value: Any) -> tuple:
    """Order ints numerically and everything else as text, never comparing int with str."""
    if isinstance(value, bool) or value is None:
        return (2, str(value))
    if isinstance(value, (int, float)):
        return (0, value, "")
    return (1, 0, str(value))


@dataclass
class Collection:
    spec: CollectionSpec
    records: dict = field(default_factory=dict)
    _stamp_index: list | None = None  # sorted [(micros, keysort, key)]
    _stamp_of: dict = field(default_factory=dict)  # key -> index entry
    _other_indexes: dict = field(default_factory=dict)

    # ---- basic access -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def get(self, key):
        return self.records.get(self._norm(key))

    def values(self) -> Iterable[dict]:
        return self.records.values()

    def _norm(self, key):
        if self.spec.key_type is int:
            try:
                return int(key)
            except (TypeError, ValueError):
                return key
        return key

    # ---- writes -------------------------------------------------------------------------
    def put(self, record: dict) -> dict:
        """Store a record (replacing any record with the same key)."""
        key = self._norm(record[self.spec.key])
        self.records[key] = record
        self._other_indexes.clear()
        if self._stamp_index is not None:
            self._unindex(key)
            self._index(key, record)
        return record

    def delete(self, key) -> dict | None:
        key = self._norm(key)
        rec = self.records.pop(key, None)
        self._other_indexes.clear()
        if rec is not None and self._stamp_index is not None:
            self._unindex(key)
        return rec

    def replace_all(self, records: Iterable[dict]) -> None:
        self.records = {self._norm(r[self.spec.key]): r for r in records}
        self._stamp_index = None
        self._stamp_of = {}
        self._other_indexes.clear()

    # ---- stamp index ----------------------------------------------------------------------
    def _entry(self, key, record) -> tuple | None:
        raw = record.get(self.spec.stamp) if self.spec.stamp else None
        try:
            micros = stamps.to_micros(raw) if raw not in (None, "") else -1
        except (ValueError, TypeError, OverflowError):
            micros = -1  # unparseable stamps sort first; they are still served
        return (micros, _sort_key_value(key), key)

    def _index(self, key, record) -> None:
        entry = self._entry(key, record)
        bisect.insort(self._stamp_index, entry)
        self._stamp_of[key] = entry

    def _unindex(self, key) -> None:
        entry = self._stamp_of.pop(key, None)
        if entry is None:
            return
        i = bisect.bisect_left(self._stamp_index, entry)
        if i < len(self._stamp_index) and self._stamp_index[i] == entry:
            del self._stamp_index[i]

    def _ensure_stamp_index(self) -> list:
        if self._stamp_index is None:
            entries = {k: self._entry(k, r) for k, r in self.records.items()}
            self._stamp_of = entries
            self._stamp_index = sorted(entries.values())
        return self._stamp_index

    def iter_by_stamp(self, start_micros: int | None = None, after_key=None, inclusive: bool = True,
                      reverse: bool = False) -> Iterator[dict]:
        """Records in (stamp, key) order from a lower bound.

        ``start_micros`` with ``inclusive``: stamp >= start (else > start). With ``after_key`` as
        well: keyset position (stamp, key) > (start, after_key).
        """
        index = self._ensure_stamp_index()
        if reverse:
            for _, _, key in reversed(index):
                rec = self.records.get(key)
                if rec is not None:
                    yield rec
            return
        if start_micros is None:
            lo = 0
        elif after_key is not None:
            lo = bisect.bisect_right(index, (start_micros, _sort_key_value(after_key), after_key))
        elif inclusive:
            lo = bisect.bisect_left(index, (start_micros,))
        else:
            lo = bisect.bisect_left(index, (start_micros + 1,))
        for i in range(lo, len(index)):
            rec = self.records.get(index[i][2])
            if rec is not None:
                yield rec

    def stamp_micros(self, record: dict) -> int:
        return self._entry(None, record)[0]

    # ---- other orderings -----------------------------------------------------------------
    def sorted_by(self, name: str, keyfunc: Callable[[dict], Any]) -> list[dict]:
        """Records sorted by ``keyfunc`` (cached until the next write)."""
        cached = self._other_indexes.get(name)
        if cached is None:
            cached = sorted(self.records.values(), key=keyfunc)
            self._other_indexes[name] = cached
        return cached

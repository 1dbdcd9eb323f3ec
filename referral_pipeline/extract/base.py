"""The extractor contract and the generic incremental extraction loop.

An ``Extractor`` knows one source entity: how to page through records changed since a cursor
(``pages``), and how to read a record's key, modification stamp and delete flag. ``extract``
streams its pages into ``RawWriter`` and commits the data with the cursor every ``flush_rows``
records, so a crash loses at most the uncommitted pages and a re-run resumes from the last
committed cursor (the overlap window re-reads late commits; merging by key makes that harmless).
The pages are read one or two ahead in a background thread (``prefetched``), so the next request
and its JSON parsing overlap with landing the current page in DuckDB.
"""
from __future__ import annotations

import queue
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterator, Protocol

import duckdb

from ..warehouse.landing import Cursor, MergeCounts, RawWriter, read_cursor, reset_cursor


@dataclass
class Page:
    """Records of one API page, and the cursor that is safe to store once they are committed."""

    records: list[dict]
    cursor: Cursor | None
    batch: Any = None     # rows already parsed for landing (a pyarrow Table, ``RawWriter.add_batch``)


class Extractor(Protocol):
    source: str
    entity: str

    def pages(self, since: Cursor, window_end: datetime | None = None) -> Iterator[Page]: ...
    def pk_of(self, record: dict) -> Any: ...
    def stamp_of(self, record: dict) -> datetime | None: ...
    def deleted_of(self, record: dict) -> bool: ...
    def request_stats(self) -> dict[str, Any]: ...


@dataclass
class ExtractResult:
    source: str
    entity: str
    counts: MergeCounts
    pages: int
    cursor_before: Cursor
    cursor_after: Cursor
    seconds: float
    requests: dict[str, Any] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, Any]:
        c = self.counts
        return {"rows_fetched": c.fetched, "rows_new": c.new, "rows_updated": c.updated,
                "rows_unchanged": c.unchanged, "rows_quarantined": c.quarantined, "pages": self.pages,
                "requests": self.requests.get("requests", 0), "retries": self.requests.get("retries", 0),
                "cursor_before": self.cursor_before.as_metadata(), "cursor_after": self.cursor_after.as_metadata(),
                "seconds": round(self.seconds, 3),
                "records_per_second": round(c.fetched / self.seconds, 1) if self.seconds > 0 else None}


def start_cursor(stored: Cursor, overlap: timedelta) -> Cursor:
    """Where to start reading: the stored mark minus the overlap (look-back) window."""
    if stored.value is None:
        return Cursor()
    return Cursor(stored.value - overlap, None) if overlap else stored


def extract(con: duckdb.DuckDBPyConnection, extractor: Extractor, run_id: str | None, *,
            overlap: timedelta = timedelta(minutes=5), flush_rows: int = 5000, full_refresh: bool = False,
            window: tuple[datetime, datetime] | None = None) -> ExtractResult:
    """Pull the entity's delta (or a backfill ``window``) into its raw table.

    ``full_refresh`` forgets the cursor first (rows are merged by key, so nothing duplicates).
    A ``window`` re-reads ``[start, end)`` without moving the stored cursor.
    """
    started = time.monotonic()
    if full_refresh:
        reset_cursor(con, extractor.source, extractor.entity)
    stored = read_cursor(con, extractor.source, extractor.entity)
    writer = RawWriter(con, extractor.source, extractor.entity, run_id, pk_of=extractor.pk_of,
                       stamp_of=extractor.stamp_of, deleted_of=extractor.deleted_of, flush_rows=flush_rows)
    since = Cursor(window[0], None) if window else start_cursor(stored, overlap)
    window_end = window[1] if window else None
    newest = stored
    pages = 0
    for page in prefetched(extractor.pages(since, window_end)):
        pages += 1
        writer.add(page.records)
        if page.batch is not None:
            writer.add_batch(page.batch)
        if page.cursor is not None and not window:
            newest = max_cursor(newest, page.cursor)
        if writer.pending >= flush_rows:
            writer.commit(None if window else newest)
    writer.commit(None if window else newest)
    result = ExtractResult(extractor.source, extractor.entity, writer.counts, pages, stored,
                           stored if window else newest, time.monotonic() - started, extractor.request_stats())
    log_extract(con, result, run_id)
    return result


SIZE_SETTINGS = ("memory_limit", "checkpoint_threshold")


@contextmanager
def duckdb_settings(con: duckdb.DuckDBPyConnection, **sizes: str | None) -> Iterator[duckdb.DuckDBPyConnection]:
    """``con`` with DuckDB size settings (``memory_limit``, ``checkpoint_threshold``) set for the
    block and restored after it (a None or empty value leaves that setting alone). The settings
    belong to the database instance, which DuckDB shares between connections to the same file in
    one process, so they are put back (the ``duckdb`` pool runs one such asset at a time)."""
    unknown = set(sizes) - set(SIZE_SETTINGS)
    if unknown:
        raise ValueError(f"not a DuckDB size setting: {sorted(unknown)}")
    wanted = {name: _size(value) for name, value in sizes.items() if value}
    before = {name: con.execute("SELECT current_setting(?)", [name]).fetchall()[0][0] for name in wanted}
    for name, value in wanted.items():
        con.execute(f"SET {name} = '{value}'")
    try:
        yield con
    finally:
        for name, value in before.items():
            con.execute(f"SET {name} = '{_size(value)}'")


def memory_limited(con: duckdb.DuckDBPyConnection, limit: str | None):
    """``duckdb_settings`` for ``memory_limit`` alone."""
    return duckdb_settings(con, memory_limit=limit)


def _size(text: str) -> str:
    value = str(text).strip()
    if not re.fullmatch(r"[0-9.]+\s*[A-Za-z]*", value):
        raise ValueError(f"not a DuckDB memory size: {text!r}")
    return value


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


_DONE = object()


def prefetched(pages: Iterator[Page], depth: int = 2) -> Iterator[Page]:
    """``pages`` read in a background thread, at most ``depth`` pages ahead of the consumer, so
    the next request (and its parsing) overlaps with landing the current page. Pages arrive in
    order; an error of the reader is raised here at the point it happened; stopping early (the
    consumer failed) stops the reader after the page it is on."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for page in pages:
                if not put(page):
                    break
            else:
                put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=read, name="extract-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        reader.join()


def log_extract(con: duckdb.DuckDBPyConnection, result: ExtractResult, run_id: str | None) -> None:
    """One row per extraction in ``ops.extract_log`` (history for operators and the run summary)."""
    c = result.counts
    con.execute("INSERT INTO ops.extract_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
                [run_id, result.source, result.entity, c.fetched, c.new, c.updated, c.unchanged, c.quarantined,
                 result.pages, result.requests.get("requests", 0), result.requests.get("retries", 0),
                 result.cursor_before.as_metadata(), result.cursor_after.as_metadata(), result.seconds])


def max_cursor(a: Cursor, b: Cursor) -> Cursor:
    if a.value is None:
        return b
    if b.value is None:
        return a
    return max(a, b, key=lambda c: (c.value, c.id or ""))


def cursor_from_records(records: list[dict], extractor: Extractor) -> Cursor | None:
    """The (stamp, id) high-water mark of a page: the greatest stamp, and at it the greatest id."""
    best: tuple | None = None
    for rec in records:
        try:
            stamp = extractor.stamp_of(rec)
        except (ValueError, TypeError, OverflowError):
            continue
        pk = extractor.pk_of(rec)
        if stamp is None or pk in (None, ""):
            continue
        key = (stamp, str(pk))
        if best is None or key > best:
            best = key
    return Cursor(best[0], best[1]) if best else None

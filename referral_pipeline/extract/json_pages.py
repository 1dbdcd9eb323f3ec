"""Fast reading of list pages: DuckDB parses the response body.

A parser turns one response body into landing rows (an Arrow table in ``landing.BATCH_SCHEMA``
order: pk, stamp, payload, is_deleted, ord) without building Python objects: DuckDB's JSON
reader runs without the GIL, so it overlaps with the landing thread and the HTTP requests. Lone
surrogate escapes are repaired on the bytes first, as ``http.jsonbody`` does, and the payload text
is the one the Python path stores. A body the fast path does not handle exactly like the Python
path — bare ``NaN``/``Infinity`` (stored as text by ``http.jsonbody``), invalid UTF-8 or JSON, a
record the page's SQL marks not ``ok`` (quarantine and stamp rules live in ``RawWriter``) — gives
None, and the caller reads it the existing way. Each parser owns a small in-memory DuckDB (no
tables), used by one thread: the page reader.

- ``PageParser``: commercetools query pages (``sql/commercetools_page.sql``; the discount-code
  trimming of orders done in SQL).
- ``OrdersPageParser``: BigCommerce v2 order lists (``sql/bigcommerce_orders_page.sql``; the
  sub-resource links removed in SQL, which orders need their coupons fetched).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ..http.jsonbody import replace_lone_surrogates
from ..warehouse.landing import BATCH_SCHEMA, Cursor

SQL_DIR = Path(__file__).with_name("sql")
PAGE_SQL = (SQL_DIR / "commercetools_page.sql").read_text()
MACROS_SQL = (SQL_DIR / "commercetools_macros.sql").read_text()
BC_ORDERS_SQL = (SQL_DIR / "bigcommerce_orders_page.sql").read_text()
BC_MACROS_SQL = (SQL_DIR / "bigcommerce_macros.sql").read_text()
SHARED_MACROS_SQL = (SQL_DIR / "page_macros.sql").read_text()


class SqlPageParser:
    """Runs ``page_sql`` over one body registered as the view ``view`` (column ``body``)."""

    def __init__(self, page_sql: str, macros_sql: str, view: str, memory_limit: str = "256MB"):
        self.page_sql, self.view = page_sql, view
        self.con = duckdb.connect(config={"memory_limit": memory_limit, "threads": 1})
        self.con.execute(SHARED_MACROS_SQL)
        self.con.execute(macros_sql)

    def rows(self, body: bytes, params: dict | None = None) -> pa.Table | None:
        """The page's rows (without ``ok``), or None when any row is not ``ok`` or DuckDB refuses the body."""
        if not body or has_bare_non_finite(body):
            return None
        body = replace_lone_surrogates(body)   # as the Python path does: U+FFFD, quarantined in staging
        try:
            page = pa.table({"body": pa.array([body], pa.binary()).cast(pa.string())})
        except (pa.ArrowInvalid, UnicodeError):
            return None
        self.con.register(self.view, page)
        try:
            table = self.con.sql(self.page_sql, params=params).to_arrow_table()
        except duckdb.Error:
            return None
        finally:
            self.con.unregister(self.view)
        if table.num_rows and not pc.all(table["ok"]).as_py():
            return None
        return table.drop_columns(["ok"])

    def close(self) -> None:
        self.con.close()


@dataclass
class ParsedPage:
    """Landing rows of one page, the page's (stamp, id) high-water mark, and its last record's."""

    batch: pa.Table
    cursor: Cursor | None
    last: tuple[datetime, str] | None


class PageParser(SqlPageParser):
    """commercetools query pages."""

    def __init__(self, trim_discount_codes: bool = False, memory_limit: str = "256MB"):
        super().__init__(PAGE_SQL, MACROS_SQL, "_ct_page", memory_limit)
        self.trim = trim_discount_codes

    def parse(self, body: bytes) -> ParsedPage | None:
        table = self.rows(body, {"trim": self.trim})
        if table is None:
            return None
        batch = table.cast(BATCH_SCHEMA)
        return ParsedPage(batch, high_water(batch), last_row(batch))


@dataclass
class ParsedOrders:
    """Landing rows of one BigCommerce v2 orders page and which of them have a coupon discount.
    ``positions()`` and ``subset()`` are what the client's keyset walk needs of a page."""

    batch: pa.Table
    couponed: list[bool]

    def __len__(self) -> int:
        return self.batch.num_rows

    def positions(self) -> list[tuple[int | None, datetime | None]]:
        ids = [int(pk) for pk in self.batch["pk"].to_pylist()]
        stamps = [s.astimezone(timezone.utc) for s in self.batch["stamp"].to_pylist()]
        return list(zip(ids, stamps))

    def subset(self, keep: list[bool]) -> "ParsedOrders":
        if all(keep):
            return self
        mask = pa.array(keep, pa.bool_())
        return ParsedOrders(self.batch.filter(mask), [c for c, k in zip(self.couponed, keep) if k])


class OrdersPageParser(SqlPageParser):
    """BigCommerce v2 order lists (a bare JSON array)."""

    def __init__(self, memory_limit: str = "256MB"):
        super().__init__(BC_ORDERS_SQL, BC_MACROS_SQL, "_bc_page", memory_limit)

    def parse(self, body: bytes) -> ParsedOrders | None:
        if not body.lstrip().startswith(b"["):
            return None
        table = self.rows(body)
        if table is None:
            return None
        couponed = table["couponed"].to_pylist()
        return ParsedOrders(table.drop_columns(["couponed"]).cast(BATCH_SCHEMA), couponed)


BARE_NON_FINITE = re.compile(rb"[:\[,][ \t\r\n-]*(?:NaN|Infinity)")


def has_bare_non_finite(body: bytes) -> bool:
    """Whether ``NaN``/``Infinity`` may stand as a bare value (after ``:``, ``[`` or ``,``, a sign
    or blanks): DuckDB accepts those literals, the Python path stores them as text. The text
    ``"NaN"`` (a string) is fine; a false positive only sends the page the Python way."""
    return BARE_NON_FINITE.search(body) is not None


def high_water(batch: pa.Table) -> Cursor | None:
    """The greatest stamp of the rows and, at it, the greatest id (as ``cursor_from_records``)."""
    if not batch.num_rows:
        return None
    top = pc.max(batch["stamp"])
    at_top = batch.filter(pc.equal(batch["stamp"], top))
    return Cursor(top.as_py().astimezone(timezone.utc), pc.max(at_top["pk"]).as_py())


def last_row(batch: pa.Table) -> tuple[datetime, str] | None:
    if not batch.num_rows:
        return None
    return batch["stamp"][-1].as_py().astimezone(timezone.utc), batch["pk"][-1].as_py()

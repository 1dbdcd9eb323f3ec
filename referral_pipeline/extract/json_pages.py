"""Fast reading of commercetools query pages: DuckDB parses the response body.

``PageParser.parse(body)`` turns one response body into landing rows (an Arrow table in
``landing.BATCH_SCHEMA`` order: pk, stamp, payload, is_deleted, ord) without building Python
objects: DuckDB's JSON reader runs without the GIL, so it overlaps with the landing thread. Lone
surrogate escapes are repaired on the bytes first, as ``http.jsonbody`` does; the discount-code
trimming of orders is done in SQL (``sql/commercetools_page.sql``); the payload text is the one
the Python path stores. A body the fast path does not handle exactly like the Python path — bare
``NaN``/``Infinity`` (stored as text by ``http.jsonbody``), invalid UTF-8 or JSON, a record
without a string id or with an unusual stamp (quarantine and stamp rules live in ``RawWriter``)
— gives None, and the caller reads it the existing way. The parser owns a small in-memory DuckDB
(no tables), used by one thread: the page reader.
"""
from __future__ import annotations

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


@dataclass
class ParsedPage:
    """Landing rows of one page, the page's (stamp, id) high-water mark, and its last record's."""

    batch: pa.Table
    cursor: Cursor | None
    last: tuple[datetime, str] | None


class PageParser:
    def __init__(self, trim_discount_codes: bool = False, memory_limit: str = "256MB"):
        self.trim = trim_discount_codes
        self.con = duckdb.connect(config={"memory_limit": memory_limit, "threads": 1})
        self.con.execute(MACROS_SQL)

    def parse(self, body: bytes) -> ParsedPage | None:
        if not body or has_bare_non_finite(body):
            return None
        body = replace_lone_surrogates(body)   # as the Python path does: U+FFFD, quarantined in staging
        try:
            page = pa.table({"body": pa.array([body], pa.binary()).cast(pa.string())})
        except (pa.ArrowInvalid, UnicodeError):
            return None
        self.con.register("_ct_page", page)
        try:
            table = self.con.sql(PAGE_SQL, params={"trim": self.trim}).to_arrow_table()
        except duckdb.Error:
            return None
        finally:
            self.con.unregister("_ct_page")
        if table.num_rows and not pc.all(table["ok"]).as_py():
            return None
        batch = table.drop_columns(["ok"]).cast(BATCH_SCHEMA)
        return ParsedPage(batch, high_water(batch), last_row(batch))

    def close(self) -> None:
        self.con.close()


def has_bare_non_finite(body: bytes) -> bool:
    """Whether ``NaN``/``Infinity`` may stand as a bare value (after ``:``, ``[`` or ``,``, a sign
    or blanks): DuckDB accepts those literals, the Python path stores them as text. The text
    ``"NaN"`` (a string) is fine; a false positive only sends the page the Python way."""
    for literal in (b"NaN", b"Infinity"):
        at = body.find(literal)
        while at >= 0:
            before = at - 1
            while before >= 0 and body[before] in b" \t\r\n-":
                before -= 1
            if before >= 0 and body[before] in b":[,":
                return True
            at = body.find(literal, at + 1)
    return False


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

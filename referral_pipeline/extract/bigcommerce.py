"""BigCommerce delta readers: customers (v3), orders (v2), refunds (v3) and coupons (v2).

Every reader streams the client's pages (see ``clients/bigcommerce.py`` for the paging) into the
generic ``extract`` loop, which lands them in ``raw.<source>__<entity>`` merged by ``id``:

- ``customers``: ``date_modified >= cursor - overlap``; the page cursor is the page's greatest
  ``(date_modified, id)``, safe because pages come in stamp order.
- ``orders``: first the archived orders (``is_deleted=true``: lists leave them out otherwise) with
  no cursor, then the live orders with the page cursor as for customers, so a crash never stores
  a mark beyond what was read. Each order is landed as the API returns it with
  ``include=consignments.line_items`` (the line items come inline: no request per order), minus
  the ``products`` / ``shipping_addresses`` / ``coupons`` links (they only name the API host), and,
  when ``coupon_discount > 0``, with ``coupons`` = the order's coupons sub-resource (one request
  per couponed order, none for the others; a page's coupon requests run ``COUPON_WORKERS`` at a
  time, still under the client's rate limit). The order lists are read in their own thread and
  each page is parsed by DuckDB (``json_pages.OrdersPageParser``: the same payload text, links
  removed in SQL, no Python object per order); a page it leaves alone is read in Python.
- ``refunds``: ``created >= cursor - overlap`` in refund-id order; ``created`` need not grow with
  the id, so the cursor (greatest ``created``) is given only with the last page.
- ``coupons``: no modification stamp, so the whole list is read (nightly) and no cursor is kept.
"""
from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterator

import orjson
import pyarrow as pa

from ..clients.bigcommerce import MAX_LIMIT, BigCommerceClient, DictRows, parse_date
from ..http.client import ApiError
from ..warehouse.landing import Cursor, utf8_column
from .base import Page, cursor_from_records, prefetched
from .json_pages import OrdersPageParser, ParsedOrders, high_water

LINK_FIELDS = ("products", "shipping_addresses", "coupons")
COUPON_WORKERS = 8    # concurrent coupon sub-resource requests (one per couponed order)
_COUNTERS = ("requests", "retries", "auth_refreshes", "waited_seconds")


class BigCommerceExtractor:
    """What every BigCommerce entity shares: key, delete flag and request statistics."""

    entity = ""
    stamp_field = "date_modified"

    def __init__(self, client: BigCommerceClient, source: str, page_size: int | None = None):
        self.client, self.source = client, source
        self.page_size = max(1, min(page_size or MAX_LIMIT, MAX_LIMIT))
        self._baseline = self._snapshot()

    def pages(self, since: Cursor, window_end: datetime | None = None) -> Iterator[Page]:
        self._baseline = self._snapshot()
        yield from self._pages(since.value, window_end)

    def _pages(self, since: datetime | None, until: datetime | None) -> Iterator[Page]:
        raise NotImplementedError

    def pk_of(self, record: dict) -> Any:
        return record.get("id")

    def stamp_of(self, record: dict) -> datetime | None:
        return parse_date(record.get(self.stamp_field))

    def deleted_of(self, record: dict) -> bool:
        return False

    def request_stats(self) -> dict[str, Any]:
        now = self._snapshot()
        out = {k: now[k] - self._baseline[k] for k in _COUNTERS}
        out["waited_seconds"] = round(out["waited_seconds"], 3)
        return out

    def _snapshot(self) -> dict[str, float]:
        s = self.client.stats
        return {"requests": s.requests, "retries": s.retries, "auth_refreshes": s.auth_refreshes,
                "waited_seconds": s.waited_seconds}


class CustomersExtractor(BigCommerceExtractor):
    entity = "customers"

    def _pages(self, since, until):
        for rows in self.client.iter_customers(since, until, self.page_size):
            yield Page(rows, cursor_from_records(rows, self))


class OrdersExtractor(BigCommerceExtractor):
    entity = "orders"
    coupon_workers = COUPON_WORKERS
    fast = True     # pages parsed by DuckDB (``json_pages.OrdersPageParser``) when it can
    fast_pages = 0  # pages that took that way (this extractor)

    def _pages(self, since, until):
        # The order lists are read in a thread of their own (``prefetched``), so the next page is
        # requested and parsed while the coupons of this one are fetched. The archived orders come
        # first and carry no cursor.
        parser = OrdersPageParser() if self.fast else None
        try:
            with ThreadPoolExecutor(self.coupon_workers, thread_name_prefix="bc-coupons") as pool:
                for archived in (True, False):
                    pages = self.client.iter_order_pages(since, until, self.page_size, archived=archived,
                                                         read_page=parser.parse if parser else None)
                    for rows in prefetched(pages):
                        page = self.page_of(rows, pool)
                        yield Page(page.records, None, page.batch) if archived else page
        finally:
            if parser is not None:
                parser.close()

    def page_of(self, rows: DictRows | ParsedOrders, pool: Executor | None = None) -> Page:
        """A page to land: records prepared in Python, or DuckDB's rows with the coupons appended."""
        if isinstance(rows, ParsedOrders):
            self.fast_pages += 1
            batch = self.with_coupons(rows, pool)
            return Page([], high_water(batch), batch)
        records = self.prepare_page(rows.records, pool)
        return Page(records, cursor_from_records(records, self))

    def with_coupons(self, rows: ParsedOrders, pool: Executor | None = None) -> pa.Table:
        """The parsed rows, each couponed order's payload ending with its ``coupons`` (as
        ``prepare_page`` appends them: the link is gone, so the key goes last)."""
        couponed = [i for i, flag in enumerate(rows.couponed) if flag]
        if not couponed:
            return rows.batch
        pks = rows.batch["pk"].to_pylist()
        orders = [{"id": int(pks[i])} for i in couponed]
        fetched = (pool.map if pool is not None and len(orders) > 1 else map)(self.coupons_of, orders)
        payloads = rows.batch["payload"].cast(pa.binary()).to_pylist()
        for i, coupons in zip(couponed, fetched):
            if coupons is not None:
                payloads[i] = payloads[i][:-1] + b',"coupons":' + orjson.dumps(coupons) + b"}"
        column = rows.batch.schema.get_field_index("payload")
        return rows.batch.set_column(column, "payload", utf8_column(payloads))

    def deleted_of(self, record: dict) -> bool:
        return record.get("is_deleted") is True

    def prepare_page(self, orders: list[dict], pool: Executor | None = None) -> list[dict]:
        """``prepare`` for a page; the coupon requests of its couponed orders run concurrently
        (``coupon_workers`` at a time, under the client's rate limit), in page order."""
        out = [strip_links(order) for order in orders]
        couponed = [o for o in out if has_coupon_discount(o) and o.get("id") not in (None, "")]
        fetched = (pool.map if pool is not None and len(couponed) > 1 else map)(self.coupons_of, couponed)
        for order, coupons in zip(couponed, fetched):
            if coupons is not None:
                order["coupons"] = coupons
        return out

    def prepare(self, order: dict) -> dict:
        """The order to land: without the sub-resource links, with its coupons when it has a
        coupon discount."""
        return self.prepare_page([order])[0]

    def coupons_of(self, order: dict) -> list[dict] | None:
        """The order's coupons; None when the order is gone (404: deleted since the list was read,
        landed without coupons)."""
        try:
            return self.client.order_coupons(order["id"])
        except ApiError as exc:
            if exc.status != 404:
                raise
            return None


class RefundsExtractor(BigCommerceExtractor):
    entity = "refunds"
    stamp_field = "created"

    def _pages(self, since, until):
        held: list[dict] | None = None
        mark: Cursor | None = None
        for rows in self.client.iter_refunds(since, until, self.page_size):
            page_mark = cursor_from_records(rows, self)
            mark = page_mark if mark is None or (page_mark and _later(page_mark, mark)) else mark
            if held is not None:
                yield Page(held, None)
            held = rows
        if held is not None:
            yield Page(held, mark)


class CouponsExtractor(BigCommerceExtractor):
    entity = "coupons"
    stamp_field = "date_created"

    def _pages(self, since, until):
        for rows in self.client.iter_coupons(self.page_size):
            yield Page(rows, None)


EXTRACTORS: dict[str, type[BigCommerceExtractor]] = {
    cls.entity: cls for cls in (CustomersExtractor, OrdersExtractor, RefundsExtractor, CouponsExtractor)}


def strip_links(order: dict) -> dict:
    """The order without its sub-resource links (they only name the API host)."""
    return {k: v for k, v in order.items() if not (k in LINK_FIELDS and _is_link(v))}


def _is_link(value: Any) -> bool:
    return isinstance(value, dict) and set(value) <= {"url", "resource"}


def _later(a: Cursor, b: Cursor) -> bool:
    return (a.value, a.id or "") > (b.value, b.id or "")


def has_coupon_discount(order: dict) -> bool:
    """True when ``coupon_discount`` is a number above zero (a decimal string on the v2 API)."""
    try:
        value = Decimal(str(order.get("coupon_discount")))
    except (InvalidOperation, ValueError):
        return False
    return value.is_finite() and value > 0


def make_extractor(entity: str) -> Callable[[BigCommerceClient, Any], BigCommerceExtractor]:
    """``EntityDef.make_extractor`` for ``entity``: (client, source instance) -> extractor."""
    cls = EXTRACTORS[entity]

    def build(client: BigCommerceClient, instance: Any) -> BigCommerceExtractor:
        return cls(client, instance.id, getattr(instance, "page_size", None))
    return build

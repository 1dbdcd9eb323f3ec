"""commercetools delta readers: customers, orders, discount codes and cart discounts.

Each entity is one query endpoint read in ``(lastModifiedAt, id)`` order with keyset paging
(``CommercetoolsClient.iter_modified``), starting at the stored cursor (minus the overlap, which
the generic ``extract`` loop applies) and, for a backfill, stopping before the window end. Orders
are read with ``expand=discountCodes[*].discountCode`` so the coupon codes come inline; the
expanded discount code is cut down to its immutable ``id`` and ``code`` so that edits to the code
(e.g. deactivating it) do not make every order that used it look changed. Deletions are not
visible through these endpoints (they would need the Messages API), so ``deleted_of`` is False.
Pages are parsed by DuckDB into landing rows (``json_pages``; trimming done there in SQL); a page
it leaves alone (lenient JSON, unusual keys or stamps) is read the Python way below.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterator

from ..clients.commercetools import MAX_LIMIT, STAMP, CommercetoolsClient, PageRead, parse_stamp, read_records
from ..warehouse.landing import Cursor
from .base import Page, cursor_from_records
from .json_pages import PageParser

DISCOUNT_CODE_EXPAND = "discountCodes[*].discountCode"


def _identity(record: dict) -> dict:
    return record


def trim_expanded_codes(order: dict) -> dict:
    """Keep only ``id`` and ``code`` of each expanded discount code (``obj``)."""
    infos = order.get("discountCodes")
    if not isinstance(infos, list) or not infos:
        return order
    return {**order, "discountCodes": [_trim_info(info) for info in infos]}


def _trim_info(info: Any) -> Any:
    ref = info.get("discountCode") if isinstance(info, dict) else None
    if not isinstance(ref, dict) or not isinstance(ref.get("obj"), dict):
        return info
    obj = ref["obj"]
    return {**info, "discountCode": {**ref, "obj": {"id": obj.get("id"), "code": obj.get("code")}}}


@dataclass(frozen=True)
class EntitySpec:
    entity: str                              # raw entity name: raw.<source>__<entity>
    resource: str                            # API path segment
    expand: tuple[str, ...] = ()
    prepare: Callable[[dict], dict] = _identity


ENTITIES: dict[str, EntitySpec] = {
    "customers": EntitySpec("customers", "customers"),
    "orders": EntitySpec("orders", "orders", (DISCOUNT_CODE_EXPAND,), trim_expanded_codes),
    "discount_codes": EntitySpec("discount_codes", "discount-codes"),
    "cart_discounts": EntitySpec("cart_discounts", "cart-discounts"),
}

_COUNTERS = ("requests", "retries", "auth_refreshes", "waited_seconds")


class CommercetoolsExtractor:
    """The ``Extractor`` of one commercetools entity of one source instance."""

    def __init__(self, client: CommercetoolsClient, source: str, entity: str, page_size: int | None = None,
                 fast: bool = True):
        self.client, self.source, self.spec = client, source, ENTITIES[entity]
        self.entity = entity
        self.page_size = min(page_size or MAX_LIMIT, MAX_LIMIT)
        self.fast = fast
        self.fast_pages = 0
        self._baseline = self._snapshot()

    def pages(self, since: Cursor, window_end: datetime | None = None) -> Iterator[Page]:
        """Pages parsed by DuckDB (``json_pages``) when it can, else the Python way."""
        self._baseline = self._snapshot()
        parser = PageParser(trim_discount_codes=self.spec.prepare is trim_expanded_codes) if self.fast else None
        try:
            yield from self.client.iter_modified(self.spec.resource, since=since.value, since_id=since.id,
                                                 until=window_end, page_size=self.page_size, expand=self.spec.expand,
                                                 read_page=lambda body: self._read_page(body, parser))
        finally:
            if parser is not None:
                parser.close()

    def _read_page(self, body: bytes, parser: PageParser | None) -> PageRead:
        parsed = parser.parse(body) if parser is not None else None
        if parsed is not None:
            self.fast_pages += 1
            return Page([], parsed.cursor, parsed.batch), parsed.batch.num_rows, parsed.last
        records, count, last = read_records(body)
        records = [self.spec.prepare(r) for r in records]
        return Page(records, cursor_from_records(records, self)), count, last

    def pk_of(self, record: dict) -> Any:
        return record.get("id")

    def stamp_of(self, record: dict) -> datetime | None:
        return parse_stamp(record.get(STAMP))

    def deleted_of(self, record: dict) -> bool:
        return False

    def request_stats(self) -> dict[str, Any]:
        """Requests of this extraction (API and token endpoint), for the asset metadata."""
        now = self._snapshot()
        out = {k: now[k] - self._baseline[k] for k in _COUNTERS}
        out["waited_seconds"] = round(out["waited_seconds"], 3)
        out["token_requests"] = now["token_requests"] - self._baseline["token_requests"]
        return out

    def _snapshot(self) -> dict[str, float]:
        api, auth = self.client.api.stats, self.client.auth_api.stats
        return {"requests": api.requests + auth.requests, "retries": api.retries + auth.retries,
                "auth_refreshes": api.auth_refreshes, "waited_seconds": api.waited_seconds + auth.waited_seconds,
                "token_requests": auth.requests}


def make_extractor(entity: str) -> Callable[[CommercetoolsClient, Any], CommercetoolsExtractor]:
    """``EntityDef.make_extractor`` for ``entity``: (client, source instance) -> extractor."""
    def build(client: CommercetoolsClient, instance: Any) -> CommercetoolsExtractor:
        return CommercetoolsExtractor(client, instance.id, entity, getattr(instance, "page_size", None))
    return build

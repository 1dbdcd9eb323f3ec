"""commercetools delta readers: customers, orders, discount codes and cart discounts.

Each entity is one query endpoint read in ``(lastModifiedAt, id)`` order with keyset paging
(``CommercetoolsClient.iter_modified``), starting at the stored cursor (minus the overlap, which
the generic ``extract`` loop applies) and, for a backfill, stopping before the window end. Orders
are read with ``expand=discountCodes[*].discountCode`` so the coupon codes come inline; the
expanded discount code is cut down to its immutable ``id`` and ``code`` so that edits to the code
(e.g. deactivating it) do not make every order that used it look changed. Deletions are not
visible through these endpoints (they would need the Messages API), so ``deleted_of`` is False.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterator

from ..clients.commercetools import MAX_LIMIT, STAMP, CommercetoolsClient, parse_stamp
from ..warehouse.landing import Cursor
from .base import Page, cursor_from_records

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

    def __init__(self, client: CommercetoolsClient, source: str, entity: str, page_size: int | None = None):
        self.client, self.source, self.spec = client, source, ENTITIES[entity]
        self.entity = entity
        self.page_size = min(page_size or MAX_LIMIT, MAX_LIMIT)
        self._baseline = self._snapshot()

    def pages(self, since: Cursor, window_end: datetime | None = None) -> Iterator[Page]:
        self._baseline = self._snapshot()
        for records in self.client.iter_modified(self.spec.resource, since=since.value, since_id=since.id,
                                                 until=window_end, page_size=self.page_size, expand=self.spec.expand):
            records = [self.spec.prepare(r) for r in records]
            yield Page(records, cursor_from_records(records, self))

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

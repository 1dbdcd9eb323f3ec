"""v3 order refunds: ``GET /v3/orders/payment_actions/refunds`` (all refunds, by refund id, with
``created:min|max``, ``order_id:in``, ``id:in``, ``transaction_id``, page/limit),
``GET /v3/orders/{order_id}/payment_actions/refunds`` and
``GET /v3/orders/payment_actions/refunds/{refund_id}``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .common import V3, ApiError, v3_collection, v3_single
from .listing import Query, id_order, id_ordering, micros_or_min
from .paging import offset_pagination
from .params import parse_int_list, parse_paging, parse_v3_instant

if TYPE_CHECKING:
    from .simulator import BigCommerceSimulator

PREFIX = "/stores/{store_hash}/v3/orders"
BY_ID = id_ordering()


def single_refund_body(refund: dict) -> dict:
    """A refund as ``GET /refunds/{id}`` serves it: its schema (``RefundID_Get``) types an item's
    ``requested_amount`` as a decimal string, where the list schema (``RefundItem``) has a number."""
    items = refund.get("items")
    if not isinstance(items, list) or not any(isinstance(i, dict) and _is_number(i.get("requested_amount"))
                                              for i in items):
        return refund
    return {**refund, "items": [{**i, "requested_amount": f"{i['requested_amount']:.2f}"}
                                if isinstance(i, dict) and _is_number(i.get("requested_amount")) else i
                                for i in items]}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class RefundsApi:
    """Refund endpoints under ``/stores/{store_hash}/v3/orders``."""

    def __init__(self, sim: "BigCommerceSimulator"):
        self.sim = sim
        self._by_order: tuple[int, dict[int, list[dict]]] = (-1, {})

    def routes(self, endpoint) -> list[Route]:
        return [
            Route(PREFIX + "/payment_actions/refunds", endpoint(self.list_refunds, V3), methods=["GET"]),
            Route(PREFIX + "/payment_actions/refunds/{refund_id}", endpoint(self.get_refund, V3), methods=["GET"]),
            Route(PREFIX + "/{order_id}/payment_actions/refunds", endpoint(self.order_refunds, V3), methods=["GET"]),
        ]

    @property
    def refunds(self):
        return self.sim.collections["refunds"]

    async def list_refunds(self, request: Request) -> Response:
        params = request.query_params
        paging = parse_paging(params, over_max=self.sim.limit_over_max)
        view = self.sim.lister.view(self.refunds, self.refund_query(params))
        window = view.page((paging.page - 1) * paging.limit, paging.limit)
        meta = {"pagination": offset_pagination(len(view), len(window.records), paging.page, paging.limit)}
        return v3_collection(window.records, meta)

    def refund_query(self, params) -> Query:
        query = Query(BY_ID)
        if params.get("id:in"):
            ids = parse_int_list(params["id:in"], "id:in")
            query.candidates = [r for r in (self.refunds.get(i) for i in ids) if r is not None]
        if params.get("order_id:in"):
            order_ids = set(parse_int_list(params["order_id:in"], "order_id:in"))
            if query.candidates is None:
                query.candidates = [r for oid in sorted(order_ids) for r in self.by_order().get(oid, [])]
            else:
                query.predicates.append((("order_id:in", tuple(sorted(order_ids))),
                                         lambda r: id_order(r.get("order_id")) in order_ids))
        lo = parse_v3_instant(params["created:min"], "created:min").micros if params.get("created:min") else None
        hi = parse_v3_instant(params["created:max"], "created:max").micros if params.get("created:max") else None
        if lo is not None or hi is not None:
            lo, hi = lo if lo is not None else -(2**62), hi if hi is not None else 2**62
            query.predicates.append((("created", lo, hi), lambda r: lo <= micros_or_min(r.get("created")) <= hi))
        if params.get("transaction_id"):
            tid = params["transaction_id"]
            query.predicates.append((("transaction_id", tid), lambda r: any(
                isinstance(p, dict) and str(p.get("transaction_id")) == tid for p in r.get("payments") or [])))
        return query

    async def get_refund(self, request: Request) -> Response:
        refund = self.refunds.get(request.path_params["refund_id"])
        if refund is None:
            raise ApiError(404, "Refund not found.")
        return v3_single(single_refund_body(refund))

    async def order_refunds(self, request: Request) -> Response:
        order_id = id_order(request.path_params["order_id"])
        if self.sim.collections["orders"].get(order_id) is None:
            raise ApiError(404, "Order not found.")
        rows = self.by_order().get(order_id, [])
        return v3_collection(rows, {})

    def by_order(self) -> dict[int, list[dict]]:
        """Refunds per order id, in refund-id order (rebuilt after a write)."""
        generation, index = self._by_order
        if generation != self.refunds.generation:
            index = {}
            for key in self.refunds.key_index():
                refund = self.refunds.records[key]
                index.setdefault(id_order(refund.get("order_id")), []).append(refund)
            self._by_order = (self.refunds.generation, index)
        return index

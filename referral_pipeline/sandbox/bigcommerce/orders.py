"""v2 orders: ``GET /v2/orders`` (filters, sorts, page/limit, 204 when empty), one order, the order
count by status, order statuses, and the order sub-resources ``products``, ``coupons``,
``shipping_addresses`` and ``consignments``.

Orders are stored without their line items: a fixture order's embedded ``products`` /
``coupons`` / ``shipping_addresses`` lists live in the simulator's sub-resource store and are
served at the sub-resource URLs; the order body carries ``{url, resource}`` links instead.
``include=consignments`` / ``consignments.line_items`` embeds consignments built from them (in the
object structure BigCommerce serves since August 2025).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.simulator import json_response
from .common import V2, ApiError, v2_list
from .listing import Query, date_ordering, id_order, id_ordering, int_ordering, micros_or_min, stamp_ordering, \
    text_ordering
from .params import joined, parse_bool, parse_include, parse_int, parse_number, parse_paging, parse_sort, \
    parse_v2_instant

if TYPE_CHECKING:
    from .simulator import BigCommerceSimulator

PREFIX = "/stores/{store_hash}/v2"
ORDERINGS = {
    "id": id_ordering(),
    "customer_id": int_ordering("customer_id", "customer_id"),
    "date_created": date_ordering("date_created", "date_created"),
    "date_modified": stamp_ordering("date_modified", "date_modified"),
    "status_id": int_ordering("status_id", "status_id"),
    "channel_id": int_ordering("channel_id", "channel_id"),
    "external_id": text_ordering("external_id", "external_id"),
}
INCLUDES = ("consignments", "consignments.line_items", "fees")
INT_FILTERS = ("customer_id", "status_id", "channel_id")
TEXT_FILTERS = ("cart_id", "payment_method", "external_order_id")
RANGE_FILTERS = {"id": ("min_id", "max_id"), "date_modified": ("min_date_modified", "max_date_modified"),
                 "date_created": ("min_date_created", "max_date_created")}

# (id, name, control-panel sort order, description) as in orders.v2 ``/order_statuses``
STATUSES = [
    (0, "Incomplete", 0, "An incomplete order happens when a shopper reached the payment page, but did not complete the transaction."),
    (1, "Pending", 1, "Customer started the checkout process, but did not complete it."),
    (2, "Shipped", 8, "Order has been shipped, but receipt has not been confirmed; seller has used the Ship Items action."),
    (3, "Partially Shipped", 6, "Only some items in the order have been shipped, due to some products being pre-order only or other reasons."),
    (4, "Refunded", 11, "Seller has used the Refund action."),
    (5, "Cancelled", 9, "Seller has cancelled an order, due to a stock inconsistency or other reasons."),
    (6, "Declined", 10, "Seller has marked the order as declined for lack of manual payment, or other reasons."),
    (7, "Awaiting Payment", 2, "Customer has completed checkout process, but payment has yet to be confirmed."),
    (8, "Awaiting Pickup", 5, "Order has been pulled, and is awaiting customer pickup from a seller-specified location."),
    (9, "Awaiting Shipment", 4, "Order has been pulled and packaged, and is awaiting collection from a shipping provider."),
    (10, "Completed", 7, "Client has paid for their digital product and their file(s) are available for download."),
    (11, "Awaiting Fulfillment", 3, "Customer has completed the checkout process and payment has been confirmed."),
    (12, "Manual Verification Required", 13, "Order is on hold while some aspect needs to be manually confirmed."),
    (13, "Disputed", 12, "Customer has initiated a dispute resolution process for the PayPal transaction that paid for the order."),
    (14, "Partially Refunded", 14, "Seller has partially refunded the order."),
]
ADDRESS_FIELDS = ("first_name", "last_name", "company", "street_1", "street_2", "city", "state", "zip", "country",
                  "country_iso2", "phone", "email")
CONSIGNMENT_COSTS = {"base_cost": "base_cost", "cost_ex_tax": "cost_ex_tax", "cost_inc_tax": "cost_inc_tax",
                     "cost_tax": "cost_tax", "base_handling_cost": "base_handling_cost",
                     "handling_cost_ex_tax": "handling_cost_ex_tax", "handling_cost_inc_tax": "handling_cost_inc_tax",
                     "handling_cost_tax": "handling_cost_tax"}


def status_body(status_id: int, name: str, sort_order: int, description: str) -> dict:
    return {"id": status_id, "name": name, "system_label": name, "custom_label": name,
            "system_description": description, "order": sort_order}


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class OrdersApi:
    """Endpoints under ``/stores/{store_hash}/v2/orders`` and ``/v2/order_statuses``."""

    def __init__(self, sim: "BigCommerceSimulator"):
        self.sim = sim

    def routes(self, endpoint) -> list[Route]:
        o = PREFIX + "/orders"
        return [
            Route(o, endpoint(self.list_orders, V2), methods=["GET"]),
            Route(o + "/count", endpoint(self.count_orders, V2), methods=["GET"]),
            Route(o + "/{order_id}", endpoint(self.get_order, V2), methods=["GET"]),
            Route(o + "/{order_id}/products", endpoint(self.list_products, V2), methods=["GET"]),
            Route(o + "/{order_id}/coupons", endpoint(self.list_coupons, V2), methods=["GET"]),
            Route(o + "/{order_id}/shipping_addresses", endpoint(self.list_shipping_addresses, V2), methods=["GET"]),
            Route(o + "/{order_id}/shippingaddresses", endpoint(self.list_shipping_addresses, V2), methods=["GET"]),
            Route(o + "/{order_id}/consignments", endpoint(self.get_consignments, V2), methods=["GET"]),
            Route(PREFIX + "/order_statuses", endpoint(self.list_statuses, V2), methods=["GET"]),
            Route(PREFIX + "/order_statuses/{status_id}", endpoint(self.get_status, V2), methods=["GET"]),
        ]

    @property
    def orders(self):
        return self.sim.collections["orders"]

    # ---- GET /v2/orders -------------------------------------------------------------------------
    async def list_orders(self, request: Request) -> Response:
        params = request.query_params
        paging = parse_paging(params, over_max=self.sim.limit_over_max)
        include = parse_include(joined(params, "include"), INCLUDES)
        view = self.sim.lister.view(self.orders, self.order_query(params))
        window = view.page((paging.page - 1) * paging.limit, paging.limit)
        return v2_list([self.present(rec, include) for rec in window.records])

    def order_query(self, params) -> Query:
        field, descending = parse_sort(params.get("sort"), tuple(ORDERINGS)) or ("id", False)
        query = Query(ORDERINGS[field], descending)
        for range_field, (min_name, max_name) in RANGE_FILTERS.items():
            bounds = self._range(params, range_field, min_name, max_name)
            if bounds is None:
                continue
            if field == range_field:
                query.lower, query.upper = bounds
            else:
                query.predicates.append(((range_field, bounds), _between(range_field, *bounds)))
        self._add_value_filters(params, query)
        self._add_archive_filter(params, query)
        return query

    @staticmethod
    def _range(params, field: str, min_name: str, max_name: str) -> tuple[int, int] | None:
        if not params.get(min_name) and not params.get(max_name):
            return None
        parse = (lambda v, n: parse_int(v, n)) if field == "id" else (lambda v, n: parse_v2_instant(v, n).micros)
        lo = parse(params[min_name], min_name) if params.get(min_name) else -(2**62)
        hi = parse(params[max_name], max_name) if params.get(max_name) else 2**62
        return lo, hi

    @staticmethod
    def _add_value_filters(params, query: Query) -> None:
        for name in INT_FILTERS:
            if params.get(name) not in (None, ""):
                wanted = parse_int(params[name], name)
                query.predicates.append(((name, wanted), lambda r, n=name, w=wanted: id_order(r.get(n)) == w))
        for name in TEXT_FILTERS:
            if params.get(name) not in (None, ""):
                wanted = params[name]
                query.predicates.append(((name, wanted), lambda r, n=name, w=wanted: str(r.get(n)) == w))
        if params.get("email"):
            email = params["email"].strip().lower()
            query.predicates.append((("email", email), lambda r: _billing_email(r) == email))
        for name, compare in (("min_total", lambda t, v: t is not None and t >= v),
                              ("max_total", lambda t, v: t is not None and t <= v)):
            if params.get(name):
                bound = parse_number(params[name], name)
                query.predicates.append(((name, bound),
                                         lambda r, c=compare, b=bound: c(_number(r.get("total_inc_tax")), b)))

    def _add_archive_filter(self, params, query: Query) -> None:
        """Archived (``is_deleted``) orders are left out of lists unless ``is_deleted=true`` asks for
        them (or option ``archived_orders_in_list`` is set)."""
        if params.get("is_deleted") not in (None, ""):
            wanted = parse_bool(params["is_deleted"], "is_deleted")
            query.predicates.append((("is_deleted", wanted), lambda r: bool(r.get("is_deleted")) is wanted))
        elif not self.sim.options_flag("archived_orders_in_list") and self.sim.archived_order_count():
            query.predicates.append((("is_deleted", False), lambda r: not r.get("is_deleted")))

    # ---- one order, count, statuses ----------------------------------------------------------
    async def get_order(self, request: Request) -> Response:
        include = parse_include(joined(request.query_params, "include"), INCLUDES)
        return json_response(self.present(self._order(request), include))

    async def count_orders(self, request: Request) -> Response:
        query = self.order_query(request.query_params)
        counts: dict[int, int] = {}
        total = 0
        for rec in self.sim.lister.view(self.orders, query):
            counts[id_order(rec.get("status_id"))] = counts.get(id_order(rec.get("status_id")), 0) + 1
            total += 1
        statuses = [{**{k: v for k, v in status_body(*s).items() if k != "order"}, "count": counts.get(s[0], 0),
                     "sort_order": s[2]} for s in sorted(STATUSES, key=lambda s: s[2])]
        return json_response({"statuses": statuses, "count": total})

    async def list_statuses(self, request: Request) -> Response:
        return json_response([status_body(*s) for s in STATUSES])

    async def get_status(self, request: Request) -> Response:
        wanted = id_order(request.path_params["status_id"])
        for s in STATUSES:
            if s[0] == wanted:
                return json_response(status_body(*s))
        raise ApiError(404, "The requested resource was not found.")

    # ---- sub-resources --------------------------------------------------------------------------
    async def list_products(self, request: Request) -> Response:
        return self._sub_list(request, "products")

    async def list_coupons(self, request: Request) -> Response:
        return self._sub_list(request, "coupons")

    async def list_shipping_addresses(self, request: Request) -> Response:
        return self._sub_list(request, "shipping_addresses")

    async def get_consignments(self, request: Request) -> Response:
        include = parse_include(joined(request.query_params, "include"), ("consignments.line_items",))
        order = self._order(request)
        return json_response(self.consignments(order, full_items="consignments.line_items" in include))

    def _sub_list(self, request: Request, kind: str) -> Response:
        order = self._order(request)
        paging = parse_paging(request.query_params, over_max=self.sim.limit_over_max)
        rows = self.sim.sub_rows(kind, order.get("id"))
        start = (paging.page - 1) * paging.limit
        return v2_list(rows[start:start + paging.limit])

    def _order(self, request: Request) -> dict:
        order = self.orders.get(request.path_params["order_id"])
        if order is None:
            raise ApiError(404, "The requested resource was not found.")
        return order

    # ---- presentation -----------------------------------------------------------------------------
    def present(self, order: dict, include: frozenset[str]) -> dict:
        """The order as v2 serves it: sub-resource links instead of lists, optional consignments/fees."""
        oid = order.get("id")
        base = f"{self.sim.public_url}/stores/{self.sim.store_hash}/v2/orders/{oid}"
        out = dict(order)
        out["products"] = {"url": f"{base}/products", "resource": f"/orders/{oid}/products"}
        out["shipping_addresses"] = {"url": f"{base}/shippingaddresses", "resource": f"/orders/{oid}/shippingaddresses"}
        out["coupons"] = {"url": f"{base}/coupons", "resource": f"/orders/{oid}/coupons"}
        if "consignments" in include or "consignments.line_items" in include:
            out["consignments"] = self.consignments(order, full_items="consignments.line_items" in include)
        if "fees" in include:
            out["fees"] = self.sim.sub_rows("fees", oid)
        return out

    def consignments(self, order: dict, full_items: bool) -> dict:
        """Consignments of an order: one shipping consignment per shipping address (or one from the
        billing address), digital items as a download, gift certificates as e-mail."""
        oid = order.get("id")
        products = self.sim.sub_rows("products", oid)
        base = f"{self.sim.public_url}/stores/{self.sim.store_hash}/v2"

        def line_items(rows):
            if full_items:
                return list(rows)
            return [{"url": f"{base}/orders/{oid}/products/{p.get('id')}",
                     "resource": f"/orders/{oid}/products/{p.get('id')}"} for p in rows]
        physical = [p for p in products if p.get("type") not in ("digital", "giftcertificate")]
        digital = [p for p in products if p.get("type") == "digital"]
        gifts = [p for p in products if p.get("type") == "giftcertificate"]
        email = (order.get("billing_address") or {}).get("email", "")
        return {
            "pickups": [],
            "shipping": self._shipping_consignments(order, physical, line_items),
            "downloads": [{"recipient_email": email, "line_items": line_items(digital)}] if digital else [],
            "email": {"gift_certificates": ([{"recipient_email": email, "line_items": line_items(gifts)}]
                                            if gifts else [])},
        }

    def _shipping_consignments(self, order: dict, physical: list[dict], line_items) -> list[dict]:
        if not physical:
            return []
        addresses = self.sim.sub_rows("shipping_addresses", order.get("id"))
        if not addresses:
            address_id = id_order(physical[0].get("order_address_id")) if physical[0].get("order_address_id") else 0
            addresses = [{**(order.get("billing_address") or {}), "id": max(address_id, 0)}]
        out = []
        for address in addresses:
            aid = id_order(address.get("id"))
            rows = physical if len(addresses) == 1 else \
                [p for p in physical if id_order(p.get("order_address_id")) == aid]
            out.append(self._shipping_consignment(address, rows, line_items))
        return out

    @staticmethod
    def _shipping_consignment(address: dict, rows: list[dict], line_items) -> dict:
        block: dict[str, Any] = {"id": id_order(address.get("id"))}
        block.update({f: str(address[f]) for f in ADDRESS_FIELDS if address.get(f) is not None})
        block["form_fields"] = []
        block["line_items"] = line_items(rows)
        block["items_total"] = _total(p.get("quantity") for p in rows)
        block["items_shipped"] = _total(p.get("quantity_shipped") for p in rows)
        block["shipping_method"] = str(address.get("shipping_method") or "")
        for target, source in CONSIGNMENT_COSTS.items():
            value = _number(address.get(source))
            if value is not None:
                block[target] = value
        return block


def _total(values) -> int | float:
    """Sum of numeric values (non-numbers count 0), as an int when it is whole."""
    total = sum(_number(v) or 0 for v in values)
    return int(total) if float(total).is_integer() else total


def _between(field: str, lo: int, hi: int):
    if field == "id":
        return lambda r: lo <= id_order(r.get("id")) <= hi
    return lambda r: lo <= micros_or_min(r.get(field)) <= hi


def _billing_email(order: dict) -> str:
    billing = order.get("billing_address")
    return str(billing.get("email") or "").lower() if isinstance(billing, dict) else ""

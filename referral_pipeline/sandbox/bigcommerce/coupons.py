"""v2 coupons (marketing): ``GET /v2/coupons`` (filters ``id``, ``code``, ``name``, ``type``,
``exclude_type``, ``min_id``, ``max_id``; by id; page/limit; 204 when empty), ``/v2/coupons/count``
and ``/v2/coupons/{id}``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.simulator import json_response
from .common import V2, ApiError, v2_list
from .listing import Query, id_ordering
from .params import ParamError, parse_int, parse_paging

if TYPE_CHECKING:
    from .simulator import BigCommerceSimulator

PREFIX = "/stores/{store_hash}/v2/coupons"
BY_ID = id_ordering()
COUPON_TYPES = ("per_item_discount", "percentage_discount", "per_total_discount", "shipping_discount",
                "free_shipping", "promotion")


class CouponsApi:
    """Endpoints under ``/stores/{store_hash}/v2/coupons``."""

    def __init__(self, sim: "BigCommerceSimulator"):
        self.sim = sim
        self._by_code: tuple[int, dict[str, list[dict]]] = (-1, {})

    def routes(self, endpoint) -> list[Route]:
        return [
            Route(PREFIX, endpoint(self.list_coupons, V2), methods=["GET"]),
            Route(PREFIX + "/count", endpoint(self.count_coupons, V2), methods=["GET"]),
            Route(PREFIX + "/{coupon_id}", endpoint(self.get_coupon, V2), methods=["GET"]),
        ]

    @property
    def coupons(self):
        return self.sim.collections["coupons"]

    async def list_coupons(self, request: Request) -> Response:
        params = request.query_params
        paging = parse_paging(params, over_max=self.sim.limit_over_max)
        view = self.sim.lister.view(self.coupons, self.coupon_query(params))
        return v2_list(view.page((paging.page - 1) * paging.limit, paging.limit).records)

    async def count_coupons(self, request: Request) -> Response:
        view = self.sim.lister.view(self.coupons, self.coupon_query(request.query_params))
        return json_response({"count": len(view)})

    async def get_coupon(self, request: Request) -> Response:
        coupon = self.coupons.get(request.path_params["coupon_id"])
        if coupon is None:
            raise ApiError(404, "The requested resource was not found.")
        return json_response(coupon)

    def coupon_query(self, params) -> Query:
        query = Query(BY_ID)
        if params.get("min_id") or params.get("max_id"):
            query.lower = parse_int(params["min_id"], "min_id") if params.get("min_id") else None
            query.upper = parse_int(params["max_id"], "max_id") if params.get("max_id") else None
        if params.get("id"):
            query.candidates = [c for c in [self.coupons.get(parse_int(params["id"], "id"))] if c is not None]
        if params.get("code"):
            code = params["code"].strip().lower()
            if query.candidates is None:
                query.candidates = list(self.by_code().get(code, []))
            else:
                query.predicates.append((("code", code), lambda c: str(c.get("code") or "").lower() == code))
        if params.get("name"):
            name = params["name"]
            query.predicates.append((("name", name), lambda c: c.get("name") == name))
        for param, keep in (("type", True), ("exclude_type", False)):
            if params.get(param):
                kind = params[param]
                if kind not in COUPON_TYPES:
                    raise ParamError(param, f"must be one of {', '.join(COUPON_TYPES)}")
                query.predicates.append(((param, kind), lambda c, k=kind, w=keep: (c.get("type") == k) is w))
        return query

    def by_code(self) -> dict[str, list[dict]]:
        """Coupons per lower-cased code (rebuilt after a write); codes are matched case-insensitively."""
        generation, index = self._by_code
        if generation != self.coupons.generation:
            index = {}
            for coupon in self.coupons.values():
                index.setdefault(str(coupon.get("code") or "").lower(), []).append(coupon)
            self._by_code = (self.coupons.generation, index)
        return index

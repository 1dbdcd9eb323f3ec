"""v3 customers: ``GET /v3/customers`` (filters, includes, sorts, page and cursor paging), customer
attribute definitions (``/v3/customers/attributes``) and attribute values
(``/v3/customers/attribute-values``, the upsert that writes referral fields back).

Customers are stored in the ``customers`` collection exactly as given, with their ``attributes``,
``addresses``, ``form_fields`` and ``store_credit_amounts`` lists; those lists are served only
when ``include=`` asks for them.
"""
from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import stamps
from ..core.jsonio import loads
from .common import V3, ApiError, v3_collection
from .listing import Query, date_ordering, id_order, id_ordering, micros_or_min, stamp_ordering, text_ordering
from .paging import cursor_pagination, decode_cursor, offset_pagination
from .params import (ParamError, day_range, joined, parse_include, parse_int_list, parse_number, parse_paging,
                     parse_sort, parse_str_list, parse_v3_instant)

if TYPE_CHECKING:
    from .simulator import BigCommerceSimulator

PREFIX = "/stores/{store_hash}/v3/customers"
ORDERINGS = {
    "id": id_ordering(),
    "date_modified": stamp_ordering("date_modified", "date_modified"),
    "date_created": date_ordering("date_created", "date_created"),
    "last_name": text_ordering("last_name", "last_name"),
}
# include value -> customer fields it reveals (absent fields are served as [] when included)
INCLUDE_FIELDS = {
    "addresses": ("addresses",), "attributes": ("attributes",), "storecredit": ("store_credit_amounts",),
    "formfields": ("form_fields",), "shopper_profile_id": ("shopper_profile_id",), "segment_ids": ("segment_ids",),
}
LIST_FIELDS = {"addresses", "attributes", "store_credit_amounts", "form_fields", "segment_ids"}
TEXT_IN_FILTERS = {"company:in": "company", "customer_group_id:in": "customer_group_id", "phone:in": "phone",
                   "registration_ip_address:in": "registration_ip_address"}
ATTRIBUTE_TYPES = ("string", "number", "date")
MAX_ATTRIBUTES_PER_STORE = 50
MAX_VALUES_PER_CALL = 10
MAX_VALUE_LENGTH = 255


def _range_filter(params, field: str) -> tuple[int, int] | None:
    """Inclusive micros range from ``field``, ``field:min`` and ``field:max`` (None if absent)."""
    lo, hi, given = -(2**62), 2**62, False
    if params.get(f"{field}:min"):
        lo, given = max(lo, parse_v3_instant(params[f"{field}:min"], f"{field}:min").micros), True
    if params.get(f"{field}:max"):
        hi, given = min(hi, parse_v3_instant(params[f"{field}:max"], f"{field}:max").micros), True
    if params.get(field):
        day_lo, day_hi = day_range(parse_v3_instant(params[field], field))
        lo, hi, given = max(lo, day_lo), min(hi, day_hi), True
    return (lo, hi) if given else None


def _full_name(record: dict) -> str:
    return f"{record.get('first_name') or ''} {record.get('last_name') or ''}".strip().lower()


class CustomersApi:
    """Endpoints under ``/stores/{store_hash}/v3/customers``."""

    def __init__(self, sim: "BigCommerceSimulator"):
        self.sim = sim

    def routes(self, endpoint) -> list[Route]:
        return [
            Route(PREFIX, endpoint(self.list_customers, V3), methods=["GET"]),
            Route(PREFIX + "/attributes", endpoint(self.list_attributes, V3), methods=["GET"]),
            Route(PREFIX + "/attributes", endpoint(self.create_attributes, V3), methods=["POST"]),
            Route(PREFIX + "/attribute-values", endpoint(self.list_attribute_values, V3), methods=["GET"]),
            Route(PREFIX + "/attribute-values", endpoint(self.upsert_attribute_values, V3), methods=["PUT"]),
        ]

    @property
    def customers(self):
        return self.sim.collections["customers"]

    @property
    def attributes(self):
        return self.sim.collections["customer-attributes"]

    # ---- GET /v3/customers --------------------------------------------------------------------
    async def list_customers(self, request: Request) -> Response:
        params = request.query_params
        paging = parse_paging(params, over_max=self.sim.limit_over_max)
        include = parse_include(joined(params, "include"), tuple(INCLUDE_FIELDS))
        sort = parse_sort(params.get("sort"), ("date_created", "last_name", "date_modified"))
        after, before = params.get("after"), params.get("before")
        if after and before:
            raise ParamError("before", "cannot be combined with after")
        query = self.customer_query(params, sort)
        view = self.sim.lister.view(self.customers, query)
        limit = paging.limit
        if after or before:
            name, cursor = ("after", after) if after else ("before", before)
            key = decode_cursor(query.ordering, cursor, name)
            window = view.after(key, limit) if after else view.before(key, limit)
            current = f"?page=1&{name}={quote(cursor)}&limit={limit}"
            meta = {"cursor_pagination": cursor_pagination(query.ordering, window, limit, current)}
        else:
            window = view.page((paging.page - 1) * limit, limit)
            meta = {"pagination": offset_pagination(len(view), len(window.records), paging.page, limit)}
            if paging.page == 1:
                meta["cursor_pagination"] = cursor_pagination(query.ordering, window, limit, f"?page=1&limit={limit}")
        present = self._presenter(include)
        return v3_collection([present(rec) for rec in window.records], meta)

    def customer_query(self, params, sort: tuple[str, bool] | None) -> Query:
        field, descending = sort or ("id", False)
        query = Query(ORDERINGS[field], descending)
        for date_field in ("date_modified", "date_created"):
            bounds = _range_filter(params, date_field)
            if bounds is None:
                continue
            if field == date_field:
                query.lower, query.upper = bounds
            else:
                query.predicates.append(((date_field, bounds), _date_between(date_field, *bounds)))
        self._add_candidates(params, query)
        self._add_text_filters(params, query)
        return query

    def _add_candidates(self, params, query: Query) -> None:
        """``id:in`` and ``email:in`` select a small candidate set (the other filters still apply)."""
        if params.get("id:in"):
            ids = parse_int_list(params["id:in"], "id:in")
            query.candidates = [r for r in (self.customers.get(i) for i in ids) if r is not None]
        if params.get("email:in"):
            emails = {e.lower() for e in parse_str_list(params["email:in"])}
            if query.candidates is None:
                query.candidates = self._by_emails(emails)
            else:
                query.predicates.append((("email:in", tuple(sorted(emails))), _lower_in("email", emails)))

    def _by_emails(self, emails: set[str]) -> list[dict]:
        def email_key(r):
            return (str(r.get("email") or "").lower(), id_order(r.get("id")))
        ordered = self.customers.sorted_by("email", email_key)
        found = []
        for email in emails:
            i = bisect.bisect_left(ordered, (email,), key=email_key)
            while i < len(ordered) and email_key(ordered[i])[0] == email:
                found.append(ordered[i])
                i += 1
        return found

    @staticmethod
    def _add_text_filters(params, query: Query) -> None:
        if params.get("name:in"):
            names = {n.lower() for n in parse_str_list(params["name:in"])}
            query.predicates.append((("name:in", tuple(sorted(names))), lambda r: _full_name(r) in names))
        if params.get("name:like"):
            parts = [n.lower() for n in parse_str_list(params["name:like"])]
            query.predicates.append((("name:like", tuple(parts)), lambda r: any(p in _full_name(r) for p in parts)))
        for param, field in TEXT_IN_FILTERS.items():
            if params.get(param):
                values = {v.lower() for v in parse_str_list(params[param])}
                query.predicates.append(((param, tuple(sorted(values))), _lower_in(field, values)))

    @staticmethod
    def _presenter(include: frozenset[str]):
        shown = {f for name in include for f in INCLUDE_FIELDS[name]}
        hidden = frozenset(f for fields in INCLUDE_FIELDS.values() for f in fields if f not in shown)
        defaults = tuple(f for f in shown if f in LIST_FIELDS)

        def present(record: dict) -> dict:
            if not (record.keys() & hidden) and all(f in record for f in defaults):
                return record
            out = {k: v for k, v in record.items() if k not in hidden}
            for f in defaults:
                out.setdefault(f, [])
            return out
        return present

    # ---- /v3/customers/attributes ---------------------------------------------------------------
    async def list_attributes(self, request: Request) -> Response:
        params = request.query_params
        paging = parse_paging(params, over_max=self.sim.limit_over_max)
        rows = sorted(self.attributes.values(), key=lambda r: id_order(r.get("id")))
        if params.get("name"):
            rows = [r for r in rows if r.get("name") == params["name"]]
        if params.get("name:like"):
            needle = params["name:like"].lower()
            rows = [r for r in rows if needle in str(r.get("name") or "").lower()]
        if params.get("type"):
            rows = [r for r in rows if r.get("type") == params["type"]]
        return self._paged(rows, paging)

    async def create_attributes(self, request: Request) -> Response:
        items = await _json_array(request)
        existing = {str(r.get("name")) for r in self.attributes.values()}
        errors: dict[str, str] = {}
        for i, item in enumerate(items):
            name, kind = item.get("name"), item.get("type")
            if not isinstance(name, str) or not 1 <= len(name) <= 255:
                errors[f"{i}.name"] = "name is required (1 to 255 characters)"
            elif name in existing:
                errors[f"{i}.name"] = f"an attribute named {name!r} already exists"
            if kind not in ATTRIBUTE_TYPES:
                errors[f"{i}.type"] = f"type must be one of {', '.join(ATTRIBUTE_TYPES)}"
            existing.add(str(name))
        if len(self.attributes) + len(items) > MAX_ATTRIBUTES_PER_STORE:
            errors["attributes"] = f"a store cannot have more than {MAX_ATTRIBUTES_PER_STORE} customer attributes"
        if errors:
            raise ApiError(422, "The Attribute was not valid.", errors)
        now = stamps.fmt_iso_seconds_z(self.sim.now())
        created = [self.attributes.put({"id": self.sim.new_id("customer-attributes"), "name": item["name"],
                                        "type": item["type"], "date_created": now, "date_modified": now})
                   for item in items]
        return v3_collection(created, {})

    # ---- /v3/customers/attribute-values ----------------------------------------------------------
    async def list_attribute_values(self, request: Request) -> Response:
        params = request.query_params
        paging = parse_paging(params, over_max=self.sim.limit_over_max)
        if params.get("customer_id:in"):
            ids = parse_int_list(params["customer_id:in"], "customer_id:in")
            customers = [c for c in (self.customers.get(i) for i in sorted(set(ids))) if c is not None]
        else:
            customers = [self.customers.records[k] for k in self.customers.key_index()]
        wanted = None
        if params.get("attribute_id:in"):
            wanted = set(parse_int_list(params["attribute_id:in"], "attribute_id:in"))
        if params.get("name"):
            named = {id_order(a.get("id")) for a in self.attributes.values() if a.get("name") == params["name"]}
            wanted = named if wanted is None else wanted & named
        rows = [v for c in customers for v in (c.get("attributes") or [])
                if isinstance(v, dict) and (wanted is None or id_order(v.get("attribute_id")) in wanted)]
        return self._paged(rows, paging)

    async def upsert_attribute_values(self, request: Request) -> Response:
        items = await _json_array(request)
        if len(items) > MAX_VALUES_PER_CALL:
            raise ApiError(422, "The CustomerAttributeValue was not valid.",
                           {"attribute_values": f"at most {MAX_VALUES_PER_CALL} attribute values per request, "
                                                f"got {len(items)}"})
        errors: dict[str, str] = {}
        checked = [self._check_value(i, item, errors) for i, item in enumerate(items)]
        if errors:
            raise ApiError(422, "The CustomerAttributeValue was not valid.", errors)
        now = stamps.fmt_iso_seconds_z(self.sim.now())
        written = [self._write_value(customer_id, attribute_id, value, now)
                   for customer_id, attribute_id, value in checked]
        return v3_collection(written, {})

    def _check_value(self, i: int, item: dict, errors: dict) -> tuple[int, int, str]:
        customer_id, attribute_id, value = item.get("customer_id"), item.get("attribute_id"), item.get("value")
        for name, number in (("customer_id", customer_id), ("attribute_id", attribute_id)):
            if not isinstance(number, int) or isinstance(number, bool):
                errors[f"{i}.{name}"] = f"{name} is required and must be an integer"
        if not isinstance(value, str):
            errors[f"{i}.value"] = "value is required and must be a string"
        elif len(value) > MAX_VALUE_LENGTH:
            errors[f"{i}.value"] = f"value must be at most {MAX_VALUE_LENGTH} characters, got {len(value)}"
        if f"{i}.customer_id" not in errors and self.customers.get(customer_id) is None:
            errors[f"{i}.customer_id"] = f"customer {customer_id} does not exist"
        if f"{i}.attribute_id" not in errors:
            attribute = self.attributes.get(attribute_id)
            if attribute is None:
                errors[f"{i}.attribute_id"] = f"attribute {attribute_id} does not exist"
            elif isinstance(value, str) and f"{i}.value" not in errors:
                problem = _type_problem(attribute.get("type"), value)
                if problem:
                    errors[f"{i}.value"] = problem
        return customer_id, attribute_id, value

    def _write_value(self, customer_id: int, attribute_id: int, value: str, now: str) -> dict:
        """Upsert one value on the customer (by attribute id); the customer's date_modified moves."""
        customer = self.customers.get(customer_id)
        values = [dict(v) for v in (customer.get("attributes") or []) if isinstance(v, dict)]
        current = next((v for v in values if id_order(v.get("attribute_id")) == attribute_id), None)
        if current is None:
            current = {"id": self.sim.new_attribute_value_id(), "attribute_id": attribute_id,
                       "customer_id": id_order(customer.get("id")), "date_created": now}
            values.append(current)
        current.update(attribute_value=value, date_modified=now)
        self.customers.put({**customer, "attributes": values, "attribute_count": len(values), "date_modified": now})
        return {"id": current["id"], "attribute_id": attribute_id, "attribute_value": value,
                "customer_id": current["customer_id"], "date_created": current.get("date_created", now),
                "date_modified": now}

    @staticmethod
    def _paged(rows: list, paging) -> Response:
        start = (paging.page - 1) * paging.limit
        page_rows = rows[start:start + paging.limit]
        meta = {"pagination": offset_pagination(len(rows), len(page_rows), paging.page, paging.limit)}
        return v3_collection(page_rows, meta)


def _date_between(field: str, lo: int, hi: int):
    return lambda r: lo <= micros_or_min(r.get(field)) <= hi


def _lower_in(field: str, values: set[str]):
    return lambda r: str(r.get(field) if r.get(field) is not None else "").lower() in values


def _type_problem(kind: Any, value: str) -> str | None:
    """Why ``value`` does not fit an attribute of type ``kind`` (None when it does)."""
    try:
        if kind == "number":
            parse_number(value, "value")
        elif kind == "date":
            parse_v3_instant(value, "value")
    except ParamError:
        return f"value {value!r} is not a valid {kind}"
    return None


async def _json_array(request: Request) -> list[dict]:
    """The request body as a JSON array of objects (415 for another content type, 422 otherwise)."""
    content_type = request.headers.get("content-type", "")
    if "application/json" not in content_type.lower():
        raise ApiError(415, "The request Content-Type must be application/json.",
                       {"Content-Type": content_type or "missing"})
    try:
        body = loads(await request.body())
    except ValueError:
        raise ApiError(422, "The request body is not valid JSON.", {"body": "expected a JSON array"}) from None
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise ApiError(422, "The request body is not valid.", {"body": "expected a JSON array of objects"})
    return body


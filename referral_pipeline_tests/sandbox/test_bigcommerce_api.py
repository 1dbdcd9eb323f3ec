"""BigCommerce simulator over real HTTP: customers (v3), attributes, orders (v2) and their
sub-resources, refunds (v3), coupons (v2), auth, errors; every 2xx/422 body is validated against
the official OpenAPI files."""
from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from referral_pipeline.sandbox.core import stamps

from .bigcommerce_support import (RATE_HEADERS, SHARED_ORDER_STAMP, SHARED_STAMP, STORE, Client, running,
                                  validate, validate_schema, write_world)


@pytest.fixture(scope="module")
def world_root(tmp_path_factory):
    return write_world(tmp_path_factory.mktemp("bc-world"))


@pytest.fixture(scope="module")
def client(world_root):
    """A shared simulator for read-only tests (rate limit off)."""
    with running(world_root) as sim:
        yield Client(sim)


@pytest.fixture
def fresh(world_root):
    """A simulator of its own, for tests that write."""
    with running(world_root) as sim:
        yield Client(sim)


def ids(body) -> list[int]:
    return [r["id"] for r in (body["data"] if isinstance(body, dict) else body)]


def link_params(link: str) -> dict:
    return dict(parse_qsl(link.lstrip("?")))


# ---- auth, unknown paths, headers -------------------------------------------------------------
def test_auth_and_store_hash(client):
    base = client.sim.base_url
    r = client.session.get(f"{base}/stores/{STORE}/v3/customers")
    assert r.status_code == 401
    assert r.json() == {"status": 401, "title": "No valid credentials were found in this request.",
                        "type": "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes",
                        "errors": {}}
    r = client.session.get(f"{base}/stores/{STORE}/v2/orders", headers={"X-Auth-Token": "wrong"})
    assert r.status_code == 401 and r.json() == [{"status": 401, "message": "No valid credentials were found in this request."}]
    r = client.session.get(f"{base}/stores/otherstore/v2/orders", headers={"X-Auth-Token": client.sim.access_token})
    assert r.status_code == 404 and r.json()[0]["status"] == 404
    r = client.get("/v3/catalog/products")
    assert r.status_code == 404 and r.json()["status"] == 404
    r = client.post("/v3/customers", [{}])
    assert r.status_code == 405 and r.json()["title"].startswith("The requested method is not allowed")
    for response in (r, client.get("/v2/orders")):
        assert all(h in response.headers for h in RATE_HEADERS)


# ---- v3 customers: paging and meta -------------------------------------------------------------
def test_first_page_has_both_meta_blocks_later_pages_only_pagination(client):
    r = client.get("/v3/customers", {"limit": 5})
    validate("customers", r)
    body = r.json()
    assert ids(body) == [1, 2, 3, 4, 5]  # default order: id
    assert body["meta"]["pagination"] == {"total": 12, "count": 5, "per_page": 5, "current_page": 1, "total_pages": 3,
                                          "links": {"current": "?page=1&limit=5", "next": "?page=2&limit=5"}}
    cursor = body["meta"]["cursor_pagination"]
    assert cursor["count"] == 5 and cursor["per_page"] == 5 and set(cursor) >= {"start_cursor", "end_cursor", "links"}
    r = client.get("/v3/customers", {"limit": 5, "page": 3})
    validate("customers", r)
    body = r.json()
    assert ids(body) == [11, 12] and set(body["meta"]) == {"pagination"}
    assert body["meta"]["pagination"]["links"] == {"current": "?page=3&limit=5", "previous": "?page=2&limit=5"}
    r = client.get("/v3/customers", {"limit": 5, "page": 9})
    assert r.status_code == 200 and r.json()["data"] == [] and r.json()["meta"]["pagination"]["count"] == 0


def test_cursor_paging_is_stable_across_equal_date_modified(fresh):
    """Customers 1..6 share date_modified; pages of 4 split them; a customer modified between
    pages moves to the end instead of being skipped or repeated."""
    params = {"sort": "date_modified:asc", "limit": 4}
    first = fresh.get("/v3/customers", params).json()
    assert ids(first) == [1, 2, 3, 4]
    assert {c["date_modified"] for c in first["data"]} == {SHARED_STAMP}
    fresh.admin("customers", [{"id": 2, "notes": "edited"}])  # 2 was served; its date_modified moves to now
    fresh.admin("customers", [{"id": 5, "notes": "edited"}])  # 5 not yet served: it must still come, later
    seen, after = ids(first), first["meta"]["cursor_pagination"]["end_cursor"]
    while after:
        r = fresh.get("/v3/customers", {**params, "after": after})
        validate("customers", r)
        body = r.json()
        assert set(body["meta"]) == {"cursor_pagination"}
        seen += ids(body)
        block = body["meta"]["cursor_pagination"]
        after = link_params(block["links"]["next"])["after"] if "next" in block["links"] else None
    assert seen == [1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 2, 5]
    # before: the page preceding a cursor
    third = fresh.get("/v3/customers", {**params, "after": first["meta"]["cursor_pagination"]["end_cursor"]}).json()
    back = fresh.get("/v3/customers", {**params, "before": third["meta"]["cursor_pagination"]["start_cursor"]}).json()
    assert ids(back) == [1, 3, 4]  # 2 moved away; the 3 records before customer 6
    assert "previous" not in back["meta"]["cursor_pagination"]["links"]


def test_descending_and_other_sorts(client):
    assert ids(client.get("/v3/customers", {"sort": "date_modified:desc", "limit": 8}).json()) == [12, 11, 10, 9, 8, 7, 6, 5]
    assert ids(client.get("/v3/customers", {"sort": "last_name:asc", "limit": 3}).json()) == [12, 11, 10]
    assert ids(client.get("/v3/customers", {"sort": "date_created:desc", "limit": 2}).json()) == [12, 11]
    first = client.get("/v3/customers", {"sort": "last_name:desc", "limit": 5}).json()
    after = first["meta"]["cursor_pagination"]["end_cursor"]
    assert ids(client.get("/v3/customers", {"sort": "last_name:desc", "limit": 5, "after": after}).json()) == [6, 7, 8, 9, 10]


def test_customer_filters(client):
    def get(**params):
        r = client.get("/v3/customers", params)
        validate("customers", r)
        return ids(r.json())
    assert get(**{"id:in": "9,3,99"}) == [3, 9]
    assert get(**{"email:in": "shopper5@example.com,SHOPPER7@example.com"}) == [5, 7]
    assert get(**{"date_modified:min": "2024-05-09"}) == [9, 10, 11, 12]
    assert get(**{"date_modified:min": "2024-05-09T08:30:00Z", "date_modified:max": "2024-05-10T08:30:00"}) == [9, 10]
    assert get(**{"date_modified:min": SHARED_STAMP, "date_modified:max": SHARED_STAMP}) == [1, 2, 3, 4, 5, 6]
    assert get(date_modified="2024-05-08") == [8]
    assert get(**{"date_created:max": "2024-01-03T12:00:00Z", "sort": "date_created:desc"}) == [3, 2, 1]
    assert get(**{"date_modified:min": "2024-05-09", "sort": "date_modified:desc", "id:in": "1,10,12"}) == [12, 10]
    assert get(**{"name:in": "ann lee10"}) == [3]
    assert get(**{"customer_group_id:in": "2"}) == [4]
    assert get(**{"date_modified:min": "1714557600", "sort": "date_modified:asc", "limit": 2}) == [1, 2]


def test_includes(client):
    plain = client.get("/v3/customers", {"id:in": "3"}).json()["data"][0]
    assert not {"attributes", "addresses", "store_credit_amounts"} & set(plain)
    assert plain["attribute_count"] == 1 and plain["email"] == "shopper3@example.com"
    r = client.get("/v3/customers", {"id:in": "3,4", "include": "attributes,addresses"})
    validate("customers", r)
    three, four = r.json()["data"]
    assert three["attributes"] == [{"id": 7, "attribute_id": 1, "attribute_value": "ANN-REF", "customer_id": 3,
                                    "date_created": "2024-02-01T00:00:00Z", "date_modified": "2024-02-01T00:00:00Z"}]
    assert four["attributes"] == [] and four["addresses"][0]["address1"] == "4 Main St"
    assert "store_credit_amounts" not in three


@pytest.mark.parametrize("params,param", [
    ({"id:in": "1,x"}, "id:in"), ({"date_modified:min": "last tuesday"}, "date_modified:min"),
    ({"date_created:max": "2024-02-30"}, "date_created:max"), ({"sort": "email:asc"}, "sort"),
    ({"include": "orders"}, "include"), ({"after": "bm90LWEtY3Vyc29y"}, "after"),
    ({"after": "abc", "before": "def"}, "before"), ({"limit": "0"}, "limit"), ({"page": "x"}, "page"),
])
def test_bad_customer_filters_are_422(client, params, param):
    r = client.get("/v3/customers", params)
    assert r.status_code == 422
    validate("customers", r)
    body = r.json()
    assert body["status"] == 422 and body["type"].endswith("api-status-codes") and param in body["errors"]


def test_limit_above_250_and_options(world_root):
    with running(world_root) as sim:
        c = Client(sim)
        r = c.get("/v3/customers", {"limit": 251})
        assert r.status_code == 413 and r.json()["status"] == 413 and "limit" in r.json()["errors"]
        r = c.get("/v2/orders", {"limit": 1000})
        assert r.status_code == 413 and r.json() == [{"status": 413, "message": "The field 'limit' is invalid: must be at most 250, got 1000"}]
        assert c.get("/v2/orders", {"limit": 250}).status_code == 200
    with running(world_root, options={"limit_over_max": "clamp", "archived_orders_in_list": True}) as sim:
        body = Client(sim).get("/v3/customers", {"limit": 500}).json()
        assert body["meta"]["pagination"]["per_page"] == 250 and len(body["data"]) == 12
        assert ids(Client(sim).get("/v2/orders", {"min_id": 127}).json()) == [127, 128, 129]


# ---- attributes ----------------------------------------------------------------------------------
def test_attribute_definitions(fresh):
    r = fresh.get("/v3/customers/attributes", {"name": "referral_code"})
    validate("customers", r)
    assert [a["id"] for a in r.json()["data"]] == [1]
    r = fresh.post("/v3/customers/attributes", [{"name": "friend_code", "type": "string"}])
    validate("customers", r)
    created = r.json()["data"][0]
    assert created["id"] == 4 and created["name"] == "friend_code" and created["date_created"].endswith("Z")
    assert [a["name"] for a in fresh.get("/v3/customers/attributes").json()["data"]][-1] == "friend_code"
    r = fresh.post("/v3/customers/attributes", [{"name": "referral_code", "type": "string"}, {"name": "x", "type": "bool"}])
    assert r.status_code == 422
    validate("customers", r)
    assert set(r.json()["errors"]) == {"0.name", "1.type"}
    r = fresh.post("/v3/customers/attributes", [{"name": f"a{i}", "type": "string"} for i in range(47)])
    assert r.status_code == 422 and "attributes" in r.json()["errors"]


def test_attribute_value_upsert_moves_date_modified(fresh):
    before = fresh.sim.now()
    r = fresh.put("/v3/customers/attribute-values", [
        {"attribute_id": 1, "customer_id": 3, "value": "ANN-NEW"},   # update existing value 7
        {"attribute_id": 2, "customer_id": 3, "value": "approved"},  # new value on customer 3
        {"attribute_id": 1, "customer_id": 8, "value": "BOB-8"},
        {"attribute_id": 3, "customer_id": 8, "value": "12.5"},
    ])
    assert r.status_code == 200, r.text
    validate("customers", r)
    data = r.json()["data"]
    assert [(v["customer_id"], v["attribute_id"], v["attribute_value"]) for v in data] == [
        (3, 1, "ANN-NEW"), (3, 2, "approved"), (8, 1, "BOB-8"), (8, 3, "12.5")]
    assert data[0]["id"] == 7 and data[0]["date_created"] == "2024-02-01T00:00:00Z"
    assert len({v["id"] for v in data}) == 4 and min(v["id"] for v in data[1:]) > 7
    since = stamps.fmt_iso_seconds_z(before)
    delta = fresh.get("/v3/customers", {"date_modified:min": since, "include": "attributes", "sort": "date_modified:asc"}).json()
    assert ids(delta) == [3, 8]
    three = delta["data"][0]
    assert three["attribute_count"] == 2
    assert {(a["attribute_id"], a["attribute_value"]) for a in three["attributes"]} == {(1, "ANN-NEW"), (2, "approved")}
    r = fresh.get("/v3/customers/attribute-values", {"customer_id:in": "3,8", "attribute_id:in": "1"})
    validate("customers", r)
    assert [(v["customer_id"], v["attribute_value"]) for v in r.json()["data"]] == [(3, "ANN-NEW"), (8, "BOB-8")]
    r = fresh.get("/v3/customers/attribute-values", {"customer_id:in": "three"})
    assert r.status_code == 422 and "customer_id:in" in r.json()["errors"]


@pytest.mark.parametrize("body,error_key", [
    ([{"attribute_id": 1, "customer_id": i, "value": "v"} for i in range(1, 12)], "attribute_values"),
    ([{"attribute_id": 1, "customer_id": 3, "value": "x" * 256}], "0.value"),
    ([{"attribute_id": 1, "customer_id": 3, "value": "ok"}, {"attribute_id": 99, "customer_id": 3, "value": "v"}], "1.attribute_id"),
    ([{"attribute_id": 1, "customer_id": 404, "value": "v"}], "0.customer_id"),
    ([{"attribute_id": 3, "customer_id": 3, "value": "many"}], "0.value"),
    ([{"attribute_id": 1, "customer_id": 3, "value": 5}], "0.value"),
    ({"attribute_id": 1}, "body"),
])
def test_attribute_value_upsert_errors_are_422_and_write_nothing(fresh, body, error_key):
    before = fresh.sim.collections["customers"].get(3)
    r = fresh.put("/v3/customers/attribute-values", body)
    assert r.status_code == 422
    validate("customers", r)
    assert error_key in r.json()["errors"]
    assert fresh.sim.collections["customers"].get(3) == before


def test_attribute_values_need_a_json_content_type(fresh):
    r = fresh.session.put(f"{fresh.base}/v3/customers/attribute-values", data="attribute_id=1",
                          headers={"X-Auth-Token": fresh.sim.access_token, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and r.json()["status"] == 415 and "Content-Type" in r.json()["errors"]


# ---- v2 orders ---------------------------------------------------------------------------------
def test_orders_default_page_sorts_and_filters(client):
    def get(**params):
        r = client.get("/v2/orders", params)
        assert r.status_code == 200, r.text
        validate("orders_v2", r)
        return ids(r.json())
    everything = get()
    assert everything == [i for i in range(100, 130) if i != 128]  # id order; archived 128 left out
    assert get(limit=5, page=2) == [105, 106, 107, 108, 109]
    assert get(sort="date_modified:asc", limit=3) == [100, 101, 102]
    assert get(sort="date_modified:desc", limit=3) == [129, 127, 126]
    assert get(min_date_modified=SHARED_ORDER_STAMP, max_date_modified=SHARED_ORDER_STAMP, sort="date_modified:asc") == \
        list(range(100, 110))
    iso = get(min_date_modified="2024-06-06T20:00:00+00:00", sort="date_modified:asc")
    rfc = get(min_date_modified="Thu, 06 Jun 2024 16:00:00 -0400", sort="date_modified:asc")
    assert iso == rfc == [120, 121, 122, 123, 124, 125, 126, 127, 129]
    assert get(min_id=110, max_id=113) == [110, 111, 112, 113]
    assert get(customer_id=2, status_id=10) == [106, 121]
    assert get(email="SHOPPER3@example.com", max_id=110) == [102, 107]
    assert get(is_deleted="true") == [128]
    assert get(min_date_created="2024-05-27", sort="date_created:desc") == [127, 126]


def test_order_date_created_filter_and_body_shape(client):
    body = client.get("/v2/orders", {"min_date_created": "Sat, 25 May 2024 00:00:00 +0000", "max_id": 127}).json()
    assert ids(body) == [124, 125, 126, 127]
    order = body[0]
    assert order["date_modified"] == "Fri, 07 Jun 2024 00:00:00 +0000"
    assert order["total_inc_tax"] == "69.0000" and order["date_created"].endswith("+0000")
    assert order["products"] == {"url": f"{client.sim.base_url}/stores/{STORE}/v2/orders/124/products",
                                 "resource": "/orders/124/products"}
    assert order["coupons"]["resource"] == "/orders/124/coupons" and "consignments" not in order


def test_empty_order_page_is_204_without_body(client):
    for params in ({"page": 3}, {"min_id": 5000}, {"customer_id": 999}):
        r = client.get("/v2/orders", params)
        assert r.status_code == 204 and r.content == b"" and "content-type" not in r.headers
        assert all(h in r.headers for h in RATE_HEADERS)


@pytest.mark.parametrize("params,field", [({"min_date_modified": "tomorrow"}, "min_date_modified"),
                                          ({"sort": "total:asc"}, "sort"), ({"min_id": "ten"}, "min_id"),
                                          ({"include": "products"}, "include")])
def test_bad_order_filters_are_400_v2_errors(client, params, field):
    r = client.get("/v2/orders", params)
    assert r.status_code == 400
    body = r.json()
    assert isinstance(body, list) and body[0]["status"] == 400 and f"'{field}'" in body[0]["message"]


def test_one_order_and_sub_resources(client):
    r = client.get("/v2/orders/100")
    validate("orders_v2", r)
    assert r.json()["id"] == 100 and isinstance(r.json()["products"], dict)
    r = client.get("/v2/orders/100/products")
    validate("orders_v2", r)
    assert [p["id"] for p in r.json()] == [1001, 1002] and r.json()[0]["price_inc_tax"] == "20.0000"
    r = client.get("/v2/orders/100/coupons")
    validate("orders_v2", r)
    assert r.json() == [{"id": 3, "coupon_id": 2, "order_id": 100, "code": "FRIEND-BBB", "amount": 5, "type": 2, "discount": 5}]
    r = client.get("/v2/orders/101/coupons")
    assert r.status_code == 204 and r.content == b""
    assert client.get("/v2/orders/100/products", {"limit": 1, "page": 2}).json()[0]["id"] == 1002
    r = client.get("/v2/orders/999")
    assert r.status_code == 404 and r.json() == [{"status": 404, "message": "The requested resource was not found."}]
    assert client.get("/v2/orders/999/products").status_code == 404
    assert client.get("/v2/orders/128").json()["is_deleted"] is True  # archived: still readable by id


def test_consignments_embed_line_items(client):
    r = client.get("/v2/orders", {"include": "consignments.line_items", "max_id": 101})
    validate("orders_v2", r)
    hundred, hundred_one = r.json()
    shipping = hundred["consignments"]["shipping"]
    assert len(shipping) == 1 and [p["id"] for p in shipping[0]["line_items"]] == [1001, 1002]
    assert shipping[0]["items_total"] == 2 and shipping[0]["zip"] == "78701"
    for item in shipping[0]["line_items"]:
        validate_schema("orders_v2", "orderProducts", item)
    assert [p["id"] for p in hundred_one["consignments"]["downloads"][0]["line_items"]] == [1012]
    # links form: the spec's `consignments: oneOf[{url,resource} (all optional), object]` matches
    # any object twice, so the consignment object is validated against its own schema.
    r = client.get("/v2/orders/100", {"include": "consignments"})
    consignments = r.json()["consignments"]
    assert consignments["shipping"][0]["line_items"][1] == {
        "url": f"{client.sim.base_url}/stores/{STORE}/v2/orders/100/products/1002", "resource": "/orders/100/products/1002"}
    validate_schema("orders_v2", "orderConsignment_Get", consignments)
    body = dict(r.json())
    del body["consignments"]
    validate_schema("orders_v2", "order_Resp", body)
    assert client.get("/v2/orders/100/consignments").json() == consignments


def test_order_count_and_statuses(client):
    r = client.get("/v2/orders/count")
    validate("orders_v2", r)
    body = r.json()
    assert body["count"] == 29
    counts = {s["id"]: s["count"] for s in body["statuses"]}
    assert counts[10] == 10 and counts[11] == 19 and counts[0] == 0 and len(counts) == 15
    r = client.get("/v2/order_statuses")
    validate("orders_v2", r)
    assert {s["id"]: s["name"] for s in r.json()}[14] == "Partially Refunded"
    assert client.get("/v2/order_statuses/4").json()["name"] == "Refunded"
    assert client.get("/v2/order_statuses/15").json() == [{"status": 404, "message": "The requested resource was not found."}]


# ---- v3 refunds -------------------------------------------------------------------------------------
def test_refunds(client):
    r = client.get("/v3/orders/payment_actions/refunds")
    validate("orders_v3", r)
    body = r.json()
    assert ids(body) == [1, 2, 3] and body["meta"]["pagination"]["total"] == 3
    r = client.get("/v3/orders/payment_actions/refunds", {"created:min": "2024-06-03T10:00:00+00:00"})
    assert ids(r.json()) == [2, 3]
    r = client.get("/v3/orders/payment_actions/refunds", {"created:max": "2024-06-03T09:59:59Z", "order_id:in": "101,102"})
    assert ids(r.json()) == [1]
    assert ids(client.get("/v3/orders/payment_actions/refunds", {"order_id:in": "101"}).json()) == [1, 3]
    page = client.get("/v3/orders/payment_actions/refunds", {"limit": 2, "page": 2}).json()
    assert ids(page) == [3] and page["meta"]["pagination"]["links"]["previous"] == "?page=1&limit=2"
    assert ids(client.get("/v3/orders/payment_actions/refunds", {"transaction_id": "txn-2"}).json()) == [2]
    r = client.get("/v3/orders/101/payment_actions/refunds")
    validate("orders_v3", r)
    assert ids(r.json()) == [1, 3]
    assert client.get("/v3/orders/103/payment_actions/refunds").json() == {"data": [], "meta": {}}
    assert client.get("/v3/orders/999/payment_actions/refunds").status_code == 404
    r = client.get("/v3/orders/payment_actions/refunds/3")
    validate("orders_v3", r)
    assert r.json()["data"]["order_id"] == 101 and r.json()["data"]["items"][0]["requested_amount"] == "20.00"
    missing = client.get("/v3/orders/payment_actions/refunds/99")
    assert missing.status_code == 404 and missing.json()["status"] == 404
    r = client.get("/v3/orders/payment_actions/refunds", {"created:min": "June 3rd"})
    assert r.status_code == 422 and "created:min" in r.json()["errors"]


# ---- v2 coupons --------------------------------------------------------------------------------
def test_coupons(client):
    r = client.get("/v2/coupons")
    validate("marketing", r)
    assert ids(r.json()) == [1, 2, 3, 4, 5]
    assert ids(client.get("/v2/coupons", {"code": "advocate-ccc"}).json()) == [3]
    assert ids(client.get("/v2/coupons", {"min_id": 2, "limit": 2}).json()) == [2, 3]
    assert ids(client.get("/v2/coupons", {"min_id": 2, "limit": 2, "page": 2}).json()) == [4, 5]
    assert ids(client.get("/v2/coupons", {"type": "percentage_discount"}).json()) == [4]
    assert ids(client.get("/v2/coupons", {"exclude_type": "per_total_discount"}).json()) == [4]
    r = client.get("/v2/coupons", {"code": "NOPE"})
    assert r.status_code == 204 and r.content == b""
    r = client.get("/v2/coupons", {"type": "bogo"})
    assert r.status_code == 400 and r.json()[0]["status"] == 400
    r = client.get("/v2/coupons/2")
    validate_schema("marketing", "coupon_Full", r.json())  # the spec has no GET /coupons/{id}
    assert r.json()["code"] == "FRIEND-BBB" and r.json()["max_uses"] == 1
    assert client.get("/v2/coupons/99").status_code == 404
    r = client.get("/v2/coupons/count")
    validate("marketing", r)
    assert r.json() == {"count": 5}

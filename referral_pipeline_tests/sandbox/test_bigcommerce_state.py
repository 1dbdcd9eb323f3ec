"""BigCommerce simulator state: fixture loading (sub-resources stored apart, records served as
given), ``POST /_sandbox/records`` per collection, ``/_sandbox/state`` (contracts §4),
persistence and reset, environment variables, and paging throughput."""
from __future__ import annotations

import re

import orjson
import requests

from referral_pipeline.sandbox.bigcommerce import BigCommerceSimulator
from referral_pipeline.sandbox.core.config import SystemConfig
from referral_pipeline.sandbox.testing import serve_in_thread

from .bigcommerce_support import STORE, TOKEN, Client, coupon, customer, order, running, world, write_world

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
RFC_2822 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")


def test_fixture_orders_keep_sub_resources_apart_and_values_as_given(tmp_path):
    data = world()
    data["orders"][0]["total_inc_tax"] = 45  # semantically invalid (a number): served as given
    data["orders"].append({k: v for k, v in order(130).items() if k not in ("products", "date_modified")})
    write_world(tmp_path, data)
    with running(tmp_path) as sim:
        c = Client(sim)
        assert c.get("/v2/orders/100").json()["total_inc_tax"] == 45
        assert "products" not in sim.collections["orders"].get(100)
        assert [p["id"] for p in sim.sub_rows("products", 100)] == [1001, 1002]
        late = c.get("/v2/orders/130").json()
        assert RFC_2822.match(late["date_modified"])  # a missing stamp is set at load, in the API's format
        assert c.get("/v2/orders/130/products").status_code == 204


def test_admin_upserts_move_stamps_in_each_format(tmp_path):
    write_world(tmp_path)
    with running(tmp_path) as sim:
        c = Client(sim)
        new_products = [{"id": 9001, "order_id": 100, "name": "Gift", "quantity": 3, "price_inc_tax": "1.0000"}]
        stored = c.admin("orders", [{"id": 100, "status_id": 4, "products": new_products}]).json()["records"][0]
        assert RFC_2822.match(stored["date_modified"]) and stored["date_modified"] != order(100)["date_modified"]
        assert "products" not in stored and stored["status_id"] == 4 and stored["cart_id"] == "cart-100"
        assert c.get("/v2/orders/100/products").json() == new_products
        assert c.get("/v2/orders", {"sort": "date_modified:desc", "limit": 1}).json()[0]["id"] == 100
        created = c.admin("orders", [{"customer_id": 0, "status_id": 1}]).json()["records"][0]
        assert created["id"] == 130 and RFC_2822.match(created["date_created"])

        stored = c.admin("customers", [{"id": 4, "first_name": "Dee"}]).json()["records"][0]
        assert ISO_Z.match(stored["date_modified"]) and stored["first_name"] == "Dee" and stored["email"] == "shopper4@example.com"
        assert c.admin("customers", [{"email": "new@example.com", "first_name": "N", "last_name": "W"}]).json()["records"][0]["id"] == 13

        before = sim.collections["orders"].get(103)["date_modified"]
        refund = c.admin("refunds", [{"order_id": 103, "total_amount": 9.5, "items": [], "payments": []}]).json()["records"][0]
        assert refund["id"] == 4 and re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$", refund["created"])
        assert sim.collections["orders"].get(103)["date_modified"] != before  # a refund changes its order
        again = c.admin("refunds", [{"id": 4, "reason": "late"}]).json()["records"][0]
        assert again["created"] == refund["created"] and again["reason"] == "late"

        kept = c.admin("coupons", [{"id": 2, "enabled": False}]).json()["records"][0]
        assert kept["date_created"] == coupon(2, "FRIEND-BBB")["date_created"] and kept["enabled"] is False
        assert c.get("/v2/coupons", {"code": "friend-bbb"}).json()[0]["enabled"] is False


def test_state_shape_persistence_and_reset(tmp_path):
    root, state_dir = write_world(tmp_path / "fx"), tmp_path / "state"
    with running(root, state_dir=state_dir) as sim:
        c = Client(sim)
        c.put("/v3/customers/attribute-values", [{"attribute_id": 1, "customer_id": 2, "value": "REF-2"}])
        c.admin("orders", [{"id": 101, "coupons": [{"id": 50, "coupon_id": 1, "order_id": 101, "code": "FRIEND-AAA",
                                                     "amount": 5, "type": 2, "discount": 5}]}])
        c.get("/v2/orders/101/coupons")
        state = requests.get(f"{sim.base_url}/_sandbox/state").json()
        assert {"customers", "orders", "refunds", "coupons", "customer-attributes", "order-products",
                "order-coupons", "request_counts"} <= set(state)
        two = next(cu for cu in state["customers"] if cu["id"] == 2)
        assert [(a["attribute_id"], a["attribute_value"]) for a in two["attributes"]] == [(1, "REF-2")]
        assert all(not isinstance(o.get("products"), list) for o in state["orders"]) and len(state["orders"]) == 30
        assert [r["id"] for r in state["refunds"]] == [1, 2, 3]
        assert state["order-coupons"]["101"][0]["code"] == "FRIEND-AAA"
        assert state["request_counts"] == {"PUT /stores/{store_hash}/v3/customers/attribute-values": 1,
                                           "GET /stores/{store_hash}/v2/orders/{order_id}/coupons": 1}
    assert (state_dir / "bigcommerce.json").exists()
    with running(root, state_dir=state_dir) as sim:  # restart: the saved state comes back
        c = Client(sim)
        restored = c.get("/v3/customers", {"id:in": "2", "include": "attributes"}).json()["data"][0]
        assert restored["attributes"][0]["attribute_value"] == "REF-2"
        assert c.get("/v2/orders/101/coupons").json()[0]["id"] == 50
        assert [p["id"] for p in c.get("/v2/orders/100/products").json()] == [1001, 1002]
        assert sim.request_counts["PUT /stores/{store_hash}/v3/customers/attribute-values"] == 1
        requests.post(f"{sim.base_url}/_sandbox/reset")
        assert c.get("/v2/orders/101/coupons").status_code == 204
        assert c.get("/v3/customers", {"id:in": "2", "include": "attributes"}).json()["data"][0]["attributes"] == []


def test_env_vars_and_credentials_from_config():
    sim = BigCommerceSimulator(SystemConfig(credentials={"store_hash": "abc123", "access_token": "tok"}))
    assert sim.env_vars("http://127.0.0.1:8703") == {"BIGCOMMERCE_STORE_HASH": "abc123", "BIGCOMMERCE_ACCESS_TOKEN": "tok",
                                                     "BIGCOMMERCE_API_URL": "http://127.0.0.1:8703"}
    default = BigCommerceSimulator().env_vars("http://x")
    assert default["BIGCOMMERCE_STORE_HASH"] == STORE and default["BIGCOMMERCE_ACCESS_TOKEN"] == TOKEN


def _big_world(n: int) -> dict[str, list[dict]]:
    template_customer, template_order = customer(7), order(115)
    customers = [{**template_customer, "id": i, "email": f"s{i}@example.com",
                  "date_modified": f"2024-05-{1 + i % 28:02d}T{i % 24:02d}:00:00Z"} for i in range(1, n + 1)]
    del template_order["products"]
    orders = [{**template_order, "id": i, "date_modified": f"{['Wed', 'Thu'][i % 2]}, 0{5 + i % 2} Jun 2024 {i % 24:02d}:00:00 +0000"}
              for i in range(1, n + 1)]
    return {"customers": customers, "orders": orders}


def test_paging_a_large_collection_reads_every_record_once():
    """60k customers by cursor (date_modified delta) and 60k orders by page (date_modified sort):
    every record once. (The serving rate is measured by bench/bench_sandbox.py, not here.)"""
    n = 60_000
    sim = BigCommerceSimulator(SystemConfig(rate_limit={"requests_per_window": 0}))
    sim.load_records(_big_world(n))
    with serve_in_thread(sim, start=False):
        c = Client(sim)
        seen = set()
        params = {"date_modified:min": "2024-05-01", "sort": "date_modified:asc", "limit": 250}
        body = orjson.loads(c.get("/v3/customers", params).content)
        while True:
            seen.update(customer["id"] for customer in body["data"])
            nxt = body["meta"]["cursor_pagination"]["links"].get("next")
            if not nxt:
                break
            after = body["meta"]["cursor_pagination"]["end_cursor"]
            body = orjson.loads(c.get("/v3/customers", {**params, "after": after}).content)
        assert len(seen) == n

        orders, page = [], 1
        while True:
            r = c.get("/v2/orders", {"min_date_modified": "Tue, 04 Jun 2024 00:00:00 +0000",
                                     "sort": "date_modified:asc", "limit": 250, "page": page})
            if r.status_code == 204:
                break
            orders.extend(o["id"] for o in orjson.loads(r.content))
            page += 1
        assert len(orders) == len(set(orders)) == n

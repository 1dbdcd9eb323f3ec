"""BigCommerce staging: raw rows landed from the simulator are mapped into the canonical staging
tables (exact rows), statuses, guest orders, and every kind of bad input is quarantined with
its reason while everything else is staged."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from referral_pipeline.config.programs import Programs
from referral_pipeline.sandbox.__main__ import main as sandbox_main
from referral_pipeline.transform.staging.runner import write_market_rules

from .bigcommerce_support import (PROGRAMS, at, bc_sim, client_for, coupon, customer, extract_all, new_warehouse,
                                  order, product, refund, stage_all, table_rows, upsert, write_world)

DROP = ("load_seq",)


def staged_world(tmp_path, world, programs: Programs | None = None):
    with bc_sim(write_world(tmp_path, world)) as sim:
        con = new_warehouse()
        if programs is not None:
            write_market_rules(con, programs)
        extract_all(con, client_for(sim), "run-1")
        results = stage_all(con, "run-1")
    return con, results


def test_orders_and_their_items_map_to_the_canonical_columns(tmp_path):
    orders = [
        order(100, 30, customer_id=1, coupon="friend-aaa", status_id=10, status="Completed", custom_status="Completed"),
        order(101, 31, customer_id=0, status_id=14, status="Partially Refunded", custom_status="",
              refunded_amount="22.0000", order_source="mobile",
              billing_address={"first_name": "Gus", "last_name": "Guest", "email": " Guest@Example.COM "},
              products=[product(101, 1, 20.0, quantity_refunded=1), product(101, 2, 15.0, qty=2)]),
        order(102, 32, status_id=4, status="Refunded", refunded_amount="61.0000", order_source="manual"),
    ]
    con, results = staged_world(tmp_path, {"orders": orders})
    rows = table_rows(con, "staging.orders", "order_key", DROP)
    assert rows["bc:100"] == {
        "order_key": "bc:100", "source": "bc", "source_type": "bigcommerce", "source_order_id": "100",
        "order_number": "100", "customer_record_key": "bc:1", "email_normalized": "shopper1@example.com",
        "market_id": "us", "store": "1", "placed_at": at(-30), "updated_at": at(30), "status": "completed",
        "source_status": "10 Completed", "currency": "USD", "gross_amount": Decimal(50), "discount_amount": Decimal(10),
        "tax_amount": Decimal(5), "shipping_amount": Decimal(6), "refunded_amount": Decimal(0),
        "net_amount": Decimal(40), "coupon_codes": ["FRIEND-AAA"], "referral_code": None, "attribution_id": None,
        "ip_address": "192.0.2.100", "user_agent": None, "device_id": None, "channel": "web", "is_deleted": False}
    guest = rows["bc:101"]
    assert (guest["customer_record_key"], guest["email_normalized"], guest["status"], guest["source_status"]) == \
        (None, "guest@example.com", "partially_refunded", "14 Partially Refunded")
    # refunded: the refunded quantity at its ex-tax price (20), not refunded_amount (22, tax included)
    assert (guest["refunded_amount"], guest["net_amount"], guest["coupon_codes"], guest["channel"]) == \
        (Decimal(20), Decimal(30), [], "mobile_app")
    # fully refunded without refunded quantities: refunded_amount capped at the net subtotal
    assert (rows["bc:102"]["status"], rows["bc:102"]["refunded_amount"], rows["bc:102"]["net_amount"],
            rows["bc:102"]["channel"]) == ("refunded", Decimal(50), Decimal(0), "call_center")
    items = table_rows(con, "staging.order_items", "order_item_key", DROP)
    assert items["bc:100:1001"] == {"order_item_key": "bc:100:1001", "order_key": "bc:100", "source": "bc",
                                    "sku": "W-1", "name": "Widget 1", "quantity": Decimal(1),
                                    "unit_price": Decimal(20), "total_price": Decimal(20), "currency": "USD"}
    assert items["bc:100:1002"]["quantity"] == 2 and items["bc:100:1002"]["total_price"] == 30
    assert len(items) == 6
    assert (results["bc.orders"].staged, results["bc.orders"].quarantined, results["bc.order_items"].staged) == (3, 0, 6)


STATUS_MAP = {0: "incomplete", 1: "placed", 2: "shipped", 3: "shipped", 4: "refunded", 5: "cancelled",
              6: "declined", 7: "placed", 8: "paid", 9: "paid", 10: "completed", 11: "paid", 12: "placed",
              13: "paid", 14: "partially_refunded"}


def test_all_fifteen_statuses_map_to_canonical_statuses(tmp_path):
    orders = [order(200 + s, s, status_id=s, status=f"label {s}", custom_status="") for s in range(15)]
    con, _ = staged_world(tmp_path, {"orders": orders})
    got = dict(con.execute("SELECT CAST(source_order_id AS INTEGER) - 200, status FROM staging.orders").fetchall())
    assert got == STATUS_MAP


def test_customers_refunds_and_coupons_map_to_the_canonical_columns(tmp_path):
    world = {
        "customers": [customer(7, 1), customer(8, 2, email="not-an-email", phone="",
                                                    accepts_product_review_abandoned_cart_emails=True)],
        "orders": [order(100, 1)],
        "refunds": [refund(3, 100, 5, amount=21.5, reason="Item damaged")],
        "coupons": [coupon(4, "friend-xyz", max_uses=0, num_uses=3, enabled=False,
                           expires="Thu, 31 Dec 2026 23:59:59 +0000")],
    }
    con, _ = staged_world(tmp_path, world)
    customers = table_rows(con, "staging.customers", "customer_record_key", DROP)
    assert customers["bc:7"] == {
        "customer_record_key": "bc:7", "source": "bc", "source_type": "bigcommerce", "source_customer_id": "7",
        "email_raw": "Shopper7@Example.com", "email_normalized": "shopper7@example.com", "first_name": "Ann7",
        "last_name": "Lee", "phone": "555-0107", "marketing_consent": False, "country": "US", "store": "1",
        "sf_account_id": None, "created_at": at(-1007), "updated_at": at(1), "is_deleted": False}
    # a malformed email is staged without email_normalized (not quarantined); phone falls back to the address
    assert (customers["bc:8"]["email_normalized"], customers["bc:8"]["phone"], customers["bc:8"]["marketing_consent"]) \
        == (None, None, True)
    assert table_rows(con, "staging.refunds", "refund_key", DROP) == {"bc:3": {
        "refund_key": "bc:3", "order_key": "bc:100", "source": "bc", "source_refund_id": "3", "amount": Decimal("21.5"),
        "currency": None, "created_at": at(5), "reason": "Item damaged", "kind": "refund"}}
    coupons = table_rows(con, "staging.coupons", "coupon_key", DROP)
    assert coupons == {"bc:4": {
        "coupon_key": "bc:4", "source": "bc", "code": "FRIEND-XYZ", "source_id": "4", "is_active": False,
        "max_uses": None, "uses": 3, "valid_from": at(-5000), "valid_until": coupons["bc:4"]["valid_until"],
        "requires_code": True, "currency": None, "store": None, "name": "Referral friend-xyz"}}
    assert coupons["bc:4"]["valid_until"].isoformat() == "2026-12-31T23:59:59+00:00"


# (overrides of a good order, expected reason)
BAD_ORDERS = {
    300: ({"total_inc_tax": "61,0000"}, "unparseable_amount"),
    301: ({"total_inc_tax": "-61.0000"}, "negative_amount"),
    302: ({"total_inc_tax": "NaN"}, "non_finite_amount"),
    303: ({"subtotal_ex_tax": "Infinity"}, "non_finite_amount"),
    304: ({"currency_code": "ZZZ"}, "unknown_currency"),
    305: ({"currency_code": ""}, "missing_currency"),
    306: ({"customer_id": 0, "billing_address": {"email": ""}}, "unidentifiable_customer"),
    307: ({"customer_id": 0, "billing_address": {"email": "guest@@example.com"}}, "malformed_email"),
    308: ({"date_created": "Mon, 38 Foo 2026 25:61:00 +0000"}, "unparseable_date"),
    309: ({"date_created": ""}, "missing_required_field"),
    310: ({"customer_message": "x" * 1200}, "field_too_long"),
    311: ({"billing_address": {"email": "a@example.com", "last_name": "Lee\ufffd"}}, "invalid_text"),
    312: ({"status_id": 42}, "missing_required_field"),
    313: ({"currency_code": "CAD"}, "no_market"),
    314: ({"products": [product(314, 1, -5.0)]}, "negative_amount"),
}
BAD_CUSTOMERS = {40: ({"first_name": "A" * 1001}, "field_too_long"), 41: ({"last_name": "L\ud800e"}, "invalid_text"),
                 42: ({"email": "x" * 250 + "@example.com"}, "field_too_long"),
                 43: ({"date_created": "someday"}, "unparseable_date")}
BAD_REFUNDS = {50: ({"total_amount": "lots"}, "unparseable_amount"), 51: ({"total_amount": -3}, "negative_amount"),
               52: ({"order_id": None}, "missing_required_field"), 53: ({"created": "soon"}, "unparseable_date"),
               54: ({"total_amount": "Infinity"}, "non_finite_amount")}
BAD_COUPONS = {60: ({"code": ""}, "missing_required_field"), 61: ({"expires": "tomorrow"}, "unparseable_date"),
               62: ({"name": "N" * 1001}, "field_too_long")}
US_DOLLARS_ONLY = Programs.model_validate({
    "sources": [{"id": "bc", "type": "bigcommerce"}],
    "markets": [{"id": "us", "business_unit": "acme-us", "currency": "USD",
                 "match": [{"source": "bc", "currency": "USD"}], "advocate_reward": {"amount": 20, "currency": "USD"}}]})


def bad_world() -> dict[str, list[dict]]:
    def with_address(oid, over):
        base = order(oid, oid - 290)
        if "billing_address" in over:
            over = {**over, "billing_address": {**base["billing_address"], **over["billing_address"]}}
        return {**base, **over}
    orders = [order(100 + k, k) for k in range(6)] + [with_address(oid, over) for oid, (over, _) in BAD_ORDERS.items()]
    customers = [customer(i, i) for i in range(1, 6)] + [customer(i, i, **over) for i, (over, _) in BAD_CUSTOMERS.items()]
    refunds = [refund(1, 100, 1)] + [{**refund(i, 101, i), **over} for i, (over, _) in BAD_REFUNDS.items()]
    coupons = [coupon(1, "GOOD")] + [{**coupon(i, f"C{i}"), **over} for i, (over, _) in BAD_COUPONS.items()]
    return {"orders": orders, "customers": customers, "refunds": refunds, "coupons": coupons}


def test_bad_records_are_quarantined_with_their_reason_and_everything_else_is_staged(tmp_path):
    con, results = staged_world(tmp_path, bad_world(), programs=US_DOLLARS_ONLY)
    quarantined = {(entity, int(source_id)): reason for entity, source_id, reason in con.execute(
        "SELECT entity, source_id, reason FROM audit.quarantine_current").fetchall()}
    expected = {**{("orders", k): r for k, (_, r) in BAD_ORDERS.items()},
                **{("customers", k): r for k, (_, r) in BAD_CUSTOMERS.items()},
                **{("refunds", k): r for k, (_, r) in BAD_REFUNDS.items()},
                **{("coupons", k): r for k, (_, r) in BAD_COUPONS.items()}}
    assert quarantined == expected
    # staged + quarantined = distinct records the source returned, per entity
    for entity, table, good in (("orders", "staging.orders", 6), ("customers", "staging.customers", 5),
                                ("refunds", "staging.refunds", 1), ("coupons", "staging.coupons", 1)):
        staged = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        landed = con.execute(f"SELECT count(*) FROM raw.bc__{entity}").fetchone()[0]
        bad = sum(1 for (e, _) in expected if e == entity)
        assert (staged, staged + bad) == (good, landed)
    # a quarantined order brings no items
    assert con.execute("SELECT count(*), count(DISTINCT order_key) FROM staging.order_items").fetchone() == (12, 6)
    assert results["bc.orders"].reasons["non_finite_amount"] == 2


def test_a_fixed_record_leaves_quarantine_and_is_staged(tmp_path):
    orders = [order(100, 1), order(101, 2, currency_code="ZZZ")]
    with bc_sim(write_world(tmp_path, {"orders": orders})) as sim:
        con = new_warehouse()
        client = client_for(sim)
        extract_all(con, client, "run-1")
        stage_all(con, "run-1")
        assert con.execute("SELECT source_id, reason FROM audit.quarantine_current").fetchall() == \
            [("101", "unknown_currency")]
        upsert(sim, "orders", [{"id": 101, "currency_code": "USD"}])
        extract_all(con, client, "run-2")
        stage_all(con, "run-2")
    assert con.execute("SELECT count(*) FROM audit.quarantine_current").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM audit.quarantine WHERE resolved_at IS NOT NULL").fetchone() == (1,)
    assert con.execute("SELECT order_key FROM staging.orders ORDER BY 1").fetchall() == [("bc:100",), ("bc:101",)]


MANIFEST_REASON = {"non_numeric_amount": "unparseable_amount", "overlong_field": "field_too_long",
                   "invalid_utf8": "invalid_text"}


@pytest.fixture(scope="module")
def generated_world(tmp_path_factory):
    out = tmp_path_factory.mktemp("generated") / "tiny"
    assert sandbox_main(["generate", "--scale", "tiny", "--seed", "3", "--out", str(out)]) in (0, None)
    return out


def test_a_generated_world_stages_everything_but_its_planted_bad_records(generated_world):
    manifest = json.loads((generated_world / "manifest.json").read_text())
    planted = [p for p in manifest["planted"]["malformed"] if p["source"] == "bc"]
    with bc_sim(generated_world) as sim:
        con = new_warehouse()
        write_market_rules(con, Programs.model_validate(
            __import__("yaml").safe_load((generated_world / "programs.yaml").read_text())))
        extract_all(con, client_for(sim), "run-1")
        stage_all(con, "run-1")
    expected = {(p["entity"], str(p["id"]), MANIFEST_REASON.get(p["reason"], p["reason"])) for p in planted
                if p["reason"] not in ("missing_email", "malformed_email")}   # customers: staged without email
    got = set(con.execute("SELECT entity, source_id, reason FROM audit.quarantine_current").fetchall())
    assert planted and got == expected
    counts = manifest["counts"]
    staged_orders = con.execute("SELECT count(*) FROM staging.orders").fetchone()[0]
    staged_customers = con.execute("SELECT count(*) FROM staging.customers").fetchone()[0]
    assert staged_orders + sum(1 for e in expected if e[0] == "orders") == counts["orders"]["bc"]
    assert staged_customers + sum(1 for e in expected if e[0] == "customers") == counts["customer_records"]["bc"]
    assert con.execute("SELECT count(*) FROM staging.orders WHERE market_id <> 'us'").fetchone() == (0,)

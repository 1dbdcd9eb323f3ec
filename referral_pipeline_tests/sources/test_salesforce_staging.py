"""Salesforce staging: Contacts, Orders, OrderItems and derived refunds in the canonical tables,
quarantine of malformed records (hand-planted and from a generated world), deletes and fixes."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from referral_pipeline.config.programs import load_programs
from referral_pipeline.transform.staging.runner import ensure_staging_schema

from .salesforce_support import (QUERY, QUERY_MORE, T0, client_for, contact, extract_all, new_warehouse, order, order_item,
                                 requests_made, salesforce_sim, sid, small_org, stage_all, upsert, write_org)

D = Decimal


def run(tmp_path, org, runs: int = 1, between=None):
    """Extract and stage ``org``; ``between(sim)`` changes the source before each further run."""
    with salesforce_sim(write_org(tmp_path, org)) as sim:
        client = client_for(sim)
        con = new_warehouse()
        for n in range(runs):
            if n and between:
                between(sim)
            extract_all(con, client, f"run-{n}")
            stage_all(con, f"run-{n}")
    return con


def quarantined(con) -> set[tuple]:
    return set(con.execute("SELECT entity, source_id, reason FROM audit.quarantine_current").fetchall())


def test_orders_map_status_money_codes_market_and_refunds(tmp_path):
    orders = [
        order(1, 100),                                                         # paid
        order(2, 110, Status="Draft"),                                         # placed
        order(3, 120, Status="Cancelled"),                                     # cancelled, not refunded
        order(4, 130, Status="Refunded", Refunded_Amount__c=106.49),           # full refund (all that was paid)
        order(5, 140, Refunded_Amount__c=13.75),                               # partial refund, still Activated
        order(6, 150, Status="Refunded", Refunded_Amount__c=20.0),             # status says refunded, money says partial
        order(7, 160, CurrencyIsoCode="gbp", Coupon_Code__c="friend-ann, SUMMER10 ,,FRIEND-ANN",
              Referral_Code__c=" ann10 ", Friendbuy_Attribution_Id__c="fb-attr-7", Channel__c="mobile_app"),
        order(8, 170, Status="Cancelled", Refunded_Amount__c=30.0),            # refunded, then cancelled
        order(9, 180, EffectiveDate="2026-02-01"),                             # booked on an earlier date
    ]
    org = {"Contact": [contact(i, i) for i in range(1, 10)], "Order": orders,
           "OrderItem": [order_item(1, 1, 100), order_item(2, 1, 100, Quantity=1.0, TotalPrice=None)]}
    con = run(tmp_path, org)
    rows = {r[0]: r[1:] for r in con.execute(
        """SELECT source_order_id, status, source_status, market_id, currency, gross_amount, discount_amount,
                  tax_amount, shipping_amount, refunded_amount, net_amount FROM staging.orders""").fetchall()}
    assert rows == {
        sid("801", 1): ("paid", "Activated", "us", "USD", D("101"), D("10"), D("7.5"), D("4.99"), D("0"), D("91")),
        sid("801", 2): ("placed", "Draft", "us", "USD", D("102"), D("10"), D("7.5"), D("4.99"), D("0"), D("92")),
        sid("801", 3): ("cancelled", "Cancelled", "us", "USD", D("103"), D("10"), D("7.5"), D("4.99"), D("0"), D("93")),
        sid("801", 4): ("refunded", "Refunded", "us", "USD", D("104"), D("10"), D("7.5"), D("4.99"), D("94"), D("0")),
        sid("801", 5): ("partially_refunded", "Activated", "us", "USD", D("105"), D("10"), D("7.5"), D("4.99"),
                        D("13.75"), D("81.25")),
        sid("801", 6): ("partially_refunded", "Refunded", "us", "USD", D("106"), D("10"), D("7.5"), D("4.99"),
                        D("20"), D("76")),
        sid("801", 7): ("paid", "Activated", "uk", "GBP", D("107"), D("10"), D("7.5"), D("4.99"), D("0"), D("97")),
        sid("801", 8): ("cancelled", "Cancelled", "us", "USD", D("108"), D("10"), D("7.5"), D("4.99"), D("30"),
                        D("68")),
        sid("801", 9): ("paid", "Activated", "us", "USD", D("109"), D("10"), D("7.5"), D("4.99"), D("0"), D("99")),
    }
    (seven,) = con.execute("""SELECT order_key, order_number, customer_record_key, coupon_codes, referral_code,
                                     attribution_id, ip_address, user_agent, channel, store, email_normalized, is_deleted
                              FROM staging.orders WHERE source_order_id = ?""", [sid("801", 7)]).fetchall()
    assert seven == (f"sf:{sid('801', 7)}", "00000107", f"sf:{sid('003', 7)}", ["FRIEND-ANN", "SUMMER10"], "ann10",
                     "fb-attr-7", "10.0.0.7", "Mozilla/5.0", "mobile_app", None, None, False)
    placed = dict(con.execute("SELECT source_order_id, placed_at FROM staging.orders").fetchall())
    assert placed[sid("801", 1)] == T0 + timedelta(minutes=70)                     # CreatedDate (same day)
    assert placed[sid("801", 9)] == datetime(2026, 2, 1, tzinfo=timezone.utc)      # EffectiveDate, midnight UTC
    refunds = con.execute("""SELECT refund_key, order_key, source_refund_id, amount, currency, created_at, reason, kind
                             FROM staging.refunds ORDER BY refund_key""").fetchall()
    assert refunds == [
        (f"sf:{sid('801', 3)}:cancel", f"sf:{sid('801', 3)}", f"{sid('801', 3)}:cancel", D("105.49"), "USD", T0 + timedelta(minutes=120), "Cancelled", "cancellation"),
        (f"sf:{sid('801', 4)}:refund", f"sf:{sid('801', 4)}", f"{sid('801', 4)}:refund", D("106.49"), "USD", T0 + timedelta(minutes=130), "Refunded", "refund"),
        (f"sf:{sid('801', 5)}:refund", f"sf:{sid('801', 5)}", f"{sid('801', 5)}:refund", D("13.75"), "USD", T0 + timedelta(minutes=140), "Activated", "refund"),
        (f"sf:{sid('801', 6)}:refund", f"sf:{sid('801', 6)}", f"{sid('801', 6)}:refund", D("20"), "USD", T0 + timedelta(minutes=150), "Refunded", "refund"),
        (f"sf:{sid('801', 8)}:cancel", f"sf:{sid('801', 8)}", f"{sid('801', 8)}:cancel", D("80.49"), "USD", T0 + timedelta(minutes=170), "Cancelled", "cancellation"),
        (f"sf:{sid('801', 8)}:refund", f"sf:{sid('801', 8)}", f"{sid('801', 8)}:refund", D("30"), "USD", T0 + timedelta(minutes=170), "Cancelled", "refund"),
    ]
    items = con.execute("""SELECT order_item_key, order_key, source, sku, name, quantity, unit_price, total_price, currency
                           FROM staging.order_items ORDER BY order_item_key""").fetchall()
    assert items == [
        (f"sf:{sid('801', 1)}:{sid('802', 1)}", f"sf:{sid('801', 1)}", "sf", "SKU-1", "Thing 1", D("2"), D("12.5"), D("25"), None),
        (f"sf:{sid('801', 1)}:{sid('802', 2)}", f"sf:{sid('801', 1)}", "sf", "SKU-2", "Thing 2", D("1"), D("12.5"), D("12.5"), None),
    ]


def test_contacts_map_to_customers(tmp_path):
    org = {"Contact": [contact(1, 10, Phone="+1 555 0100"),
                       contact(2, 20, Email=" Not An Email ", HasOptedOutOfEmail=True),
                       contact(3, 30, Email=None, FirstName=None)]}
    con = run(tmp_path, org)
    rows = con.execute("""SELECT customer_record_key, source, source_type, source_customer_id, email_raw, email_normalized,
                                 first_name, last_name, phone, marketing_consent, country, store, sf_account_id,
                                 created_at, updated_at, is_deleted FROM staging.customers ORDER BY 1""").fetchall()
    assert rows == [
        (f"sf:{sid('003', 1)}", "sf", "salesforce", sid("003", 1), "Person1@Example.com", "person1@example.com", "Pat1",
         "Lee1", "+1 555 0100", True, "United States", None, sid("001", 1), T0 - timedelta(minutes=50),
         T0 + timedelta(minutes=10), False),
        (f"sf:{sid('003', 2)}", "sf", "salesforce", sid("003", 2), "Not An Email", None, "Pat2", "Lee2", None, False,
         "United States", None, sid("001", 2), T0 - timedelta(minutes=40), T0 + timedelta(minutes=20), False),
        (f"sf:{sid('003', 3)}", "sf", "salesforce", sid("003", 3), None, None, None, "Lee3", None, False,
         "United States", None, sid("001", 3), T0 - timedelta(minutes=30), T0 + timedelta(minutes=30), False),
    ]


def malformed_org() -> dict[str, list[dict]]:
    good = small_org(n=4)
    bad_orders = [
        order(11, 300, TotalAmount="12,34"), order(12, 301, TotalAmount=-5.0), order(13, 302, TotalAmount="NaN"),
        order(14, 303, Tax_Amount__c="Infinity"), order(15, 304, CurrencyIsoCode="ZZZ"),
        order(16, 305, CurrencyIsoCode=None), order(17, 306, BillToContactId=None),
        order(18, 307, EffectiveDate="2026-13-35"), order(19, 308, EffectiveDate=None, CreatedDate=None),
        order(20, 309, User_Agent__c="x" * 1200), order(21, 310, User_Agent__c="Mozilla\ufffd"),
        order(22, 311, IP_Address__c="10.0.0.\ud800"), order(23, 312, CurrencyIsoCode="EUR"),
        order(24, 313, TotalAmount=None), order(25, 314, Refunded_Amount__c=-1.0),
    ]
    bad_contacts = [contact(31, 320, Email=None), contact(32, 321, Email="ann@@example.com"),
                    contact(33, 322, FirstName="y" * 1200), contact(34, 323, LastName="Lee\ufffd"),
                    contact(35, 324, Email="a" * 250 + "@example.com")]
    bad_items = [order_item(41, 1, 330, Quantity="two"), order_item(42, 1, 331, UnitPrice=-1.0),
                 order_item(43, 1, 332, TotalPrice="NaN"), order_item(44, 1, 333, OrderId=None),
                 order_item(45, 1, 334, Product_Name__c="p" * 1001)]
    return {**good, "Order": good["Order"] + bad_orders, "Contact": good["Contact"] + bad_contacts,
            "OrderItem": good["OrderItem"] + bad_items}


EXPECTED_QUARANTINE = {
    ("order", sid("801", 11), "unparseable_amount"), ("order", sid("801", 12), "negative_amount"),
    ("order", sid("801", 13), "non_finite_amount"), ("order", sid("801", 14), "non_finite_amount"),
    ("order", sid("801", 15), "unknown_currency"), ("order", sid("801", 16), "missing_currency"),
    ("order", sid("801", 17), "unidentifiable_customer"), ("order", sid("801", 18), "unparseable_date"),
    ("order", sid("801", 19), "missing_required_field"), ("order", sid("801", 20), "field_too_long"),
    ("order", sid("801", 21), "invalid_text"), ("order", sid("801", 22), "invalid_text"),
    ("order", sid("801", 23), "no_market"), ("order", sid("801", 24), "missing_required_field"),
    ("order", sid("801", 25), "negative_amount"),
    ("contact", sid("003", 33), "field_too_long"), ("contact", sid("003", 34), "invalid_text"),
    ("contact", sid("003", 35), "field_too_long"),
    ("order_item", sid("802", 41), "unparseable_amount"), ("order_item", sid("802", 42), "negative_amount"),
    ("order_item", sid("802", 43), "non_finite_amount"), ("order_item", sid("802", 44), "missing_required_field"),
    ("order_item", sid("802", 45), "field_too_long"),
}


def test_malformed_records_are_quarantined_and_every_other_record_staged(tmp_path):
    con = run(tmp_path, malformed_org())
    assert quarantined(con) == EXPECTED_QUARANTINE
    for entity, target in (("contact", "staging.customers"), ("order", "staging.orders"),
                           ("order_item", "staging.order_items")):
        raw = con.execute(f"SELECT count(*) FROM raw.sf__{entity}").fetchone()[0]
        staged = con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
        bad = sum(1 for e, _, _ in EXPECTED_QUARANTINE if e == entity)
        assert staged + bad == raw, entity
    # contacts with a missing or malformed email are customers without a usable email, not quarantined
    assert con.execute("SELECT source_customer_id, email_raw, email_normalized FROM staging.customers "
                       "WHERE source_customer_id IN (?, ?) ORDER BY 1", [sid("003", 31), sid("003", 32)]).fetchall() \
        == [(sid("003", 31), None, None), (sid("003", 32), "ann@@example.com", None)]
    # the quarantine row keeps the raw payload and a readable detail
    payload, detail = con.execute("SELECT payload, detail FROM audit.quarantine WHERE source_id = ?",
                                  [sid("801", 15)]).fetchone()
    assert json.loads(payload)["CurrencyIsoCode"] == "ZZZ" and detail == "CurrencyIsoCode ZZZ"
    assert con.execute("SELECT count(*) FROM staging.refunds").fetchone()[0] == 0  # bad orders yield no refund rows


def test_a_fixed_record_leaves_quarantine_and_a_deleted_one_is_marked(tmp_path):
    org = malformed_org()

    def fix_and_delete(sim):
        upsert(sim, "Order", [{"Id": sid("801", 15), "CurrencyIsoCode": "GBP"},
                              {"Id": sid("801", 2), "IsDeleted": True}])
        upsert(sim, "Contact", [{"Id": sid("003", 1), "IsDeleted": True}])

    con = run(tmp_path, org, runs=2, between=fix_and_delete)
    assert quarantined(con) == EXPECTED_QUARANTINE - {("order", sid("801", 15), "unknown_currency")}
    assert con.execute("SELECT market_id, currency FROM staging.orders WHERE source_order_id = ?",
                       [sid("801", 15)]).fetchall() == [("uk", "GBP")]
    assert con.execute("SELECT source_order_id FROM staging.orders WHERE is_deleted").fetchall() == [(sid("801", 2),)]
    assert con.execute("SELECT source_customer_id FROM staging.customers WHERE is_deleted").fetchall() \
        == [(sid("003", 1),)]
    # the fixed record's quarantine row is kept, marked resolved
    assert con.execute("SELECT count(*) FROM audit.quarantine WHERE source_id = ? AND resolved_at IS NOT NULL",
                       [sid("801", 15)]).fetchone()[0] == 1


def test_a_refund_keeps_the_time_it_was_first_seen(tmp_path):
    def refund_more(sim):
        upsert(sim, "Order", [{"Id": sid("801", 5), "Refunded_Amount__c": 40.0}])

    con = run(tmp_path, {"Contact": [contact(5, 1)], "Order": [order(5, 140, Refunded_Amount__c=13.75)]},
              runs=2, between=refund_more)
    assert con.execute("SELECT amount, created_at FROM staging.refunds").fetchall() \
        == [(D("40"), T0 + timedelta(minutes=140))]
    assert con.execute("SELECT status, refunded_amount FROM staging.orders").fetchall() \
        == [("partially_refunded", D("40"))]


# ---- a generated world ---------------------------------------------------------------------------------------
PLANTED_REASON = {"non_numeric_amount": "unparseable_amount", "negative_amount": "negative_amount",
                  "non_finite_amount": "non_finite_amount", "unknown_currency": "unknown_currency",
                  "unidentifiable_customer": "unidentifiable_customer", "unparseable_date": "unparseable_date",
                  "overlong_field": "field_too_long", "invalid_utf8": "invalid_text"}
ENTITY = {"Contact": "contact", "Order": "order"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    subprocess.run([sys.executable, "-m", "referral_pipeline.sandbox", "generate", "--scale", "small", "--seed", "1",
                    "--out", str(out)], check=True, capture_output=True)
    return out


def test_a_generated_world_stages_every_record_except_the_planted_ones(world):
    manifest = json.loads((world / "manifest.json").read_text())
    planted = [p for p in manifest["planted"]["malformed"] if p["source"] == "sf"]
    expected = {(ENTITY[p["entity"]], p["id"], PLANTED_REASON[p["reason"]]) for p in planted
                if p["reason"] not in ("missing_email", "malformed_email")}
    assert {reason for *_, reason in expected} == set(PLANTED_REASON.values())  # every kind is planted
    with salesforce_sim(world) as sim:
        con = new_warehouse()
        ensure_staging_schema(con, load_programs(world / "programs.yaml"))
        results = extract_all(con, client_for(sim), "run-1")
        stage_all(con, "run-1")
        pages = requests_made(sim, QUERY) + requests_made(sim, QUERY_MORE)
    assert quarantined(con) == expected
    # one COUNT() per entity, then pages of 2,000 (the REST maximum)
    assert pages == sum(1 + -(-r.counts.fetched // 2000) for r in results.values())  # an empty entity: COUNT() only
    counts = manifest["counts"]
    staged = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("staging.customers", "staging.orders", "staging.order_items")}
    bad = {e: sum(1 for x in expected if x[0] == e) for e in ("contact", "order")}
    assert staged["staging.customers"] + bad["contact"] == counts["customer_records"]["sf"]
    assert staged["staging.orders"] + bad["order"] == counts["orders"]["sf"]
    lines = sum(1 for _ in (world / "salesforce" / "OrderItem.jsonl").open())
    assert staged["staging.order_items"] == lines
    # every staged order has a market, a customer and a non-negative net amount
    assert con.execute("""SELECT count(*) FROM staging.orders WHERE market_id IS NULL OR customer_record_key IS NULL
                          OR net_amount < 0""").fetchone()[0] == 0

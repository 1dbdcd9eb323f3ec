"""commercetools staging: money in minor units (2, 0 and 3 fraction digits), discounts, tax,
shipping, returns and cancellations, statuses, markets, coupons with their cart discounts, and
quarantine of malformed records — extracted over HTTP from the simulator, staged in DuckDB."""
from __future__ import annotations

from decimal import Decimal

import pytest

from referral_pipeline.sources.commercetools import staging_specs
from referral_pipeline.transform.staging.runner import run_staging

from .commercetools_support import (SOURCE, cart_discount, client_for, customer, discount_code, extract_all, line,
                                    money, new_db, order, post_records, return_info, rows, serve, stage_all, uid,
                                    write_fixtures)

D = Decimal


def order_row(con, order_id: str) -> dict:
    cur = con.execute("SELECT * FROM staging.orders WHERE source_order_id = ?", [order_id])
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    return dict(zip(names, row)) if row else {}


def loaded(tmp_path, **collections):
    """Serve the collections, extract everything and stage it; returns the connection."""
    with serve(write_fixtures(tmp_path, **collections)) as sim:
        con = new_db()
        extract_all(con, client_for(sim))
        stage_all(con)
    return con


# ---- money and currencies ---------------------------------------------------------------------------
def money_world():
    usd = order(1, lines=[line("l1", "SKU-A", 2500, 2, discount_per_unit=500), line("l2", "SKU-B", 1000, 1)],
                shipping=599, discount_on_total=300, codes=[uid("d", 1)])
    jpy = order(2, currency="JPY", store="jp", lines=[line("l1", "SKU-J", 1500, 3, "JPY")], shipping=500)
    kwd = order(3, currency="KWD", store="gulf", lines=[line("l1", "SKU-K", 12345, 2, "KWD", discount_per_unit=345)],
                shipping=1500, tax_rate=0)
    eur = order(4, currency="EUR", store="eu", lines=[line("l1", "SKU-E", 999, 1, "EUR")], locale="de",
                customLineItems=[{"id": "cl1", "name": {"de": "Geschenkverpackung", "en": "Gift wrap"}, "slug": "gift-wrap",
                                  "money": money(700, "EUR"), "quantity": 1, "totalPrice": money(700, "EUR"),
                                  "taxCategory": {"typeId": "tax-category", "id": "t"}, "state": [], "priceMode": "Standard"}])
    return [usd, jpy, kwd, eur]


def test_money_is_converted_with_each_currencys_fraction_digits(tmp_path):
    con = loaded(tmp_path, orders=money_world(), discount_codes=[discount_code(1, "friend-20", [1])],
                 cart_discounts=[cart_discount(1)])
    amounts = "currency, gross_amount, discount_amount, tax_amount, shipping_amount, refunded_amount, net_amount"
    got = {r[0]: r[1:] for r in rows(con, f"SELECT source_order_id, market_id, {amounts} FROM staging.orders")}
    assert got == {
        # lines 2x25.00 (5.00 off each) + 10.00; 3.00 off the total; tax 10% of 52.99
        uid("a", 1): ("us", "USD", D("60"), D("13"), D("5.3"), D("5.99"), D("0"), D("47")),
        # JPY has no minor unit: centAmount 1500 is 1,500 yen
        uid("a", 2): ("jp", "JPY", D("4500"), D("0"), D("500"), D("500"), D("0"), D("4500")),
        # KWD has three: 12345 is 12.345 dinars
        uid("a", 3): ("kw", "KWD", D("24.69"), D("0.69"), D("0"), D("1.5"), D("0"), D("24")),
        # a custom line item counts like a line
        uid("a", 4): ("eu", "EUR", D("16.99"), D("0"), D("1.5"), D("5"), D("0"), D("16.99")),
    }
    items = rows(con, "SELECT order_item_key, sku, name, quantity, unit_price, total_price, currency "
                      "FROM staging.order_items ORDER BY 1")
    assert items == [
        (f"ct:{uid('a', 1)}:l1", "SKU-A", "Product SKU-A", D("2"), D("25"), D("40"), "USD"),
        (f"ct:{uid('a', 1)}:l2", "SKU-B", "Product SKU-B", D("1"), D("10"), D("10"), "USD"),
        (f"ct:{uid('a', 2)}:l1", "SKU-J", "Product SKU-J", D("3"), D("1500"), D("4500"), "JPY"),
        (f"ct:{uid('a', 3)}:l1", "SKU-K", "Product SKU-K", D("2"), D("12.345"), D("24"), "KWD"),
        (f"ct:{uid('a', 4)}:cl1", "gift-wrap", "Geschenkverpackung", D("1"), D("7"), D("7"), "EUR"),
        (f"ct:{uid('a', 4)}:l1", "SKU-E", "Produkt SKU-E", D("1"), D("9.99"), D("9.99"), "EUR"),
    ]
    usd = order_row(con, uid("a", 1))
    assert usd["coupon_codes"] == ["FRIEND-20"]
    assert (usd["order_number"], usd["customer_record_key"], usd["email_normalized"]) == \
        ("CT-00001", f"ct:{uid('c', 1)}", "shopper1@example.com")
    assert (usd["referral_code"], usd["attribution_id"], usd["ip_address"], usd["user_agent"], usd["device_id"],
            usd["channel"]) == ("REF1", "fb-1", "10.0.0.1", "Mozilla/5.0", "dev-1", "web")
    assert (usd["store"], usd["status"], usd["source_status"]) == ("us", "paid", "Open/Paid/Pending")
    assert rows(con, "SELECT count(*) FROM audit.quarantine")[0][0] == 0


# ---- statuses, returns and cancellations --------------------------------------------------------------
STATUS_CASES = [  # (orderState, paymentState, shipmentState, returns) -> status
    ("Open", "Paid", "Pending", None, "paid"),
    ("Open", "Pending", "Pending", None, "placed"),
    ("Open", "BalanceDue", None, None, "placed"),
    ("Open", None, None, None, "placed"),
    ("Confirmed", "Paid", "Shipped", None, "shipped"),
    ("Confirmed", "Paid", "Partial", None, "shipped"),
    ("Open", "Paid", "Delivered", None, "completed"),
    ("Complete", "Paid", "Delivered", None, "completed"),
    ("Open", "Failed", None, None, "declined"),
    ("Cancelled", "Paid", "Canceled", None, "cancelled"),
    ("Complete", "Paid", "Delivered", [("r-part", "l1", 1, "Refunded")], "partially_refunded"),
    ("Complete", "Paid", "Delivered", [("r-full-1", "l1", 2, "Refunded"), ("r-full-2", "l2", 1, "Refunded")], "refunded"),
    ("Complete", "Paid", "Delivered", [("r-open", "l1", 1, "Initial")], "completed"),
]


def status_order(i, state, payment, shipment, returns):
    rec = order(i, lines=[line("l1", "SKU-A", 2500, 2, discount_per_unit=500), line("l2", "SKU-B", 1000, 1)],
                orderState=state, returnInfo=[return_info(returns, minutes=60)] if returns else [])
    for field, value in (("paymentState", payment), ("shipmentState", shipment)):
        if value is None:
            rec.pop(field)
        else:
            rec[field] = value
    return rec


def test_statuses_refunds_and_cancellations(tmp_path):
    orders = [status_order(i, *case[:4]) for i, case in enumerate(STATUS_CASES)]
    con = loaded(tmp_path, orders=orders)
    got = dict(rows(con, "SELECT source_order_id, status FROM staging.orders"))
    assert got == {uid("a", i): case[4] for i, case in enumerate(STATUS_CASES)}
    refunds = rows(con, "SELECT refund_key, order_key, source_refund_id, amount, currency, kind, reason, "
                        "strftime(created_at AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M') FROM staging.refunds ORDER BY 1")
    cancelled = uid("a", 9)
    assert refunds == [
        (f"ct:{cancelled}:cancellation", f"ct:{cancelled}", f"{cancelled}:cancellation", D("50"), "USD",
         "cancellation", "order cancelled", "2025-03-01 00:09"),
        ("ct:r-full-1", f"ct:{uid('a', 11)}", "r-full-1", D("40"), "USD", "refund", "too small", "2025-03-01 01:00"),
        ("ct:r-full-2", f"ct:{uid('a', 11)}", "r-full-2", D("10"), "USD", "refund", "too small", "2025-03-01 01:00"),
        # one of two units of a line that cost 40.00 after its discount
        ("ct:r-part", f"ct:{uid('a', 10)}", "r-part", D("20"), "USD", "refund", "too small", "2025-03-01 01:00"),
    ]
    money_cols = "gross_amount, discount_amount, refunded_amount, net_amount"
    assert rows(con, f"SELECT {money_cols} FROM staging.orders WHERE source_order_id = ?", [uid("a", 10)]) == \
        [(D("60"), D("10"), D("20"), D("30"))]
    assert rows(con, f"SELECT {money_cols} FROM staging.orders WHERE source_order_id = ?", [uid("a", 11)]) == \
        [(D("60"), D("10"), D("50"), D("0"))]


def test_split_returns_of_one_line_refund_the_whole_line(tmp_path):
    """Three single-unit refunds of a 3-unit line whose total (20.00) does not divide evenly."""
    odd = line("l1", "SKU-O", 1000, 3)
    odd["totalPrice"] = money(2000)
    rec = order(1, lines=[odd], returnInfo=[return_info([(f"r{k}", "l1", 1, "Refunded")], minutes=k) for k in range(3)])
    con = loaded(tmp_path, orders=[rec])
    assert rows(con, "SELECT status, refunded_amount, net_amount FROM staging.orders") == [("refunded", D("20"), D("0"))]
    # each refund row is its rounded share (6.67); the order-level amount is exact
    assert rows(con, "SELECT list(amount ORDER BY refund_key) FROM staging.refunds") == [([D("6.67")] * 3,)]


# ---- customers ---------------------------------------------------------------------------------------
def test_customers_are_mapped_and_bad_emails_staged_without_email(tmp_path):
    con = loaded(tmp_path, customers=[
        customer(1),
        customer(2, email="not-an-email", addresses=[], defaultBillingAddressId=None, stores=[], custom=None),
        {k: v for k, v in customer(3).items() if k != "email"},
    ])
    got = rows(con, "SELECT customer_record_key, source_type, source_customer_id, email_raw, email_normalized, "
                    "first_name, last_name, phone, marketing_consent, country, store, created_at IS NOT NULL "
                    "FROM staging.customers ORDER BY 1")
    assert got == [
        (f"ct:{uid('c', 1)}", "commercetools", uid("c", 1), "Shopper1@Example.com ", "shopper1@example.com",
         "Ann1", "Lee1", "+1-555-0001", False, "US", "us", True),
        (f"ct:{uid('c', 2)}", "commercetools", uid("c", 2), "not-an-email", None, "Ann2", "Lee2", None, None, None,
         None, True),
        (f"ct:{uid('c', 3)}", "commercetools", uid("c", 3), None, None, "Ann3", "Lee3", "+1-555-0003", False, "US",
         "us", True),
    ]
    assert rows(con, "SELECT count(*) FROM audit.quarantine")[0][0] == 0


# ---- coupons -------------------------------------------------------------------------------------------
def coupon_world():
    carts = [cart_discount(1), cart_discount(2, currency="USD", validFrom="2025-01-01T00:00:00.000Z",
                                              validUntil="2025-12-31T00:00:00.000Z"),
             cart_discount(3, active=False), cart_discount(4, requires_code=False, stores=[{"typeId": "store", "key": "eu"}])]
    codes = [discount_code(1, "friend-20", [1]),
             discount_code(2, "Spring", [2], validFrom="2025-03-01T00:00:00.000Z", maxApplications=None),
             discount_code(3, "OLD", [3]),
             discount_code(4, "AUTO", [4], stores=[{"typeId": "store", "key": "us"}]),
             discount_code(5, "LONELY", [])]
    return carts, codes


def test_coupons_from_discount_codes_and_their_cart_discounts(tmp_path):
    carts, codes = coupon_world()
    with serve(write_fixtures(tmp_path, discount_codes=codes, cart_discounts=carts)) as sim:
        con = new_db()
        extract_all(con, client_for(sim))
        stage_all(con)
        query = ("SELECT code, source_id, is_active, max_uses, uses, strftime(valid_from AT TIME ZONE 'UTC', '%Y-%m-%d'), "
                 "strftime(valid_until AT TIME ZONE 'UTC', '%Y-%m-%d'), requires_code, currency, store, name "
                 "FROM staging.coupons ORDER BY code")
        assert rows(con, query) == [
            ("AUTO", uid("d", 4), True, 1, None, None, None, False, None, "us", "Code AUTO"),
            ("FRIEND-20", uid("d", 1), True, 1, None, None, None, True, None, None, "Code friend-20"),
            ("LONELY", uid("d", 5), True, 1, None, None, None, None, None, None, "Code LONELY"),
            ("OLD", uid("d", 3), False, 1, None, None, None, True, None, None, "Code OLD"),
            # the narrowest window of the code and its cart discount; the absolute amount's currency
            ("SPRING", uid("d", 2), True, None, None, "2025-03-01", "2025-12-31", True, "USD", None, "Code Spring"),
        ]
        # a cart discount is deactivated: its codes are re-mapped without re-reading them
        post_records(sim, "cart-discounts", [{"id": uid("e", 1), "isActive": False}])
        extract_all(con, client_for(sim), run_id="r2")
        staged = stage_all(con, "r2")
        assert (staged["ct.coupons"].processed, staged["ct.coupons_by_cart_discount"].staged) == (0, 1)
        assert rows(con, "SELECT is_active FROM staging.coupons WHERE code = 'FRIEND-20'") == [(False,)]
        assert rows(con, "SELECT count(*) FROM staging.coupons")[0][0] == 5


# ---- quarantine ----------------------------------------------------------------------------------------
def bad_orders():
    def o(i, **over):
        return order(i, **over)

    def without(rec, *path):
        target = rec
        for p in path[:-1]:
            target = target[p]
        target.pop(path[-1])
        return rec

    negative_line = line("l1", "SKU-N", 1000, 1)
    negative_line["totalPrice"] = money(-1000)
    return {
        "unparseable_date": o(101, createdAt="01/03/2025 10:00"),
        "missing_required_field": without(o(102), "createdAt"),
        "unknown_currency": o(103, currency="XYZ"),
        "missing_currency": without(o(104), "totalPrice", "currencyCode"),
        "unparseable_amount": o(105, totalPrice={**money(100), "centAmount": "12,50"}),
        "non_finite_amount": o(106, totalPrice={**money(100), "centAmount": "NaN"}),
        "negative_amount": o(107, lines=[negative_line]),
        "unidentifiable_customer": without(without(o(108), "customerId"), "customerEmail"),
        "malformed_email": without(o(109, customerEmail="bob@@example.com"), "customerId"),
        "field_too_long": o(110, custom={"type": {"typeId": "type", "id": "t"}, "fields": {"userAgent": "x" * 1200}}),
        "invalid_text": o(111, orderNumber="CT-\ufffd-111"),
        "no_market": o(112, store="mars"),
    }


def test_malformed_records_are_quarantined_and_everything_else_staged(tmp_path):
    bad = bad_orders()
    kwd_in_wrong_currency = order(113, store="gulf")                         # the gulf rule wants KWD
    unknown_line = order(114, returnInfo=[return_info([("r-x", "no-such-line", 1, "Refunded")])])
    good = [order(i) for i in range(20)] + [
        order(20, customerEmail="bad@@mail"),                                # customer id identifies the buyer
        {k: v for k, v in order(21).items() if k != "customerId"},           # a guest with a good email
    ]
    customers = [customer(i) for i in range(5)] + [
        customer(6, firstName="Ren\ufffde"), customer(7, lastName="L" * 1001), customer(8, email="a" * 250 + "@x.com"),
        customer(9, createdAt="yesterday")]
    codes = [discount_code(1, "GOOD", []), discount_code(2, "", []), discount_code(3, "WHEN", [], validUntil="soon")]
    with serve(write_fixtures(tmp_path, orders=good + list(bad.values()) + [kwd_in_wrong_currency, unknown_line],
                              customers=customers, discount_codes=codes)) as sim:
        con = new_db()
        extract_all(con, client_for(sim))
        results = stage_all(con)

        got = set(rows(con, "SELECT entity, source_id, reason FROM audit.quarantine_current"))
        expected = {("orders", rec["id"], reason) for reason, rec in bad.items()} | {
            ("orders", uid("a", 113), "no_market"), ("orders", uid("a", 114), "missing_required_field"),
            ("customers", uid("c", 6), "invalid_text"), ("customers", uid("c", 7), "field_too_long"),
            ("customers", uid("c", 8), "field_too_long"), ("customers", uid("c", 9), "unparseable_date"),
            ("discount_codes", uid("d", 2), "missing_required_field"),
            ("discount_codes", uid("d", 3), "unparseable_date")}
        assert got == expected
        assert results["ct.orders"].reasons == {"field_too_long": 1, "invalid_text": 1, "malformed_email": 1,
                                                "missing_currency": 1, "missing_required_field": 2, "negative_amount": 1,
                                                "no_market": 2, "non_finite_amount": 1, "unidentifiable_customer": 1,
                                                "unknown_currency": 1, "unparseable_amount": 1, "unparseable_date": 1}
        # every record is in exactly one place
        for entity, table in (("orders", "staging.orders"), ("customers", "staging.customers"),
                              ("discount_codes", "staging.coupons")):
            raw = rows(con, f"SELECT count(*) FROM raw.ct__{entity}")[0][0]
            staged = rows(con, f"SELECT count(*) FROM {table} WHERE source = 'ct'")[0][0]
            quarantined = rows(con, "SELECT count(DISTINCT source_id) FROM audit.quarantine_current WHERE entity = ?",
                               [entity])[0][0]
            assert staged + quarantined == raw, entity
        # lines and refunds only of staged orders; the raw payload is kept
        assert rows(con, "SELECT count(*) FROM staging.order_items i LEFT JOIN staging.orders o USING (order_key) "
                         "WHERE o.order_key IS NULL")[0][0] == 0
        assert rows(con, "SELECT count(*) FROM staging.order_items")[0][0] == 22
        assert rows(con, "SELECT count(*) FROM staging.refunds")[0][0] == 0
        assert rows(con, "SELECT payload LIKE '%XYZ%' FROM audit.quarantine WHERE reason = 'unknown_currency'") == [(True,)]
        guest = order_row(con, uid("a", 21))
        assert (guest["customer_record_key"], guest["email_normalized"]) == (None, "shopper1@example.com")
        assert order_row(con, uid("a", 20))["email_normalized"] is None

        # the source fixes the currency: the order leaves quarantine and is staged; a re-run adds nothing
        post_records(sim, "orders", [{"id": uid("a", 103), "totalPrice": money(4500)}])
        extract_all(con, client_for(sim), run_id="r2")
        stage_all(con, "r2")
        assert ("orders", uid("a", 103), "unknown_currency") not in \
            set(rows(con, "SELECT entity, source_id, reason FROM audit.quarantine_current"))
        assert order_row(con, uid("a", 103))["currency"] == "USD"
        assert rows(con, "SELECT count(*) FROM audit.quarantine")[0][0] == len(expected)
        assert rows(con, "SELECT count(*) FROM staging.order_items")[0][0] == 23


@pytest.mark.parametrize("value", ["12.3.4", "abc", True])
def test_non_numeric_cent_amounts_are_unparseable(tmp_path, value):
    con = loaded(tmp_path, orders=[order(1, totalPrice={**money(1), "centAmount": value})])
    assert rows(con, "SELECT reason FROM audit.quarantine") == [("unparseable_amount",)]


def test_a_rebuild_restages_the_same_rows(tmp_path):
    carts, codes = coupon_world()
    orders = money_world() + [status_order(10 + i, *case[:4]) for i, case in enumerate(STATUS_CASES)]
    con = loaded(tmp_path, orders=orders, customers=[customer(i) for i in range(3)], discount_codes=codes,
                 cart_discounts=carts)
    tables = {"staging.customers": "customer_record_key", "staging.orders": "order_key",
              "staging.order_items": "order_item_key", "staging.refunds": "refund_key", "staging.coupons": "coupon_key"}

    def snapshot():
        return {t: rows(con, f"SELECT * FROM {t} ORDER BY {k}") for t, k in tables.items()}

    before = snapshot()
    assert [len(before[t]) for t in tables] == [3, 17, 32, 4, 5]
    for spec in staging_specs(SOURCE):
        run_staging(con, spec, "rebuild", rebuild=True)
    assert snapshot() == before

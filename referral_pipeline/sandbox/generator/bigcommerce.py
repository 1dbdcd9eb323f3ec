"""BigCommerce records in the shapes of the official OpenAPI files: v3 ``customers`` (with
``attributes``), v2 ``orders`` (RFC 2822 dates, 4-decimal money strings) with their ``products``
and ``coupons`` and ``shipping_addresses`` embedded as lists (the simulator serves them at the
sub-resources), v3
``refunds``, v2 ``coupons`` and v3 ``customer-attributes`` (definitions; the pipeline adds
``referral_code`` and ``referral_reward_status`` itself). BigCommerce has no referral-code field
on orders, so referred BigCommerce orders carry a coupon, a Friendbuy purchase or a sign-up.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import ids
from .common import CustomerIds, record_times, sql_list
from .frame import Frame
from .malformed import MalformedPlanner, reason_code
from .orders import World
from .promo import Promotions
from .settings import BC, MARKETS, US
from .writer import FixtureWriter

CUSTOMER_FIELDS = {"missing_email": "email", "malformed_email": "email", "overlong_field": "first_name",
                   "invalid_utf8": "last_name"}
ORDER_FIELDS = {"non_numeric_amount": "total_inc_tax", "negative_amount": "total_inc_tax",
                "non_finite_amount": "total_inc_tax", "unknown_currency": "currency_code",
                "unidentifiable_customer": "customer_id", "unparseable_date": "date_created",
                "overlong_field": "customer_message", "invalid_utf8": "billing_address.last_name"}
STATUS_NAMES = {0: "Incomplete", 1: "Pending", 2: "Shipped", 3: "Partially Shipped", 4: "Refunded", 5: "Cancelled",
                6: "Declined", 7: "Awaiting Payment", 8: "Awaiting Pickup", 9: "Awaiting Shipment", 10: "Completed",
                11: "Awaiting Fulfillment", 12: "Manual Verification Required", 13: "Disputed", 14: "Partially Refunded"}
PAYMENT_STATUS = ("captured", "void", "refunded", "partially refunded", "pending", "declined")  # by outcome
ATTRIBUTES = ({"id": 1, "name": "customer_segment", "type": "string", "values": ("regular", "vip", "wholesale")},
              {"id": 2, "name": "signup_source", "type": "string", "values": ("web", "pos", "mobile_app")})
ATTRIBUTES_CREATED = "2025-01-01T00:00:00Z"
CAD_RATE = "1.3700000000"


def write_attribute_definitions(w: FixtureWriter) -> None:
    w.write_rows("bigcommerce/customer-attributes.jsonl", [
        {"id": a["id"], "name": a["name"], "type": a["type"], "date_created": ATTRIBUTES_CREATED,
         "date_modified": ATTRIBUTES_CREATED} for a in ATTRIBUTES])


def write_customers(w: FixtureWriter, world: World, cids: CustomerIds, bad: MalformedPlanner,
                    chunk: int, pids: np.ndarray) -> None:
    p = world.people
    pids = pids[p.in_source[pids, BC]]
    if not len(pids):
        return
    created, modified = record_times(world.seed, chunk, BC, p.created_ms[pids], "customer")
    created, modified = (created // 1000) * 1000, (modified // 1000) * 1000
    rng = ids.stream(world.seed, "bc-customers", chunk)
    n = len(pids)
    codes = bad.pick("customer", BC, chunk, ~world.busy[pids])
    world.malformed_people[pids[codes >= 0]] = True
    customer_id = cids.bc(pids)
    attrs = [rng.integers(0, len(a["values"]), size=n) + np.where(rng.random(n) < share, 0, -1000)
             for a, share in zip(ATTRIBUTES, (0.35, 0.2))]
    t = Frame(id=customer_id, first=ids.take(p.first_name, pids), last=ids.take(p.last_name, pids),
              loc=ids.take(p.email_local, pids), dom=ids.take(p.email_domain, pids), variant=p.variant[pids, BC],
              street=ids.take(p.street, pids), house=p.house_number[pids], city=ids.take(p.city, pids),
              state=ids.take(p.state, pids), postcode=ids.take(p.postcode, pids), phone=ids.take(p.phone, pids),
              ip=p.home_ip[pids], opt_in=~p.opted_out[pids], market=p.market[pids], country=p.country[pids],
              created_ms=created, modified_ms=modified, a1=attrs[0], a2=attrs[1], bad=codes, k=np.arange(n)).to_arrow()
    w.register("bc_people", t)
    values = [sql_list(a["values"]) for a in ATTRIBUTES]
    attr_struct = lambda i, col: (  # noqa: E731
        f"{{'id': id * 2 + {i - 1}, 'attribute_id': {i}, 'attribute_value': {values[i - 1]}[{col} + 1], "
        f"'customer_id': id, 'date_created': fmt_s_z(created_ms), 'date_modified': fmt_s_z(modified_ms)}}")
    w.write("bigcommerce/customers.jsonl", f"""
        SELECT {{'id': id,
                'email': CASE bad WHEN {reason_code('customer', 'missing_email')} THEN ''
                                  WHEN {reason_code('customer', 'malformed_email')} THEN bad_email(loc, dom, k)
                                  ELSE email_variant(loc, dom, variant) END,
                'first_name': CASE WHEN bad = {reason_code('customer', 'overlong_field')} THEN overlong(first) ELSE first END,
                'last_name': CASE WHEN bad = {reason_code('customer', 'invalid_utf8')} THEN bad_text(last) ELSE last END,
                'company': '', 'phone': phone, 'registration_ip_address': ip4(ip), 'notes': '',
                'tax_exempt_category': '', 'customer_group_id': 0,
                'date_modified': fmt_s_z(modified_ms), 'date_created': fmt_s_z(created_ms),
                'address_count': 1, 'attribute_count': (a1 >= 0)::INT + (a2 >= 0)::INT,
                'authentication': {{'force_password_reset': false}},
                'addresses': [{{'id': id, 'address1': house::VARCHAR || ' ' || street, 'address2': '',
                                'address_type': 'residential', 'city': city, 'company': '',
                                'country': country_name(market, country), 'country_code': country_iso(market, country),
                                'customer_id': id, 'first_name': first, 'last_name': last, 'phone': phone,
                                'postal_code': postcode, 'state_or_province': state, 'form_fields': []::VARCHAR[]}}],
                'attributes': list_concat(CASE WHEN a1 >= 0 THEN [{attr_struct(1, 'a1')}] ELSE [] END,
                                          CASE WHEN a2 >= 0 THEN [{attr_struct(2, 'a2')}] ELSE [] END),
                'form_fields': []::VARCHAR[], 'store_credit_amounts': [{{'amount': 0.0}}],
                'accepts_product_review_abandoned_cart_emails': opt_in,
                'origin_channel_id': 1, 'channel_ids': [1]}} AS rec
        FROM bc_people""", bad_text=True)
    w.unregister("bc_people")
    sel = np.flatnonzero(codes >= 0)
    bad.record(BC, "customer", "customers", [int(x) for x in customer_id[sel]], codes[sel], CUSTOMER_FIELDS)


def _status_ids(rng, outcome: np.ndarray) -> np.ndarray:
    n = len(outcome)
    normal = rng.choice([10, 2, 11, 9], size=n, p=[0.6, 0.25, 0.1, 0.05])
    open_ = rng.choice([0, 7, 1], size=n, p=[0.3, 0.4, 0.3])
    return np.select([outcome == 0, outcome == 1, outcome == 2, outcome == 3, outcome == 4, outcome == 5],
                     [normal, 5, 4, 14, open_, 6]).astype(np.int64)


def _products(world: World, o: Frame, lines: Frame, rows: np.ndarray, product_start: int) -> tuple[pa.Array, int]:
    sel = np.flatnonzero(np.isin(lines["order"], rows))
    li = lines.take(sel)
    cat = world.catalog
    rate = np.array([m.tax_rate for m in MARKETS])[o["market"][li["order"]]]
    first = li["line_no"] == 0
    items = pa.StructArray.from_arrays([
        pa.array(product_start + 1 + np.arange(len(li))), pa.array(100 + li["product"]),
        ids.take(cat.sku, li["product"]), ids.take(cat.name, li["product"]),
        pa.array(li["qty"]), pa.array(li["unit"]), pa.array(np.round(li["unit"] * rate).astype(np.int64)),
        pa.array(first), pa.array(li["line_no"]),
    ], names=["id", "product_id", "sku", "name", "qty", "unit", "unit_tax", "first", "line_no"])
    counts = np.bincount(np.searchsorted(rows, li["order"]), minlength=len(rows))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), items), len(li)


def write_orders(w: FixtureWriter, world: World, cids: CustomerIds, promos: Promotions, bad: MalformedPlanner,
                 chunk: int, o: Frame, lines: Frame, seq_start: int, product_start: int, refund_start: int) -> dict:
    rows = np.flatnonzero(o["source"] == BC)
    empty = {"rows": rows, "id": np.zeros(0, np.int64), "products": 0, "refunds": 0, "coupon_uses": {}}
    if not len(rows):
        return empty
    bo = o.take(rows)
    n = len(rows)
    order_id = 100 + seq_start + np.arange(n)
    codes = bad.pick("order", BC, chunk, (bo["kind"] == 0) & ~world.busy[bo["pid"]])
    rng = ids.stream(world.seed, "bc-orders", chunk)
    products, n_products = _products(world, o, lines, rows, product_start)
    coupon_idx = pc.fill_null(pc.index_in(bo["coupon"], value_set=promos.bc_coupons["code"]), -1).to_numpy().astype(np.int64)
    has_coupon = coupon_idx >= 0
    refunded = np.isin(bo["outcome"], (2, 3))
    refund_id = np.where(refunded, refund_start + 1 + np.cumsum(refunded) - 1, 0)
    p = world.people
    pid = bo["pid"]
    t = Frame(
        id=order_id, customer_id=cids.bc(pid), guest=bo["guest"], created_ms=(bo["created_ms"] // 1000) * 1000,
        modified_ms=(bo["modified_ms"] // 1000) * 1000, refund_ms=(bo["refund_ms"] // 1000) * 1000,
        status_id=_status_ids(rng, bo["outcome"]), outcome=bo["outcome"], currency=bo["currency"],
        subtotal=bo["subtotal"], discount=bo["discount"], tax=bo["tax"], shipping=bo["shipping"],
        refunded=bo["refunded"], total=bo["total"], ip=bo["ip"], channel=bo["channel"],
        first=ids.take(p.first_name, pid), last=ids.take(p.last_name, pid),
        loc=ids.take(p.email_local, pid), dom=ids.take(p.email_domain, pid), variant=p.variant[pid, BC],
        street=ids.take(p.street, pid), house=p.house_number[pid], city=ids.take(p.city, pid),
        state=ids.take(p.state, pid), postcode=ids.take(p.postcode, pid), phone=ids.take(p.phone, pid),
        opt_in=~p.opted_out[pid], cart_id=ids.uuids(world.seed, "bc-cart", order_id),
        has_coupon=has_coupon, coupon_id=promos.bc_coupons["id"][np.maximum(coupon_idx, 0)],
        coupon_code=bo["coupon"], coupon_pct=promos.bc_coupons["amount"][np.maximum(coupon_idx, 0)],
        coupon_percent=promos.bc_coupons["kind"][np.maximum(coupon_idx, 0)] == 2,
        refund_id=refund_id, products=products, bad=codes, k=np.arange(n),
    ).to_arrow()
    w.register("bc_orders", t)
    w.write("bigcommerce/orders.jsonl", _order_sql(), bad_text=True)
    w.write("bigcommerce/refunds.jsonl", _refund_sql())
    w.unregister("bc_orders")
    sel = np.flatnonzero(codes >= 0)
    bad.record(BC, "order", "orders", [int(x) for x in order_id[sel]], codes[sel], ORDER_FIELDS)
    used = pc.value_counts(pa.array(bo["coupon"]).filter(pa.array(has_coupon)))
    uses = {v["values"].as_py(): v["counts"].as_py() for v in used} if len(used) else {}
    return {"rows": rows, "id": order_id, "products": n_products, "refunds": int(refunded.sum()), "coupon_uses": uses}


def _order_sql() -> str:
    r = lambda reason: reason_code("order", reason)  # noqa: E731
    names = "[" + ", ".join(f"'{STATUS_NAMES.get(i, '')}'" for i in range(15)) + "]"
    pay = sql_list(PAYMENT_STATUS)
    total = "money4(subtotal - discount + shipping + tax)"
    return f"""
    SELECT {{
        'id': id,
        'customer_id': CASE WHEN guest OR bad = {r('unidentifiable_customer')} THEN 0 ELSE customer_id END,
        'date_created': CASE WHEN bad = {r('unparseable_date')} THEN 'Mon, 3' || (2 + k % 7)::VARCHAR || ' Foo 2026 25:61:00 +0000'
                             ELSE fmt_rfc(created_ms) END,
        'date_modified': fmt_rfc(modified_ms),
        'date_shipped': CASE WHEN status_id IN (2, 10) THEN fmt_rfc(created_ms + 86400000) ELSE '' END,
        'status_id': status_id, 'status': {names}[status_id + 1], 'custom_status': {names}[status_id + 1],
        'subtotal_ex_tax': money4(subtotal), 'subtotal_inc_tax': money4(subtotal + tax), 'subtotal_tax': money4(tax),
        'base_shipping_cost': money4(shipping), 'shipping_cost_ex_tax': money4(shipping),
        'shipping_cost_inc_tax': money4(shipping), 'shipping_cost_tax': '0.0000', 'shipping_cost_tax_class_id': 2,
        'base_handling_cost': '0.0000', 'handling_cost_ex_tax': '0.0000', 'handling_cost_inc_tax': '0.0000',
        'handling_cost_tax': '0.0000', 'handling_cost_tax_class_id': 2,
        'base_wrapping_cost': '0.0000', 'wrapping_cost_ex_tax': '0.0000', 'wrapping_cost_inc_tax': '0.0000',
        'wrapping_cost_tax': '0.0000', 'wrapping_cost_tax_class_id': 3,
        'total_ex_tax': money4(subtotal - discount + shipping),
        'total_inc_tax': CASE bad WHEN {r('non_numeric_amount')} THEN replace({total}, '.', ',')
                                  WHEN {r('negative_amount')} THEN '-' || {total}
                                  WHEN {r('non_finite_amount')} THEN CASE WHEN k % 2 = 0 THEN 'NaN' ELSE 'Infinity' END
                                  ELSE {total} END,
        'total_tax': money4(tax), 'is_tax_inclusive_pricing': false,
        'items_total': list_sum([l.qty for l in products]),
        'items_shipped': CASE WHEN status_id IN (2, 10, 4, 14) THEN list_sum([l.qty for l in products]) ELSE 0 END,
        'payment_method': 'Credit Card', 'payment_provider_id': '', 'payment_status': {pay}[outcome + 1],
        'refunded_amount': money4(refunded), 'order_is_digital': false,
        'store_credit_amount': '0.0000', 'gift_certificate_amount': '0.0000',
        'ip_address': ip4(ip), 'ip_address_v6': '', 'geoip_country': 'United States', 'geoip_country_iso2': 'US',
        'currency_id': CASE currency WHEN 3 THEN 2 ELSE 1 END,
        'currency_code': CASE WHEN bad = {r('unknown_currency')} THEN 'ZZZ' ELSE currency_code(currency) END,
        'currency_exchange_rate': CASE currency WHEN 3 THEN '{CAD_RATE}' ELSE '1.0000000000' END,
        'default_currency_id': 1, 'default_currency_code': 'USD', 'store_default_currency_code': 'USD',
        'store_default_to_transactional_exchange_rate': CASE currency WHEN 3 THEN '{CAD_RATE}' ELSE '1.0000000000' END,
        'staff_notes': '',
        'customer_message': CASE WHEN bad = {r('overlong_field')} THEN overlong('Please leave the parcel with my neighbour.') ELSE '' END,
        'discount_amount': '0.0000', 'coupon_discount': money4(discount), 'shipping_address_count': 1,
        'is_deleted': false, 'ebay_order_id': '0', 'cart_id': cart_id,
        'billing_address': {{'first_name': first,
                             'last_name': CASE WHEN bad = {r('invalid_utf8')} THEN bad_text(last) ELSE last END,
                             'company': '', 'street_1': house::VARCHAR || ' ' || street, 'street_2': '', 'city': city,
                             'state': state, 'zip': postcode, 'country': 'United States', 'country_iso2': 'US',
                             'phone': phone,
                             'email': CASE WHEN bad = {r('unidentifiable_customer')} THEN ''
                                           WHEN guest THEN loc || '@' || dom ELSE email_variant(loc, dom, variant) END,
                             'form_fields': []::VARCHAR[]}},
        'is_email_opt_in': opt_in, 'credit_card_type': NULL::VARCHAR,
        'order_source': CASE channel WHEN 1 THEN 'mobile' WHEN 2 THEN 'manual' ELSE 'www' END,
        'channel_id': 1, 'external_source': NULL::VARCHAR, 'external_id': NULL::VARCHAR,
        'external_merchant_id': NULL::VARCHAR, 'tax_provider_id': 'BasicTaxProvider', 'customer_locale': 'en',
        'external_order_id': '',
        'shipping_addresses': [{{
            'id': id, 'order_id': id, 'first_name': first, 'last_name': last, 'company': '',
            'street_1': house::VARCHAR || ' ' || street, 'street_2': '', 'city': city, 'zip': postcode,
            'country': 'United States', 'country_iso2': 'US', 'state': state, 'email': loc || '@' || dom,
            'phone': phone, 'items_total': list_sum([l.qty for l in products]),
            'items_shipped': CASE WHEN status_id IN (2, 10, 4, 14) THEN list_sum([l.qty for l in products]) ELSE 0 END,
            'shipping_method': CASE WHEN shipping > 0 THEN 'Flat Rate' ELSE 'Free Shipping' END,
            'base_cost': money4(shipping), 'cost_ex_tax': money4(shipping), 'cost_inc_tax': money4(shipping),
            'cost_tax': '0.0000', 'cost_tax_class_id': 2, 'base_handling_cost': '0.0000',
            'handling_cost_ex_tax': '0.0000', 'handling_cost_inc_tax': '0.0000', 'handling_cost_tax': '0.0000',
            'handling_cost_tax_class_id': 2, 'shipping_zone_id': 1, 'shipping_zone_name': 'United States',
            'form_fields': []::VARCHAR[]}}],
        'products': [{{
            'id': l.id, 'order_id': id, 'product_id': l.product_id, 'variant_id': l.product_id + 100,
            'order_pickup_method_id': 0, 'order_address_id': id, 'name': l.name, 'name_customer': l.name,
            'name_merchant': l.name, 'sku': l.sku, 'upc': '', 'type': 'physical',
            'base_price': money4(l.unit), 'price_ex_tax': money4(l.unit), 'price_inc_tax': money4(l.unit + l.unit_tax),
            'price_tax': money4(l.unit_tax), 'base_total': money4(l.unit * l.qty), 'total_ex_tax': money4(l.unit * l.qty),
            'total_inc_tax': money4((l.unit + l.unit_tax) * l.qty), 'total_tax': money4(l.unit_tax * l.qty),
            'quantity': l.qty, 'base_cost_price': '0.0000', 'cost_price_inc_tax': '0.0000',
            'cost_price_ex_tax': '0.0000', 'cost_price_tax': '0.0000', 'weight': '1.0000', 'width': '0.0000',
            'height': '0.0000', 'depth': '0.0000',
            'is_refunded': outcome = 2,
            'quantity_refunded': CASE WHEN outcome = 2 THEN l.qty WHEN outcome = 3 AND l.line_no = len(products) - 1 THEN 1 ELSE 0 END,
            'refund_amount': '0.0000', 'return_id': 0, 'wrapping_id': 0, 'wrapping_name': NULL::VARCHAR,
            'base_wrapping_cost': '0.0000', 'wrapping_cost_ex_tax': '0.0000', 'wrapping_cost_inc_tax': '0.0000',
            'wrapping_cost_tax': '0.0000', 'wrapping_message': '',
            'quantity_shipped': CASE WHEN status_id IN (2, 10, 4, 14) THEN l.qty ELSE 0 END,
            'event_name': NULL::VARCHAR, 'event_date': NULL::VARCHAR, 'fixed_shipping_cost': '0.0000',
            'ebay_item_id': '', 'ebay_transaction_id': '', 'option_set_id': NULL::INT, 'parent_order_product_id': NULL::INT,
            'is_bundled_product': false, 'bin_picking_number': '', 'external_id': NULL::VARCHAR, 'brand': 'Acme',
            'applied_discounts': CASE WHEN has_coupon AND l.first THEN
                [{{'id': 'coupon', 'amount': money4(discount), 'name': coupon_code, 'code': coupon_code, 'target': 'order'}}]
                ELSE [] END,
            'product_options': []::VARCHAR[], 'configurable_fields': []::VARCHAR[], 'gift_certificate_id': NULL::INT,
            'discounted_total_inc_tax': money4((l.unit + l.unit_tax) * l.qty - CASE WHEN l.first THEN discount ELSE 0 END)
        }} for l in products],
        'coupons': CASE WHEN has_coupon THEN [{{
            'id': id * 10 + 1, 'coupon_id': coupon_id, 'order_id': id, 'code': coupon_code,
            'amount': CASE WHEN coupon_percent THEN coupon_pct::VARCHAR || '.0000' ELSE money4(coupon_pct) END,
            'type': CASE WHEN coupon_percent THEN 1 ELSE 2 END, 'discount': major(discount)}}] ELSE [] END
    }} AS rec FROM bc_orders"""


def _refund_sql() -> str:
    rate = MARKETS[US].tax_rate
    return f"""
    SELECT {{
        'id': refund_id, 'order_id': id, 'user_id': 0, 'created': fmt_s_z(refund_ms),
        'reason': CASE WHEN outcome = 2 THEN 'Order returned' ELSE 'Item damaged in transit' END,
        'total_amount': major(refunded),
        'total_tax': CASE WHEN outcome = 2 THEN major(tax) ELSE major(round(products[len(products)].unit * {rate})) END,
        'uses_merchant_override_values': false,
        'items': CASE WHEN outcome = 2 THEN list_concat(
                    [{{'item_type': 'PRODUCT', 'item_id': l.id, 'reason': 'Order returned', 'quantity': l.qty,
                       'requested_amount': major((l.unit + l.unit_tax) * l.qty)}} for l in products],
                    CASE WHEN shipping > 0 THEN [{{'item_type': 'SHIPPING', 'item_id': id, 'reason': 'Order returned',
                                                  'quantity': 1, 'requested_amount': major(shipping)}}] ELSE [] END)
                 ELSE [{{'item_type': 'PRODUCT', 'item_id': l.id, 'reason': 'Item damaged in transit', 'quantity': 1,
                         'requested_amount': major(refunded)}} for l in [products[len(products)]]] END,
        'payments': [{{'id': refund_id, 'provider_id': 'braintree', 'amount': major(refunded), 'offline': false,
                       'is_declined': false, 'declined_message': ''}}]
    }} AS rec FROM bc_orders WHERE outcome IN (2, 3) ORDER BY k"""


def write_coupons(w: FixtureWriter, promos: Promotions, coupon_uses: dict) -> None:
    c = promos.bc_coupons
    uses = np.zeros(len(c), dtype=np.int64)
    if coupon_uses:
        where = pc.fill_null(pc.index_in(c["code"], value_set=pa.array(list(coupon_uses), pa.string())), -1).to_numpy()
        counts = np.array(list(coupon_uses.values()), dtype=np.int64)
        uses = np.where(where >= 0, counts[np.maximum(where, 0)], 0)
    kind_names = sql_list(["Refer-a-friend: friend incentive", "Refer-a-friend: advocate reward", "Promotion", "Goodwill"])
    t = Frame(id=c["id"], code=c["code"], kind=c["kind"], amount=c["amount"], max_uses=c["max_uses"],
              active=c["active"], expires_ms=c["expires_ms"], created_ms=c["created_ms"], uses=uses).to_arrow()
    w.register("bc_coupons", t)
    w.write("bigcommerce/coupons.jsonl", f"""
        SELECT {{'id': id,
                'name': CASE WHEN kind = 2 THEN code || ' (' || amount::VARCHAR || '% off)' ELSE {kind_names}[kind + 1] || ' ' || code END,
                'type': CASE WHEN kind = 2 THEN 'percentage_discount' ELSE 'per_total_discount' END,
                'amount': CASE WHEN kind = 2 THEN amount::VARCHAR || '.0000' ELSE money4(amount) END,
                'min_purchase': '0.0000',
                'expires': CASE WHEN expires_ms >= 0 THEN fmt_rfc(expires_ms) ELSE '' END,
                'enabled': active, 'code': code,
                'applies_to': {{'entity': 'categories', 'ids': [0]}},
                'num_uses': uses, 'max_uses': max_uses, 'max_uses_per_customer': CASE WHEN max_uses = 1 THEN 1 ELSE 0 END,
                'restricted_to': MAP {{}}, 'shipping_methods': []::VARCHAR[],
                'date_created': fmt_rfc(created_ms)}} AS rec
        FROM bc_coupons""")
    w.unregister("bc_coupons")

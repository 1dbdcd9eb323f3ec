"""commercetools records as the HTTP API returns them: ``customers``, ``orders`` (store key
reference, line items with SKU at ``variant.sku``, cent-precision money, discount-code
references, ``returnInfo``, ``custom`` fields of the ``referral-order`` type), ``discount-codes``,
``cart-discounts`` and ``types`` (only ``referral-order``; the pipeline creates
``referral-customer``). Absent optional fields are omitted, as the API does.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import ids
from .catalog import N_PRODUCTS
from .common import CustomerIds, record_times, sql_list
from .frame import Frame
from .fraud import CURRENCY_CODES
from .malformed import MalformedPlanner, reason_code
from .orders import World
from .promo import KIND_GOODWILL, KIND_INCENTIVE, KIND_PROMO, KIND_REWARD, STORE_PROMOS, Promotions
from .settings import CT, MARKETS, START_MS, MS_PER_DAY
from .writer import FixtureWriter

CUSTOMER_FIELDS = {"missing_email": "email", "malformed_email": "email", "overlong_field": "firstName",
                   "invalid_utf8": "lastName"}
ORDER_FIELDS = {"non_numeric_amount": "totalPrice.centAmount", "negative_amount": "totalPrice.centAmount",
                "non_finite_amount": "totalPrice.centAmount", "unknown_currency": "totalPrice.currencyCode",
                "unidentifiable_customer": "customerId", "unparseable_date": "createdAt",
                "overlong_field": "custom.fields.userAgent", "invalid_utf8": "shippingAddress.lastName"}
# members of an order that may be absent (never first in their object), dropped when null
ORDER_NULLABLE = ("customerId", "customerEmail", "anonymousId", "shipmentState", "discountOnTotalPrice", "state",
                  "referralCode", "fbAttributionId")
ORDER_FIELD_NAMES = ("referralCode", "fbAttributionId", "ipAddress", "userAgent", "deviceId", "channel")
# orderState, paymentState, shipmentState by outcome (normal orders are Complete or Confirmed)
STATES = {"order": ("Complete", "Cancelled", "Complete", "Complete", "Open", "Open"),
          "payment": ("Paid", "Failed", "Paid", "Paid", "Pending", "Failed"),
          "shipment": ("Delivered", None, "Delivered", "Delivered", "Pending", None)}
TYPES_CREATED_MS = START_MS - 90 * MS_PER_DAY


class CtIds:
    """Fixed ids of one world: the order type, product type, products, states, cart discounts."""

    def __init__(self, seed: int):
        self.seed = seed
        self.order_type = ids.uuids(seed, "ct-type", np.array([0])).to_pylist()[0]
        self.product_type = ids.uuids(seed, "ct-product-type", np.array([0])).to_pylist()[0]
        self.initial_state = ids.uuids(seed, "ct-state", np.array([0])).to_pylist()[0]
        self.products = ids.uuids(seed, "ct-product", np.arange(N_PRODUCTS))
        self.cart_discount_keys = cart_discount_keys()
        self.cart_discounts = ids.uuids(seed, "ct-cart-discount", np.arange(len(self.cart_discount_keys))).to_pylist()

    def cart_discount_of(self, kind: np.ndarray, store: np.ndarray, code: pa.Array) -> np.ndarray:
        """Index of the cart discount each discount code belongs to."""
        keys = self.cart_discount_keys
        out = np.zeros(len(kind), dtype=np.int64)
        for k, prefix in ((KIND_INCENTIVE, "friend-incentive"), (KIND_REWARD, "advocate-reward"), (KIND_GOODWILL, "goodwill")):
            for mi, m in enumerate(MARKETS):
                out[(kind == k) & (store == mi)] = keys.index(f"{prefix}-{m.ct_store}")
        promo_index = pc.fill_null(pc.index_in(code, value_set=pa.array([c for c, *_ in STORE_PROMOS])), -1).to_numpy()
        for pi, (c, *_) in enumerate(STORE_PROMOS):
            out[(kind == KIND_PROMO) & (promo_index == pi)] = keys.index(f"promo-{c.lower()}")
        return out


def cart_discount_keys() -> list[str]:
    keys = [f"{p}-{m.ct_store}" for m in MARKETS for p in ("friend-incentive", "advocate-reward", "goodwill")]
    return keys + [f"promo-{c.lower()}" for c, *_ in STORE_PROMOS]


def write_customers(w: FixtureWriter, world: World, cids: CustomerIds, bad: MalformedPlanner,
                    chunk: int, pids: np.ndarray) -> None:
    p = world.people
    pids = pids[p.in_source[pids, CT]]
    if not len(pids):
        return
    created, modified = record_times(world.seed, chunk, CT, p.created_ms[pids], "customer")
    rng = ids.stream(world.seed, "ct-customers", chunk)
    codes = bad.pick("customer", CT, chunk, ~world.busy[pids])
    world.malformed_people[pids[codes >= 0]] = True
    customer_id = cids.ct(pids)
    t = Frame(id=customer_id, number=cids.rank[pids, CT] + 100001,
              version=np.where(modified > created, rng.integers(2, 6, size=len(pids)), 1),
              first=ids.take(p.first_name, pids), last=ids.take(p.last_name, pids),
              loc=ids.take(p.email_local, pids), dom=ids.take(p.email_domain, pids), variant=p.variant[pids, CT],
              street=ids.take(p.street, pids), house=p.house_number[pids], city=ids.take(p.city, pids),
              state=ids.take(p.state, pids), postcode=ids.take(p.postcode, pids), phone=ids.take(p.phone, pids),
              address_id=pc.utf8_lower(ids.code36(pids, 8, world.seed + 11)), verified=rng.random(len(pids)) < 0.7,
              market=p.market[pids], country=p.country[pids], created_ms=created, modified_ms=modified,
              bad=codes, k=np.arange(len(pids))).to_arrow()
    w.register("ct_people", t)
    w.write("commercetools/customers.jsonl", f"""
        SELECT {{'id': id, 'version': version, 'customerNumber': number::VARCHAR,
                'email': CASE bad WHEN {reason_code('customer', 'missing_email')} THEN NULL
                                  WHEN {reason_code('customer', 'malformed_email')} THEN bad_email(loc, dom, k)
                                  ELSE email_variant(loc, dom, variant) END,
                'firstName': CASE WHEN bad = {reason_code('customer', 'overlong_field')} THEN overlong(first) ELSE first END,
                'lastName': CASE WHEN bad = {reason_code('customer', 'invalid_utf8')} THEN bad_text(last) ELSE last END,
                'addresses': [{{'id': address_id, 'firstName': first, 'lastName': last, 'streetName': street,
                                'streetNumber': house::VARCHAR, 'postalCode': postcode, 'city': city,
                                'state': NULLIF(state, ''), 'country': country_iso(market, country), 'phone': phone}}],
                'defaultShippingAddressId': address_id, 'defaultBillingAddressId': address_id,
                'shippingAddressIds': [address_id], 'billingAddressIds': [address_id],
                'isEmailVerified': verified, 'stores': [{{'typeId': 'store', 'key': store_key(market)}}],
                'customerGroupAssignments': []::VARCHAR[], 'locale': locale_of(market, country),
                'authenticationMode': 'Password',
                'createdAt': fmt_ms_z(created_ms), 'lastModifiedAt': fmt_ms_z(modified_ms)}} AS rec
        FROM ct_people""", strip_nulls=True, bad_text=True)
    w.unregister("ct_people")
    sel = np.flatnonzero(codes >= 0)
    bad.record(CT, "customer", "customers", customer_id.take(pa.array(sel)).to_pylist(), codes[sel], CUSTOMER_FIELDS)


def _line_list(world: World, ctids: CtIds, o: Frame, lines: Frame, rows: np.ndarray, line_start: int) -> tuple[pa.Array, int]:
    """Line items of the given orders as an Arrow list<struct> column (one list per order)."""
    sel = np.flatnonzero(np.isin(lines["order"], rows))
    li = lines.take(sel)
    cat = world.catalog
    currency = o["currency"][li["order"]]
    rate = np.array([m.tax_rate for m in MARKETS])[o["market"][li["order"]]]
    total = li["qty"] * li["unit"]
    items = pa.StructArray.from_arrays([
        ids.uuids(world.seed, "ct-line", line_start + np.arange(len(li))),
        ids.take(ctids.products, li["product"]),
        ids.uuids(world.seed, "ct-price", li["product"] * len(CURRENCY_CODES) + currency),
        ids.take(cat.sku, li["product"]), ids.take(cat.name, li["product"]),
        pa.array(li["qty"]), pa.array(li["unit"]), pa.array(total), pa.array(np.round(total * rate).astype(np.int64)),
    ], names=["id", "product_id", "price_id", "sku", "name", "qty", "unit", "total", "tax"])
    counts = np.bincount(np.searchsorted(rows, li["order"]), minlength=len(rows))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), items), len(li)


def order_numbers(seq: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(seq + 100_000_001), pa.string())


def write_orders(w: FixtureWriter, world: World, cids: CustomerIds, ctids: CtIds, promos_index: dict,
                 bad: MalformedPlanner, chunk: int, o: Frame, lines: Frame, seq_start: int, line_start: int) -> dict:
    rows = np.flatnonzero(o["source"] == CT)
    if not len(rows):
        return {"rows": rows, "id": pa.array([], pa.string()), "number": pa.array([], pa.string()), "lines": 0}
    co = o.take(rows)
    seq = seq_start + np.arange(len(rows))
    order_id = ids.uuids(world.seed, "ct-order", seq)
    number = order_numbers(seq)
    codes = bad.pick("order", CT, chunk, (co["kind"] == 0) & ~world.busy[co["pid"]])
    rng = ids.stream(world.seed, "ct-orders", chunk)
    line_items, n_lines = _line_list(world, ctids, o, lines, rows, line_start)
    code_idx = pc.fill_null(pc.index_in(co["coupon"], value_set=promos_index["codes"]), -1).to_numpy().astype(np.int64)
    has_code = code_idx >= 0
    p = world.people
    pid = co["pid"]
    t = Frame(
        id=order_id, number=number, customer_id=cids.ct(pid), guest=co["guest"],
        anonymous_id=ids.uuids(world.seed, "ct-anonymous", seq),
        loc=ids.take(p.email_local, pid), dom=ids.take(p.email_domain, pid), variant=p.variant[pid, CT],
        first=ids.take(p.first_name, pid), last=ids.take(p.last_name, pid), street=ids.take(p.street, pid),
        house=p.house_number[pid], city=ids.take(p.city, pid), state=ids.take(p.state, pid),
        postcode=ids.take(p.postcode, pid), market=co["market"], country=p.country[pid], currency=co["currency"],
        created_ms=co["created_ms"], modified_ms=co["modified_ms"], refund_ms=co["refund_ms"],
        version=np.where(co["refund_ms"] >= 0, rng.integers(5, 9, size=len(rows)), rng.integers(2, 5, size=len(rows))),
        outcome=co["outcome"], confirmed_only=rng.random(len(rows)) < 0.25,
        subtotal=co["subtotal"], discount=co["discount"], tax=co["tax"], shipping=co["shipping"],
        has_code=has_code, code_id=ids.take(promos_index["ids"], np.maximum(code_idx, 0)),
        cart_discount_id=pa.array(ctids.cart_discounts).take(pa.array(promos_index["cart_discount"][np.maximum(code_idx, 0)])),
        referral_code=co["referral_code"], attribution=ids.uuids(world.seed, "fbuy-attribution", np.maximum(co["friend"], 0)),
        has_attribution=co["attribution"], ip=co["ip"], ua=co["ua"], channel=co["channel"],
        device=p.device[pid], lines=line_items, bad=codes, k=np.arange(len(rows)),
    ).to_arrow()
    w.register("ct_orders", t)
    w.write("commercetools/orders.jsonl", _order_sql(ctids), null_keys=ORDER_NULLABLE, bad_text=True)
    w.unregister("ct_orders")
    sel = np.flatnonzero(codes >= 0)
    bad.record(CT, "order", "orders", order_id.take(pa.array(sel)).to_pylist(), codes[sel], ORDER_FIELDS)
    return {"rows": rows, "id": order_id, "number": number, "lines": n_lines}


def _order_sql(ctids: CtIds) -> str:
    r = lambda reason: reason_code("order", reason)  # noqa: E731
    states = {k: sql_list(v if v is not None else "" for v in vals) for k, vals in STATES.items()}
    tax_name = sql_list(["Sales tax" if m.id == "us" else "VAT" for m in MARKETS])
    rates = "[" + ", ".join(str(m.tax_rate) for m in MARKETS) + "]"
    ship = "[" + ", ".join(str(m.shipping_cents) for m in MARKETS) + "]"
    free = "[" + ", ".join(str(m.free_shipping_from_cents) for m in MARKETS) + "]"
    cur = f"CASE WHEN bad = {r('unknown_currency')} THEN 'ZZZ' ELSE currency_code(currency) END"
    net = "(subtotal - discount + shipping)"
    item = lambda qty: f"""{{'id': md5(l.id || '-return'), 'quantity': {qty}, 'type': 'LineItemReturnItem',
                     'lineItemId': l.id, 'shipmentState': 'Returned', 'paymentState': 'Refunded',
                     'createdAt': fmt_ms_z(refund_ms), 'lastModifiedAt': fmt_ms_z(refund_ms)}}"""  # noqa: E731
    return f"""
    WITH o AS (SELECT *, {cur} AS cur, {rates}[market + 1] AS rate FROM ct_orders)
    SELECT {{
        'id': id, 'version': version, 'orderNumber': number,
        'customerId': CASE WHEN guest OR bad = {r('unidentifiable_customer')} THEN NULL ELSE customer_id END,
        'customerEmail': CASE WHEN bad = {r('unidentifiable_customer')} THEN NULL
                              WHEN guest THEN loc || '@' || dom ELSE email_variant(loc, dom, variant) END,
        'anonymousId': CASE WHEN guest OR bad = {r('unidentifiable_customer')} THEN anonymous_id END,
        'store': {{'typeId': 'store', 'key': store_key(market)}},
        'createdAt': CASE WHEN bad = {r('unparseable_date')} THEN '2026-13-' || (32 + k % 9)::VARCHAR || 'T25:61:00.000Z'
                          ELSE fmt_ms_z(created_ms) END,
        'lastModifiedAt': fmt_ms_z(modified_ms),
        'totalPrice': {{'type': 'centPrecision', 'currencyCode': cur,
                        'centAmount': CASE bad
                            WHEN {r('non_numeric_amount')} THEN ('"' || {net}::VARCHAR || ' cents"')::JSON
                            WHEN {r('negative_amount')} THEN (-{net})::VARCHAR::JSON
                            WHEN {r('non_finite_amount')} THEN (CASE WHEN k % 2 = 0 THEN '"NaN"' ELSE '"Infinity"' END)::JSON
                            ELSE {net}::VARCHAR::JSON END,
                        'fractionDigits': 2}},
        'taxedPrice': {{'totalNet': cent_money({net}, cur), 'totalGross': cent_money({net} + tax, cur),
                        'taxPortions': [{{'rate': rate, 'amount': cent_money(tax, cur), 'name': {tax_name}[market + 1]}}],
                        'totalTax': cent_money(tax, cur)}},
        'country': country_iso(market, country), 'locale': locale_of(market, country),
        'orderState': CASE WHEN outcome = 0 AND confirmed_only THEN 'Confirmed' ELSE {states['order']}[outcome + 1] END,
        'paymentState': {states['payment']}[outcome + 1],
        'shipmentState': CASE WHEN outcome = 0 AND confirmed_only THEN 'Shipped' ELSE NULLIF({states['shipment']}[outcome + 1], '') END,
        'lineItems': [{{'id': l.id, 'productId': l.product_id, 'productKey': lower(l.sku), 'name': {{'en': l.name}},
                        'productType': {{'typeId': 'product-type', 'id': '{ctids.product_type}'}},
                        'variant': {{'id': 1, 'sku': l.sku}},
                        'price': {{'id': l.price_id, 'value': cent_money(l.unit, cur)}},
                        'quantity': l.qty, 'discountedPricePerQuantity': []::VARCHAR[],
                        'taxRate': {{'name': {tax_name}[market + 1], 'amount': rate, 'includedInPrice': false,
                                     'country': country_iso(market, country)}},
                        'state': [{{'quantity': l.qty, 'state': {{'typeId': 'state', 'id': '{ctids.initial_state}'}}}}],
                        'priceMode': 'Platform', 'lineItemMode': 'Standard',
                        'totalPrice': cent_money(l.total, cur)}} for l in lines],
        'customLineItems': []::VARCHAR[],
        'discountCodes': CASE WHEN has_code THEN [{{'discountCode': {{'typeId': 'discount-code', 'id': code_id}},
                                                   'state': 'MatchesCart'}}] ELSE [] END,
        'discountOnTotalPrice': CASE WHEN discount > 0 THEN {{
            'discountedAmount': cent_money(discount, cur),
            'includedDiscounts': [{{'discount': {{'typeId': 'cart-discount', 'id': cart_discount_id}},
                                    'discountedAmount': cent_money(discount, cur)}}]}} END,
        'shippingInfo': {{'shippingMethodName': 'Standard', 'price': cent_money(shipping, cur),
                          'shippingRate': {{'price': cent_money({ship}[market + 1], cur),
                                            'freeAbove': cent_money({free}[market + 1], cur), 'tiers': []::VARCHAR[]}},
                          'shippingMethodState': 'MatchesCart', 'deliveries': []::VARCHAR[]}},
        'shippingAddress': {{'firstName': first,
                             'lastName': CASE WHEN bad = {r('invalid_utf8')} THEN bad_text(last) ELSE last END,
                             'streetName': street, 'streetNumber': house::VARCHAR, 'postalCode': postcode, 'city': city,
                             'state': NULLIF(state, ''), 'country': country_iso(market, country)}},
        'billingAddress': {{'firstName': first, 'lastName': last, 'streetName': street, 'streetNumber': house::VARCHAR,
                            'postalCode': postcode, 'city': city, 'state': NULLIF(state, ''),
                            'country': country_iso(market, country), 'email': loc || '@' || dom}},
        'shippingMode': 'Single', 'shipping': []::VARCHAR[], 'taxMode': 'Platform', 'taxRoundingMode': 'HalfEven',
        'taxCalculationMode': 'LineItemLevel', 'inventoryMode': 'None', 'origin': 'Customer',
        'syncInfo': []::VARCHAR[], 'refusedGifts': []::VARCHAR[], 'itemShippingAddresses': []::VARCHAR[],
        'returnInfo': CASE outcome
            WHEN 2 THEN [{{'items': [{item('l.qty')} for l in lines], 'returnDate': fmt_ms_z(refund_ms)}}]
            WHEN 3 THEN [{{'items': [{item('1')} for l in [lines[len(lines)]]], 'returnDate': fmt_ms_z(refund_ms)}}]
            ELSE [] END,
        'custom': {{'type': {{'typeId': 'type', 'id': '{ctids.order_type}'}},
                    'fields': {{'ipAddress': ip4(ip),
                                'userAgent': CASE WHEN bad = {r('overlong_field')} THEN overlong(ua_text(ua)) ELSE ua_text(ua) END,
                                'deviceId': lower(hex(device)), 'channel': channel_text(channel),
                                'referralCode': NULLIF(referral_code, ''),
                                'fbAttributionId': CASE WHEN has_attribution THEN attribution END}}}}
    }} AS rec FROM o"""


def order_type(ctids: CtIds) -> dict:
    """The ``referral-order`` custom type (contracts §3.2) as GET /types returns it."""
    labels = {"referralCode": "Referral code", "fbAttributionId": "Friendbuy attribution id",
              "ipAddress": "IP address", "userAgent": "User agent", "deviceId": "Device id", "channel": "Channel"}
    stamp = "2026-01-01T00:00:00.000Z"
    return {"id": ctids.order_type, "version": 1, "key": "referral-order",
            "name": {"en": "Referral order fields"},
            "description": {"en": "Referral and fraud-signal fields captured at checkout"},
            "resourceTypeIds": ["order"],
            "fieldDefinitions": [{"name": n, "label": {"en": labels[n]}, "required": False,
                                  "type": {"name": "String"}, "inputHint": "SingleLine"} for n in ORDER_FIELD_NAMES],
            "createdAt": stamp, "lastModifiedAt": stamp}


def cart_discounts(ctids: CtIds) -> list[dict]:
    """The cart discounts behind every discount code (a small fixed set per world)."""
    out = []
    stamp = "2026-03-01T09:00:00.000Z"
    for i, key in enumerate(ctids.cart_discount_keys):
        kind, _, store = key.rpartition("-")
        if key.startswith("promo-"):
            code = key[len("promo-"):].upper()
            pct = next(p for c, p, *_ in STORE_PROMOS if c == code)
            value = {"type": "relative", "permyriad": pct * 100}
            name, stores, requires = f"{code} promotion ({pct}% off)", [], True
        else:
            market = next(m for m in MARKETS if m.ct_store == store)
            amount = {"friend-incentive": market.incentive_amount, "advocate-reward": market.reward_amount,
                      "goodwill": 15}[kind] * 100
            value = {"type": "absolute", "money": [{"type": "centPrecision", "currencyCode": market.currency,
                                                     "centAmount": amount, "fractionDigits": 2}]}
            label = {"friend-incentive": "Refer-a-friend: friend incentive",
                     "advocate-reward": "Refer-a-friend: advocate reward",
                     "goodwill": "Customer care goodwill"}[kind]
            name, stores, requires = f"{label} ({store})", [{"typeId": "store", "key": store}], True
        out.append({"id": ctids.cart_discounts[i], "version": 1, "key": key, "name": {"en": name},
                    "value": value, "cartPredicate": "1 = 1",
                    "target": {"type": "lineItems", "predicate": "true"}, "sortOrder": f"0.{i + 1:03d}",
                    "stores": stores, "isActive": True, "requiresDiscountCode": requires,
                    "references": [], "stackingMode": "Stacking", "createdAt": stamp, "lastModifiedAt": stamp})
    return out


def codes_index(promos: Promotions, ctids: CtIds) -> dict:
    """Lookup arrays for orders: code text -> discount code id and cart discount index."""
    c = promos.ct_codes
    return {"codes": c["code"], "ids": c["id"],
            "cart_discount": ctids.cart_discount_of(c["kind"], c["store"], c["code"])}


def write_discount_codes(w: FixtureWriter, promos: Promotions, ctids: CtIds) -> None:
    c = promos.ct_codes
    t = Frame(id=c["id"], code=c["code"], kind=c["kind"], store=c["store"], max_uses=c["max_uses"], active=c["active"],
              valid_from_ms=c["valid_from_ms"], valid_until_ms=c["valid_until_ms"], created_ms=c["created_ms"],
              modified_ms=c["modified_ms"],
              cart_discount_id=pa.array(ctids.cart_discounts).take(pa.array(ctids.cart_discount_of(c["kind"], c["store"], c["code"])))).to_arrow()
    w.register("ct_codes", t)
    kinds = sql_list(["Refer-a-friend: friend incentive", "Refer-a-friend: advocate reward", "Promotion", "Customer care goodwill"])
    w.write("commercetools/discount-codes.jsonl", f"""
        SELECT {{'id': id, 'version': CASE WHEN active THEN 1 ELSE 2 END, 'code': code,
                'name': {{'en': {kinds}[kind + 1]}},
                'cartDiscounts': [{{'typeId': 'cart-discount', 'id': cart_discount_id}}],
                'isActive': active, 'references': []::VARCHAR[], 'groups': []::VARCHAR[],
                'stores': CASE WHEN store >= 0 THEN [{{'typeId': 'store', 'key': store_key(store)}}] ELSE [] END,
                'maxApplications': CASE WHEN max_uses > 0 THEN max_uses END,
                'maxApplicationsPerCustomer': CASE WHEN max_uses = 1 THEN 1 END,
                'validFrom': fmt_ms_z(valid_from_ms),
                'validUntil': CASE WHEN valid_until_ms >= 0 THEN fmt_ms_z(valid_until_ms) END,
                'createdAt': fmt_ms_z(created_ms), 'lastModifiedAt': fmt_ms_z(modified_ms)}} AS rec
        FROM ct_codes""", strip_nulls=True)
    w.unregister("ct_codes")

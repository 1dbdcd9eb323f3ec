"""Salesforce records (contracts §3.2) as the REST API returns them: ``Account``, ``Contact``,
``Order``, ``OrderItem`` (``Referral__c`` and ``Referral_Reward__c`` start empty: the pipeline
writes them). Ids are 18-character with the real key prefixes; stamps are
``YYYY-MM-DDThh:mm:ss.000+0000``; money is a JSON number; unset fields are explicit nulls.
The simulator adds ``attributes`` (type/url) itself.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import ids
from .common import CustomerIds, record_times
from .frame import Frame
from .malformed import MalformedPlanner, reason_code
from .orders import World
from .settings import SF
from .writer import FixtureWriter

CONTACT_FIELDS = {"missing_email": "Email", "malformed_email": "Email", "overlong_field": "FirstName",
                  "invalid_utf8": "LastName"}
ORDER_FIELDS = {"non_numeric_amount": "TotalAmount", "negative_amount": "TotalAmount",
                "non_finite_amount": "TotalAmount", "unknown_currency": "CurrencyIsoCode",
                "unidentifiable_customer": "BillToContactId", "unparseable_date": "EffectiveDate",
                "overlong_field": "User_Agent__c", "invalid_utf8": "User_Agent__c"}
STATUS = ("Activated", "Cancelled", "Refunded", "Activated", "Draft", "Cancelled")  # by outcome


def write_customers(w: FixtureWriter, world: World, cids: CustomerIds, bad: MalformedPlanner,
                    chunk: int, pids: np.ndarray) -> None:
    p = world.people
    pids = pids[p.in_source[pids, SF]]
    if chunk == 0:
        w.write_rows("salesforce/Account.jsonl", [{
            "Id": cids.sf_guest_account(), "Name": "Web Guest Checkout", "CurrencyIsoCode": "USD",
            "SystemModstamp": "2025-01-01T00:00:00.000+0000", "CreatedDate": "2025-01-01T00:00:00.000+0000"}])
    if not len(pids):
        return
    created, modified = record_times(world.seed, chunk, SF, p.created_ms[pids], "customer")
    created, modified = (created // 1000) * 1000, (modified // 1000) * 1000
    codes = bad.pick("customer", SF, chunk, ~world.busy[pids])
    world.malformed_people[pids[codes >= 0]] = True
    contact_id = cids.sf_contact(pids)
    t = Frame(contact_id=contact_id, account_id=cids.sf_account(pids),
              first=ids.take(p.first_name, pids), last=ids.take(p.last_name, pids),
              loc=ids.take(p.email_local, pids), dom=ids.take(p.email_domain, pids), variant=p.variant[pids, SF],
              opted_out=p.opted_out[pids], market=p.market[pids], country=p.country[pids],
              created_ms=created, modified_ms=modified, bad=codes, k=np.arange(len(pids))).to_arrow()
    w.register("sf_people", t)
    w.write("salesforce/Account.jsonl", """
        SELECT {'Id': account_id, 'Name': first || ' ' || last,
                'CurrencyIsoCode': CASE market WHEN 1 THEN 'GBP' ELSE 'USD' END,
                'SystemModstamp': fmt_sf(modified_ms), 'CreatedDate': fmt_sf(created_ms)} AS rec
        FROM sf_people""")
    w.write("salesforce/Contact.jsonl", f"""
        SELECT {{'Id': contact_id, 'AccountId': account_id,
                'Email': CASE bad WHEN {reason_code('customer', 'missing_email')} THEN NULL
                              WHEN {reason_code('customer', 'malformed_email')} THEN bad_email(loc, dom, k)
                              ELSE email_variant(loc, dom, variant) END,
                'FirstName': CASE WHEN bad = {reason_code('customer', 'overlong_field')} THEN overlong(first) ELSE first END,
                'LastName': CASE WHEN bad = {reason_code('customer', 'invalid_utf8')} THEN bad_text(last) ELSE last END,
                'HasOptedOutOfEmail': opted_out, 'MailingCountry': country_name(market, country),
                'Referral_Code__c': NULL::VARCHAR, 'Loyalty_Points_Balance__c': NULL::DOUBLE,
                'Loyalty_VIP_Tier__c': NULL::VARCHAR, 'Referral_Customer_Key__c': NULL::VARCHAR,
                'SystemModstamp': fmt_sf(modified_ms), 'CreatedDate': fmt_sf(created_ms)}} AS rec
        FROM sf_people""", bad_text=True)
    w.unregister("sf_people")
    sel = np.flatnonzero(codes >= 0)
    bad.record(SF, "customer", "Contact", contact_id.take(pa.array(sel)).to_pylist(), codes[sel], CONTACT_FIELDS)


def order_ids(seed: int, seq: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """(Id, OrderNumber) of Salesforce orders by sequence number."""
    numbers = pc.utf8_lpad(pc.cast(pa.array(seq + 100), pa.string()), 8, "0")
    return ids.sf_ids(seed, "801", seq), numbers


def write_orders(w: FixtureWriter, world: World, cids: CustomerIds, bad: MalformedPlanner, chunk: int,
                 o: Frame, lines: Frame, seq_start: int, item_start: int) -> dict:
    """Orders and OrderItems of one chunk; returns the ids assigned (for the referral registry)."""
    rows = np.flatnonzero(o["source"] == SF)
    if not len(rows):
        return {"rows": rows, "id": pa.array([], pa.string()), "number": pa.array([], pa.string()), "items": 0}
    so = o.take(rows)
    seq = seq_start + np.arange(len(rows))
    order_id, number = order_ids(world.seed, seq)
    codes = bad.pick("order", SF, chunk, (so["kind"] == 0) & ~world.busy[so["pid"]])
    rng = ids.stream(world.seed, "sf-orders", chunk)
    attribution = ids.uuids(world.seed, "fbuy-attribution", np.maximum(so["friend"], 0))
    t = Frame(id=order_id, number=number, account_id=cids.sf_account(so["pid"]), contact_id=cids.sf_contact(so["pid"]),
              created_ms=(so["created_ms"] // 1000) * 1000, modified_ms=(so["modified_ms"] // 1000) * 1000,
              outcome=so["outcome"], currency=so["currency"], market=so["market"],
              subtotal=so["subtotal"], discount=so["discount"], tax=so["tax"], shipping=so["shipping"],
              refunded=so["refunded"], coupon=so["coupon"], lower_coupon=rng.random(len(rows)) < 0.2,
              referral_code=so["referral_code"], attribution=attribution, has_attribution=so["attribution"],
              ip=so["ip"], ua=so["ua"], channel=so["channel"], bad=codes, k=np.arange(len(rows))).to_arrow()
    w.register("sf_orders", t)
    r = lambda reason: reason_code("order", reason)  # noqa: E731
    status = "[" + ", ".join(f"'{s}'" for s in STATUS) + "]"
    w.write("salesforce/Order.jsonl", f"""
        SELECT {{'Id': id,
                'AccountId': CASE WHEN bad = {r('unidentifiable_customer')} THEN '{cids.sf_guest_account()}' ELSE account_id END,
                'BillToContactId': CASE WHEN bad = {r('unidentifiable_customer')} THEN NULL ELSE contact_id END,
                'OrderNumber': number,
                'EffectiveDate': CASE WHEN bad = {r('unparseable_date')} THEN '2026-13-' || (32 + k % 9)::VARCHAR ELSE fmt_date(created_ms) END,
                'Status': {status}[outcome + 1],
                'CurrencyIsoCode': CASE WHEN bad = {r('unknown_currency')} THEN 'ZZZ' ELSE currency_code(currency) END,
                'TotalAmount': CASE bad
                    WHEN {r('non_numeric_amount')} THEN ('"' || replace(printf('%.2f', major(subtotal)), '.', ',') || '"')::JSON
                    WHEN {r('negative_amount')} THEN (-major(subtotal))::VARCHAR::JSON
                    WHEN {r('non_finite_amount')} THEN (CASE WHEN k % 2 = 0 THEN '"NaN"' ELSE '"Infinity"' END)::JSON
                    ELSE major(subtotal)::VARCHAR::JSON END,
                'Discount_Amount__c': major(discount), 'Tax_Amount__c': major(tax),
                'Shipping_Amount__c': major(shipping), 'Refunded_Amount__c': major(refunded),
                'Coupon_Code__c': CASE WHEN coupon = '' THEN NULL WHEN lower_coupon THEN lower(coupon) ELSE coupon END,
                'Referral_Code__c': NULLIF(referral_code, ''),
                'Friendbuy_Attribution_Id__c': CASE WHEN has_attribution THEN attribution END,
                'IP_Address__c': ip4(ip),
                'User_Agent__c': CASE bad WHEN {r('overlong_field')} THEN overlong(ua_text(ua))
                                          WHEN {r('invalid_utf8')} THEN bad_text(ua_text(ua)) ELSE ua_text(ua) END,
                'Channel__c': channel_text(channel), 'Market__c': market_id(market),
                'CreatedDate': fmt_sf(created_ms), 'SystemModstamp': fmt_sf(modified_ms)}} AS rec
        FROM sf_orders""", bad_text=True)
    w.unregister("sf_orders")
    sel = np.flatnonzero(codes >= 0)
    bad.record(SF, "order", "Order", order_id.take(pa.array(sel)).to_pylist(), codes[sel], ORDER_FIELDS)
    items = _write_items(w, world, o, lines, rows, order_id, item_start)
    return {"rows": rows, "id": order_id, "number": number, "items": items}


def _write_items(w, world, o, lines, rows, order_id, item_start) -> int:
    line_sel = np.flatnonzero(np.isin(lines["order"], rows))
    li = lines.take(line_sel)
    position = np.full(len(o), -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    pos = position[li["order"]]
    cat = world.catalog
    created = (o["created_ms"][li["order"]] // 1000) * 1000
    t = Frame(id=ids.sf_ids(world.seed, "802", item_start + np.arange(len(li))), order_id=order_id.take(pa.array(pos)),
              sku=ids.take(cat.sku, li["product"]), name=ids.take(cat.name, li["product"]),
              qty=li["qty"], unit=li["unit"], created_ms=created).to_arrow()
    w.register("sf_items", t)
    w.write("salesforce/OrderItem.jsonl", """
        SELECT {'Id': id, 'OrderId': order_id, 'SKU__c': sku, 'Product_Name__c': name,
                'Quantity': CAST(qty AS DOUBLE), 'UnitPrice': major(unit), 'TotalPrice': major(unit * qty),
                'CreatedDate': fmt_sf(created_ms), 'SystemModstamp': fmt_sf(created_ms)} AS rec
        FROM sf_items""")
    w.unregister("sf_items")
    return len(li)


def touch_referral_objects(w: FixtureWriter) -> None:
    """Existing CRM referral records: none in a fresh world (the pipeline creates them)."""
    w.touch("salesforce/Referral__c.jsonl")
    w.touch("salesforce/Referral_Reward__c.jsonl")

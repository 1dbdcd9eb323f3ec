"""Shared helpers for the BigCommerce source tests: records in BigCommerce's own shapes, a
fixture directory, the simulator serving it (quota off unless asked), a client pointed at it,
and one-call extraction / staging of every entity into an in-memory DuckDB."""
from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import duckdb
import orjson
import requests

from referral_pipeline.clients.bigcommerce import BigCommerceClient
from referral_pipeline.config.programs import Programs
from referral_pipeline.extract.base import ExtractResult, extract
from referral_pipeline.extract.bigcommerce import EXTRACTORS
from referral_pipeline.sandbox.bigcommerce import BigCommerceSimulator
from referral_pipeline.sandbox.core.config import FaultSpec, SystemConfig
from referral_pipeline.sandbox.core.stamps import fmt_iso_seconds_z, fmt_rfc2822
from referral_pipeline.sandbox.testing import serve_in_thread
from referral_pipeline.sources.bigcommerce import staging_specs
from referral_pipeline.transform.staging.runner import StagingResult, ensure_staging_schema, run_staging
from referral_pipeline.warehouse.schema import ensure_schema

UTC = timezone.utc
T0 = datetime(2026, 6, 1, tzinfo=UTC)
OVERLAP = timedelta(minutes=5)
ENTITIES = ("customers", "orders", "refunds", "coupons")
COLLECTION = {"customers": "customers", "orders": "orders", "refunds": "refunds", "coupons": "coupons"}
ORDERS = "GET /stores/{store_hash}/v2/orders"
ORDER_COUPONS = "GET /stores/{store_hash}/v2/orders/{order_id}/coupons"
CUSTOMERS = "GET /stores/{store_hash}/v3/customers"
REFUNDS = "GET /stores/{store_hash}/v3/orders/payment_actions/refunds"
COUPONS = "GET /stores/{store_hash}/v2/coupons"
PROGRAMS = Programs.model_validate({
    "sources": [{"id": "bc", "type": "bigcommerce"}],
    "markets": [{"id": "us", "business_unit": "acme-us", "currency": "USD", "match": [{"source": "bc"}],
                 "advocate_reward": {"amount": 20, "currency": "USD"}}],
})


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def money(x: float) -> str:
    return f"{x:.4f}"


# ---- records in BigCommerce's shapes ---------------------------------------------------------------
def customer(i: int, minutes: float, **over) -> dict:
    return {"id": i, "email": f"Shopper{i}@Example.com", "first_name": f"Ann{i}", "last_name": "Lee", "company": "",
            "phone": f"555-01{i:02d}", "registration_ip_address": f"10.0.0.{i % 250}", "notes": "",
            "tax_exempt_category": "", "customer_group_id": 0, "date_created": fmt_iso_seconds_z(at(-1000 - i)),
            "date_modified": fmt_iso_seconds_z(at(minutes)), "address_count": 1, "attribute_count": 0,
            "authentication": {"force_password_reset": False}, "accepts_product_review_abandoned_cart_emails": i % 2 == 0,
            "store_credit_amounts": [{"amount": 0}], "origin_channel_id": 1, "channel_ids": [1], "form_fields": [],
            "addresses": [{"id": 1000 + i, "customer_id": i, "first_name": f"Ann{i}", "last_name": "Lee",
                           "company": "", "address1": f"{i} Main St", "address2": "", "city": "Austin",
                           "state_or_province": "Texas", "postal_code": "78701", "country_code": "US",
                           "country": "United States", "phone": "", "address_type": "residential"}],
            "attributes": [], **over}


def product(order_id: int, n: int, price: float = 20.0, qty: int = 1, **over) -> dict:
    return {"id": order_id * 10 + n, "order_id": order_id, "product_id": 70 + n, "variant_id": 170 + n,
            "order_address_id": order_id, "name": f"Widget {n}", "sku": f"W-{n}", "type": "physical",
            "base_price": money(price), "price_ex_tax": money(price), "price_inc_tax": money(price * 1.1),
            "price_tax": money(price * 0.1), "base_total": money(price * qty), "total_ex_tax": money(price * qty),
            "total_inc_tax": money(price * qty * 1.1), "total_tax": money(price * qty * 0.1), "quantity": qty,
            "is_refunded": False, "quantity_refunded": 0, "refund_amount": money(0), "return_id": 0,
            "quantity_shipped": 0, "applied_discounts": [], "product_options": [], **over}


def order(order_id: int, minutes: float, customer_id: int = 1, coupon: str | None = None, **over) -> dict:
    """An order with two lines (20 + 2 x 15 = 50), 5 tax, 6 shipping; ``coupon`` takes 10 off."""
    discount = 10.0 if coupon else 0.0
    body = {
        "id": order_id, "customer_id": customer_id, "date_created": fmt_rfc2822(at(minutes - 60)),
        "date_modified": fmt_rfc2822(at(minutes)), "date_shipped": "", "status_id": 11,
        "status": "Awaiting Fulfillment", "custom_status": "Awaiting Fulfillment",
        "subtotal_ex_tax": money(50), "subtotal_inc_tax": money(55), "subtotal_tax": money(5),
        "base_shipping_cost": money(6), "shipping_cost_ex_tax": money(6), "shipping_cost_inc_tax": money(6),
        "shipping_cost_tax": money(0), "handling_cost_ex_tax": money(0), "handling_cost_inc_tax": money(0),
        "wrapping_cost_ex_tax": money(0), "wrapping_cost_inc_tax": money(0),
        "total_ex_tax": money(56 - discount), "total_inc_tax": money(61 - discount), "total_tax": money(5),
        "items_total": 3, "items_shipped": 0, "payment_method": "Credit Card", "payment_status": "captured",
        "refunded_amount": money(0), "store_credit_amount": money(0), "gift_certificate_amount": money(0),
        "ip_address": f"192.0.2.{order_id % 250}", "ip_address_v6": "", "currency_id": 1, "currency_code": "USD",
        "currency_exchange_rate": "1.0000000000", "default_currency_id": 1, "default_currency_code": "USD",
        "staff_notes": "", "customer_message": "", "discount_amount": money(0), "coupon_discount": money(discount),
        "shipping_address_count": 1, "is_deleted": False, "cart_id": f"cart-{order_id}",
        "billing_address": {"first_name": "Ann", "last_name": "Lee", "company": "", "street_1": "1 Main St",
                            "street_2": "", "city": "Austin", "state": "Texas", "zip": "78701",
                            "country": "United States", "country_iso2": "US", "phone": "",
                            "email": f"shopper{customer_id}@example.com", "form_fields": []},
        "is_email_opt_in": False, "order_source": "www", "channel_id": 1, "external_source": None,
        "external_id": None, "customer_locale": "en", "external_order_id": "",
        "products": [product(order_id, 1, 20.0), product(order_id, 2, 15.0, qty=2)],
    }
    if coupon:
        body["coupons"] = [{"id": order_id * 10 + 1, "coupon_id": 7, "order_id": order_id, "code": coupon,
                            "amount": money(10), "type": 2, "discount": 10.0}]
    body.update(over)
    return body


def refund(refund_id: int, order_id: int, minutes: float, amount: float = 20.0, **over) -> dict:
    return {"id": refund_id, "order_id": order_id, "user_id": 0, "created": fmt_iso_seconds_z(at(minutes)),
            "reason": "damaged", "total_amount": amount, "total_tax": 0, "uses_merchant_override_values": False,
            "items": [{"item_type": "PRODUCT", "item_id": order_id * 10 + 1, "quantity": 1, "requested_amount": amount}],
            "payments": [{"id": refund_id, "provider_id": "braintree", "amount": amount, "offline": False,
                          "is_declined": False, "declined_message": ""}], **over}


def coupon(coupon_id: int, code: str, **over) -> dict:
    return {"id": coupon_id, "name": f"Referral {code}", "type": "per_total_discount", "amount": money(10),
            "min_purchase": money(0), "expires": "", "enabled": True, "code": code,
            "applies_to": {"entity": "categories", "ids": [0]}, "num_uses": 0, "max_uses": 1,
            "max_uses_per_customer": 1, "restricted_to": {}, "shipping_methods": [],
            "date_created": fmt_rfc2822(at(-5000)), **over}


def small_world() -> dict[str, list[dict]]:
    """23 customers (1..6 share a stamp), 30 orders (100..111 share one stamp, 120..123 another),
    two of them couponed, order 131 archived; 5 refunds; 6 coupons."""
    customers = [customer(i, 10 if i <= 6 else 10 + i) for i in range(1, 24)]
    orders = []
    for k in range(30):
        oid = 100 + k
        minutes = 30 if k < 12 else (40 if 20 <= k < 24 else 30 + k)
        orders.append(order(oid, minutes, customer_id=(k % 23) + 1,
                            coupon="FRIEND-AAA" if oid == 103 else ("WELCOME10" if oid == 115 else None)))
    orders.append(order(131, 45, customer_id=2, is_deleted=True))
    refunds = [refund(r, 100 + r, 100 + 3 * r) for r in range(1, 6)]
    coupons = [coupon(c, f"CODE-{c}") for c in range(1, 7)]
    return {"customers": customers, "orders": orders, "refunds": refunds, "coupons": coupons}


def write_world(root: Path, world: dict[str, list[dict]]) -> Path:
    folder = root / "bigcommerce"
    folder.mkdir(parents=True, exist_ok=True)
    for entity, rows in world.items():
        # the standard library escapes lone surrogates (planted invalid Unicode), orjson refuses them
        (folder / f"{COLLECTION[entity]}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


# ---- simulator and client --------------------------------------------------------------------------
@contextmanager
def bc_sim(data_root: Path | None, faults: FaultSpec | None = None, rate_limit: dict | None = None,
           options: dict | None = None) -> Iterator[BigCommerceSimulator]:
    config = SystemConfig(faults=faults or FaultSpec(), rate_limit=rate_limit or {"requests_per_window": 0},
                          options=options or {})
    with serve_in_thread(BigCommerceSimulator(config, data_root=data_root)) as sim:
        yield sim


def client_for(sim: BigCommerceSimulator, session: requests.Session | None = None) -> BigCommerceClient:
    """A client with short backoffs (the production retry policy, only faster)."""
    return BigCommerceClient(sim.store_hash, sim.access_token, sim.base_url, session=session,
                             backoff_base=0.01, backoff_cap=0.05, timeout=(2.0, 5.0), max_attempts=8)


def upsert(sim: BigCommerceSimulator, collection: str, records: list[dict]) -> list[dict]:
    response = requests.post(f"{sim.base_url}/_sandbox/records", json={"collection": collection, "records": records},
                             timeout=10)
    response.raise_for_status()
    return response.json()["records"]


def new_warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    ensure_schema(con)
    ensure_staging_schema(con, PROGRAMS)
    return con


def extract_all(con, client: BigCommerceClient, run_id: str, page_size: int = 250, **kwargs) -> dict[str, ExtractResult]:
    """Every entity into ``raw.bc__<entity>`` (what the four extraction assets do)."""
    return {entity: extract(con, EXTRACTORS[entity](client, "bc", page_size), run_id, overlap=OVERLAP, **kwargs)
            for entity in ENTITIES}


def stage_all(con, run_id: str) -> dict[str, StagingResult]:
    return {spec.name: run_staging(con, spec, run_id) for spec in staging_specs("bc")}


def page_ids(page) -> list[int]:
    """The record ids of an extractor ``Page`` (records decoded in Python, or DuckDB's rows)."""
    if page.batch is not None:
        return [int(pk) for pk in page.batch["pk"].to_pylist()]
    return [r["id"] for r in page.records]


def raw_rows(con, entity: str) -> dict[str, dict]:
    return {pk: orjson.loads(p) for pk, p in con.execute(f"SELECT pk, payload FROM raw.bc__{entity}").fetchall()}


def table_rows(con, table: str, key: str, drop: tuple[str, ...] = ("load_seq",)) -> dict:
    cur = con.execute(f"SELECT * FROM {table} ORDER BY {key}")
    names = [d[0] for d in cur.description]
    return {row[names.index(key)]: {n: v for n, v in zip(names, row) if n not in drop} for row in cur.fetchall()}


def landed_order(api_order: dict) -> dict:
    """What the pipeline lands for a fixture order: the API's order without its sub-resource
    lists/links, plus ``coupons`` when it has a coupon discount."""
    out = {k: v for k, v in api_order.items() if k not in ("products", "coupons", "shipping_addresses")}
    if api_order.get("coupons"):
        out["coupons"] = api_order["coupons"]
    return out

"""Test support for the BigCommerce simulator: a small fixture world in BigCommerce's own shapes,
a running-simulator helper, and response validation against the official OpenAPI files."""
from __future__ import annotations

import functools
import json
import os
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import requests
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from referral_pipeline.sandbox.bigcommerce import BigCommerceSimulator
from referral_pipeline.sandbox.core.config import SystemConfig
from referral_pipeline.sandbox.core.stamps import fmt_rfc2822
from referral_pipeline.sandbox.testing import serve_in_thread

STORE = "sandboxstore"
TOKEN = "sandbox-bigcommerce-token"
AUTH = {"X-Auth-Token": TOKEN, "Accept": "application/json"}
SPEC_DIR = Path(os.environ.get("BIGCOMMERCE_OPENAPI_DIR", Path(__file__).resolve().parents[1] / "openapi" / "bigcommerce"))
UTC = timezone.utc
SHARED_STAMP = "2024-05-01T10:00:00Z"  # customers 1..6 share this date_modified
SHARED_ORDER_STAMP = "Wed, 05 Jun 2024 20:16:55 +0000"  # orders 100..109 share this date_modified
RATE_HEADERS = ("X-Rate-Limit-Requests-Left", "X-Rate-Limit-Requests-Quota", "X-Rate-Limit-Time-Window-Ms",
                "X-Rate-Limit-Time-Reset-Ms")


# ---- the world ------------------------------------------------------------------------------------
def customer(i: int) -> dict:
    modified = SHARED_STAMP if i <= 6 else f"2024-05-{i:02d}T08:30:00Z"
    return {
        "id": i, "email": f"shopper{i}@example.com" if i != 5 else "Shopper5@Example.com",
        "first_name": "Ann" if i % 2 else "Bob", "last_name": f"Lee{(13 - i):02d}", "company": "",
        "phone": "", "registration_ip_address": f"10.0.0.{i}", "notes": "", "tax_exempt_category": "",
        "customer_group_id": 2 if i == 4 else 0, "date_created": f"2024-01-{i:02d}T12:00:00Z",
        "date_modified": modified, "address_count": 1, "attribute_count": 1 if i == 3 else 0,
        "authentication": {"force_password_reset": False}, "accepts_product_review_abandoned_cart_emails": False,
        "store_credit_amounts": [{"amount": 0}], "origin_channel_id": 1, "channel_ids": [1],
        "addresses": [{"id": 100 + i, "customer_id": i, "first_name": "Ann", "last_name": "Lee", "company": "",
                       "address1": f"{i} Main St", "address2": "", "city": "Austin", "state_or_province": "Texas",
                       "postal_code": "78701", "country_code": "US", "country": "United States", "phone": "",
                       "address_type": "residential"}],
        "attributes": ([{"id": 7, "attribute_id": 1, "attribute_value": "ANN-REF", "customer_id": 3,
                         "date_created": "2024-02-01T00:00:00Z", "date_modified": "2024-02-01T00:00:00Z"}]
                       if i == 3 else []),
    }


def money(x: float) -> str:
    return f"{x:.4f}"


def order_product(order_id: int, n: int, kind: str = "physical") -> dict:
    return {"id": order_id * 10 + n, "order_id": order_id, "product_id": 77 + n, "order_address_id": order_id,
            "name": f"Widget {n}", "sku": f"W-{n}", "type": kind, "base_price": money(20), "price_ex_tax": money(20),
            "price_inc_tax": money(20), "price_tax": money(0), "base_total": money(20), "total_ex_tax": money(20),
            "total_inc_tax": money(20), "total_tax": money(0), "quantity": 1, "is_refunded": False,
            "quantity_refunded": 0, "refund_amount": money(0), "return_id": 0, "quantity_shipped": 0,
            "applied_discounts": [], "product_options": [], "variant_id": 5, "name_customer": f"Widget {n}",
            "name_merchant": f"Widget {n}", "discounted_total_inc_tax": money(20)}


def order(order_id: int) -> dict:
    n = order_id - 100  # orders 100..109 share date_modified; 110.. are an hour apart
    modified = SHARED_ORDER_STAMP if n < 10 else fmt_rfc2822(datetime(2024, 6, 6, tzinfo=UTC) + timedelta(hours=n))
    created = fmt_rfc2822(datetime(2024, 5, 1, 9, tzinfo=UTC) + timedelta(days=n % 28, minutes=n))
    body = {
        "id": order_id, "customer_id": (n % 5) + 1, "date_created": created,
        "date_modified": modified, "date_shipped": "", "status_id": 11 if n % 3 else 10,
        "status": "Awaiting Fulfillment" if n % 3 else "Completed", "custom_status": "",
        "subtotal_ex_tax": money(40), "subtotal_inc_tax": money(40), "subtotal_tax": money(0),
        "base_shipping_cost": money(5), "shipping_cost_ex_tax": money(5), "shipping_cost_inc_tax": money(5),
        "shipping_cost_tax": money(0), "shipping_cost_tax_class_id": 2, "base_handling_cost": money(0),
        "handling_cost_ex_tax": money(0), "handling_cost_inc_tax": money(0), "handling_cost_tax": money(0),
        "handling_cost_tax_class_id": 2, "base_wrapping_cost": money(0), "wrapping_cost_ex_tax": money(0),
        "wrapping_cost_inc_tax": money(0), "wrapping_cost_tax": money(0), "wrapping_cost_tax_class_id": 3,
        "total_ex_tax": money(45 + n), "total_inc_tax": money(45 + n), "total_tax": money(0),
        "is_tax_inclusive_pricing": False, "items_total": 2, "items_shipped": 0, "payment_method": "Credit Card",
        "payment_provider_id": "", "payment_status": "captured", "refunded_amount": money(0),
        "order_is_digital": False, "store_credit_amount": money(0), "gift_certificate_amount": money(0),
        "ip_address": f"192.0.2.{n}", "ip_address_v6": "", "geoip_country": "United States",
        "geoip_country_iso2": "US", "currency_id": 1, "currency_code": "USD", "currency_exchange_rate": "1.0000000000",
        "default_currency_id": 1, "default_currency_code": "USD", "staff_notes": "", "customer_message": "",
        "discount_amount": money(0), "coupon_discount": money(5 if order_id == 100 else 0),
        "shipping_address_count": 1, "is_deleted": order_id == 128, "ebay_order_id": "0",
        "cart_id": f"cart-{order_id}", "billing_address": {
            "first_name": "Ann", "last_name": "Lee", "company": "", "street_1": "1 Main St", "street_2": "",
            "city": "Austin", "state": "Texas", "zip": "78701", "country": "United States", "country_iso2": "US",
            "phone": "", "email": f"shopper{(n % 5) + 1}@example.com", "form_fields": []},
        "is_email_opt_in": False, "order_source": "www", "channel_id": 1, "external_source": None,
        "external_id": None, "external_merchant_id": None, "tax_provider_id": "BasicTaxProvider",
        "customer_locale": "en", "external_order_id": "", "store_default_currency_code": "USD",
        "store_default_to_transactional_exchange_rate": "1.0000000000",
        "products": [order_product(order_id, 1), order_product(order_id, 2, "digital" if order_id == 101 else "physical")],
    }
    if order_id == 100:
        body["coupons"] = [{"id": 3, "coupon_id": 2, "order_id": 100, "code": "FRIEND-BBB", "amount": 5, "type": 2,
                            "discount": 5}]
    return body


def refund(refund_id: int, order_id: int, created: str) -> dict:
    return {"id": refund_id, "order_id": order_id, "user_id": 0, "created": created, "reason": "damaged",
            "total_amount": 20.0, "total_tax": 0, "uses_merchant_override_values": False,
            "items": [{"item_type": "PRODUCT", "item_id": order_id * 10 + 1, "quantity": 1, "requested_amount": 20.0}],
            "payments": [{"id": refund_id, "provider_id": "storecredit", "amount": 20.0, "offline": False,
                          "is_declined": False, "declined_message": "", "transaction_id": f"txn-{refund_id}"}]}


def coupon(coupon_id: int, code: str, **extra) -> dict:
    body = {"id": coupon_id, "name": f"Referral {code}", "type": "per_total_discount", "amount": money(5),
            "min_purchase": money(0), "expires": "", "enabled": True, "code": code,
            "applies_to": {"entity": "categories", "ids": [0]}, "num_uses": 0, "max_uses": 1,
            "max_uses_per_customer": 1, "restricted_to": {}, "shipping_methods": [],
            "date_created": "Tue, 13 Mar 2024 16:18:59 +0000"}
    body.update(extra)
    return body


def world() -> dict[str, list[dict]]:
    return {
        "customers": [customer(i) for i in range(1, 13)],
        "orders": [order(i) for i in range(100, 130)],
        "refunds": [refund(1, 101, "2024-06-01T10:00:00+00:00"), refund(2, 102, "2024-06-03T10:00:00+00:00"),
                    refund(3, 101, "2024-06-05T10:00:00+00:00")],
        "coupons": [coupon(1, "FRIEND-AAA"), coupon(2, "FRIEND-BBB"), coupon(3, "Advocate-CCC", max_uses=0),
                    coupon(4, "SPRING", type="percentage_discount"), coupon(5, "FRIEND-EEE", enabled=False)],
        "customer-attributes": [
            {"id": 1, "name": "referral_code", "type": "string", "date_created": "2024-01-01T00:00:00Z",
             "date_modified": "2024-01-01T00:00:00Z"},
            {"id": 2, "name": "referral_reward_status", "type": "string", "date_created": "2024-01-01T00:00:00Z",
             "date_modified": "2024-01-01T00:00:00Z"},
            {"id": 3, "name": "points", "type": "number", "date_created": "2024-01-01T00:00:00Z",
             "date_modified": "2024-01-01T00:00:00Z"}],
    }


def write_world(root: Path, data: dict[str, list[dict]] | None = None) -> Path:
    folder = root / "bigcommerce"
    folder.mkdir(parents=True, exist_ok=True)
    for name, records in (data or world()).items():
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


@contextmanager
def running(root: Path, rate_limit: dict | None = None, options: dict | None = None, faults: dict | None = None,
            state_dir: Path | None = None):
    config = SystemConfig(rate_limit=rate_limit if rate_limit is not None else {"requests_per_window": 0},
                          options=options or {}, faults=faults or {})
    with serve_in_thread(BigCommerceSimulator(config, data_root=root, state_dir=state_dir)) as sim:
        yield sim


class Client:
    """Plain HTTP against one simulator, with the store prefix and token."""

    def __init__(self, sim):
        self.sim = sim
        self.base = f"{sim.base_url}/stores/{STORE}"
        self.session = requests.Session()

    def get(self, path: str, params=None, headers=None, **kw) -> requests.Response:
        return self.session.get(self.base + path, params=params, headers={**AUTH, **(headers or {})}, timeout=10, **kw)

    def put(self, path: str, body, headers=None) -> requests.Response:
        return self.session.put(self.base + path, json=body, headers={**AUTH, **(headers or {})}, timeout=10)

    def post(self, path: str, body, headers=None) -> requests.Response:
        return self.session.post(self.base + path, json=body, headers={**AUTH, **(headers or {})}, timeout=10)

    def admin(self, collection: str, records: list[dict]) -> requests.Response:
        return self.session.post(f"{self.sim.base_url}/_sandbox/records",
                                 json={"collection": collection, "records": records}, timeout=10)


# ---- OpenAPI validation -------------------------------------------------------------------------
SPEC_FILES = {"customers": "bc_customers_v3.yml", "orders_v2": "bc_orders_v2.yml", "orders_v3": "bc_orders_v3.yml",
              "marketing": "bc_marketing_v2.yml"}


@functools.lru_cache(maxsize=None)
def spec_dict(name: str) -> dict:
    return yaml.load((SPEC_DIR / SPEC_FILES[name]).read_text(), Loader=yaml.CSafeLoader)


@functools.lru_cache(maxsize=None)
def openapi(name: str) -> OpenAPI:
    # marketing.v2.yml fails the OpenAPI meta-schema ('exclusiveMaximum' without 'maximum'); its
    # operations are still usable, so that one file is loaded without validating the spec itself.
    config = Config(spec_validator_cls=None) if name == "marketing" else Config()
    return OpenAPI.from_dict(spec_dict(name), config=config)


def validate(name: str, response: requests.Response) -> None:
    """Validate a real HTTP response against the operation of the official spec it answers."""
    url = urlsplit(response.request.url)
    request = MockRequest("https://api.bigcommerce.com", response.request.method, url.path,
                          args=dict(parse_qsl(url.query)))
    mock = MockResponse(response.content, response.status_code, dict(response.headers),
                        response.headers.get("content-type", "application/json"))
    openapi(name).validate_response(request, mock)


def validate_schema(name: str, schema: str, instance) -> None:
    """Validate a value against one component schema of a spec (for bodies without an operation)."""
    from openapi_schema_validator import OAS30Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4
    spec = spec_dict(name)
    registry = Registry().with_resource("urn:spec", Resource(contents=spec, specification=DRAFT4))
    validator = OAS30Validator({"$ref": f"urn:spec#/components/schemas/{schema}"}, registry=registry)
    validator.validate(instance)

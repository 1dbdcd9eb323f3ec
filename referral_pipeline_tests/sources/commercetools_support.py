"""Shared helpers for the commercetools source tests: records in the API's own shapes, fixture
directories, a simulator serving them, a client pointed at it, and one-call extract + stage."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import duckdb
import orjson
import requests

from referral_pipeline.clients.commercetools import CommercetoolsClient, Credentials
from referral_pipeline.config.programs import Programs
from referral_pipeline.extract.base import ExtractResult, extract
from referral_pipeline.extract.commercetools import ENTITIES, CommercetoolsExtractor
from referral_pipeline.sandbox.commercetools import CommercetoolsSimulator
from referral_pipeline.sandbox.core.config import FaultSpec, SystemConfig
from referral_pipeline.sandbox.core.stamps import fmt_iso_millis_z
from referral_pipeline.sandbox.testing import serve_in_thread
from referral_pipeline.sources.commercetools import staging_specs
from referral_pipeline.transform.staging.runner import StagingResult, ensure_staging_schema, run_staging
from referral_pipeline.warehouse.schema import ensure_schema

SOURCE = "ct"
PROJECT = "referral-sandbox"
CLIENT_ID, CLIENT_SECRET = "sandbox-ct-client", "sandbox-ct-secret"
T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
OVERLAP = timedelta(minutes=5)
ORDER_TYPE = {"typeId": "type", "id": "7a1f0c4e-0000-4000-8000-00000000c002"}
CUSTOMER_TYPE = {"typeId": "type", "id": "7a1f0c4e-0000-4000-8000-00000000c001"}
COLLECTIONS = {"customers": "customers", "orders": "orders", "discount_codes": "discount-codes",
               "cart_discounts": "cart-discounts"}

PROGRAMS = Programs.model_validate({
    "sources": [{"id": SOURCE, "type": "commercetools", "env_prefix": "CTP"}],
    "markets": [
        {"id": "us", "business_unit": "acme-us", "currency": "USD", "match": [{"source": SOURCE, "store": "us"}],
         "advocate_reward": {"amount": 20, "currency": "USD"}},
        {"id": "eu", "business_unit": "acme-eu", "currency": "EUR", "match": [{"source": SOURCE, "store": "eu"}],
         "advocate_reward": {"amount": 20, "currency": "EUR"}},
        {"id": "jp", "business_unit": "acme-jp", "currency": "JPY", "match": [{"source": SOURCE, "store": "jp"}],
         "advocate_reward": {"amount": 2000, "currency": "JPY"}},
        {"id": "kw", "business_unit": "acme-kw", "currency": "KWD",
         "match": [{"source": SOURCE, "store": "gulf", "currency": "KWD"}],
         "advocate_reward": {"amount": 5, "currency": "KWD"}},
    ],
})
PROGRAMS_YAML = """\
sources:
  - {id: ct, type: commercetools, env_prefix: CTP}
markets:
  - {id: us, business_unit: acme-us, currency: USD, match: [{source: ct, store: us}], advocate_reward: {amount: 20, currency: USD}}
  - {id: eu, business_unit: acme-eu, currency: EUR, match: [{source: ct, store: eu}], advocate_reward: {amount: 20, currency: EUR}}
"""
DIGITS = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "KWD": 3}


# ---- records in the API's shapes ------------------------------------------------------------------
def at(minutes: float) -> str:
    """A commercetools date-time ``minutes`` after T0 (ms and Z)."""
    return fmt_iso_millis_z(T0 + timedelta(minutes=minutes))


def uid(kind: str, i: int) -> str:
    """A UUID-shaped id, ordered by ``i`` within a kind."""
    return f"{kind}0000000-0000-4000-8000-{i:012d}"


def money(cents, currency: str = "USD", digits: int | None = None) -> dict:
    return {"type": "centPrecision", "currencyCode": currency, "centAmount": cents,
            "fractionDigits": DIGITS.get(currency, 2) if digits is None else digits}


def customer(i: int, minutes: float | None = None, **over) -> dict:
    stamp = at(i if minutes is None else minutes)
    return {"id": uid("c", i), "version": 1, "email": f"Shopper{i}@Example.com ", "firstName": f"Ann{i}",
            "lastName": f"Lee{i}", "createdAt": stamp, "lastModifiedAt": stamp,
            "addresses": [{"id": "a1", "country": "us", "phone": f"+1-555-{i:04d}"}],
            "defaultBillingAddressId": "a1", "shippingAddressIds": [], "billingAddressIds": ["a1"],
            "isEmailVerified": True, "stores": [{"typeId": "store", "key": "us"}], "customerGroupAssignments": [],
            "authenticationMode": "Password",
            "custom": {"type": CUSTOMER_TYPE, "fields": {"referralCode": f"REF{i}", "marketingConsent": i % 2 == 0}},
            **over}


def line(line_id: str, sku: str, unit: int, qty: int, currency: str = "USD", discount_per_unit: int = 0) -> dict:
    """A line item; a cart discount of ``discount_per_unit`` shows in discountedPricePerQuantity."""
    rec = {"id": line_id, "productId": f"p-{sku}", "name": {"en": f"Product {sku}", "de": f"Produkt {sku}"},
           "productType": {"typeId": "product-type", "id": "pt-1"}, "variant": {"id": 1, "sku": sku},
           "price": {"id": f"price-{sku}", "value": money(unit, currency)}, "quantity": qty,
           "discountedPricePerQuantity": [], "totalPrice": money((unit - discount_per_unit) * qty, currency),
           "state": [{"quantity": qty, "state": {"typeId": "state", "id": "initial"}}],
           "priceMode": "Platform", "lineItemMode": "Standard"}
    if discount_per_unit:
        rec["discountedPricePerQuantity"] = [{"quantity": qty, "discountedPrice": {
            "value": money(unit - discount_per_unit, currency),
            "includedDiscounts": [{"discount": {"typeId": "cart-discount", "id": "cd-1"},
                                   "discountedAmount": money(discount_per_unit, currency)}]}}]
    return rec


def order(i: int, minutes: float | None = None, *, currency: str = "USD", store: str = "us",
          lines: list[dict] | None = None, shipping: int = 500, tax_rate: float = 0.1, discount_on_total: int = 0,
          codes: list[str] = (), **over) -> dict:
    """An order whose totals are consistent: totalPrice = lines after discounts + shipping - discount
    on total (tax excluded), taxedPrice adds ``tax_rate``."""
    stamp = at(i if minutes is None else minutes)
    lines = [line(f"l{i}-1", f"SKU-{i % 7}", 2000, 2, currency)] if lines is None else lines
    net = sum(li["totalPrice"]["centAmount"] for li in lines) + shipping - discount_on_total
    tax = round(net * tax_rate)
    rec = {"id": uid("a", i), "version": 1, "orderNumber": f"CT-{i:05d}", "customerId": uid("c", i % 10),
           "customerEmail": f"shopper{i % 10}@example.com", "createdAt": stamp, "lastModifiedAt": stamp,
           "store": {"typeId": "store", "key": store}, "locale": "en", "totalPrice": money(net, currency),
           "taxedPrice": {"totalNet": money(net, currency), "totalGross": money(net + tax, currency),
                          "totalTax": money(tax, currency),
                          "taxPortions": [{"rate": tax_rate, "amount": money(tax, currency), "name": "tax"}]},
           "shippingInfo": {"shippingMethodName": "Standard", "price": money(shipping, currency),
                            "shippingRate": {"price": money(shipping, currency)}},
           "lineItems": lines, "customLineItems": [], "orderState": "Open", "paymentState": "Paid",
           "shipmentState": "Pending", "shippingMode": "Single", "taxMode": "Platform", "origin": "Customer",
           "discountCodes": [{"discountCode": {"typeId": "discount-code", "id": c}, "state": "MatchesCart"}
                             for c in codes],
           "refusedGifts": [], "shipping": [], "syncInfo": [], "returnInfo": [],
           "custom": {"type": ORDER_TYPE, "fields": {"referralCode": f"REF{i % 3}", "fbAttributionId": f"fb-{i}",
                                                     "ipAddress": f"10.0.0.{i % 250}", "userAgent": "Mozilla/5.0",
                                                     "deviceId": f"dev-{i}", "channel": "web"}}}
    if discount_on_total:
        rec["discountOnTotalPrice"] = {"discountedAmount": money(discount_on_total, currency),
                                       "includedDiscounts": []}
    return {**rec, **over}


def return_info(items: list[tuple[str, str, int, str]], minutes: float = 0) -> dict:
    """``items``: (return item id, line item id, quantity, paymentState)."""
    return {"returnDate": at(minutes), "returnTrackingId": "RT-1", "items": [
        {"id": rid, "type": "LineItemReturnItem", "lineItemId": lid, "quantity": qty, "shipmentState": "Returned",
         "paymentState": state, "comment": "too small", "createdAt": at(minutes), "lastModifiedAt": at(minutes)}
        for rid, lid, qty, state in items]}


def cart_discount(i: int, requires_code: bool = True, active: bool = True, currency: str | None = None,
                  **over) -> dict:
    value = ({"type": "absolute", "money": [money(1000, currency)]} if currency
             else {"type": "relative", "permyriad": 1000})
    return {"id": uid("e", i), "version": 1, "key": f"cd-{i}", "name": {"en": f"Cart discount {i}"}, "value": value,
            "cartPredicate": "1 = 1", "target": {"type": "lineItems", "predicate": "1 = 1"}, "sortOrder": f"0.{i}",
            "stores": [], "isActive": active, "requiresDiscountCode": requires_code, "references": [],
            "stackingMode": "Stacking", "createdAt": at(i), "lastModifiedAt": at(i), **over}


def discount_code(i: int, code: str, cart_discounts: list[int], **over) -> dict:
    return {"id": uid("d", i), "version": 1, "code": code, "name": {"en": f"Code {code}"},
            "cartDiscounts": [{"typeId": "cart-discount", "id": uid("e", c)} for c in cart_discounts],
            "isActive": True, "maxApplications": 1, "references": [], "groups": [], "stores": [],
            "createdAt": at(i), "lastModifiedAt": at(i), **over}


def write_fixtures(root: Path, **collections: list[dict]) -> Path:
    """``DIR/commercetools/<collection>.jsonl`` per keyword (``discount_codes`` -> discount-codes)."""
    folder = root / "commercetools"
    folder.mkdir(parents=True, exist_ok=True)
    for name, records in collections.items():
        with open(folder / f"{COLLECTIONS.get(name, name)}.jsonl", "wb") as fh:
            for rec in records:
                fh.write(orjson.dumps(rec) + b"\n")
    return root


# ---- simulator, client, pipeline ------------------------------------------------------------------
@contextmanager
def serve(root: Path, faults: FaultSpec | None = None, options: dict | None = None) -> Iterator[CommercetoolsSimulator]:
    config = SystemConfig(faults=faults or FaultSpec(), options=options or {})
    with serve_in_thread(CommercetoolsSimulator(config, data_root=root)) as sim:
        yield sim


def client_for(sim, **policy) -> CommercetoolsClient:
    creds = Credentials(PROJECT, CLIENT_ID, CLIENT_SECRET, (f"manage_project:{PROJECT}",), sim.base_url, sim.base_url)
    return CommercetoolsClient(creds, **{"backoff_base": 0.01, "backoff_cap": 0.05, "timeout": (2.0, 10.0), **policy})


def new_db(path: str = ":memory:") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(path)
    ensure_schema(con)
    ensure_staging_schema(con, PROGRAMS)
    return con


def extract_entity(con, client, entity: str, run_id: str = "r1", page_size: int | None = None,
                   **kwargs) -> ExtractResult:
    kwargs.setdefault("overlap", OVERLAP)
    return extract(con, CommercetoolsExtractor(client, SOURCE, entity, page_size), run_id, **kwargs)


def extract_all(con, client, run_id: str = "r1", **kwargs) -> dict[str, ExtractResult]:
    return {entity: extract_entity(con, client, entity, run_id, **kwargs) for entity in ENTITIES}


class UrlLog:
    """A ``requests`` session that remembers every URL it was sent to (to check query shapes)."""

    def __init__(self):
        self.session = requests.Session()
        self.urls: list[str] = []
        self.session.hooks["response"].append(lambda r, *a, **k: self.urls.append(r.request.url))

    def queries(self, resource: str) -> list[dict[str, list[str]]]:
        from urllib.parse import parse_qs, urlsplit
        return [parse_qs(urlsplit(u).query) for u in self.urls if urlsplit(u).path.endswith(f"/{resource}")]


def api_gets(sim, resource: str) -> int:
    return sim.request_counts.get(f"GET /{{projectKey}}/{resource}", 0)


def raw_snapshot(con, entity: str) -> list[tuple]:
    return rows(con, f"SELECT pk, payload, load_seq FROM raw.{SOURCE}__{entity} ORDER BY pk")


def stage_all(con, run_id: str = "r1") -> dict[str, StagingResult]:
    return {spec.name: run_staging(con, spec, run_id) for spec in staging_specs(SOURCE)}


def post_records(sim, collection: str, records: list[dict]) -> list[dict]:
    r = requests.post(f"{sim.base_url}/_sandbox/records", json={"collection": collection, "records": records})
    assert r.status_code == 200, r.text
    return r.json()["records"]


def rows(con, sql: str, params=None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()

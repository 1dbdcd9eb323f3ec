"""End-to-end harness: fixture files -> five simulators over real HTTP -> the ``nightly`` job.

    world = World()
    world.add("salesforce", "Contact", sf_contact(1, "ann@example.com", T0))
    with Pipeline(tmp_path, monkeypatch, world, PROGRAMS_YAML) as pipe:
        pipe.run("2026-02-01T00:00:00Z")
        pipe.post("salesforce", "Order", [{"Id": ..., "Status": "Refunded"}], at=T0 + timedelta(days=3))
        pipe.run("2026-02-20T00:00:00Z")
        rows = pipe.query("SELECT ... FROM analytics.rewards")

``Pipeline`` writes the fixture directory (contracts §3.1) and the programs file, starts every
simulator in-process with ``serve_in_thread``, points the environment at them (monkeypatch) and
at a temporary DuckDB, and runs ``build_definitions(programs_path)``'s ``nightly`` job with
``execute_in_process`` on an ephemeral Dagster instance. Definitions are rebuilt per run, so a
changed ``REFERRAL_AS_OF`` reaches the settings resource.

The record builders below write each API's own shapes with only the fields that matter to a
scenario as parameters (everything else plausible and fixed), so tests stay readable.
"""
from __future__ import annotations

import json
from collections import defaultdict
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import requests

from referral_pipeline.sandbox.core import stamps
from referral_pipeline.sandbox.core.config import SystemConfig
from referral_pipeline.sandbox.core.config import SYSTEMS
from referral_pipeline.sandbox.registry import simulator_class
from referral_pipeline.sandbox.salesforce.schema import make_id
from referral_pipeline.sandbox.testing import serve_in_thread

UTC = timezone.utc

PROGRAMS_YAML = """\
defaults:
  attribution_window_days: 30
  return_window_days: 30
  advocate_monthly_cap: 10
  velocity: {advocate_per_24h: 5, ip_per_hour: 3}
sources:
  - {id: sf, type: salesforce, env_prefix: SALESFORCE}
  - {id: ct, type: commercetools, env_prefix: CTP}
  - {id: bc, type: bigcommerce, env_prefix: BIGCOMMERCE}
markets:
  - id: us
    business_unit: acme-us
    currency: USD
    locales: [en-US]
    match:
      - {source: sf, currency: USD}
      - {source: ct, store: us}
      - {source: bc}
    friendbuy: {campaign_id: camp-us, env_prefix: FRIENDBUY}
    yotpo: {env_prefix: YOTPO}
    min_order_value: 50
    advocate_reward: {amount: 20, currency: USD}
"""


def iso(t: datetime) -> str:
    return stamps.fmt_iso_millis_z(t)


# ---- the fixture world ---------------------------------------------------------------------------
class World:
    """Records per (system, collection), written as ``DIR/<system>/<collection>.jsonl``."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[dict]] = defaultdict(list)

    def add(self, system: str, collection: str, *records: dict) -> "World":
        self.records[(system, collection)].extend(records)
        return self

    def write(self, root: Path) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        for (system, collection), records in self.records.items():
            folder = root / system
            folder.mkdir(exist_ok=True)
            with open(folder / f"{collection}.jsonl", "w") as fh:
                for rec in records:
                    fh.write(json.dumps(rec) + "\n")
        return root


# ---- Salesforce ----------------------------------------------------------------------------------
def sf_id(prefix: str, n: int) -> str:
    return make_id(prefix, n)


def sf_person(n: int, email: str, created: datetime, first: str = "Pat", last: str = "Lee") -> list[tuple[str, dict]]:
    """An Account and its Contact (``n`` numbers both)."""
    stamp = stamps.fmt_salesforce(created)
    return [("Account", {"Id": sf_id("001", n), "Name": f"{first} {last}", "CurrencyIsoCode": "USD",
                         "CreatedDate": stamp, "SystemModstamp": stamp}),
            ("Contact", {"Id": sf_id("003", n), "AccountId": sf_id("001", n), "Email": email, "FirstName": first,
                         "LastName": last, "HasOptedOutOfEmail": False, "MailingCountry": "United States",
                         "Referral_Code__c": None, "Loyalty_Points_Balance__c": None, "Loyalty_VIP_Tier__c": None,
                         "Referral_Customer_Key__c": None, "CreatedDate": stamp, "SystemModstamp": stamp})]


def sf_order(n: int, contact_n: int, placed: datetime, amount: float = 100.0, *, status: str = "Activated",
             coupon: str | None = None, referral_code: str | None = None, ip: str | None = None,
             refunded: float = 0.0, currency: str = "USD", modified: datetime | None = None) -> dict:
    """A Salesforce Order; ``TotalAmount`` is the goods value (net = amount - discount)."""
    return {"Id": sf_id("801", n), "AccountId": sf_id("001", contact_n), "BillToContactId": sf_id("003", contact_n),
            "OrderNumber": f"{n:08d}", "EffectiveDate": placed.strftime("%Y-%m-%d"), "Status": status,
            "CurrencyIsoCode": currency, "TotalAmount": amount, "Discount_Amount__c": 0.0, "Tax_Amount__c": 0.0,
            "Shipping_Amount__c": 0.0, "Refunded_Amount__c": refunded, "Coupon_Code__c": coupon,
            "Referral_Code__c": referral_code, "Friendbuy_Attribution_Id__c": None,
            "IP_Address__c": ip or f"73.0.{n // 250}.{n % 250}", "User_Agent__c": "Mozilla/5.0",
            "Channel__c": "web", "Market__c": "us", "CreatedDate": stamps.fmt_salesforce(placed),
            "SystemModstamp": stamps.fmt_salesforce(modified or placed)}


def sf_order_item(n: int, order_n: int, placed: datetime, amount: float = 100.0) -> dict:
    stamp = stamps.fmt_salesforce(placed)
    return {"Id": sf_id("802", n), "OrderId": sf_id("801", order_n), "SKU__c": f"SKU-{n}",
            "Product_Name__c": f"Thing {n}", "Quantity": 1.0, "UnitPrice": amount, "TotalPrice": amount,
            "CreatedDate": stamp, "SystemModstamp": stamp}


def sf_review(n: int, reward_key: str, decision: str | None) -> dict:
    """A ``Referral_Reward__c`` as a reviewer leaves it (posted with ``Pipeline.post``)."""
    return {"Id": sf_id("a0B", n), "Name": f"RWD-{n:07d}", "Reward_Key__c": reward_key, "Status__c": "on_hold",
            "Amount__c": 20.0, "CurrencyIsoCode": "USD", "Review_Decision__c": decision}


# ---- commercetools -------------------------------------------------------------------------------
CT_ORDER_TYPE = {"typeId": "type", "id": "7a1f0c4e-0000-4000-8000-00000000c002"}


def ct_uid(kind: str, i: int) -> str:
    return f"{kind}0000000-0000-4000-8000-{i:012d}"


def ct_money(cents: int, currency: str = "USD") -> dict:
    return {"type": "centPrecision", "currencyCode": currency, "centAmount": cents, "fractionDigits": 2}


def ct_customer(i: int, email: str, created: datetime, first: str = "Pat", last: str = "Lee",
                store: str = "us") -> dict:
    return {"id": ct_uid("c", i), "version": 1, "customerNumber": f"{100000 + i}", "email": email,
            "firstName": first, "lastName": last, "addresses": [], "shippingAddressIds": [], "billingAddressIds": [],
            "isEmailVerified": True, "stores": [{"typeId": "store", "key": store}], "customerGroupAssignments": [],
            "locale": "en-US", "authenticationMode": "Password", "createdAt": iso(created), "lastModifiedAt": iso(created)}


def ct_order(i: int, customer_i: int, email: str, placed: datetime, cents: int = 10000, *, store: str = "us",
             discount_code_ids: list[str] = (), discount_cents: int = 0, referral_code: str | None = None,
             ip: str | None = None) -> dict:
    gross = cents + discount_cents
    fields = {"ipAddress": ip or f"98.0.0.{i % 250}", "userAgent": "Mozilla/5.0", "deviceId": f"dev-{i}",
              "channel": "web"}
    if referral_code:
        fields["referralCode"] = referral_code
    rec = {"id": ct_uid("a", i), "version": 1, "orderNumber": f"{100000000 + i}", "customerId": ct_uid("c", customer_i),
           "customerEmail": email, "store": {"typeId": "store", "key": store}, "createdAt": iso(placed),
           "lastModifiedAt": iso(placed), "totalPrice": ct_money(cents),
           "taxedPrice": {"totalNet": ct_money(cents), "totalGross": ct_money(cents), "totalTax": ct_money(0),
                          "taxPortions": []},
           "country": "US", "locale": "en-US", "orderState": "Complete", "paymentState": "Paid",
           "shipmentState": "Delivered",
           "lineItems": [{"id": f"l{i}-1", "productId": f"p-{i}", "name": {"en": f"Product {i}"},
                          "productType": {"typeId": "product-type", "id": "pt-1"}, "variant": {"id": 1, "sku": f"SKU-{i}"},
                          "price": {"id": f"price-{i}", "value": ct_money(gross)}, "quantity": 1,
                          "discountedPricePerQuantity": [], "totalPrice": ct_money(gross),
                          "state": [{"quantity": 1, "state": {"typeId": "state", "id": "initial"}}],
                          "priceMode": "Platform", "lineItemMode": "Standard"}],
           "customLineItems": [], "shippingMode": "Single", "shipping": [], "taxMode": "Platform", "origin": "Customer",
           "syncInfo": [], "refusedGifts": [], "returnInfo": [],
           "discountCodes": [{"discountCode": {"typeId": "discount-code", "id": d}, "state": "MatchesCart"}
                             for d in discount_code_ids],
           "custom": {"type": CT_ORDER_TYPE, "fields": fields}}
    if discount_cents:
        rec["discountOnTotalPrice"] = {"discountedAmount": ct_money(discount_cents), "includedDiscounts": []}
    return rec


def ct_cart_discount(i: int, cents: int = 1000, store: str = "us") -> dict:
    return {"id": ct_uid("e", i), "version": 1, "key": f"friend-incentive-{store}-{i}",
            "name": {"en": "Refer-a-friend: friend incentive"},
            "value": {"type": "absolute", "money": [ct_money(cents)]}, "cartPredicate": "1 = 1",
            "target": {"type": "lineItems", "predicate": "true"}, "sortOrder": f"0.00{i}",
            "stores": [{"typeId": "store", "key": store}], "isActive": True, "requiresDiscountCode": True,
            "references": [], "stackingMode": "Stacking", "createdAt": "2025-12-01T00:00:00.000Z",
            "lastModifiedAt": "2025-12-01T00:00:00.000Z"}


def ct_discount_code(i: int, code: str, cart_discount_i: int, store: str = "us") -> dict:
    return {"id": ct_uid("d", i), "version": 1, "code": code, "name": {"en": "Refer-a-friend: friend incentive"},
            "cartDiscounts": [{"typeId": "cart-discount", "id": ct_uid("e", cart_discount_i)}], "isActive": True,
            "references": [], "groups": [], "stores": [{"typeId": "store", "key": store}], "maxApplications": 1,
            "maxApplicationsPerCustomer": 1, "validFrom": "2025-12-01T00:00:00.000Z",
            "createdAt": "2025-12-01T00:00:00.000Z", "lastModifiedAt": "2025-12-01T00:00:00.000Z"}


# ---- BigCommerce ---------------------------------------------------------------------------------
def bc_customer(i: int, email: str, created: datetime, first: str = "Pat", last: str = "Lee") -> dict:
    return {"id": i, "email": email, "first_name": first, "last_name": last, "company": "", "phone": "",
            "registration_ip_address": "", "notes": "", "tax_exempt_category": "", "customer_group_id": 0,
            "date_created": stamps.fmt_iso_seconds_z(created), "date_modified": stamps.fmt_iso_seconds_z(created),
            "address_count": 0, "attribute_count": 0, "authentication": {"force_password_reset": False},
            "addresses": [], "attributes": [], "form_fields": [], "store_credit_amounts": [{"amount": 0.0}],
            "accepts_product_review_abandoned_cart_emails": True, "origin_channel_id": 1, "channel_ids": [1]}


# ---- Friendbuy (analytics export rows) -----------------------------------------------------------
CAMPAIGN = {"campaignId": "camp-us", "campaignName": "Acme US Refer-a-Friend"}


def _adv(advocate: dict) -> dict:
    return {"advocateName": advocate.get("name", "Ada Vocate"), "advocateEmail": advocate["email"],
            "advocateCustomerId": advocate["id"]}


def fb_share(advocate: dict, code: str, at: datetime, ip: str = "73.9.9.9", channel: str = "email") -> dict:
    return {"advocateCustomerId": advocate["id"], "advocateEmail": advocate["email"],
            "advocateName": advocate.get("name", "Ada Vocate"), "channel": channel, "referralCode": code, **CAMPAIGN,
            "createdOn": iso(at), "userAgent": "Mozilla/5.0", "ipAddress": ip}


def fb_click(advocate: dict, code: str, at: datetime, ip: str = "98.1.1.1", channel: str = "email") -> dict:
    return {**_adv(advocate), "channel": channel, "referralCode": code, **CAMPAIGN, "createdOn": iso(at),
            "userAgent": "Mozilla/5.0", "ipAddress": ip,
            "destinationUrl": f"https://www.acme-shop.example/us/?referralCode={code}"}


def fb_sign_up(advocate: dict, friend: dict, code: str, at: datetime, ip: str = "98.1.1.1",
               channel: str = "email") -> dict:
    return {"customerId": friend["id"], "email": friend["email"], "name": friend.get("name", "Fred Friend"),
            **CAMPAIGN, "createdOn": iso(at), "userAgent": "Mozilla/5.0", "ipAddress": ip, **_adv(advocate),
            "newCustomer": True, "referralCode": code, "channel": channel}


def fb_friend_incentive(advocate: dict, friend: dict, code: str, coupon: str, at: datetime,
                        channel: str = "email") -> dict:
    return {"createdOn": iso(at), "incentiveType": "Coupon Code", "incentiveAmount": 10, "couponCode": coupon,
            "trigger": "email_capture", **_adv(advocate), "referralCode": code, "channel": channel,
            "friendEmail": friend["email"], "friendName": friend.get("name", "Fred Friend"),
            "friendCustomerId": friend["id"], **CAMPAIGN}


def fb_advocate_reward(advocate: dict, friend: dict, code: str, coupon: str, at: datetime,
                       channel: str = "email", amount: float = 20) -> dict:
    return {"createdOn": iso(at), "rewardType": "Coupon Code", "rewardAmount": amount, "couponCode": coupon,
            "trigger": "purchase", **_adv(advocate), "referralCode": code, "channel": channel,
            "friendEmail": friend["email"], "friendName": friend.get("name", "Fred Friend"),
            "friendCustomerId": friend["id"], **CAMPAIGN}


def fb_widget_view(advocate: dict, at: datetime, ip: str = "73.9.9.9") -> dict:
    return {"customerId": advocate["id"], "email": advocate["email"], "widgetName": "Refer a Friend Overlay",
            **CAMPAIGN, "createdOn": iso(at), "userAgent": "Mozilla/5.0", "ipAddress": ip,
            "widgetType": "advocateShare"}


# ---- the pipeline around the simulators ----------------------------------------------------------
class Pipeline:
    """Simulators + environment + the ``nightly`` job; use as a context manager."""

    def __init__(self, tmp_path: Path, monkeypatch, world: World | Path, programs_yaml: str | Path | None = None):
        self.tmp = Path(tmp_path)
        self.monkeypatch = monkeypatch
        self.data_dir = world.write(self.tmp / "fixtures") if isinstance(world, World) else Path(world)
        if programs_yaml is None:
            self.programs_path = self.data_dir / "programs.yaml"
        elif isinstance(programs_yaml, Path):
            self.programs_path = programs_yaml
        else:
            self.programs_path = self.tmp / "programs.yaml"
            self.programs_path.write_text(programs_yaml)
        self.duckdb_path = self.tmp / "referral.duckdb"
        self.sims: dict[str, Any] = {}
        self.clock: dict[str, datetime | None] = {"now": None}
        self.results: list = []
        self._stack = ExitStack()

    # -- lifecycle
    def __enter__(self) -> "Pipeline":
        try:
            for name in SYSTEMS:
                sim = simulator_class(name)(SystemConfig(), self.data_dir, None, f"e2e:{self.data_dir}")
                sim.now = self._now  # a settable clock for admin posts (stamps of records posted between runs)
                self.sims[name] = self._stack.enter_context(serve_in_thread(sim))
                for key, value in sim.env_vars(sim.base_url).items():
                    self.monkeypatch.setenv(key, value)
            self.monkeypatch.setenv("REFERRAL_DUCKDB_PATH", str(self.duckdb_path))
            self.monkeypatch.setenv("REFERRAL_CONFIG", str(self.programs_path))
            self.monkeypatch.delenv("REFERRAL_AS_OF", raising=False)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _now(self) -> datetime:
        return self.clock["now"] or stamps.utcnow()

    # -- running
    def run(self, as_of: str | datetime, job: str = "nightly"):
        """Run ``job`` once with ``REFERRAL_AS_OF=as_of``; fails the test when a step fails."""
        from dagster import DagsterInstance

        from referral_pipeline.definitions import build_definitions

        self.monkeypatch.setenv("REFERRAL_AS_OF", as_of if isinstance(as_of, str) else iso(as_of))
        defs = build_definitions(str(self.programs_path))
        with DagsterInstance.ephemeral() as instance:
            result = defs.resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False)
        if not result.success:
            failures = [f"{e.step_key}: {e.event_specific_data.error.message.strip()}"
                        for e in result.all_events if e.is_step_failure]
            raise AssertionError("nightly run failed:\n" + "\n".join(failures))
        self.results.append(result)
        return result

    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.results]

    # -- changing the world between runs
    def post(self, system: str, collection: str, records: list[dict], at: datetime | None = None) -> list[dict]:
        """``POST /_sandbox/records`` as a user of the system would; ``at`` is the simulator's clock
        for the write (the records' new modification stamp)."""
        self.clock["now"] = at
        try:
            resp = requests.post(f"{self.sims[system].base_url}/_sandbox/records",
                                 json={"collection": collection, "records": records}, timeout=30)
        finally:
            self.clock["now"] = None
        assert resp.status_code < 300, resp.text
        return resp.json()

    # -- reading the warehouse
    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        con = duckdb.connect(str(self.duckdb_path), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection (close it before the next ``run``)."""
        return duckdb.connect(str(self.duckdb_path), read_only=True)

    def snapshot(self) -> dict[str, list[tuple]]:
        """What a re-run with no input change must leave exactly as it was."""
        return {
            "customer_map": self.query("SELECT identity_type, identity_key, customer_key FROM identity.customer_map ORDER BY ALL"),
            "ledger": self.query("SELECT reward_key, seq, from_status, to_status, reason, occurred_at, run_id, load_seq "
                                 "FROM analytics.reward_ledger ORDER BY ALL"),
            "flags": self.query("SELECT flag_id, rule, subject_key, detected_at, run_id, load_seq "
                                "FROM audit.fraud_flags ORDER BY ALL"),
            "rewards": self.query("SELECT reward_key, status, reason, updated_at, load_seq FROM analytics.rewards ORDER BY ALL"),
            "attribution": self.query("SELECT order_key, attribution_method, advocate_customer_key, friend_customer_key, reward_key, "
                                      "no_reward_reason, order_status, net_amount, updated_at, load_seq FROM analytics.referral_attribution ORDER BY ALL"),
        }


def customer_key_of(email_normalized: str) -> str:
    """The key a new email gets (docs/identity.md): ``cus_`` + 16 hex of sha256(email_normalized)."""
    import hashlib
    return "cus_" + hashlib.sha256(email_normalized.encode()).hexdigest()[:16]


def reward_key_of(campaign_id: str, friend_customer_key: str) -> str:
    import hashlib
    return "rwd_" + hashlib.sha256(f"{campaign_id}|{friend_customer_key}".encode()).hexdigest()[:16]


def flag_id_of(rule: str, subject_type: str, subject_key: str) -> str:
    import hashlib
    return "flg_" + hashlib.sha256(f"{rule}|{subject_type}|{subject_key}".encode()).hexdigest()[:16]

"""The sandbox world generator: determinism, sizes, file formats, referential integrity, planted
cases (fraud, eligibility, promo codes, malformed records) checked against the files themselves,
BigCommerce shapes against the official OpenAPI schemas, and the generation cache."""
from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from referral_pipeline.sandbox.core import stamps
from referral_pipeline.sandbox.core.fixtures import read_jsonl
from referral_pipeline.sandbox.generator import PROGRAMS_YAML, ensure_generated, generate_world
from referral_pipeline.sandbox.generator import ids
from referral_pipeline.sandbox.generator.cache import MARKER
from referral_pipeline.sandbox.generator.malformed import CUSTOMER_REASONS, ORDER_REASONS

REPO = Path(__file__).resolve().parents[2]
OPENAPI = Path("/work/shared/reference/openapi/bigcommerce")
# contracts §3.1 files and the keys/stamps the simulators use
COLLECTIONS = {
    "salesforce": {n: ("Id", "SystemModstamp") for n in ("Account", "Contact", "Order", "OrderItem", "Referral__c",
                                                         "Referral_Reward__c")},
    "commercetools": {n: ("id", "lastModifiedAt") for n in ("customers", "orders", "discount-codes", "cart-discounts", "types")},
    "bigcommerce": {"customers": ("id", "date_modified"), "orders": ("id", "date_modified"), "refunds": ("id", "created"),
                    "coupons": ("id", None), "customer-attributes": ("id", "date_modified")},
    "friendbuy": {n: (None, "createdOn") for n in ("shares", "clicks", "account-sign-ups", "purchases", "widget-views",
                                                   "distributed-advocate-rewards", "distributed-friend-incentives")},
    "yotpo": {"customers": ("email", None), "vip-tiers": ("id", None), "redemption-options": ("id", None)},
}
MARKET_CURRENCY = {"us": "USD", "uk": "GBP", "eu": "EUR"}
MIN_VALUE = {"us": 50, "uk": 40, "eu": 45}


# ---- helpers -------------------------------------------------------------------------------------
def load(root: Path, system: str, name: str) -> list[dict]:
    return [json.loads(line) for line in (root / system / f"{name}.jsonl").read_text().splitlines() if line]


def normalized(email: str | None) -> str:
    return (email or "").strip().lower()


def canonical(email: str) -> str:
    local, _, domain = normalized(email).partition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        return local.replace(".", "") + "@gmail.com"
    return f"{local}@{domain}"


def when(value: str) -> datetime:
    return stamps.parse_any(value)


class World:
    """A generated world read back from its files, with a source-neutral view of orders."""

    def __init__(self, root: Path):
        self.root = root
        self.manifest = json.loads((root / "manifest.json").read_text())
        self.data = {(s, n): load(root, s, n) for s, names in COLLECTIONS.items() for n in names}
        self.bad_ids = {(m["source"], m["entity"], str(m["id"])) for m in self.manifest["planted"]["malformed"]}
        self.orders = self._orders()

    def __getitem__(self, key):
        return self.data[key]

    def is_bad(self, source: str, entity: str, rid) -> bool:
        return (source, entity, str(rid)) in self.bad_ids

    def customer_emails(self) -> dict[tuple[str, str], str]:
        out = {}
        contacts = {c["Id"]: c for c in self[("salesforce", "Contact")]}
        out.update({("sf", k): normalized(v["Email"]) for k, v in contacts.items()})
        out.update({("ct", c["id"]): normalized(c.get("email")) for c in self[("commercetools", "customers")]})
        out.update({("bc", str(c["id"])): normalized(c["email"]) for c in self[("bigcommerce", "customers")]})
        return out

    def _orders(self) -> dict[str, dict]:
        emails = self.customer_emails()
        codes = {c["id"]: c["code"] for c in self[("commercetools", "discount-codes")]}
        out = {}
        for o in self[("salesforce", "Order")]:
            if self.is_bad("sf", "Order", o["Id"]):
                continue
            out["sf:" + o["Id"]] = {
                "number": o["OrderNumber"], "currency": o["CurrencyIsoCode"], "market": o["Market__c"],
                "placed": when(o["CreatedDate"]), "ip": o["IP_Address__c"], "coupons": [o["Coupon_Code__c"]] if o["Coupon_Code__c"] else [],
                "referral_code": o["Referral_Code__c"], "email": emails.get(("sf", o["BillToContactId"])),
                "net": o["TotalAmount"] - o["Discount_Amount__c"] - o["Refunded_Amount__c"], "status": o["Status"]}
        for o in self[("commercetools", "orders")]:
            if self.is_bad("ct", "orders", o["id"]):
                continue
            subtotal = sum(li["totalPrice"]["centAmount"] for li in o["lineItems"])
            discount = o.get("discountOnTotalPrice", {}).get("discountedAmount", {}).get("centAmount", 0)
            email = emails.get(("ct", o["customerId"])) if "customerId" in o else normalized(o.get("customerEmail"))
            out["ct:" + o["id"]] = {
                "number": o["orderNumber"], "currency": o["totalPrice"]["currencyCode"], "market": o["store"]["key"],
                "placed": when(o["createdAt"]), "ip": o["custom"]["fields"]["ipAddress"],
                "coupons": [codes[d["discountCode"]["id"]] for d in o["discountCodes"]],
                "referral_code": o["custom"]["fields"].get("referralCode"), "email": email,
                "net": (subtotal - discount) / 100, "status": o["orderState"]}
        for o in self[("bigcommerce", "orders")]:
            if self.is_bad("bc", "orders", o["id"]):
                continue
            email = emails.get(("bc", str(o["customer_id"]))) if o["customer_id"] else normalized(o["billing_address"]["email"])
            out[f"bc:{o['id']}"] = {
                "number": str(o["id"]), "currency": o["currency_code"], "market": "us", "placed": when(o["date_created"]),
                "ip": o["ip_address"], "coupons": [c["code"] for c in o["coupons"]], "referral_code": None, "email": email,
                "net": float(o["subtotal_ex_tax"]) - float(o["coupon_discount"]) - float(o["refunded_amount"]),
                "status": o["status"]}
        return out


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("small")
    generate_world("small", 11, root)
    return World(root)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    generate_world("tiny", 3, root)
    return root


def file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ---- determinism, sizes, formats ---------------------------------------------------------------------
def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tiny_root, small, tmp_path):
    generate_world("tiny", 3, tmp_path / "again")
    assert file_hashes(tmp_path / "again") == file_hashes(tiny_root)
    generate_world("small", 11, tmp_path / "small-again")
    assert file_hashes(tmp_path / "small-again") == file_hashes(small.root)
    generate_world("tiny", 4, tmp_path / "other")
    other, base = file_hashes(tmp_path / "other"), file_hashes(tiny_root)
    assert other["programs.yaml"] == base["programs.yaml"]
    changed = [k for k in base if k.endswith(".jsonl") and base[k] != other[k]]
    assert {"salesforce/Contact.jsonl", "commercetools/orders.jsonl", "friendbuy/shares.jsonl"} <= set(changed)


def test_sizes_per_scale(tiny_root, small):
    tiny = json.loads((tiny_root / "manifest.json").read_text())["counts"]
    assert tiny["people"] == 50 and 120 <= tiny["orders"]["total"] <= 400
    counts = small.manifest["counts"]
    assert counts["people"] == 2000
    assert 9000 <= counts["orders"]["total"] <= 11000
    assert all(counts["orders"][s] > 1000 for s in ("sf", "ct", "bc"))
    customers = len(small[("salesforce", "Contact")]) + len(small[("commercetools", "customers")]) + len(small[("bigcommerce", "customers")])
    assert 2000 <= customers <= 3500  # people appear in several sources
    assert counts["orders"]["total"] == len(small.orders) + sum(
        1 for m in small.manifest["planted"]["malformed"] if m["entity"] in ("Order", "orders"))
    by_market = counts["people_by_market"]
    assert by_market["us"] > by_market["uk"] > 0 and by_market["eu"] > 0
    assert {o["currency"] for o in small.orders.values()} >= {"USD", "GBP", "EUR"}


def test_every_file_reads_with_its_key_and_stamps_parse(small):
    for system, names in COLLECTIONS.items():
        for name, (key, stamp) in names.items():
            path = small.root / system / f"{name}.jsonl"
            assert path.exists(), path
            records = read_jsonl(path, key or "id", name if key is None else None)
            assert len(records) == small.manifest["files"][f"{system}/{name}.jsonl"]["records"]
            if key:
                assert len({str(r[key]) for r in records}) == len(records), f"duplicate keys in {path}"
            else:
                assert all("id" not in json.loads(line) for line in path.read_text().splitlines()[:50])
            if stamp:
                for r in records:
                    stamps.to_micros(r[stamp])
    assert (small.root / "programs.yaml").read_text() == (REPO / "data" / "programs.yaml").read_text() == PROGRAMS_YAML


def test_stamp_formats_follow_each_api(small):
    assert small[("salesforce", "Order")][0]["SystemModstamp"].endswith(".000+0000")
    assert len(small[("salesforce", "Order")][0]["Id"]) == 18
    ct = small[("commercetools", "orders")][0]
    assert ct["lastModifiedAt"].endswith("Z") and len(ct["lastModifiedAt"]) == 24
    bc = small[("bigcommerce", "orders")][0]
    assert bc["date_modified"].endswith(" +0000") and bc["date_modified"][3:5] == ", "
    assert small[("bigcommerce", "customers")][0]["date_modified"].endswith("Z")
    assert isinstance(bc["total_inc_tax"], str) and len(bc["total_inc_tax"].split(".")[1]) == 4
    assert ct["totalPrice"]["type"] == "centPrecision" and isinstance(ct["totalPrice"]["centAmount"], int)


def test_modification_stamps_never_precede_creation(small):
    pairs = [("salesforce", n, "CreatedDate", "SystemModstamp") for n in ("Account", "Contact", "Order")]
    pairs += [("commercetools", n, "createdAt", "lastModifiedAt") for n in ("customers", "orders", "discount-codes")]
    pairs += [("bigcommerce", n, "date_created", "date_modified") for n in ("customers", "orders")]
    checked = 0
    for system, name, created, modified in pairs:
        for r in small[(system, name)]:
            try:
                c = when(r[created])
            except (ValueError, TypeError):
                continue  # planted unparseable dates
            assert when(r[modified]) >= c, (system, name, r)
            checked += 1
    assert checked > 10_000


def test_customers_exist_before_their_orders(small):
    created = {("sf", c["Id"]): c["CreatedDate"] for c in small[("salesforce", "Contact")]}
    created |= {("ct", c["id"]): c["createdAt"] for c in small[("commercetools", "customers")]}
    created |= {("bc", c["id"]): c["date_created"] for c in small[("bigcommerce", "customers")]}
    pairs = [(("sf", o["BillToContactId"]), o["CreatedDate"]) for o in small[("salesforce", "Order")]]
    pairs += [(("ct", o.get("customerId")), o["createdAt"]) for o in small[("commercetools", "orders")]]
    pairs += [(("bc", o["customer_id"]), o["date_created"]) for o in small[("bigcommerce", "orders")]]
    checked = 0
    for customer, placed in pairs:
        if customer in created and not _unparseable(placed):
            assert when(created[customer]) <= when(placed), (customer, placed)
            checked += 1
    assert checked > 9000


def test_salesforce_ids_carry_prefix_and_case_safe_suffix():
    def suffix(body: str) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
        return "".join(alphabet[sum(1 << i for i, ch in enumerate(body[c * 5:c * 5 + 5]) if ch.isupper())] for c in range(3))

    for prefix in ("001", "003", "801", "802"):
        values = ids.sf_ids(5, prefix, np.arange(0, 500_000, 997)).to_pylist()
        assert len(set(values)) == len(values)
        assert all(v.startswith(prefix) and len(v) == 18 and v[15:] == suffix(v[:15]) for v in values)


def test_identifier_encoders_are_unique_and_well_formed():
    u = ids.uuids(1, "x", np.arange(20_000)).to_pylist()
    assert len(set(u)) == 20_000 and all(len(x) == 36 and x[14] == "4" and x[19] in "89ab" for x in u[:100])
    assert ids.uuids(1, "x", np.arange(3)).to_pylist() != ids.uuids(2, "x", np.arange(3)).to_pylist()
    codes = ids.code36(np.arange(200_000), 7, 12345, "FRIEND-").to_pylist()
    assert len(set(codes)) == 200_000 and all(c.startswith("FRIEND-") and len(c) == 14 for c in codes[:10])
    for modulus in (1000, 36 ** 7):
        x = ids.permute(np.arange(min(modulus, 300_000)), modulus, 99)
        assert len(np.unique(x)) == len(x) and x.max() < modulus
    assert ids.ipv4(np.array([(73 << 24) | (1 << 16) | (2 << 8) | 3], dtype=np.uint32)).to_pylist() == ["73.1.2.3"]


# ---- identity ------------------------------------------------------------------------------------------
def test_people_spell_their_email_differently_per_source_but_normalize_to_one(small):
    spellings = [r["Email"] for r in small[("salesforce", "Contact")] if r["Email"]]
    spellings += [r["email"] for r in small[("commercetools", "customers")] if r.get("email")]
    spellings += [r["email"] for r in small[("bigcommerce", "customers")] if r["email"]]
    assert any(s != s.strip() for s in spellings) and any(s.strip() != s.strip().lower() for s in spellings)
    aliases = small.manifest["planted"]["alias_duplicates"]
    assert len(aliases) == small.manifest["counts"]["alias_duplicate_people"] > 0
    emails = small.customer_emails()
    for person in aliases:  # one of their records uses a gmail dot/+tag/googlemail spelling
        spelled = {emails[(c["source"], str(c["id"]))] for c in person["customers"]}
        assert len(spelled) == 2 and len({canonical(e) for e in spelled}) == 1
    # apart from planted aliases and self-referral aliases, an email_canonical is one person
    canon = Counter(canonical(e) for e in set(emails.values()) if "@" in e and not e.startswith("@"))
    dupes = {c for c, n in canon.items() if n > 1}
    planted = {canonical(a["email"]) for a in aliases}
    planted |= {canonical(c["advocate"]["email"]) for c in small.manifest["planted"]["fraud"]["SELF_REFERRAL"]}
    assert dupes <= planted


# ---- referential integrity ----------------------------------------------------------------------------
def test_every_order_references_a_customer_except_planted_unidentifiable(small):
    contacts = {c["Id"]: c for c in small[("salesforce", "Contact")]}
    accounts = {a["Id"] for a in small[("salesforce", "Account")]}
    ct_customers = {c["id"] for c in small[("commercetools", "customers")]}
    bc_customers = {c["id"] for c in small[("bigcommerce", "customers")]}
    known_emails = set(small.customer_emails().values())
    unidentifiable = {str(m["id"]) for m in small.manifest["planted"]["malformed"] if m["reason"] == "unidentifiable_customer"}
    contact_accounts = {c["AccountId"] for c in contacts.values()}
    seen = Counter()
    for o in small[("salesforce", "Order")]:
        assert o["AccountId"] in accounts
        if o["Id"] in unidentifiable:  # the shared guest-checkout account, which has no contact
            assert o["BillToContactId"] is None and o["AccountId"] not in contact_accounts; seen["sf"] += 1  # noqa: E702
        else:
            assert contacts[o["BillToContactId"]]["AccountId"] == o["AccountId"]
    items = Counter(i["OrderId"] for i in small[("salesforce", "OrderItem")])
    assert set(items) == {o["Id"] for o in small[("salesforce", "Order")]}
    for o in small[("commercetools", "orders")]:
        if o["id"] in unidentifiable:
            assert "customerId" not in o and "customerEmail" not in o and o["anonymousId"]; seen["ct"] += 1  # noqa: E702
        elif "customerId" in o:
            assert o["customerId"] in ct_customers
        else:  # guest checkout identified by email
            assert normalized(o["customerEmail"]) in known_emails and o["anonymousId"]
    for o in small[("bigcommerce", "orders")]:
        if str(o["id"]) in unidentifiable:
            assert o["customer_id"] == 0 and o["billing_address"]["email"] == ""; seen["bc"] += 1  # noqa: E702
        elif o["customer_id"]:
            assert o["customer_id"] in bc_customers
        else:
            assert normalized(o["billing_address"]["email"]) in known_emails
    assert set(seen) == {"sf", "ct", "bc"} and min(seen.values()) >= 1
    refunds = small[("bigcommerce", "refunds")]
    bc_orders = {o["id"]: o for o in small[("bigcommerce", "orders")]}
    assert refunds and all(bc_orders[r["order_id"]]["status_id"] in (4, 14) for r in refunds)
    assert {r["order_id"] for r in refunds} == {o["id"] for o in bc_orders.values() if o["status_id"] in (4, 14)}
    partial = [r for r in refunds if bc_orders[r["order_id"]]["status_id"] == 14]
    assert partial and all(abs(r["total_amount"] - float(bc_orders[r["order_id"]]["refunded_amount"])) < 0.005 for r in refunds)


def test_referral_codes_on_orders_belong_to_shares(small):
    share_codes = {s["referralCode"] for s in small[("friendbuy", "shares")]}
    assert len(share_codes) == len(small[("friendbuy", "shares")])  # unique per share
    on_orders = [o["referral_code"] for o in small.orders.values() if o["referral_code"]]
    assert len(on_orders) > 20 and set(on_orders) <= share_codes
    clicks = {c["referralCode"] for c in small[("friendbuy", "clicks")]}
    assert clicks <= share_codes


def test_friend_incentive_codes_exist_in_the_platform_except_planted_missing(small):
    ct = {c["code"].upper() for c in small[("commercetools", "discount-codes")]}
    bc = {c["code"].upper() for c in small[("bigcommerce", "coupons")]}
    incentives = small[("friendbuy", "distributed-friend-incentives")]
    assert incentives and all(i["couponCode"] == i["couponCode"].lower() for i in incentives)
    missing = {i["couponCode"].upper() for i in incentives if i["couponCode"].upper() not in ct | bc}
    planted = {p["code"] for p in small.manifest["planted"]["promo_codes"] if p["problem"] == "missing"}
    assert missing == planted and planted
    rewards = small[("friendbuy", "distributed-advocate-rewards")]
    assert rewards and all(r["couponCode"].upper() in ct | bc for r in rewards)
    # coupons used on orders that Friendbuy distributed are the referral ones
    used = {c.upper() for o in small.orders.values() for c in o["coupons"]}
    assert {i["couponCode"].upper() for i in incentives} & used


def test_friendbuy_purchase_order_ids_resolve_to_orders(small):
    by_key = small.orders
    by_number = defaultdict(list)
    for key, o in by_key.items():
        by_number[o["number"]].append(key)
    purchases = small[("friendbuy", "purchases")]
    styles = Counter()
    for p in purchases:
        if p["orderId"] in by_key:
            key, styles["order_key"] = p["orderId"], styles["order_key"] + 1
        else:
            assert len(by_number[p["orderId"]]) == 1, p["orderId"]
            key, styles["number"] = by_number[p["orderId"]][0], styles["number"] + 1
        order = by_key[key]
        assert order["email"] == normalized(p["email"])
        assert order["placed"] <= when(p["createdOn"]) <= order["placed"] + timedelta(minutes=5)
        assert p["products"] and p["campaignId"] == f"camp-{order['market'] if key[:2] != 'bc' else 'us'}"
    assert styles["order_key"] > 0 and styles["number"] > 0


def test_referral_timelines_are_consistent(small):
    signups = {normalized(s["email"]): when(s["createdOn"]) for s in small[("friendbuy", "account-sign-ups")]}
    first_click = {}
    for c in small[("friendbuy", "shares")]:
        first_click.setdefault(c["referralCode"], when(c["createdOn"]))
    for c in small[("friendbuy", "clicks")]:
        assert when(c["createdOn"]) >= first_click[c["referralCode"]]
    for p in small[("friendbuy", "purchases")]:
        email = normalized(p["email"])
        if email in signups and p["newCustomer"]:
            assert signups[email] < when(p["createdOn"]) <= signups[email] + timedelta(days=30)
    start, end = when(small.manifest["time_window"]["start"]), when(small.manifest["time_window"]["end"])
    assert all(start <= o["placed"] <= end for o in small.orders.values())
    friends = [f for group in ("fraud", "eligibility") for cases in small.manifest["planted"][group].values()
               for c in cases for f in c["friends"]]
    assert friends
    for f in friends:  # click before sign-up before the first order
        clicked, placed = when(f["clicked_at"]), when(f["order"]["placed_at"])
        signed_up = when(f["signed_up_at"]) if f["signed_up_at"] else clicked
        assert clicked <= signed_up < placed


# ---- planted fraud and eligibility cases -------------------------------------------------------------
def case_orders(small: World, case: dict, flagged_only: bool = False) -> list[dict]:
    entries = [f for f in case["friends"] + case["extra_orders"] if f["order"] and (f["flagged"] or not flagged_only)]
    return [small.orders[e["order"]["order_key"]] | {"key": e["order"]["order_key"]} for e in entries]


def test_every_planted_rule_is_in_the_manifest_and_visible_in_the_files(small):
    planted = small.manifest["planted"]
    assert set(planted["fraud"]) == {"SELF_REFERRAL", "SAME_IP_AS_ADVOCATE", "VELOCITY_IP", "VELOCITY_ADVOCATE", "COUPON_REUSE"}
    assert set(planted["eligibility"]) == {"CURRENCY_MISMATCH", "BELOW_MIN_ORDER_VALUE", "ADVOCATE_CAP_REACHED"}
    shares = small[("friendbuy", "shares")]
    share_ips = defaultdict(set)
    for s in shares:
        share_ips[normalized(s["advocateEmail"])].add(s["ipAddress"])
    for case in planted["fraud"]["SELF_REFERRAL"]:
        adv = case["advocate"]["email"]
        if case["variant"] == "same_person":
            (extra,) = case["extra_orders"]
            order = small.orders[extra["order"]["order_key"]]
            assert extra["email"] == adv and order["referral_code"] in case["referral_codes"]
        else:
            (friend,) = case["friends"]
            assert friend["email"] != adv and canonical(friend["email"]) == canonical(adv)
            assert small.orders[friend["order"]["order_key"]]["referral_code"] in case["referral_codes"]
    assert {c["variant"] for c in planted["fraud"]["SELF_REFERRAL"]} == {"same_person", "email_alias"}
    for case in planted["fraud"]["SAME_IP_AS_ADVOCATE"]:
        (order,) = case_orders(small, case)
        assert order["ip"] == case["ip"] in share_ips[case["advocate"]["email"]]
    signups = small[("friendbuy", "account-sign-ups")]
    for case in planted["fraud"]["VELOCITY_IP"]:
        times = sorted(when(s["createdOn"]) for s in signups if s["ipAddress"] == case["ip"])
        assert len(times) >= 5 and times[4] - times[0] < timedelta(hours=1)
        assert case["ip"] not in {ip for ips in share_ips.values() for ip in ips}
    for case in planted["fraud"]["VELOCITY_ADVOCATE"]:
        placed = sorted(o["placed"] for o in case_orders(small, case))
        assert len(placed) == 7 and placed[-1] - placed[0] < timedelta(hours=24)
        assert sum(f["flagged"] for f in case["friends"]) == 2
    for case in planted["fraud"]["COUPON_REUSE"]:
        (friend,) = case["friends"]
        code = friend["order"]["coupon_code"]
        using = [o for o in small.orders.values() if code in [c.upper() for c in o["coupons"]]]
        assert len(using) == 2
        if case["variant"] == "other_customer":
            assert len({o["email"] for o in using}) == 2
    for case in planted["eligibility"]["CURRENCY_MISMATCH"]:
        (order,) = case_orders(small, case)
        assert order["currency"] != MARKET_CURRENCY[case["market_id"]] == MARKET_CURRENCY[order["market"]]
    for case in planted["eligibility"]["BELOW_MIN_ORDER_VALUE"]:
        (order,) = case_orders(small, case)
        assert order["net"] < MIN_VALUE[case["market_id"]]
    for case in planted["eligibility"]["ADVOCATE_CAP_REACHED"]:
        orders = case_orders(small, case)
        assert len(orders) == 12 and len({(o["placed"].year, o["placed"].month) for o in orders}) == 1
        placed = sorted(o["placed"] for o in orders)
        assert min(b - a for a, b in zip(placed, placed[1:])) > timedelta(hours=24)
        assert all(o["net"] >= MIN_VALUE[case["market_id"]] for o in orders)
    leaks = planted["reward_leaks"]
    assert leaks
    rewards = {(normalized(r["advocateEmail"]), normalized(r["friendEmail"])) for r in small[("friendbuy", "distributed-advocate-rewards")]}
    assert all((leak["advocate"]["email"], leak["friend"]["email"]) in rewards for leak in leaks)


def test_natural_referrals_do_not_trip_rules_by_accident(small):
    """Clean friends: new single-source customers, own IPs, net above the minimum, advocates with
    few friends, so only planted cases should raise flags."""
    planted_friends = {f["email"] for group in ("fraud", "eligibility")
                       for cases in small.manifest["planted"][group].values() for c in cases for f in c["friends"]}
    purchases = [p for p in small[("friendbuy", "purchases")] if p["newCustomer"] and normalized(p["email"]) not in planted_friends]
    assert len(purchases) > 30
    advocate_ips = {s["ipAddress"] for s in small[("friendbuy", "shares")]}
    per_ip = Counter(s["ipAddress"] for s in small[("friendbuy", "account-sign-ups")] if normalized(s["email"]) not in planted_friends)
    assert max(per_ip.values()) == 1
    for p in purchases:
        assert p["ipAddress"] not in advocate_ips
        assert p["amount"] >= MIN_VALUE[p["campaignId"][5:]]
    per_advocate = Counter(normalized(p["advocateEmail"]) for p in purchases)
    assert max(per_advocate.values()) <= 5


# ---- planted promo-code problems ------------------------------------------------------------------------
def test_planted_promo_code_problems_are_visible_in_the_platforms(small):
    problems = small.manifest["planted"]["promo_codes"]
    assert {p["problem"] for p in problems} == {"missing", "inactive", "not_single_use", "expired", "wrong_market", "collision"}
    ct = {c["code"]: c for c in small[("commercetools", "discount-codes")]}
    bc = {c["code"]: c for c in small[("bigcommerce", "coupons")]}
    incentives = defaultdict(list)
    for i in small[("friendbuy", "distributed-friend-incentives")]:
        incentives[i["couponCode"]].append(i)
    store = {"camp-us": "us", "camp-uk": "uk", "camp-eu": "eu"}
    for p in problems:
        rows = incentives[p["friendbuy_code"]]
        assert rows and any(r["campaignId"] == p["campaign_id"] for r in rows)
        code = p["code"]
        if p["problem"] == "missing":
            assert code not in ct and code not in bc
        elif p["problem"] == "inactive":
            assert (ct[code]["isActive"] is False) if code in ct else (bc[code]["enabled"] is False)
        elif p["problem"] == "not_single_use":
            assert (ct[code].get("maxApplications") != 1) if code in ct else (bc[code]["max_uses"] != 1)
        elif p["problem"] == "expired":
            until = when(ct[code]["validUntil"]) if code in ct else when(bc[code]["expires"])
            assert until < when(p["distributed_at"])
        elif p["problem"] == "wrong_market":
            assert [s["key"] for s in ct[code]["stores"]] != [store[p["campaign_id"]]]
        else:
            campaigns = {r["campaignId"] for r in rows}
            non_referral = code in ct and ct[code]["name"]["en"] == "Customer care goodwill"
            assert len(campaigns) == 2 or non_referral
    clean = [c for c in ct.values() if c["code"].startswith("FRIEND-") and c["code"] not in {p["code"] for p in problems}]
    assert clean and all(c["maxApplications"] == 1 and c["isActive"] and "validUntil" not in c for c in clean)


# ---- planted malformed records -----------------------------------------------------------------------------
FIELD_CHECKS = {
    "missing_email": lambda v: v in (None, ""),
    "malformed_email": lambda v: v.count("@") != 1 or " " in v or v.startswith("@") or v.endswith("@") or "." not in v.split("@")[-1],
    "overlong_field": lambda v: len(v) > 1000,
    "invalid_utf8": lambda v: any(0xD800 <= ord(ch) <= 0xDFFF for ch in v),
    "non_numeric_amount": lambda v: isinstance(v, str) and not _is_number(v),
    "negative_amount": lambda v: float(v) < 0,
    "non_finite_amount": lambda v: v in ("NaN", "Infinity"),
    "unknown_currency": lambda v: v == "ZZZ",
    "unparseable_date": lambda v: _unparseable(v),
    "unidentifiable_customer": lambda v: v in (None, 0, ""),
}


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _unparseable(text: str) -> bool:
    try:
        stamps.parse_any(text)
        return False
    except (ValueError, TypeError):
        return True


def _field(record: dict, path: str):
    value = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def test_malformed_records_cover_every_reason_per_source_and_are_bad_in_the_files(small):
    planted = small.manifest["planted"]["malformed"]
    system = {"sf": "salesforce", "ct": "commercetools", "bc": "bigcommerce"}
    for source in system:
        reasons = {(m["entity"], m["reason"]) for m in planted if m["source"] == source}
        customers = {"sf": "Contact", "ct": "customers", "bc": "customers"}[source]
        orders = {"sf": "Order", "ct": "orders", "bc": "orders"}[source]
        assert {(customers, r) for r in CUSTOMER_REASONS} | {(orders, r) for r in ORDER_REASONS} == reasons
    key = {"salesforce": "Id", "commercetools": "id", "bigcommerce": "id"}
    for m in planted:
        sysname = system[m["source"]]
        records = {str(r[key[sysname]]): r for r in small[(sysname, m["entity"])]}
        value = _field(records[str(m["id"])], m["field"])
        assert FIELD_CHECKS[m["reason"]](value), (m, value)
    customers = len(small[("salesforce", "Contact")]) + len(small[("commercetools", "customers")]) + len(small[("bigcommerce", "customers")])
    share = len(planted) / (customers + small.manifest["counts"]["orders"]["total"])
    assert 0.002 < share < 0.02
    assert all(isinstance(m["id"], (str, int)) and m["id"] not in ("", None) for m in planted)
    # the invalid text is a lone surrogate escape, readable by the sandbox loader
    raw = (small.root / "salesforce" / "Contact.jsonl").read_text()
    assert "\\ud800" in raw


def test_replacement_mode_plants_u_fffd_instead(tmp_path):
    manifest = generate_world("tiny", 3, tmp_path, invalid_utf8="replacement")
    assert manifest["generator"]["invalid_utf8"] == "replacement"
    text = "".join(p.read_text() for p in tmp_path.rglob("*.jsonl"))
    assert "\\ud800" not in text and "\ufffd" in text


# ---- BigCommerce shapes against the official OpenAPI files ---------------------------------------------------
def _validator(spec_file: str, schema: str):
    from openapi_schema_validator import OAS30Validator

    doc = yaml.safe_load((OPENAPI / spec_file).read_text())
    return OAS30Validator({"$ref": f"#/components/schemas/{schema}", "components": doc["components"]})


@pytest.mark.skipif(not OPENAPI.is_dir(), reason="official OpenAPI files not available")
def test_bigcommerce_records_validate_against_the_openapi_schemas(small):
    bad = {(m["entity"], str(m["id"])) for m in small.manifest["planted"]["malformed"] if m["source"] == "bc"}
    customer = _validator("bc_customers_v3.yml", "customer_Full")
    order = _validator("bc_orders_v2.yml", "order_Resp")
    product = _validator("bc_orders_v2.yml", "orderProducts")
    coupon = _validator("bc_orders_v2.yml", "orderCoupons_Base")
    address = _validator("bc_orders_v2.yml", "orderShippingAddress")
    refund = _validator("bc_orders_v3.yml", "Refund")
    store_coupon = _validator("bc_marketing_v2.yml", "coupon_Full")
    checked = Counter()

    def ok(validator, record, what):
        errors = [e.message for e in validator.iter_errors(record)]
        assert not errors, (what, errors[:3], record)
        checked[what] += 1

    for c in small[("bigcommerce", "customers")]:
        if ("customers", str(c["id"])) not in bad:
            ok(customer, c, "customer")
    for o in small[("bigcommerce", "orders")]:
        for p in o["products"]:
            ok(product, p, "order product")
        for c in o["coupons"]:
            ok(coupon, c, "order coupon")
        if ("orders", str(o["id"])) in bad:
            continue
        for a in o["shipping_addresses"]:
            ok(address, a, "shipping address")
        links = {k: {"url": f"https://api.bigcommerce.com/stores/x/v2/orders/{o['id']}/{k}", "resource": f"/orders/{o['id']}/{k}"}
                 for k in ("products", "coupons", "shipping_addresses")}
        ok(order, dict(o, **links), "order")
    for r in small[("bigcommerce", "refunds")]:
        ok(refund, r, "refund")
    for c in small[("bigcommerce", "coupons")]:
        ok(store_coupon, c, "coupon")
    assert min(checked.values()) > 10 and len(checked) == 7


# ---- chunked writing (how `large` keeps memory bounded) -----------------------------------------------------
def test_chunked_generation_keeps_ids_unique_and_references_intact(monkeypatch, tmp_path):
    import dataclasses

    from referral_pipeline.sandbox.generator import settings, world

    chunked = dataclasses.replace(settings.SCALES["small"], chunk_people=700)  # three chunks
    monkeypatch.setitem(world.SCALES, "small", chunked)
    generate_world("small", 5, tmp_path)
    w = World(tmp_path)
    test_every_file_reads_with_its_key_and_stamps_parse(w)
    test_every_order_references_a_customer_except_planted_unidentifiable(w)
    test_friendbuy_purchase_order_ids_resolve_to_orders(w)
    test_every_planted_rule_is_in_the_manifest_and_visible_in_the_files(w)
    test_malformed_records_cover_every_reason_per_source_and_are_bad_in_the_files(w)
    sf_numbers = [o["OrderNumber"] for o in w[("salesforce", "Order")]]
    assert len(set(sf_numbers)) == len(sf_numbers) and len(w[("salesforce", "Account")]) == len(w[("salesforce", "Contact")]) + 1


# ---- the files load into the simulators --------------------------------------------------------------------
def test_the_simulators_load_the_generated_world(tiny_root):
    from referral_pipeline.sandbox.registry import SIMULATOR_CLASSES, simulator_class

    manifest = json.loads((tiny_root / "manifest.json").read_text())
    for name in SIMULATOR_CLASSES:
        sim = simulator_class(name)(data_root=tiny_root)
        sim.load_from_source()
        for coll, records in sim.collections.items():
            rel = f"{name}/{coll}.jsonl"
            if rel in manifest["files"]:
                assert len(records) == manifest["files"][rel]["records"], rel


def test_simulators_serve_the_generated_records_over_http(tiny_root):
    import requests

    from referral_pipeline.sandbox.bigcommerce import BigCommerceSimulator
    from referral_pipeline.sandbox.friendbuy import FriendbuySimulator
    from referral_pipeline.sandbox.testing import serve_in_thread

    orders = load(tiny_root, "bigcommerce", "orders")
    order = next(o for o in orders if o["coupons"])
    with serve_in_thread(BigCommerceSimulator(data_root=tiny_root)) as sim:
        base = f"{sim.base_url}/stores/{sim.credentials['store_hash']}"
        headers = {"X-Auth-Token": sim.credentials["access_token"], "Accept": "application/json"}
        served = requests.get(f"{base}/v2/orders/{order['id']}", headers=headers, timeout=10).json()
        assert served["total_inc_tax"] == order["total_inc_tax"] and served["products"]["resource"].endswith("/products")
        products = requests.get(f"{base}/v2/orders/{order['id']}/products", headers=headers, timeout=10).json()
        assert [p["sku"] for p in products] == [p["sku"] for p in order["products"]]
        coupons = requests.get(f"{base}/v2/orders/{order['id']}/coupons", headers=headers, timeout=10).json()
        assert [c["code"] for c in coupons] == [c["code"] for c in order["coupons"]]
    purchases = load(tiny_root, "friendbuy", "purchases")
    with serve_in_thread(FriendbuySimulator(data_root=tiny_root)) as sim:
        token = requests.post(f"{sim.base_url}/v1/authorization", timeout=10,
                              json={"key": sim.credentials["key"], "secret": sim.credentials["secret"]}).json()["token"]
        page = requests.get(f"{sim.base_url}/v1/analytics/purchases", timeout=10,
                            headers={"Authorization": f"Bearer {token}"},
                            params={"fromDate": "2026-01-01T00:00:00Z", "toDate": "2027-01-01T00:00:00Z"}).json()
        assert page["totalResults"] == len(purchases)
        assert sorted(r["orderId"] for r in page["results"]) == sorted(p["orderId"] for p in purchases)


# ---- cache ----------------------------------------------------------------------------------------------------
def test_ensure_generated_generates_once_atomically_and_is_thread_safe(tmp_path, tiny_root):
    results, errors = [], []

    def call():
        try:
            results.append(ensure_generated("tiny", 3, tmp_path))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    target = results[0]
    assert target == tmp_path / "tiny-seed3" and (target / MARKER).is_file()
    stamp = (target / "manifest.json").stat().st_mtime_ns
    assert ensure_generated("tiny", 3, tmp_path) == target
    assert (target / "manifest.json").stat().st_mtime_ns == stamp  # cached, not regenerated
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["tiny-seed3"]  # no temp dirs left
    files = file_hashes(target)
    files.pop(MARKER)
    assert files == file_hashes(tiny_root)
    partial = tmp_path / "tiny-seed5"
    (partial / "salesforce").mkdir(parents=True)  # an interrupted copy without the marker
    assert ensure_generated("tiny", 5, tmp_path) == partial and (partial / MARKER).is_file()
    with pytest.raises(ValueError):
        ensure_generated("huge", 1, tmp_path)

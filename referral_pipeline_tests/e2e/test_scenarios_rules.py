"""End-to-end scenarios for the attribution, eligibility and fraud rules (product §5–7) at their
edges, through the five simulators and the ``nightly`` job, asserting the exact rows of
``analytics.referral_attribution``, ``analytics.rewards``, ``analytics.reward_ledger`` and
``audit.fraud_flags``.

One world (market ``us``: min order value 50, cap 10 rewards per advocate and month, velocity 5 per
advocate in 24 h and 3 per IP in an hour), every scenario on its own friends, run twice:

1. ``AS_OF_1`` = 2026-03-20: the world as written;
2. between runs (stamped 2026-03-25): a 10.01 partial refund on Mia's 60.00 order, and Salesforce
   reviewers' decisions on two held rewards (approve Vic's sixth friend, reject Iris's hot-IP order);
   ``AS_OF_2`` = 2026-04-20 (past the 30-day return window of every March order).

| advocate | friends | rule at its edge |
|---|---|---|
| Ada | Fay (order_key), Finn (order number), Amy/Abe (ambiguous number) | Friendbuy purchases export |
| Ada | Sid (10 days after sign-up), Lou (40 days after) | signup window |
| Ada | Eve (EUR order in a USD market), Cole (USD) | CURRENCY_MISMATCH |
| Ada | Max (net 50.00), Lee (49.99), Tia (49.99 after discount, tax and shipping excluded), Mia (refund) | BELOW_MIN_ORDER_VALUE |
| Carl | 11 friends on 1–11 March, one in February | ADVOCATE_CAP_REACHED at cap+1 |
| Vic / Vera | 6 orders in 6 hours / 5 in 4 hours plus one exactly 24 h after the first | VELOCITY_ADVOCATE |
| Iris | IP hot: sign-up + 3 orders in 30 min / IP warm: sign-up + 3 orders, the last exactly 1 h later | VELOCITY_IP |
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from .harness import (PROGRAMS_YAML, Pipeline, World, ct_customer, ct_order, ct_uid, customer_key_of, fb_click,
                      fb_share, fb_sign_up, flag_id_of, iso, reward_key_of, sf_id, sf_order, sf_order_item, sf_person,
                      sf_review)

UTC = timezone.utc
JAN = datetime(2026, 1, 1, tzinfo=UTC)
AS_OF_1 = datetime(2026, 3, 20, tzinfo=UTC)
AS_OF_2 = datetime(2026, 4, 20, tzinfo=UTC)
CHANGED_AT = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)
IP_HOT, IP_WARM = "203.0.113.10", "203.0.113.20"


def at(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# ---- people --------------------------------------------------------------------------------------
ADVOCATES = {"ada": 1, "carl": 2, "vic": 3, "vera": 4, "iris": 5}     # Salesforce contact numbers
CODES = {name: f"{name}-code" for name in ADVOCATES}
SF_FRIENDS = {
    # Ada: attribution and eligibility edges
    "fay": 10, "amy": 12, "sid": 15, "lou": 16, "max": 19, "lee": 20, "tia": 21, "mia": 23,
    # Carl: the monthly cap
    **{f"carl{k}": 30 + k for k in range(1, 12)}, "carl_feb": 42,
    # Vic and Vera: advocate velocity
    **{f"vic{k}": 50 + k for k in range(1, 7)}, **{f"vera{k}": 60 + k for k in range(1, 7)},
    # Iris: IP velocity (70 and 74 only sign up)
    **{f"iris{k}": 69 + k for k in range(1, 9)},
}
CT_FRIENDS = {"finn": 11, "abe": 13, "eve": 17, "cole": 18}          # commercetools customer numbers


def email(name: str) -> str:
    return f"{name}@example.com"


KEY = {name: customer_key_of(email(name)) for name in [*ADVOCATES, *SF_FRIENDS, *CT_FRIENDS]}
RWD = {name: reward_key_of("camp-us", key) for name, key in KEY.items()}


def party(name: str) -> dict:
    cid = sf_id("003", ADVOCATES.get(name) or SF_FRIENDS[name]) if name not in CT_FRIENDS else ct_uid("c", CT_FRIENDS[name])
    return {"id": cid, "email": email(name), "name": name.title()}


def sf_order_key(name: str) -> str:
    return f"sf:{sf_id('801', SF_FRIENDS[name])}"


def ct_order_key(name: str) -> str:
    return f"ct:{ct_uid('a', CT_FRIENDS[name])}"


# ---- the orders ----------------------------------------------------------------------------------
# name -> (placed_at, advocate whose code the order carries or None, extra sf_order fields, overrides)
SF_ORDERS: dict[str, tuple] = {
    "fay": (at(3, 2), None, {}, {}),                                     # named by a purchase row (order_key)
    "amy": (at(3, 3), None, {}, {"OrderNumber": "AMB-7"}),               # shares a number with Abe's ct order
    "sid": (at(3, 10), None, {}, {}),                                    # 9 days after the sign-up
    "lou": (at(3, 1), None, {}, {}),                                     # 40 days after the sign-up
    "max": (at(3, 12), "ada", {"amount": 50.0}, {}),
    "lee": (at(3, 13), "ada", {"amount": 49.99}, {}),
    "tia": (at(3, 14), "ada", {"amount": 60.0}, {"Discount_Amount__c": 10.01, "Tax_Amount__c": 12.0,
                                                 "Shipping_Amount__c": 8.0}),
    "mia": (at(3, 15), "ada", {"amount": 60.0}, {}),
    **{f"carl{k}": (at(3, k), "carl", {}, {}) for k in range(1, 12)},
    "carl_feb": (at(2, 20), "carl", {}, {}),
    **{f"vic{k}": (at(3, 3, 10 + k - 1), "vic", {}, {}) for k in range(1, 7)},
    **{f"vera{k}": (at(3, 4, 10 + k - 1), "vera", {}, {}) for k in range(1, 6)},
    "vera6": (at(3, 5, 10), "vera", {}, {}),                              # exactly 24 h after vera1
    **{f"iris{k}": (at(3, 6, 10, 10 * (k - 1)), "iris", {"ip": IP_HOT}, {}) for k in (2, 3, 4)},
    "iris6": (at(3, 7, 10, 20), "iris", {"ip": IP_WARM}, {}),
    "iris7": (at(3, 7, 10, 40), "iris", {"ip": IP_WARM}, {}),
    "iris8": (at(3, 7, 11, 0), "iris", {"ip": IP_WARM}, {}),              # exactly 1 h after iris5's sign-up
}
SIGN_UPS = {"sid": ("ada", at(3, 1, 10), "98.2.2.15"), "lou": ("ada", at(1, 20, 10), "98.2.2.16"),
            "iris1": ("iris", at(3, 6, 10), IP_HOT), "iris5": ("iris", at(3, 7, 10), IP_WARM)}


def ct_order_in(i: int, customer: str, placed: datetime, currency: str, **kw) -> dict:
    """``harness.ct_order`` with every money field in ``currency``."""
    def convert(node):
        if isinstance(node, dict):
            return {k: (currency if k == "currencyCode" else convert(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [convert(v) for v in node]
        return node
    return convert(ct_order(i, CT_FRIENDS[customer], email(customer), placed, **kw))


def fb_purchase(advocate: dict, friend: dict, order_id: str, at_: datetime, amount: float = 100.0) -> dict:
    """A ``/v1/analytics/purchases`` row (reference §7.2 fields plus ``orderId``)."""
    return {"customerId": friend["id"], "email": friend["email"], "name": friend["name"], "campaignId": "camp-us",
            "campaignName": "Acme US Refer-a-Friend", "createdOn": iso(at_), "ipAddress": "98.3.3.3",
            "advocateName": advocate["name"], "advocateEmail": advocate["email"],
            "advocateCustomerId": advocate["id"], "newCustomer": True, "referralCode": CODES["ada"],
            "amount": amount, "couponCode": None, "products": [], "orderId": order_id}


def build_world() -> World:
    w = World()
    for name, n in {**ADVOCATES, **SF_FRIENDS}.items():
        for collection, rec in sf_person(n, email(name), JAN + timedelta(hours=n), name.title(), "Test"):
            w.add("salesforce", collection, rec)
    for name, (placed, advocate, kw, overrides) in SF_ORDERS.items():
        n = SF_FRIENDS[name]
        amount = kw.get("amount", 100.0)
        order = sf_order(n, n, placed, amount, referral_code=CODES[advocate] if advocate else None, ip=kw.get("ip"))
        w.add("salesforce", "Order", {**order, **overrides})
        w.add("salesforce", "OrderItem", sf_order_item(n, n, placed, amount))
    for name, i in CT_FRIENDS.items():
        w.add("commercetools", "customers", ct_customer(i, email(name), JAN + timedelta(hours=i), name.title(), "Test"))
    w.add("commercetools", "orders",
          ct_order_in(CT_FRIENDS["finn"], "finn", at(3, 5), "USD"),
          {**ct_order_in(CT_FRIENDS["abe"], "abe", at(3, 6), "USD"), "orderNumber": "AMB-7"},
          ct_order_in(CT_FRIENDS["eve"], "eve", at(3, 8), "EUR", referral_code=CODES["ada"]),
          ct_order_in(CT_FRIENDS["cole"], "cole", at(3, 9), "USD", referral_code=CODES["ada"]))
    # Friendbuy: every advocate's share and a click on their code before their friends' orders
    for name, n in ADVOCATES.items():
        adv = party(name)
        w.add("friendbuy", "shares", fb_share(adv, CODES[name], at(1, 10), ip=f"73.9.9.{n}"))
        w.add("friendbuy", "clicks", fb_click(adv, CODES[name], at(2, 15), ip=f"98.1.1.{n}"))
    for friend, (advocate, when, ip) in SIGN_UPS.items():
        w.add("friendbuy", "account-sign-ups", fb_sign_up(party(advocate), party(friend), CODES[advocate], when, ip))
    ada = party("ada")
    w.add("friendbuy", "purchases",
          fb_purchase(ada, party("fay"), sf_order_key("fay"), at(3, 2, 12, 5)),
          fb_purchase(ada, party("finn"), str(100000000 + CT_FRIENDS["finn"]), at(3, 5, 12, 5)),  # shopper-visible number
          fb_purchase(ada, party("amy"), "AMB-7", at(3, 3, 12, 5)))
    return w


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e-rules")
    with pytest.MonkeyPatch.context() as mp, Pipeline(tmp, mp, build_world(), PROGRAMS_YAML) as pipe:
        pipe.run(AS_OF_1)
        first = {"attribution": attribution(pipe), "rewards": rewards(pipe), "flags": flags(pipe)}
        pipe.post("salesforce", "Order", [{"Id": sf_id("801", SF_FRIENDS["mia"]), "Refunded_Amount__c": 10.01}],
                  at=CHANGED_AT)
        pipe.post("salesforce", "Referral_Reward__c", [sf_review(1, RWD["vic6"], "approve"),
                                                       sf_review(2, RWD["iris4"], "reject")], at=CHANGED_AT)
        pipe.run(AS_OF_2)
        yield {"pipe": pipe, "first": first}


def attribution(pipe) -> dict[str, tuple]:
    rows = pipe.query("SELECT order_key, friend_customer_key, advocate_customer_key, attribution_method, "
                      "signed_up_at, currency, net_amount, reward_key, no_reward_reason FROM analytics.referral_attribution")
    return {r[0]: r[1:] for r in rows}


def rewards(pipe) -> dict[str, tuple]:
    rows = pipe.query("SELECT reward_key, status, reason, order_key, advocate_customer_key, fraud_rules "
                      "FROM analytics.rewards")
    return {r[0]: r[1:] for r in rows}


def flags(pipe) -> dict[tuple[str, str], dict]:
    rows = pipe.query("SELECT flag_id, rule, severity, subject_type, subject_key, advocate_customer_key, "
                      "friend_customer_key, evidence FROM audit.fraud_flags")
    out = {}
    for flag_id, rule, severity, subject_type, subject_key, adv, friend, evidence in rows:
        assert flag_id == flag_id_of(rule, subject_type, subject_key)
        out[(rule, subject_key)] = {"severity": severity, "subject_type": subject_type, "advocate": adv,
                                    "friend": friend, "evidence": json.loads(evidence)}
    return out


def order_key(name: str) -> str:
    return ct_order_key(name) if name in CT_FRIENDS else sf_order_key(name)


def attributed(name: str, advocate: str, method: str, amount: str = "100.0000", currency: str = "USD",
               signed_up_at: datetime | None = None) -> tuple:
    return (KEY[name], KEY[advocate], method, signed_up_at, currency, Decimal(amount), RWD[name], None)


# ---- §5 attribution ------------------------------------------------------------------------------
def test_friendbuy_purchase_row_attributes_by_order_key_and_by_shopper_visible_number(world):
    rows = world["first"]["attribution"]
    assert rows[order_key("fay")] == attributed("fay", "ada", "friendbuy")
    assert rows[order_key("finn")] == attributed("finn", "ada", "friendbuy")


def test_friendbuy_purchase_row_with_an_ambiguous_order_number_attributes_nothing(world):
    rows = world["first"]["attribution"]
    assert order_key("amy") not in rows and order_key("abe") not in rows


def test_signup_attributes_an_order_inside_the_window_only(world):
    rows = world["first"]["attribution"]
    assert rows[order_key("sid")] == attributed("sid", "ada", "signup", signed_up_at=SIGN_UPS["sid"][1])
    assert order_key("lou") not in rows            # 40 days after the sign-up (window 30)
    assert world["pipe"].query("SELECT count(*) FROM analytics.orders WHERE order_key = ?", [order_key("lou")]) == [(1,)]


def test_attribution_rows_are_exactly_the_expected_orders(world):
    rows = world["first"]["attribution"]
    expected = {"fay", "finn", "sid", "eve", "cole", "max", "lee", "tia", "mia", "carl_feb",
                *(f"carl{k}" for k in range(1, 12)), *(f"vic{k}" for k in range(1, 7)),
                *(f"vera{k}" for k in range(1, 7)), "iris2", "iris3", "iris4", "iris6", "iris7", "iris8"}
    assert set(rows) == {order_key(n) for n in expected}
    assert rows[order_key("eve")] == attributed("eve", "ada", "referral_code", currency="EUR")
    assert rows[order_key("tia")] == attributed("tia", "ada", "referral_code", amount="49.9900")
    assert rows[order_key("carl11")] == attributed("carl11", "carl", "referral_code")


# ---- §7 eligibility ------------------------------------------------------------------------------
def status_of(world, name: str, run: int = 1) -> tuple:
    table = world["first"]["rewards"] if run == 1 else rewards(world["pipe"])
    status, reason, order, advocate, rules = table[RWD[name]]
    assert order == order_key(name)
    return status, reason, rules


def test_currency_mismatch_is_not_eligible_and_the_program_currency_is(world):
    assert status_of(world, "eve") == ("not_eligible", "CURRENCY_MISMATCH", [])
    assert status_of(world, "cole") == ("pending", None, [])


def test_below_min_order_value_at_exactly_the_minimum_and_just_below(world):
    assert status_of(world, "max") == ("pending", None, [])                      # net 50.00 = minimum
    assert status_of(world, "lee") == ("not_eligible", "BELOW_MIN_ORDER_VALUE", [])   # 49.99
    # 60.00 - 10.01 discount = 49.99; tax and shipping do not count
    assert status_of(world, "tia") == ("not_eligible", "BELOW_MIN_ORDER_VALUE", [])


def test_below_min_order_value_after_a_partial_refund_cancels(world):
    assert status_of(world, "mia") == ("pending", None, [])
    assert status_of(world, "mia", run=2) == ("canceled", "BELOW_MIN_ORDER_VALUE", [])
    assert status_of(world, "max", run=2) == ("approved", "RETURN_WINDOW_PASSED", [])


def test_advocate_monthly_cap_allows_the_cap_and_refuses_cap_plus_one(world):
    for k in range(1, 11):
        assert status_of(world, f"carl{k}") == ("pending", None, []), k
    assert status_of(world, "carl11") == ("not_eligible", "ADVOCATE_CAP_REACHED", [])
    assert status_of(world, "carl_feb") == ("pending", None, [])                 # another calendar month


# ---- §6 fraud ------------------------------------------------------------------------------------
def test_velocity_advocate_fires_one_over_the_threshold_not_at_it(world):
    got = world["first"]["flags"]
    vic = {k: v for k, v in got.items() if k[0] == "VELOCITY_ADVOCATE"}
    assert list(vic) == [("VELOCITY_ADVOCATE", order_key("vic6"))]
    flag = vic[("VELOCITY_ADVOCATE", order_key("vic6"))]
    assert (flag["severity"], flag["subject_type"], flag["advocate"], flag["friend"]) == \
        ("hold", "order", KEY["vic"], KEY["vic6"])
    assert flag["evidence"]["orders_in_24h"] == 6 and flag["evidence"]["threshold"] == 5
    assert sorted(flag["evidence"]["order_keys"]) == sorted(order_key(f"vic{k}") for k in range(1, 7))
    for k in range(1, 6):
        assert status_of(world, f"vic{k}") == ("pending", None, []), k
    assert status_of(world, "vic6") == ("on_hold", "VELOCITY_ADVOCATE", ["VELOCITY_ADVOCATE"])
    # Vera: 5 orders in 4 h, then one exactly 24 h after her first: never more than 5 in (t - 24 h, t]
    for k in range(1, 7):
        assert status_of(world, f"vera{k}") == ("pending", None, []), k


def test_velocity_ip_fires_one_over_the_threshold_not_at_it(world):
    got = world["first"]["flags"]
    ip = {k: v for k, v in got.items() if k[0] == "VELOCITY_IP"}
    assert list(ip) == [("VELOCITY_IP", order_key("iris4"))]
    flag = ip[("VELOCITY_IP", order_key("iris4"))]
    assert (flag["severity"], flag["subject_type"], flag["advocate"], flag["friend"]) == \
        ("hold", "order", KEY["iris"], KEY["iris4"])
    evidence = flag["evidence"]
    assert (evidence["ip"], evidence["events_in_hour"], evidence["threshold"]) == (IP_HOT, 4, 3)
    assert len(evidence["events"]) == 4 and any(e.startswith("signup:") for e in evidence["events"])
    assert status_of(world, "iris3") == ("pending", None, [])
    assert status_of(world, "iris4") == ("on_hold", "VELOCITY_IP", ["VELOCITY_IP"])
    # warm IP: sign-up + 2 orders within the hour, then the third order exactly 1 h after the sign-up
    for name in ("iris6", "iris7", "iris8"):
        assert status_of(world, name) == ("pending", None, []), name


def test_no_other_fraud_flags(world):
    assert sorted(world["first"]["flags"]) == sorted([("VELOCITY_ADVOCATE", order_key("vic6")),
                                                      ("VELOCITY_IP", order_key("iris4"))])
    assert flags(world["pipe"]).keys() == world["first"]["flags"].keys()     # run 2 adds none


# ---- review decisions read back from Salesforce --------------------------------------------------
def test_review_approve_releases_the_hold_and_reject_cancels(world):
    assert status_of(world, "vic6", run=2) == ("approved", "REVIEW_APPROVED", ["VELOCITY_ADVOCATE"])
    assert status_of(world, "iris4", run=2) == ("canceled", "REVIEW_REJECTED", ["VELOCITY_IP"])
    pipe = world["pipe"]
    run_1, run_2 = pipe.run_ids
    ledger = pipe.query("SELECT reward_key, seq, from_status, to_status, reason, occurred_at, run_id "
                        "FROM analytics.reward_ledger WHERE reward_key IN (?, ?, ?) ORDER BY reward_key, seq",
                        [RWD["vic6"], RWD["iris4"], RWD["mia"]])
    assert ledger == sorted([
        (RWD["vic6"], 1, None, "on_hold", "VELOCITY_ADVOCATE", AS_OF_1, run_1),
        (RWD["vic6"], 2, "on_hold", "approved", "REVIEW_APPROVED", AS_OF_2, run_2),
        (RWD["iris4"], 1, None, "on_hold", "VELOCITY_IP", AS_OF_1, run_1),
        (RWD["iris4"], 2, "on_hold", "canceled", "REVIEW_REJECTED", AS_OF_2, run_2),
        (RWD["mia"], 1, None, "pending", None, AS_OF_1, run_1),
        (RWD["mia"], 2, "pending", "canceled", "BELOW_MIN_ORDER_VALUE", AS_OF_2, run_2),
    ])


def test_ledger_has_one_row_per_status_change(world):
    pipe = world["pipe"]
    first = world["first"]["rewards"]
    now = rewards(pipe)
    counts = dict(pipe.query("SELECT reward_key, count(*) FROM analytics.reward_ledger GROUP BY 1"))
    for key, row in now.items():
        changed = first[key][0] != row[0]
        assert counts[key] == (2 if changed else 1), key
    assert set(now) == set(first)

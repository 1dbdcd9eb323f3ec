"""End-to-end scenarios: hand-written fixture files in each API's own shapes -> the five simulators
over real HTTP -> extraction -> staging -> identity -> attribution, fraud, rewards and ledger.

One small world (market ``us``, campaign ``camp-us``, advocate Ada) holds independent scenarios,
each on its own friend, and is run three times (module fixture, ~15 s):

1. ``AS_OF_1`` = 2026-03-20: the world as written;
2. between runs: Rita's and Ivy's orders are refunded in Salesforce, and a reviewer approves Hank's
   held reward (``Referral_Reward__c``), all stamped 2026-03-25; ``AS_OF_2`` = 2026-04-15 (past the
   30-day return window of every March order);
3. ``AS_OF_2`` again with no change.

| friend | scenario | signal | run 1 | run 2 |
|---|---|---|---|---|
| Tom | same person in Salesforce, commercetools and BigCommerce, email variants | coupon (ct discount code) | pending | approved (return window) |
| Rita | referral code on a Salesforce order | referral_code | pending | canceled (refund) |
| Alias | ``ada.lovelace+friends@gmail.com`` buying with Ada's code | referral_code | canceled SELF_REFERRAL | unchanged |
| Ivy | order in January, Friendbuy distributed the reward | referral_code | issued | reversed (refund) |
| Hank | order from Ada's share IP | referral_code | on_hold SAME_IP_AS_ADVOCATE | approved REVIEW_APPROVED |
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from .harness import (PROGRAMS_YAML, Pipeline, World, bc_customer, ct_cart_discount, ct_customer, ct_discount_code,
                      ct_order, ct_uid, customer_key_of, fb_advocate_reward, fb_click, fb_friend_incentive, fb_share,
                      fb_widget_view, flag_id_of, reward_key_of, sf_id, sf_order, sf_order_item, sf_person, sf_review)

UTC = timezone.utc
JAN = datetime(2026, 1, 1, tzinfo=UTC)
AS_OF_1 = datetime(2026, 3, 20, tzinfo=UTC)
AS_OF_2 = datetime(2026, 4, 15, tzinfo=UTC)
CHANGED_AT = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)
ADA_IP = "73.9.9.9"
CODE = "ada-ref1"

ADA = {"id": sf_id("003", 1), "email": "ada.lovelace@gmail.com", "name": "Ada Lovelace"}
TOM = {"id": ct_uid("c", 2), "email": "tom.three@example.com", "name": "Tom Three"}
KEY = {name: customer_key_of(email) for name, email in {
    "ada": "ada.lovelace@gmail.com", "tom": "tom.three@example.com", "rita": "rita@example.com",
    "alias": "ada.lovelace+friends@gmail.com", "ivy": "ivy@example.com", "hank": "hank@example.com"}.items()}
RWD = {name: reward_key_of("camp-us", key) for name, key in KEY.items()}

PLACED = {"tom": datetime(2026, 3, 5, 10, tzinfo=UTC), "rita": datetime(2026, 3, 6, 10, tzinfo=UTC),
          "alias": datetime(2026, 3, 7, 10, tzinfo=UTC), "ivy": datetime(2026, 2, 1, 10, tzinfo=UTC),
          "hank": datetime(2026, 3, 8, 10, tzinfo=UTC)}
ORDER = {"tom": f"ct:{ct_uid('a', 2)}", "rita": f"sf:{sf_id('801', 3)}", "alias": f"sf:{sf_id('801', 4)}",
         "ivy": f"sf:{sf_id('801', 5)}", "hank": f"sf:{sf_id('801', 6)}"}


def build_world() -> World:
    w = World()
    # Salesforce: Ada (advocate, 1), Tom (2), Rita (3), the alias (4), Ivy (5), Hank (6)
    people = [(1, ADA["email"], "Ada", "Lovelace"), (2, "Tom.Three@Example.com", "Tom", "Three"),
              (3, "rita@example.com", "Rita", "Code"), (4, "ada.lovelace+friends@gmail.com", "Ada", "Lovelace"),
              (5, "ivy@example.com", "Ivy", "Issued"), (6, "hank@example.com", "Hank", "Held")]
    for n, email, first, last in people:
        created = JAN if n == 1 else JAN + timedelta(days=20 + n)
        for collection, rec in sf_person(n, email, created, first, last):
            w.add("salesforce", collection, rec)
    orders = [(3, 3, "rita", {"referral_code": "ADA-REF1"}),
              (4, 4, "alias", {"referral_code": CODE}),
              (5, 5, "ivy", {"referral_code": CODE}),
              (6, 6, "hank", {"referral_code": CODE, "ip": ADA_IP})]
    for n, contact, who, extra in orders:
        w.add("salesforce", "Order", sf_order(n, contact, PLACED[who], 100.0, **extra))
        w.add("salesforce", "OrderItem", sf_order_item(n, n, PLACED[who], 100.0))
    # commercetools and BigCommerce: Tom again, with other spellings of his email; his order uses his incentive
    w.add("commercetools", "customers", ct_customer(2, " tom.three@example.com ", JAN + timedelta(days=25), "Tom", "Three"))
    w.add("commercetools", "cart-discounts", ct_cart_discount(1))
    w.add("commercetools", "discount-codes", ct_discount_code(1, "FRIEND-TOM01", 1))
    w.add("commercetools", "orders", ct_order(2, 2, "tom.three@example.com", PLACED["tom"], 9000,
                                              discount_code_ids=[ct_uid("d", 1)], discount_cents=1000))
    w.add("bigcommerce", "customers", bc_customer(7, "TOM.THREE@EXAMPLE.COM", JAN + timedelta(days=26), "Tom", "Three"))
    # Friendbuy: Ada's share, clicks on her code, Tom's incentive, the reward Friendbuy distributed for Ivy
    w.add("friendbuy", "widget-views", fb_widget_view(ADA, datetime(2026, 1, 15, 9, tzinfo=UTC), ADA_IP))
    w.add("friendbuy", "shares", fb_share(ADA, CODE, datetime(2026, 1, 15, 9, 5, tzinfo=UTC), ADA_IP))
    w.add("friendbuy", "clicks",
          fb_click(ADA, CODE, PLACED["ivy"] - timedelta(days=1), "98.1.1.5"),
          fb_click(ADA, CODE, PLACED["rita"] - timedelta(days=1), "98.1.1.3"),
          fb_click(ADA, CODE, PLACED["alias"] - timedelta(days=1), "98.1.1.4"),
          fb_click(ADA, CODE, PLACED["hank"] - timedelta(days=1), ADA_IP))
    w.add("friendbuy", "distributed-friend-incentives",
          fb_friend_incentive(ADA, TOM, CODE, "friend-tom01", datetime(2026, 3, 1, tzinfo=UTC)))
    w.add("friendbuy", "distributed-advocate-rewards",
          fb_advocate_reward(ADA, {"id": sf_id("003", 5), "email": "ivy@example.com", "name": "Ivy Issued"}, CODE,
                             "thanks-ivy01", datetime(2026, 3, 5, tzinfo=UTC)))
    return w


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The three runs; yields the pipeline and the snapshots after each run."""
    tmp = tmp_path_factory.mktemp("e2e-scenarios")
    with pytest.MonkeyPatch.context() as mp, Pipeline(tmp, mp, build_world(), PROGRAMS_YAML) as pipe:
        pipe.run(AS_OF_1)
        after_1 = pipe.snapshot()
        rewards_1 = rewards(pipe)
        pipe.post("salesforce", "Order", [
            {"Id": sf_id("801", 3), "Status": "Refunded", "Refunded_Amount__c": 100.0},
            {"Id": sf_id("801", 5), "Status": "Refunded", "Refunded_Amount__c": 100.0}], at=CHANGED_AT)
        pipe.post("salesforce", "Referral_Reward__c", [sf_review(1, RWD["hank"], "approve")], at=CHANGED_AT)
        pipe.run(AS_OF_2)
        after_2 = pipe.snapshot()
        pipe.run(AS_OF_2)
        after_3 = pipe.snapshot()
        yield {"pipe": pipe, "rewards_1": rewards_1, "after": [after_1, after_2, after_3]}


def rewards(pipe) -> dict[str, tuple]:
    rows = pipe.query("SELECT reward_key, status, reason, order_key, friend_customer_key, advocate_customer_key, "
                      "amount, currency, fraud_rules FROM analytics.rewards")
    return {r[0]: r[1:] for r in rows}


def test_same_person_in_three_sources_is_one_customer_key(world):
    pipe = world["pipe"]
    rows = pipe.query("SELECT identity_key, customer_key, email_normalized_at_assignment FROM identity.customer_map "
                      "WHERE identity_type = 'customer_record' ORDER BY identity_key")
    assert rows == sorted([
        ("sf:" + sf_id("003", 1), KEY["ada"], "ada.lovelace@gmail.com"),
        ("sf:" + sf_id("003", 2), KEY["tom"], "tom.three@example.com"),           # Tom.Three@Example.com
        ("ct:" + ct_uid("c", 2), KEY["tom"], "tom.three@example.com"),            # " tom.three@example.com "
        ("bc:7", KEY["tom"], "tom.three@example.com"),                             # TOM.THREE@EXAMPLE.COM
        ("sf:" + sf_id("003", 3), KEY["rita"], "rita@example.com"),
        ("sf:" + sf_id("003", 4), KEY["alias"], "ada.lovelace+friends@gmail.com"),  # an alias stays apart
        ("sf:" + sf_id("003", 5), KEY["ivy"], "ivy@example.com"),
        ("sf:" + sf_id("003", 6), KEY["hank"], "hank@example.com"),
    ])
    assert pipe.query("SELECT count(*) FROM analytics.customers WHERE customer_key = ?", [KEY["tom"]]) == [(1,)]
    # no identity other than the customer records (every Friendbuy party resolved by email)
    assert pipe.query("SELECT count(*) FROM identity.customer_map WHERE identity_type <> 'customer_record'") == [(0,)]


def test_attribution_rows(world):
    rows = world["pipe"].query(
        "SELECT order_key, friend_customer_key, advocate_customer_key, attribution_method, referral_code, coupon_code, "
        "is_new_customer, reward_key, no_reward_reason FROM analytics.referral_attribution ORDER BY order_key")
    adv = KEY["ada"]
    assert rows == sorted([
        # coupon: Tom's commercetools order uses the incentive Friendbuy issued to him (lower case there)
        (ORDER["tom"], KEY["tom"], adv, "coupon", CODE, "FRIEND-TOM01", True, RWD["tom"], None),
        # referral code on the order, case-insensitive; the order's own spelling is kept
        (ORDER["rita"], KEY["rita"], adv, "referral_code", "ADA-REF1", None, True, RWD["rita"], None),
        (ORDER["alias"], KEY["alias"], adv, "referral_code", CODE, None, True, RWD["alias"], None),
        (ORDER["ivy"], KEY["ivy"], adv, "referral_code", CODE, None, True, RWD["ivy"], None),
        (ORDER["hank"], KEY["hank"], adv, "referral_code", CODE, None, True, RWD["hank"], None),
    ])


def test_fraud_flags(world):
    pipe = world["pipe"]
    rows = pipe.query("SELECT flag_id, rule, severity, subject_type, subject_key, advocate_customer_key, "
                      "friend_customer_key, evidence, detected_at, run_id, market_id, campaign_id "
                      "FROM audit.fraud_flags ORDER BY rule")
    run_1 = pipe.run_ids[0]
    alias_dup = {"email_canonical": "adalovelace@gmail.com", "friend_customer_key": KEY["alias"],
                 "friend_created_at": "2026-01-25 00:00:00+00", "earlier_customer_key": KEY["ada"],
                 "earlier_created_at": "2026-01-01 00:00:00+00", "earlier_customers": 1}
    self_ref = {"match": "email_canonical", "friend_customer_key": KEY["alias"], "advocate_customer_key": KEY["ada"],
                "friend_email_canonical": "adalovelace@gmail.com", "advocate_email_canonical": "adalovelace@gmail.com"}
    same_ip = {"ip": ADA_IP, "advocate_customer_key": KEY["ada"], "advocate_used_in": ["share", "widget_view"]}
    got = [(*r[:7], json.loads(r[7]), *r[8:]) for r in rows]
    assert len(got[1][7].pop("advocate_used_keys")) == 2       # the share and the widget view
    common = (KEY["ada"],)
    assert got == [
        (flag_id_of("DUPLICATE_IDENTITY", "order", ORDER["alias"]), "DUPLICATE_IDENTITY", "hold", "order",
         ORDER["alias"], *common, KEY["alias"], alias_dup, AS_OF_1, run_1, "us", "camp-us"),
        (flag_id_of("SAME_IP_AS_ADVOCATE", "order", ORDER["hank"]), "SAME_IP_AS_ADVOCATE", "hold", "order",
         ORDER["hank"], *common, KEY["hank"], same_ip, AS_OF_1, run_1, "us", "camp-us"),
        (flag_id_of("SELF_REFERRAL", "order", ORDER["alias"]), "SELF_REFERRAL", "reject", "order",
         ORDER["alias"], *common, KEY["alias"], self_ref, AS_OF_1, run_1, "us", "camp-us"),
    ]
    # negative: Tom, Rita and Ivy (other IPs, other emails, one order each) raise nothing
    assert world["after"][0]["flags"] == world["after"][2]["flags"]


REWARD = (KEY["ada"], Decimal("20.0000"), "USD")


def test_rewards_first_run(world):
    assert world["rewards_1"] == {
        RWD["tom"]: ("pending", None, ORDER["tom"], KEY["tom"], *REWARD, []),
        RWD["rita"]: ("pending", None, ORDER["rita"], KEY["rita"], *REWARD, []),
        RWD["alias"]: ("canceled", "SELF_REFERRAL", ORDER["alias"], KEY["alias"], *REWARD,
                       ["SELF_REFERRAL", "DUPLICATE_IDENTITY"]),
        RWD["ivy"]: ("issued", "FRIENDBUY_DISTRIBUTED", ORDER["ivy"], KEY["ivy"], *REWARD, []),
        RWD["hank"]: ("on_hold", "SAME_IP_AS_ADVOCATE", ORDER["hank"], KEY["hank"], *REWARD, ["SAME_IP_AS_ADVOCATE"]),
    }


def test_rewards_after_refunds_review_and_return_window(world):
    pipe = world["pipe"]
    rows = pipe.query("SELECT reward_key, status, reason, fraud_rules, net_amount, review_decision, issued_at, "
                      "status_changed_at FROM analytics.rewards ORDER BY reward_key")
    issued_at = datetime(2026, 3, 5, tzinfo=UTC)
    assert rows == sorted([
        (RWD["tom"], "approved", "RETURN_WINDOW_PASSED", [], Decimal("90.0000"), None, None, AS_OF_2),
        (RWD["rita"], "canceled", "ORDER_REFUNDED", [], Decimal("0.0000"), None, None, AS_OF_2),
        (RWD["alias"], "canceled", "SELF_REFERRAL", ["SELF_REFERRAL", "DUPLICATE_IDENTITY"], Decimal("100.0000"),
         None, None, AS_OF_1),
        (RWD["ivy"], "reversed", "ORDER_REFUNDED", [], Decimal("0.0000"), None, issued_at, AS_OF_2),
        (RWD["hank"], "approved", "REVIEW_APPROVED", ["SAME_IP_AS_ADVOCATE"], Decimal("100.0000"), "approve", None,
         AS_OF_2),
    ])


def test_reward_ledger(world):
    pipe = world["pipe"]
    run_1, run_2, _ = pipe.run_ids
    rows = pipe.query("SELECT reward_key, seq, from_status, to_status, reason, occurred_at, run_id "
                      "FROM analytics.reward_ledger ORDER BY reward_key, seq")
    assert rows == sorted([
        (RWD["tom"], 1, None, "pending", None, AS_OF_1, run_1),
        (RWD["tom"], 2, "pending", "approved", "RETURN_WINDOW_PASSED", AS_OF_2, run_2),
        (RWD["rita"], 1, None, "pending", None, AS_OF_1, run_1),
        (RWD["rita"], 2, "pending", "canceled", "ORDER_REFUNDED", AS_OF_2, run_2),
        (RWD["alias"], 1, None, "canceled", "SELF_REFERRAL", AS_OF_1, run_1),
        (RWD["ivy"], 1, None, "issued", "FRIENDBUY_DISTRIBUTED", AS_OF_1, run_1),
        (RWD["ivy"], 2, "issued", "reversed", "ORDER_REFUNDED", AS_OF_2, run_2),
        (RWD["hank"], 1, None, "on_hold", "SAME_IP_AS_ADVOCATE", AS_OF_1, run_1),
        (RWD["hank"], 2, "on_hold", "approved", "REVIEW_APPROVED", AS_OF_2, run_2),
    ])


def test_rerun_without_change_writes_nothing(world):
    after_1, after_2, after_3 = world["after"]
    assert after_3 == after_2            # ledger, flags, rewards, attribution (with load_seq), customer map
    assert after_2["customer_map"] == after_1["customer_map"]   # the later changes moved no customer_key

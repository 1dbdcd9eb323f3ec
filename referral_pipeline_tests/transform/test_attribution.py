"""analytics.referral_attribution (product §5): the four methods in precedence, their windows, the
purchases export matched by order_key or an unambiguous order number, markets never crossed,
is_new_customer, the as_of cut, and re-run idempotency — with and without incremental runs."""
from __future__ import annotations

import pytest

from referral_pipeline.transform.attribution import run_attribution, run_referral_events

from .referrals_support import World, at, new_db, programs, refresh_first_orders, rows

COLUMNS = ("order_key, friend_customer_key, advocate_customer_key, campaign_id, market_id, attribution_method, "
           "referral_code, clicked_at, signed_up_at, is_new_customer, coupon_code, channel, source_event_key")


def build_world(con) -> World:
    w = World(con)
    for name in ("alice", "bob", "carol", "cf", "pf", "nf", "amb1", "amb2", "rf", "rflate", "rfre", "so", "sg",
                 "sglate", "px", "py", "nocode", "promo", "late"):
        w.customer(name)
    w.customer("ukf", market="uk")
    # advocates' shares and clicks
    w.share("alice", "ALICE1", at(0), channel="email", key="sh-alice")
    w.share("bob", "BOB1", at(0), channel="facebook", key="sh-bob")
    w.share("carol", "CAROLX", at(0), channel="sms", key="sh-carol")
    w.click("alice", "ALICE1", at(1), key="cl-alice")
    w.click("alice", "ALICE1", at(59), key="cl-alice-late")
    w.click("bob", "BOB1", at(10), key="cl-bob-1")
    w.click("bob", "BOB1", at(25), key="cl-bob-2")
    # friend incentives, purchase rows, sign-ups
    w.incentive("alice", "cf", "friend-cf", at(1), key="in-cf")
    w.incentive("alice", "px", "FRIEND-PX", at(1), key="in-px")
    w.incentive("alice", "ukf", "FRIEND-UK", at(1), key="in-uk")          # a camp-us (market us) incentive
    w.event("purchase", at(3), advocate="alice", friend="pf", order_id="ct:pf1", key="pu-key")
    w.event("purchase", at(3), advocate="alice", friend="nf", order_id="10003", key="pu-number")
    w.event("purchase", at(3), advocate="alice", order_id="777", key="pu-ambiguous")
    w.event("purchase", at(5), advocate="alice", friend="py", order_id="sf:py1", key="pu-py")
    w.signup("alice", "sg", at(2), key="su-sg")
    w.signup("alice", "sglate", at(2), key="su-sglate")
    # orders
    w.order("sf:cf0", "cf", at(-5))                                        # cf is not a new customer
    w.order("ct:cf1", "cf", at(2), coupons=["friend-cf"])                  # 1. coupon (case-insensitive)
    w.order("ct:pf1", "pf", at(3))                                         # 2. purchase row names its order_key
    w.order("sf:nf1", "nf", at(3), order_number="10003")                   #    ... or its unambiguous number
    w.order("sf:amb1", "amb1", at(3), order_number="777")                  #    '777' names two orders: neither
    w.order("ct:amb2", "amb2", at(3), order_number="777")
    w.order("sf:rf1", "rf", at(20), referral_code="alice1")                # 3. code, 19 days after the click
    w.order("sf:rflate1", "rflate", at(32), referral_code="ALICE1")        #    31 days after the last click: no
    w.order("sf:rfre1", "rfre", at(40), referral_code="BOB1")              #    15 days after the most recent click
    w.order("sf:so1", "so", at(10), referral_code="CAROLX")                #    no click: 10 days after the share
    w.order("sf:sg0", "sg", at(-3), status="cancelled")                    #    (a cancelled order: still new)
    w.order("sf:sg1", "sg", at(12))                                        # 4. sign-up 10 days before
    w.order("sf:sglate1", "sglate", at(33))                                #    31 days after the sign-up: no
    w.order("ct:px1", "px", at(5), coupons=["FRIEND-PX"], referral_code="BOB1")   # coupon beats referral code
    w.order("sf:py1", "py", at(5), referral_code="BOB1")                   # friendbuy beats referral code
    w.order("sf:uk1", "ukf", at(5), market="uk", currency="GBP", coupons=["FRIEND-UK"])  # markets never cross
    w.order("sf:nocode1", "nocode", at(5), referral_code="NOSUCH")         # a code no share has
    w.order("sf:promo1", "promo", at(5), coupons=["SPRING20"])             # a coupon Friendbuy did not distribute
    w.order("sf:late1", "late", at(61), referral_code="ALICE1")            # placed after as_of (day 60)
    return w


EXPECTED = [
    ("ct:cf1", "cus_cf", "cus_alice", "camp-us", "us", "coupon", None, None, None, False, "FRIEND-CF", "unknown", "in-cf"),
    ("ct:pf1", "cus_pf", "cus_alice", "camp-us", "us", "friendbuy", None, None, None, True, None, "unknown", "pu-key"),
    ("ct:px1", "cus_px", "cus_alice", "camp-us", "us", "coupon", None, None, None, True, "FRIEND-PX", "unknown", "in-px"),
    ("sf:nf1", "cus_nf", "cus_alice", "camp-us", "us", "friendbuy", None, None, None, True, None, "unknown", "pu-number"),
    ("sf:py1", "cus_py", "cus_alice", "camp-us", "us", "friendbuy", None, None, None, True, None, "unknown", "pu-py"),
    ("sf:rf1", "cus_rf", "cus_alice", "camp-us", "us", "referral_code", "alice1", at(1), None, True, None, "email",
     "sh-alice"),
    ("sf:rfre1", "cus_rfre", "cus_bob", "camp-us", "us", "referral_code", "BOB1", at(25), None, True, None, "facebook",
     "sh-bob"),
    ("sf:sg1", "cus_sg", "cus_alice", "camp-us", "us", "signup", None, None, at(2), True, None, "unknown", "su-sg"),
    ("sf:so1", "cus_so", "cus_carol", "camp-us", "us", "referral_code", "CAROLX", None, None, True, None, "sms",
     "sh-carol"),
]


@pytest.mark.parametrize("incremental", [True, False], ids=["orders-with-load_seq", "orders-without-load_seq"])
def test_each_method_in_precedence_with_windows_and_markets(incremental):
    con = new_db(orders_load_seq=incremental)
    build_world(con)
    refresh_first_orders(con)
    run_referral_events(con, programs(), at(60))
    result = run_attribution(con, programs(), at(60), "r1")
    assert rows(con, f"SELECT {COLUMNS} FROM analytics.referral_attribution ORDER BY order_key") == EXPECTED
    assert result.by_method == {"coupon": 2, "friendbuy": 3, "referral_code": 3, "signup": 1}
    assert result.mode == "full"
    # the row carries the order's facts too
    assert rows(con, "SELECT placed_at, net_amount, currency, order_status, friend_email_canonical, "
                     "advocate_email_canonical, reward_key, attributed_at FROM analytics.referral_attribution "
                     "WHERE order_key = 'sf:rf1'") == [(at(20), 100, "USD", "completed", "rf@example.com",
                                                        "alice@example.com", None, at(60))]
    # nothing changed: a re-run writes nothing (and runs incrementally when it can)
    again = run_attribution(con, programs(), at(60), "r2")
    assert again.changes.changed == 0
    assert again.mode == ("incremental" if incremental else "full")
    # incremental: only the orders of the purchase id that named two orders (ops.purchase_multi_ids:
    # a change of either could make it name one): sf:amb1, ct:amb2
    assert again.evaluated_orders == (2 if incremental else result.evaluated_orders)
    assert rows(con, "SELECT order_id, market_id FROM ops.purchase_multi_ids") == [("777", "us")]


@pytest.mark.parametrize("customers_load_seq", [False, True], ids=["enrich-all", "enrich-changed-customers"])
def test_a_new_click_or_a_later_order_changes_only_what_it_touches(customers_load_seq):
    con = new_db(customers_load_seq=customers_load_seq)
    w = build_world(con)
    refresh_first_orders(con)
    run_referral_events(con, programs(), at(60))
    run_attribution(con, programs(), at(60), "r1")
    # a click at day 3 brings rflate's order (day 32) inside the window; the late order enters at day 62
    w.click("alice", "ALICE1", at(3), key="cl-alice-2")
    run_referral_events(con, programs(), at(62))
    result = run_attribution(con, programs(), at(62), "r2")
    assert result.mode == "incremental"
    assert (result.changes.inserted, result.changes.updated, result.changes.deleted) == (2, 1, 0)
    assert rows(con, "SELECT order_key, attribution_method, clicked_at FROM analytics.referral_attribution "
                     "WHERE referral_code ILIKE 'alice1' ORDER BY order_key") == [
        ("sf:late1", "referral_code", at(59)), ("sf:rf1", "referral_code", at(3)), ("sf:rflate1", "referral_code", at(3))]
    # the friend's earlier order is cancelled later: cf becomes a new customer
    w.set_order("sf:cf0", status="cancelled")
    refresh_first_orders(con)
    result = run_attribution(con, programs(), at(62), "r3")
    assert result.changes.updated == 1
    assert rows(con, "SELECT is_new_customer FROM analytics.referral_attribution WHERE order_key = 'ct:cf1'") == [(True,)]
    # an order that loses its signal loses its attribution
    w.set_order("sf:so1", referral_code=None)
    result = run_attribution(con, programs(), at(62), "r4")
    assert (result.changes.inserted, result.changes.updated, result.changes.deleted) == (0, 0, 1)
    assert rows(con, "SELECT count(*) FROM analytics.referral_attribution WHERE order_key = 'sf:so1'") == [(0,)]


def test_an_ambiguous_purchase_id_is_matched_again_when_one_of_its_orders_changes_number():
    """'777' names sf:amb1 and ct:amb2: neither is attributed. ct:amb2 gets another number (its old
    one is not kept anywhere): the next incremental run re-matches '777' (ops.purchase_multi_ids)
    and attributes sf:amb1."""
    con = new_db(customers_load_seq=True)
    w = build_world(con)
    refresh_first_orders(con)
    run_referral_events(con, programs(), at(60))
    run_attribution(con, programs(), at(60), "r1")
    assert rows(con, "SELECT count(*) FROM analytics.referral_attribution WHERE order_key IN ('sf:amb1', 'ct:amb2')") == [(0,)]
    w.set_order("ct:amb2", order_number="778")
    result = run_attribution(con, programs(), at(60), "r2")
    assert result.mode == "incremental"
    assert rows(con, "SELECT order_key, attribution_method, source_event_key FROM analytics.referral_attribution "
                     "WHERE order_key IN ('sf:amb1', 'ct:amb2')") == [("sf:amb1", "friendbuy", "pu-ambiguous")]
    assert rows(con, "SELECT count(*) FROM ops.purchase_multi_ids") == [(0,)]
    assert run_attribution(con, programs(), at(60), "r3", rebuild=True).changes.changed == 0

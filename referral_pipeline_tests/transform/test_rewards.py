"""analytics.rewards, analytics.reward_ledger and referral_attribution.reward_key (product §7):
every reason code, the status machine against as_of, refunds arriving in a later run, the monthly
cap, holds released or rejected by a Salesforce review, reject beating hold, re-run idempotency.
Programs: return window 30 days, monthly cap 2, minimum 50 USD, reward 20 USD."""
from __future__ import annotations

from decimal import Decimal

from .referrals_support import World, at, changed, new_db, programs, reward_key, rows, run_chain

REWARDS = "SELECT friend_customer_key, order_key, status, reason FROM analytics.rewards ORDER BY friend_customer_key"


def ledger(con, friend: str) -> list[tuple]:
    return rows(con, "SELECT seq, from_status, to_status, reason, occurred_at, run_id FROM analytics.reward_ledger "
                     "WHERE reward_key = ? ORDER BY seq", [reward_key("camp-us", f"cus_{friend}")])


def referred(w: World, advocate: str, friend: str, order_key: str, when, **order) -> None:
    """``friend`` buys with ``advocate``'s referral code (shared at day 0)."""
    code = advocate.upper() + "1"
    if not rows(w.con, "SELECT 1 FROM staging.referral_events WHERE kind = 'share' AND referral_code = ?", [code]):
        w.customer(advocate)
        w.share(advocate, code, at(0))
    if not rows(w.con, "SELECT 1 FROM analytics.customers WHERE customer_key = ?", [f"cus_{friend}"]):
        w.customer(friend)
    w.order(order_key, friend, when, referral_code=code, **order)


def test_lifecycle_across_the_return_window_to_issued_and_idempotent_reruns():
    con = new_db()
    w = World(con)
    referred(w, "alice", "f1", "sf:f1", at(1))
    run_chain(con, at(10), "r1")
    assert rows(con, "SELECT * EXCLUDE (load_seq) FROM analytics.rewards") == [(
        reward_key("camp-us", "cus_f1"), "camp-us", "us", "cus_alice", "cus_f1", "sf:f1", "pending", None,
        Decimal("20"), "USD", [], at(10), at(10), at(1), Decimal("100"), None, None, None, at(10))]
    assert rows(con, "SELECT reward_key, no_reward_reason FROM analytics.referral_attribution") == [
        (reward_key("camp-us", "cus_f1"), None)]
    assert changed(run_chain(con, at(20), "r2"))["rewards"] == 0                 # nothing to do yet
    run_chain(con, at(31), "r3")                                                 # placed_at + 30 days exactly
    w.reward_distributed("alice", "f1", at(33))
    run_chain(con, at(35), "r4")
    assert changed(run_chain(con, at(35), "r5"))["rewards"] == 0
    assert ledger(con, "f1") == [
        (1, None, "pending", None, at(10), "r1"),
        (2, "pending", "approved", "RETURN_WINDOW_PASSED", at(31), "r3"),
        (3, "approved", "issued", "FRIENDBUY_DISTRIBUTED", at(35), "r4"),
    ]
    assert rows(con, "SELECT status, reason, issued_at, status_changed_at, created_at, updated_at "
                     "FROM analytics.rewards") == [("issued", "FRIENDBUY_DISTRIBUTED", at(33), at(35), at(10), at(35))]


def test_every_reason_code():
    con = new_db()
    w = World(con)
    w.customer("nn")
    w.order("sf:nn0", "nn", at(-10))                                             # an earlier real order
    referred(w, "a1", "nn", "sf:nn1", at(2))                                     # NOT_NEW_CUSTOMER
    referred(w, "a2", "nf", "sf:nf1", at(2))                                     # first referred order ...
    w.order("sf:nf2", "nf", at(5), referral_code="A21")                          # ... NOT_FIRST_REFERRED_ORDER
    referred(w, "a3", "cm", "sf:cm1", at(2), currency="EUR")                     # CURRENCY_MISMATCH
    referred(w, "a4", "bm", "sf:bm1", at(2), gross=60, discount=15)              # BELOW_MIN_ORDER_VALUE (45)
    referred(w, "a5", "ok", "sf:ok1", at(2), gross=60, discount=10)              # exactly the minimum (50): fine
    referred(w, "a6", "cx", "sf:cx1", at(2), status="cancelled")                 # cancelled
    referred(w, "a7", "dx", "sf:dx1", at(2), status="declined")
    referred(w, "a8", "rx", "sf:rx1", at(2), status="refunded", refunded=100)    # fully refunded
    # ADVOCATE_CAP_REACHED: cap 2 per calendar month; c3 is the third in May, c4 is in June
    referred(w, "bob", "c1", "sf:c1", at(2))
    referred(w, "bob", "c2", "sf:c2", at(4))
    referred(w, "bob", "c3", "sf:c3", at(6))
    w.click("bob", "BOB1", at(20))                                              # (keeps c4 inside the window)
    referred(w, "bob", "c4", "sf:c4", at(32))
    referred(w, "bob", "c0", "sf:c0", at(1), status="cancelled")                 # canceled ones do not count

    run_chain(con, at(40))

    assert rows(con, REWARDS) == [
        ("cus_bm", "sf:bm1", "not_eligible", "BELOW_MIN_ORDER_VALUE"),
        ("cus_c0", "sf:c0", "canceled", "ORDER_CANCELLED"),
        ("cus_c1", "sf:c1", "approved", "RETURN_WINDOW_PASSED"),
        ("cus_c2", "sf:c2", "approved", "RETURN_WINDOW_PASSED"),
        ("cus_c3", "sf:c3", "not_eligible", "ADVOCATE_CAP_REACHED"),
        ("cus_c4", "sf:c4", "pending", None),
        ("cus_cm", "sf:cm1", "not_eligible", "CURRENCY_MISMATCH"),
        ("cus_cx", "sf:cx1", "canceled", "ORDER_CANCELLED"),
        ("cus_dx", "sf:dx1", "canceled", "ORDER_CANCELLED"),
        ("cus_nf", "sf:nf1", "approved", "RETURN_WINDOW_PASSED"),
        ("cus_nn", "sf:nn1", "not_eligible", "NOT_NEW_CUSTOMER"),
        ("cus_ok", "sf:ok1", "approved", "RETURN_WINDOW_PASSED"),
        ("cus_rx", "sf:rx1", "canceled", "ORDER_REFUNDED"),
    ]
    assert rows(con, "SELECT order_key, reward_key, no_reward_reason FROM analytics.referral_attribution "
                     "WHERE friend_customer_key = 'cus_nf' ORDER BY order_key") == [
        ("sf:nf1", reward_key("camp-us", "cus_nf"), None),
        ("sf:nf2", reward_key("camp-us", "cus_nf"), "NOT_FIRST_REFERRED_ORDER")]
    assert ledger(con, "c3") == [(1, None, "not_eligible", "ADVOCATE_CAP_REACHED", at(40), "r1")]
    # not_eligible and canceled are final: a later run with the window long past changes nothing
    assert run_chain(con, at(90), "r2")["rewards"].ledger_rows == 1              # only c4: pending -> approved
    assert ledger(con, "c4")[-1] == (2, "pending", "approved", "RETURN_WINDOW_PASSED", at(90), "r2")


def test_a_refund_in_a_later_run_cancels_a_pending_reward_and_reverses_an_issued_one():
    con = new_db()
    w = World(con)
    referred(w, "ann", "p", "sf:p1", at(20))                                     # pending until day 50
    referred(w, "ann", "q", "sf:q1", at(1))
    referred(w, "amy", "r", "sf:r1", at(20), gross=60)                           # net 60 >= 50
    run_chain(con, at(32), "r1")
    w.reward_distributed("ann", "q", at(33))
    run_chain(con, at(35), "r2")
    assert rows(con, REWARDS) == [("cus_p", "sf:p1", "pending", None), ("cus_q", "sf:q1", "issued", "FRIENDBUY_DISTRIBUTED"),
                                  ("cus_r", "sf:r1", "pending", None)]
    # the refunds arrive: p and q fully refunded, r partially (net 60 -> 45, below the minimum)
    w.set_order("sf:p1", status="refunded", refunded_amount=100)
    w.set_order("sf:q1", status="refunded", refunded_amount=100)
    w.set_order("sf:r1", status="partially_refunded", refunded_amount=15)
    run_chain(con, at(36), "r3")
    assert rows(con, REWARDS) == [("cus_p", "sf:p1", "canceled", "ORDER_REFUNDED"),
                                  ("cus_q", "sf:q1", "reversed", "ORDER_REFUNDED"),
                                  ("cus_r", "sf:r1", "canceled", "BELOW_MIN_ORDER_VALUE")]
    assert ledger(con, "p") == [(1, None, "pending", None, at(32), "r1"),
                                (2, "pending", "canceled", "ORDER_REFUNDED", at(36), "r3")]
    assert ledger(con, "q") == [(1, None, "approved", "RETURN_WINDOW_PASSED", at(32), "r1"),
                                (2, "approved", "issued", "FRIENDBUY_DISTRIBUTED", at(35), "r2"),
                                (3, "issued", "reversed", "ORDER_REFUNDED", at(36), "r3")]
    assert ledger(con, "r") == [(1, None, "pending", None, at(32), "r1"),
                                (2, "pending", "canceled", "BELOW_MIN_ORDER_VALUE", at(36), "r3")]
    assert rows(con, "SELECT net_amount FROM analytics.rewards WHERE friend_customer_key = 'cus_r'") == [(Decimal("45"),)]
    assert changed(run_chain(con, at(36), "r4"))["rewards"] == 0


def test_holds_released_or_rejected_by_the_salesforce_review_and_reject_beats_hold():
    progs = programs(advocate_monthly_cap=10)     # (held rewards count towards the cap)
    con = new_db()
    w = World(con)
    w.customer("hal")
    w.share("hal", "HAL1", at(0), ip="3.3.3.3")
    for i, friend in enumerate(("h1", "h2", "h3"), start=1):
        w.customer(friend)
        w.order(f"sf:{friend}", friend, at(2 * i), referral_code="HAL1", ip="3.3.3.3")   # hal's IP: hold
    w.customer("h4", email="hal+x@example.com")                                          # hal's alias: reject
    w.order("sf:h4", "h4", at(8), referral_code="HAL1", ip="3.3.3.3")
    run_chain(con, at(10), "r1", progs)
    assert rows(con, "SELECT friend_customer_key, status, reason, fraud_rules FROM analytics.rewards ORDER BY 1") == [
        ("cus_h1", "on_hold", "SAME_IP_AS_ADVOCATE", ["SAME_IP_AS_ADVOCATE"]),
        ("cus_h2", "on_hold", "SAME_IP_AS_ADVOCATE", ["SAME_IP_AS_ADVOCATE"]),
        ("cus_h3", "on_hold", "SAME_IP_AS_ADVOCATE", ["SAME_IP_AS_ADVOCATE"]),
        ("cus_h4", "canceled", "SELF_REFERRAL", ["SELF_REFERRAL", "SAME_IP_AS_ADVOCATE"]),
    ]
    # reviewers decide in Salesforce (Referral_Reward__c.Review_Decision__c), read back by the extraction
    w.review(reward_key("camp-us", "cus_h1"), "approve", at(11))
    w.review(reward_key("camp-us", "cus_h2"), "Reject", at(11))
    w.review(reward_key("camp-us", "cus_h4"), "approve", at(11))      # a reject flag is not up for review
    run_chain(con, at(12), "r2", progs)
    run_chain(con, at(40), "r3", progs)
    assert rows(con, "SELECT friend_customer_key, status, reason, review_decision, review_seen_at "
                     "FROM analytics.rewards ORDER BY 1") == [
        ("cus_h1", "approved", "RETURN_WINDOW_PASSED", "approve", at(12)),
        ("cus_h2", "canceled", "REVIEW_REJECTED", "reject", at(12)),
        ("cus_h3", "on_hold", "SAME_IP_AS_ADVOCATE", None, None),
        ("cus_h4", "canceled", "SELF_REFERRAL", "approve", at(12)),
    ]
    assert ledger(con, "h1") == [(1, None, "on_hold", "SAME_IP_AS_ADVOCATE", at(10), "r1"),
                                 (2, "on_hold", "pending", "REVIEW_APPROVED", at(12), "r2"),
                                 (3, "pending", "approved", "RETURN_WINDOW_PASSED", at(40), "r3")]
    assert ledger(con, "h2") == [(1, None, "on_hold", "SAME_IP_AS_ADVOCATE", at(10), "r1"),
                                 (2, "on_hold", "canceled", "REVIEW_REJECTED", at(12), "r2")]
    assert changed(run_chain(con, at(40), "r4", progs))["rewards"] == 0

"""analytics.referral_funnel_daily and analytics.reward_reconciliation (product §7 last paragraph)."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from .referrals_support import World, at, changed, new_db, programs, reward_key, rows, run_chain


def test_funnel_by_day_market_campaign_and_channel():
    con = new_db()
    w = World(con)
    for name in ("alice", "bob", "f1", "f2", "f3", "g1"):
        w.customer(name)
    w.customer("u1", market="uk")
    w.share("alice", "ALICE1", at(0), channel="email")
    w.share("bob", "BOB1", at(0), channel="Facebook")
    w.share("alice", "ALICEUK", at(0), channel="email", campaign="camp-uk")
    w.click("alice", "ALICE1", at(1), channel="email")
    w.click("alice", "ALICE1", at(1, hours=1))                                  # no channel on the click
    w.signup("alice", "f1", at(1), channel="email")
    w.order("sf:f1", "f1", at(2), referral_code="ALICE1")                       # converts, approved later
    w.order("sf:f3", "f3", at(2), referral_code="ALICE1", currency="EUR", gross=90)   # converts, not in revenue
    w.order("sf:f2", "f2", at(2), referral_code="BOB1", status="cancelled")     # no conversion
    w.order("sf:u1", "u1", at(2), referral_code="ALICEUK", market="uk", currency="GBP", gross=70)
    run_chain(con, at(40))
    assert rows(con, "SELECT day, market_id, campaign_id, channel, shares, clicks, signups, conversions, revenue, "
                     "rewards_approved, currency FROM analytics.referral_funnel_daily ORDER BY ALL") == [
        (date(2026, 5, 1), "uk", "camp-uk", "email", 1, 0, 0, 0, Decimal(0), 0, "GBP"),
        (date(2026, 5, 1), "us", "camp-us", "email", 1, 0, 0, 0, Decimal(0), 0, "USD"),
        (date(2026, 5, 1), "us", "camp-us", "facebook", 1, 0, 0, 0, Decimal(0), 0, "USD"),
        (date(2026, 5, 2), "us", "camp-us", "email", 0, 1, 1, 0, Decimal(0), 0, "USD"),
        (date(2026, 5, 2), "us", "camp-us", "unknown", 0, 1, 0, 0, Decimal(0), 0, "USD"),
        (date(2026, 5, 3), "uk", "camp-uk", "email", 0, 0, 0, 1, Decimal(70), 1, "GBP"),
        (date(2026, 5, 3), "us", "camp-us", "email", 0, 0, 0, 2, Decimal(100), 1, "USD"),
    ]
    assert changed(run_chain(con, at(40), "r2"))["referral_funnel_daily"] == 0


def test_reconciliation_lists_every_difference_with_friendbuy():
    con = new_db()
    w = World(con)
    for name in ("alice", "hal", "h", "c", "a", "d", "m", "p", "ok", "x"):
        w.customer(name)
    w.share("alice", "ALICE1", at(0))
    w.click("alice", "ALICE1", at(15))
    w.share("hal", "HAL1", at(0), ip="3.3.3.3")
    w.order("sf:h", "h", at(1), referral_code="HAL1", ip="3.3.3.3")             # on hold (hal's IP)
    w.order("sf:c", "c", at(1), referral_code="ALICE1", status="cancelled")     # canceled
    w.order("sf:a", "a", at(2), referral_code="ALICE1")                         # approved, never distributed
    w.order("sf:d", "d", at(2, hours=12), referral_code="ALICE1")              # distributed twice
    w.order("sf:m", "m", at(20), referral_code="ALICE1")                        # distributed with another amount
    w.order("sf:p", "p", at(21), referral_code="ALICE1")                        # distributed before the window
    w.order("sf:ok", "ok", at(22), referral_code="ALICE1")                      # (a fifth alice reward: cap 10)
    for friend, day in (("h", 33), ("c", 33), ("d", 33), ("d", 34), ("p", 25), ("x", 30)):
        w.reward_distributed("hal" if friend == "h" else "alice", friend, at(day))
    w.reward_distributed("alice", "m", at(51), amount=25)
    progs = programs(advocate_monthly_cap=10)
    run_chain(con, at(34), "r1", progs)                                          # a approved at day 34
    run_chain(con, at(40), "r2", progs)                                          # 6 days later: within grace
    recon = "SELECT reward_key, our_status, friendbuy_status, mismatch FROM analytics.reward_reconciliation ORDER BY ALL"
    key = {f: reward_key("camp-us", f"cus_{f}") for f in ("h", "c", "a", "d", "m", "p", "x")}
    expected = sorted([
        (key["c"], "canceled", "distributed", "distributed_while_canceled"),
        (key["d"], "issued", "distributed", "distributed_twice"),
        (key["h"], "on_hold", "distributed", "distributed_while_on_hold"),
        (key["p"], "pending", "distributed", "distributed_while_pending"),
        (key["x"], None, "distributed", "distributed_without_reward"),
    ])
    assert rows(con, recon) == expected
    run_chain(con, at(52), "r3", progs)                                          # 18 days after a's approval
    assert rows(con, recon) == sorted([row for row in expected if row[0] != key["p"]] + [   # p is issued now
        (key["a"], "approved", "not_distributed", "approved_not_distributed"),
        (key["m"], "issued", "distributed", "amount_mismatch"),
    ])
    assert rows(con, "SELECT detail, detected_at FROM analytics.reward_reconciliation WHERE mismatch = "
                     "'distributed_while_on_hold'") == [
        ("Friendbuy distributed this reward on 2026-06-03 but ours is on_hold (SAME_IP_AS_ADVOCATE)", at(34))]
    assert rows(con, "SELECT detail FROM analytics.reward_reconciliation WHERE mismatch = 'approved_not_distributed'") == [
        ("Approved on 2026-06-04; Friendbuy has not distributed it 18 days later",)]
    assert changed(run_chain(con, at(52), "r4", progs))["reward_reconciliation"] == 0

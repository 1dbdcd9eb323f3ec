"""audit.fraud_flags (product §6): the six rules on referral sign-ups and attributed orders, positive
and negative, velocity at exactly the threshold and one over, evidence, deterministic flag ids,
flags never deleted and never duplicated. Programs: advocate_per_24h 2, ip_per_hour 2."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from .referrals_support import World, at, changed, flag_id, new_db, programs, rows, run_chain

FLAGS = ("SELECT rule, severity, subject_type, subject_key, advocate_customer_key, friend_customer_key "
         "FROM audit.fraud_flags ORDER BY rule, subject_type, subject_key")


def evidence(con, rule, subject_key):
    return json.loads(rows(con, "SELECT evidence FROM audit.fraud_flags WHERE rule = ? AND subject_key = ?",
                           [rule, subject_key])[0][0])


def test_self_referral_alias_duplicate_identity_and_same_ip():
    con = new_db()
    w = World(con)
    w.customer("alice")
    w.customer("jane", email="jane.doe@gmail.com", created_at=datetime(2025, 1, 1, tzinfo=timezone.utc))
    w.customer("janealias", email="JaneDoe+friends@googlemail.com", created_at=datetime(2026, 4, 1, tzinfo=timezone.utc))
    w.customer("olga", email="olga@example.com", created_at=datetime(2025, 3, 1, tzinfo=timezone.utc))
    w.customer("olga2", email="olga+2@example.com", created_at=datetime(2025, 6, 1, tzinfo=timezone.utc))
    for name in ("sam", "nina"):
        w.customer(name)
    w.share("alice", "ALICE1", at(0), ip="9.9.9.9")
    w.share("jane", "JANE1", at(0), ip="1.2.3.4")
    w.order("sf:self1", "alice", at(2), referral_code="ALICE1")                 # alice uses her own code
    w.order("sf:alias1", "janealias", at(3), referral_code="JANE1")             # jane's gmail alias
    w.signup("alice", "sam", at(1), ip="9.9.9.9", key="su-sam")                 # sam at alice's share IP
    w.order("sf:sam1", "sam", at(4), referral_code="ALICE1", ip="9.9.9.9")   # (days apart: no velocity)
    w.signup("alice", "nina", at(1), ip="5.5.5.5", key="su-nina")               # nina: own IPs
    w.click("alice", "ALICE1", at(1), ip="6.6.6.6")                             # (a click IP is not the advocate's)
    w.order("sf:nina1", "nina", at(6), referral_code="ALICE1", ip="6.6.6.6")
    w.order("sf:olga1", "olga", at(8), referral_code="ALICE1")                 # her duplicate was created later

    run_chain(con, at(10))

    assert rows(con, FLAGS) == [
        ("DUPLICATE_IDENTITY", "hold", "order", "sf:alias1", "cus_jane", "cus_janealias"),
        ("SAME_IP_AS_ADVOCATE", "hold", "order", "sf:sam1", "cus_alice", "cus_sam"),
        ("SAME_IP_AS_ADVOCATE", "hold", "signup", "su-sam", "cus_alice", "cus_sam"),
        ("SELF_REFERRAL", "reject", "order", "sf:alias1", "cus_jane", "cus_janealias"),
        ("SELF_REFERRAL", "reject", "order", "sf:self1", "cus_alice", "cus_alice"),
    ]
    assert evidence(con, "SELF_REFERRAL", "sf:alias1") == {
        "match": "email_canonical", "friend_customer_key": "cus_janealias", "advocate_customer_key": "cus_jane",
        "friend_email_canonical": "janedoe@gmail.com", "advocate_email_canonical": "janedoe@gmail.com"}
    assert evidence(con, "SELF_REFERRAL", "sf:self1")["match"] == "customer_key"
    dup = evidence(con, "DUPLICATE_IDENTITY", "sf:alias1")
    assert (dup["email_canonical"], dup["earlier_customer_key"], dup["earlier_customers"]) == (
        "janedoe@gmail.com", "cus_jane", 1)
    assert evidence(con, "SAME_IP_AS_ADVOCATE", "su-sam") == {
        "ip": "9.9.9.9", "advocate_customer_key": "cus_alice", "advocate_used_in": ["share"],
        "advocate_used_keys": ["fb:share:1"]}
    assert rows(con, "SELECT flag_id, detected_at, run_id FROM audit.fraud_flags WHERE subject_key = 'sf:self1'") == [
        (flag_id("SELF_REFERRAL", "order", "sf:self1"), at(10), "r1")]


def test_velocity_by_advocate_and_by_ip_at_the_threshold_and_one_over():
    con = new_db()
    w = World(con)
    for name in ("vic", "wes", "ivy", *(f"v{i}" for i in range(1, 6)), "w1", "w2",
                 *(f"s{i}" for i in range(1, 5)), "t1", "t2", "o1", "o2", "o3"):
        w.customer(name)
    w.share("vic", "VIC1", at(0))
    w.share("wes", "WES1", at(0))
    w.share("ivy", "IVY1", at(0))
    # VELOCITY_ADVOCATE, 2 per 24 h: v3 is the third within 24 h, v4 too; v5 comes exactly 24 h after v3,
    # which leaves the window (t - 24 h, t], so its count is 2: at the threshold, no flag
    for friend, when in (("v1", at(1)), ("v2", at(1, hours=10)), ("v3", at(1, hours=20)), ("v4", at(1, hours=24.5)),
                         ("v5", at(1, hours=44))):
        w.order(f"sf:{friend}", friend, when, referral_code="VIC1")
    w.order("sf:w1", "w1", at(1), referral_code="WES1")                 # wes: exactly 2 within 24 h
    w.order("sf:w2", "w2", at(1, hours=1), referral_code="WES1")
    # VELOCITY_IP, 2 per hour: three sign-ups from 7.7.7.7 within 40 min -> the third; s4 an hour later: no
    for friend, minutes in (("s1", 0), ("s2", 20), ("s3", 40), ("s4", 120)):
        w.signup("ivy", friend, at(5, minutes=minutes), ip="7.7.7.7", key=f"su-{friend}")
    w.signup("ivy", "t1", at(6), ip="4.4.4.4", key="su-t1")             # exactly two from 4.4.4.4
    w.signup("ivy", "t2", at(6, minutes=59), ip="4.4.4.4", key="su-t2")
    # sign-ups and attributed orders count together: one sign-up + two orders from 8.8.8.8 in an hour
    w.signup("ivy", "o1", at(7), ip="8.8.8.8", key="su-o1")
    w.order("sf:o2", "o2", at(7, minutes=30), referral_code="IVY1", ip="8.8.8.8")
    w.order("sf:o3", "o3", at(7, minutes=45), referral_code="IVY1", ip="8.8.8.8")

    run_chain(con, at(10))

    assert rows(con, FLAGS) == [
        ("VELOCITY_ADVOCATE", "hold", "order", "sf:v3", "cus_vic", "cus_v3"),
        ("VELOCITY_ADVOCATE", "hold", "order", "sf:v4", "cus_vic", "cus_v4"),
        ("VELOCITY_IP", "hold", "order", "sf:o3", "cus_ivy", "cus_o3"),
        ("VELOCITY_IP", "hold", "signup", "su-s3", "cus_ivy", "cus_s3"),
    ]
    v4 = evidence(con, "VELOCITY_ADVOCATE", "sf:v4")
    assert (v4["orders_in_24h"], v4["threshold"], v4["order_keys"]) == (3, 2, ["sf:v2", "sf:v3", "sf:v4"])
    ip = evidence(con, "VELOCITY_IP", "sf:o3")
    assert (ip["ip"], ip["events_in_hour"], ip["threshold"], ip["events"]) == (
        "8.8.8.8", 3, 2, ["signup:su-o1", "order:sf:o2", "order:sf:o3"])


def test_coupon_reuse_idempotency_and_flags_are_never_deleted():
    con = new_db()
    w = World(con)
    for name in ("alice", "cf", "other", "fx", "ox", "fy"):
        w.customer(name)
    w.incentive("alice", "cf", "FRIEND-CF", at(0))
    w.incentive("alice", "fx", "FRIEND-X", at(0))
    w.incentive("alice", "fy", "FRIEND-Y", at(0))
    w.order("sf:cf1", "cf", at(2), coupons=["FRIEND-CF"])
    w.order("sf:cf2", "cf", at(7), coupons=["friend-cf"])              # the friend's second order with it
    w.order("sf:other1", "other", at(9), coupons=["FRIEND-CF"])        # and someone else's
    w.order("sf:ox1", "ox", at(4), coupons=["FRIEND-X"])               # used first by someone else
    w.order("sf:fy1", "fy", at(4), coupons=["FRIEND-Y"])               # used once by its friend: fine

    first = run_chain(con, at(10))

    assert rows(con, FLAGS) == [
        ("COUPON_REUSE", "hold", "order", "sf:cf2", "cus_alice", "cus_cf"),
        ("COUPON_REUSE", "hold", "order", "sf:other1", "cus_alice", "cus_other"),
        ("COUPON_REUSE", "hold", "order", "sf:ox1", "cus_alice", "cus_ox"),
    ]
    assert evidence(con, "COUPON_REUSE", "sf:other1") == {
        "coupon_code": "FRIEND-CF", "use_number": 3, "first_order_key": "sf:cf1", "issued_to": ["cus_cf"],
        "reasons": ["second_order", "other_customer"]}
    assert evidence(con, "COUPON_REUSE", "sf:ox1")["reasons"] == ["other_customer"]
    assert first["fraud_flags"].new_flags == 3
    # re-run: nothing new, nothing rewritten anywhere in the chain
    assert changed(run_chain(con, at(10), run_id="r2")) == {
        "referral_events": 0, "referral_attribution": 0, "promo_code_issues": 0, "fraud_flags": 0, "rewards": 0,
        "referral_funnel_daily": 0, "reward_reconciliation": 0}
    # the order goes away (and with it the attribution): its flag stays
    con.execute("DELETE FROM analytics.orders WHERE order_key = 'sf:ox1'")
    run_chain(con, at(11), run_id="r3")
    assert rows(con, "SELECT count(*) FROM analytics.referral_attribution WHERE order_key = 'sf:ox1'") == [(0,)]
    assert rows(con, "SELECT run_id FROM audit.fraud_flags WHERE subject_key = 'sf:ox1'") == [("r1",)]


def test_incremental_run_flags_an_older_order_when_the_advocate_later_uses_its_ip():
    """Only the changed partitions are evaluated after the first run: a share from a new IP makes
    SAME_IP_AS_ADVOCATE fire on the advocate's earlier referred order from that IP (and on nothing
    else), as a full evaluation would."""
    con = new_db(customers_load_seq=True)
    w = World(con)
    for name in ("alice", "sam", "nina"):
        w.customer(name)
    w.share("alice", "ALICE1", at(0), ip="9.9.9.9")
    w.order("sf:sam1", "sam", at(2), referral_code="ALICE1", ip="7.7.7.7")
    w.order("sf:nina1", "nina", at(4), referral_code="ALICE1", ip="8.8.8.8")
    first = run_chain(con, at(10))
    assert first["fraud_flags"].mode == "full" and first["fraud_flags"].new_flags == 0
    # (the rewards stage then sets reward_key on both rows: rewritten rows, but nothing a rule reads
    # changed, so the next run evaluates no subject)
    second = run_chain(con, at(10))["fraud_flags"]
    assert (second.mode, second.new_flags, second.subjects) == ("incremental", 0, 0)
    w.share("alice", "ALICE2", at(11), ip="7.7.7.7")                 # alice now shares from sam's IP
    later = run_chain(con, at(12), "r2")
    assert later["fraud_flags"].mode == "incremental"
    assert later["fraud_flags"].new_by_rule == {"SAME_IP_AS_ADVOCATE": 1}
    assert rows(con, "SELECT rule, subject_key, run_id FROM audit.fraud_flags") == [
        ("SAME_IP_AS_ADVOCATE", "sf:sam1", "r2")]
    assert later["fraud_flags"].subjects == 1                        # only sam's order was evaluated


def test_incremental_velocity_windows_reach_back_across_hour_and_day_boundaries():
    """An incremental run evaluates the subjects within an hour of a new subject's IP and within 24 h
    of a new order's advocate through time buckets (hours, days): the earlier subjects of the window
    sit in the previous bucket here (22:40 and 22:50 before a sign-up at 23:20; 20:00 and 22:00 on the
    day before an order at 03:00), and must still count."""
    con = new_db(customers_load_seq=True)
    w = World(con)
    for name in ("ivy", "vic", "s1", "s2", "s3", "v1", "v2", "v3"):
        w.customer(name)
    w.share("ivy", "IVY1", at(0))
    w.share("vic", "VIC1", at(0))
    w.signup("ivy", "s1", at(1, hours=10, minutes=40), ip="7.7.7.7", key="su-s1")     # 22:40 UTC
    w.signup("ivy", "s2", at(1, hours=10, minutes=50), ip="7.7.7.7", key="su-s2")     # 22:50
    w.order("sf:v1", "v1", at(1, hours=8), referral_code="VIC1")                        # 20:00
    w.order("sf:v2", "v2", at(1, hours=10), referral_code="VIC1")                       # 22:00
    first = run_chain(con, at(5))
    assert first["fraud_flags"].new_flags == 0                      # two in the hour, two in 24 h: at the threshold
    w.signup("ivy", "s3", at(1, hours=11, minutes=20), ip="7.7.7.7", key="su-s3")     # 23:20, the next hour
    w.order("sf:v3", "v3", at(1, hours=15), referral_code="VIC1")                       # 03:00, the next day
    later = run_chain(con, at(5), "r2")
    assert later["fraud_flags"].mode == "incremental"
    assert rows(con, FLAGS) == [
        ("VELOCITY_ADVOCATE", "hold", "order", "sf:v3", "cus_vic", "cus_v3"),
        ("VELOCITY_IP", "hold", "signup", "su-s3", "cus_ivy", "cus_s3"),
    ]
    assert evidence(con, "VELOCITY_IP", "su-s3")["events"] == ["signup:su-s1", "signup:su-s2", "signup:su-s3"]
    assert evidence(con, "VELOCITY_ADVOCATE", "sf:v3")["order_keys"] == ["sf:v1", "sf:v2", "sf:v3"]


def test_an_attribution_change_the_rewards_stage_stamped_before_fraud_saw_it_is_still_evaluated():
    """The fraud stage skips the rows the rewards stage only stamped with reward_key, but only when it
    had seen them before that stamp: here attribution rewrites an order (it is the advocate's own),
    rewards stamps it (a new reward_key: the friend changed), and only then does fraud run."""
    from referral_pipeline.transform.attribution import run_attribution
    from referral_pipeline.transform.rewards import run_fraud, run_rewards

    con = new_db(customers_load_seq=True)
    w = World(con)
    for name in ("alice", "sam"):
        w.customer(name)
    w.share("alice", "ALICE1", at(0))
    w.order("sf:sam1", "sam", at(2), referral_code="ALICE1")
    run_chain(con, at(10))
    run_chain(con, at(10))
    w.set_order("sf:sam1", customer_key="cus_alice")
    progs = programs()
    run_attribution(con, progs, at(10), "r3")
    assert run_rewards(con, progs, at(10), "r3").attribution_rows_updated == 1
    result = run_fraud(con, progs, at(10), "r3")
    assert result.mode == "incremental"
    assert rows(con, "SELECT rule, subject_key FROM audit.fraud_flags") == [("SELF_REFERRAL", "sf:sam1")]


SIGNUP_EMAILS = ("SELECT event_key, friend_email, advocate_email, friend_canonical, advocate_canonical "
                 "FROM ops.fraud_signup_emails ORDER BY event_key, friend_email")


def _signup_email_world(con, friend_email: str) -> World:
    w = World(con)
    w.customer("alice", email="alice@example.com")
    w.customer("sam")
    w.signup("alice", "sam", at(1), key="su-sam")
    w.event("signup", at(2), advocate="alice", friend_email=friend_email, key="su-mail")
    w.event("signup", at(3), advocate_email="Ann.Other+x@GMail.com", friend_email="zoe@example.com", key="su-ann")
    return w


def test_signup_canonical_emails_are_kept_per_event_and_an_email_change_flags_as_a_full_run_would():
    """ops.fraud_signup_emails holds every sign-up's canonical emails; a sign-up whose friend email
    changes (to the advocate's alias) gets a new row and SELF_REFERRAL, as a full evaluation of the
    final data does; a row not computed from the event's current emails is never used, and rows of
    sign-ups that are gone are pruned."""
    con = new_db(customers_load_seq=True)
    w = _signup_email_world(con, "bob@example.com")
    first = run_chain(con, at(10))["fraud_flags"]
    assert first.mode == "full" and first.new_flags == 0
    assert rows(con, SIGNUP_EMAILS) == [
        ("su-ann", "zoe@example.com", "Ann.Other+x@GMail.com", "zoe@example.com", "annother@gmail.com"),
        ("su-mail", "bob@example.com", None, "bob@example.com", None),
        ("su-sam", None, None, None, None)]
    # a row for other emails must not be used: it would make su-ann a self-referral
    con.execute("INSERT INTO ops.fraud_signup_emails SELECT event_key, 'x@example.com', advocate_email, "
                "advocate_canonical, advocate_canonical, macro_digest, load_seq FROM ops.fraud_signup_emails "
                "WHERE event_key = 'su-ann'")
    con.execute("UPDATE staging.referral_events SET friend_email = 'Alice+promo@Example.com', load_seq = ? "
                "WHERE event_key = 'su-mail'", [w._seq()])
    con.execute("DELETE FROM staging.referral_events WHERE event_key = 'su-sam'")
    later = run_chain(con, at(11), "r2")["fraud_flags"]
    assert later.mode == "incremental"
    assert rows(con, SIGNUP_EMAILS) == [
        ("su-ann", "x@example.com", "Ann.Other+x@GMail.com", "annother@gmail.com", "annother@gmail.com"),
        ("su-ann", "zoe@example.com", "Ann.Other+x@GMail.com", "zoe@example.com", "annother@gmail.com"),
        ("su-mail", "Alice+promo@Example.com", None, "alice@example.com", None)]   # (su-sam pruned)

    full = new_db(customers_load_seq=True)
    _signup_email_world(full, "Alice+promo@Example.com")
    full.execute("DELETE FROM staging.referral_events WHERE event_key = 'su-sam'")
    assert run_chain(full, at(11), "r2")["fraud_flags"].mode == "full"
    assert rows(con, FLAGS) == rows(full, FLAGS)
    assert ("SELF_REFERRAL", "reject", "signup", "su-mail", "cus_alice") in [r[:5] for r in rows(con, FLAGS)]
    assert "su-ann" not in {r[3] for r in rows(con, FLAGS)}

"""Every expectation of every suite fails on a planted bad row (and only there) and passes on good data.

One suite run per table: the good world plus one bad row per expectation (distinct keys), then the
exact map row key -> failing expectations is read from ``ops.dq_open_failures`` and compared, and
table-level (SQL) failures are compared with their offending keys. A coverage assertion makes sure
every expectation of the suite is planted at least once.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from referral_pipeline.quality import SUITES, run_suite, suite_for
from referral_pipeline.quality.runner import KEY_SEP, NULL_KEY

from .support import (CUS, T0, attribution, customer, fraud_flag, good_world, insert, ledger_for, order, referral_event,
                      reward, rwd, staging_customer, staging_order, staging_refund, unconstrained, warehouse)

MARKETS = ["us", "uk", "eu"]
MONEY = ["gross_amount", "discount_amount", "tax_amount", "shipping_amount", "refunded_amount", "net_amount"]


def open_failures(con, table):
    return {k: set(v) for k, v in con.execute(
        "SELECT row_key, expectations FROM ops.dq_open_failures WHERE table_name = ?", [table]).fetchall()}


def _staging_customers(con):
    unconstrained(con, "staging.customers")
    insert(con, "staging.customers", [staging_customer("sf:c1", 1), staging_customer("ct:c2", 2)])
    bad = [(None, {}, "customer_record_key_not_null"), ("sf:b1", {"source": None}, "source_not_null"),
           ("sf:b2", {"source_customer_id": None}, "source_customer_id_not_null"),
           ("nocolon", {}, "customer_record_key_format"), ("sf:b3", {"source_type": "shopify"}, "source_type_in_set"),
           ("sf:b4", {"email_normalized": "Ann@Example.com"}, "email_normalized_format"),
           ("sf:b5", {"email_normalized": "ann smith@example.com"}, "email_normalized_format")]
    for i, (key, kw, _) in enumerate(bad):
        insert(con, "staging.customers", [staging_customer(key, 10 + i, **kw)])
    insert(con, "staging.customers", [staging_customer("sf:dup", 30), staging_customer("sf:dup", 31)])
    return ({key or NULL_KEY: {name} for key, _, name in bad}, {"customer_record_key_unique": {"sf:dup"}})


def _staging_orders(con):
    unconstrained(con, "staging.orders")
    insert(con, "staging.orders", [staging_order("sf:o1", 1), staging_order("ct:o2", 2, customer_record_key=None)])
    bad = [(None, {}, "order_key_not_null"), ("sf:b1", {"source": None}, "source_not_null"),
           ("sf:b2", {"source_order_id": None}, "source_order_id_not_null"),
           ("sf:b3", {"market_id": None}, "market_id_not_null"), ("sf:b4", {"placed_at": None}, "placed_at_not_null"),
           ("sf:b5", {"status": None}, "status_not_null"), ("sf:b6", {"currency": None}, "currency_not_null"),
           ("bad-key", {}, "order_key_format"),
           ("sf:b7", {"customer_record_key": None, "email_normalized": None}, "customer_identity_not_null"),
           ("sf:b8", {"status": "shipped_twice"}, "status_in_set"), ("sf:b9", {"currency": "ZZZ"}, "currency_in_set"),
           ("sf:b10", {"market_id": "mars"}, "market_id_in_set"),
           ("sf:b11", {"email_normalized": "x@y"}, "email_normalized_format")]
    bad += [(f"sf:m{i}", {col: -1}, f"{col}_non_negative") for i, col in enumerate(MONEY)]
    for i, (key, kw, _) in enumerate(bad):
        insert(con, "staging.orders", [staging_order(key, 10 + i, **kw)])
    insert(con, "staging.orders", [staging_order("sf:dup", 40), staging_order("sf:dup", 41)])
    return ({key or NULL_KEY: {name} for key, _, name in bad}, {"order_key_unique": {"sf:dup"}})


def _staging_refunds(con):
    unconstrained(con, "staging.refunds")
    insert(con, "staging.orders", [staging_order("sf:o1", 1)])
    insert(con, "staging.refunds", [staging_refund("sf:r1", 1), staging_refund("sf:r2", 2, currency=None)])
    bad = [(None, {}, "refund_key_not_null"), ("sf:b1", {"order_key": None}, "order_key_not_null"),
           ("sf:b2", {"amount": None}, "amount_not_null"), ("sf:b3", {"created_at": None}, "created_at_not_null"),
           ("sf:b4", {"kind": None}, "kind_not_null"), ("sf:b5", {"amount": -5}, "amount_non_negative"),
           ("sf:b6", {"currency": "usd"}, "currency_in_set"), ("sf:b7", {"kind": "chargeback"}, "kind_in_set")]
    for i, (key, kw, _) in enumerate(bad):
        insert(con, "staging.refunds", [staging_refund(key, 10 + i, **kw)])
    insert(con, "staging.refunds", [staging_refund("sf:orphan", 30, order_key="sf:nope"),
                                    staging_refund("sf:dup", 31), staging_refund("sf:dup", 32)])
    return ({key or NULL_KEY: {name} for key, _, name in bad},
            {"refund_key_unique": {"sf:dup"}, "refund_order_known": {"sf:orphan"}})


def _staging_referral_events(con):
    unconstrained(con, "staging.referral_events")
    insert(con, "staging.referral_events", [referral_event("fb:click:1", 1), referral_event("fb:share:2", 2, kind="share")])
    bad = [(None, {}, "event_key_not_null"), ("fb:b1", {"source": None}, "source_not_null"),
           ("fb:b2", {"kind": None}, "kind_not_null"), ("fb:b3", {"occurred_at": None}, "occurred_at_not_null"),
           ("fb:b4", {"kind": "like"}, "kind_in_set"), ("fb:b5", {"advocate_email": "bad"}, "advocate_email_format"),
           ("fb:b6", {"friend_email": "FRIEND@x.com"}, "friend_email_format"),
           ("fb:b7", {"amount": -1}, "amount_non_negative"), ("fb:b8", {"currency": "EURO"}, "currency_in_set")]
    for i, (key, kw, _) in enumerate(bad):
        insert(con, "staging.referral_events", [referral_event(key, 10 + i, **kw)])
    insert(con, "staging.referral_events", [referral_event("fb:dup", 30), referral_event("fb:dup", 31)])
    return ({key or NULL_KEY: {name} for key, _, name in bad}, {"event_key_unique": {"fb:dup"}})


def _analytics_customers(con):
    insert(con, "analytics.customers", [customer(CUS[1]), customer(CUS[2], email=None, market_id=None),
                                        customer(CUS[3], email="  Ann.Lee@Example.com ")])   # blanks are tolerated
    bad = [(None, {}, "customer_key_not_null"), ("cus_XYZ", {}, "customer_key_format"),
           (CUS[10], {"email": "not-an-email"}, "email_format"),
           (CUS[17], {"email_normalized": "Ann@example.com"}, "email_normalized_format"),
           (CUS[11], {"email_canonical": "A@B.COM"}, "email_canonical_format"),
           (CUS[12], {"market_id": "mars"}, "market_id_in_set"), (CUS[13], {"orders_count": -1}, "orders_count_non_negative"),
           (CUS[14], {"net_revenue": -1}, "net_revenue_non_negative"),
           (CUS[15], {"loyalty_points_balance": -5}, "loyalty_points_balance_non_negative")]
    for key, kw, _ in bad:
        insert(con, "analytics.customers", [customer(key, **kw)])
    insert(con, "analytics.customers", [customer(CUS[16]), customer(CUS[16])])
    return ({key or NULL_KEY: {name} for key, _, name in bad}, {"customer_key_unique": {CUS[16]}})


def _analytics_orders(con):
    insert(con, "analytics.customers", [customer(CUS[1]), customer(CUS[2])])
    insert(con, "analytics.orders", [order("sf:o1"), order("ct:o2", customer_key=CUS[2])])
    bad = [(None, {}, {"order_key_not_null"}), ("sf:b1", {"source": None}, {"source_not_null"}),
           ("sf:b2", {"source_order_id": None}, {"source_order_id_not_null"}),
           ("sf:b3", {"customer_key": None}, {"customer_key_not_null"}),
           ("sf:b4", {"market_id": None}, {"market_id_not_null"}), ("sf:b5", {"placed_at": None}, {"placed_at_not_null"}),
           ("sf:b6", {"status": None}, {"status_not_null"}), ("sf:b7", {"currency": None}, {"currency_not_null"}),
           ("nokey", {}, {"order_key_format"}), ("sf:b8", {"customer_key": "C-1"}, {"customer_key_format"}),
           ("sf:b9", {"status": "lost"}, {"status_in_set"}), ("sf:b10", {"currency": "ABC"}, {"currency_in_set"}),
           ("sf:b11", {"market_id": "mars"}, {"market_id_in_set"})]
    bad += [(f"sf:m{i}", {col: -0.01}, {f"{col}_non_negative"}) for i, col in enumerate(MONEY)]
    for key, kw, _ in bad:
        insert(con, "analytics.orders", [order(key, **kw)])
    insert(con, "analytics.orders", [order("sf:dup"), order("sf:dup"), order("sf:stranger", customer_key=CUS[99])])
    return ({key or NULL_KEY: names for key, _, names in bad},
            {"order_key_unique": {"sf:dup"}, "order_customer_known": {"sf:b8", "sf:stranger"}})


def _analytics_attribution(con):
    bad = [(None, {}, "order_key_not_null"), ("ct:b1", {"friend_customer_key": None}, "friend_customer_key_not_null"),
           ("ct:b2", {"campaign_id": None}, "campaign_id_not_null"), ("ct:b3", {"market_id": None}, "market_id_not_null"),
           ("ct:b4", {"attribution_method": None}, "attribution_method_not_null"),
           ("ct:b5", {"placed_at": None}, "placed_at_not_null"),
           ("ct:b6", {"advocate_customer_key": None}, "advocate_customer_key_not_null"),
           ("ct:b7", {"attribution_method": "magic"}, "attribution_method_in_set"),
           ("ct:b8", {"market_id": "mars"}, "market_id_in_set"), ("ct:b9", {"currency": "ZZZ"}, "currency_in_set"),
           ("ct:b10", {"net_amount": -1}, "net_amount_non_negative"),
           ("ct:b11", {"reward_key": "reward-1"}, "reward_key_format")]
    insert(con, "analytics.orders", [order(k) for k in ["ct:o1", "ct:o2", "ct:dup"] + [k for k, _, _ in bad if k]])
    insert(con, "analytics.referral_attribution", [attribution("ct:o1"), attribution("ct:o2", reward_key=None)])
    for key, kw, _ in bad:
        insert(con, "analytics.referral_attribution", [attribution(key, **kw)])
    insert(con, "analytics.referral_attribution", [attribution("ct:dup"), attribution("ct:dup"), attribution("ct:ghost")])
    return ({key or NULL_KEY: {name} for key, _, name in bad},
            {"order_key_unique": {"ct:dup"}, "attributed_order_known": {"ct:ghost"}})


def _analytics_rewards(con):
    def plant(key, friend, statuses=None, **kw):
        row = reward(key, friend=friend, **kw)
        insert(con, "analytics.rewards", [row])
        if key is not None and statuses is not False:
            insert(con, "analytics.reward_ledger", ledger_for(key, statuses or ["pending", row["status"]]))

    plant(rwd(1), 2)
    plant(rwd(2), 3, status="not_eligible", reason="NOT_NEW_CUSTOMER", statuses=["not_eligible"])
    bad = [(None, {}, "reward_key_not_null"), (rwd(20), {"campaign_id": None}, "campaign_id_not_null"),
           (rwd(21), {"market_id": None}, "market_id_not_null"),
           (rwd(22), {"advocate_customer_key": None}, "advocate_customer_key_not_null"),
           (rwd(24), {"order_key": None}, "order_key_not_null"), (rwd(25), {"status": None}, "status_not_null"),
           (rwd(26), {"created_at": None}, "created_at_not_null"), ("RWD-1", {}, "reward_key_format"),
           (rwd(27), {"status": "paid"}, "status_in_set"), (rwd(28), {"market_id": "mars"}, "market_id_in_set"),
           (rwd(29), {"currency": "usd"}, "currency_in_set"), (rwd(30), {"amount": -20}, "amount_non_negative"),
           (rwd(31), {"status": "not_eligible", "reason": None}, "not_eligible_has_reason")]
    for i, (key, kw, _) in enumerate(bad):
        plant(key, 20 + i, **kw)
    plant(rwd(23), None, friend_customer_key=None)      # friend NULL (excluded from the pair uniqueness)
    plant(rwd(40), 60)
    plant(rwd(40), 61, statuses=False)                  # duplicate reward_key
    plant(rwd(41), 70)
    plant(rwd(42), 70)                                  # second reward for (camp-us, CUS[70])
    plant(rwd(43), 80, status="issued", statuses=["pending", "approved"])   # ledger says approved
    plant(rwd(44), 81, statuses=False)                  # no ledger at all
    expected_row = {key or NULL_KEY: {name} for key, _, name in bad}
    expected_row[rwd(23)] = {"friend_customer_key_not_null"}
    return (expected_row, {"reward_key_unique": {rwd(40)}, "campaign_id_friend_customer_key_unique": {"camp-us"},
                           "status_matches_ledger": {rwd(43), rwd(44)}})


def _analytics_ledger(con):
    def rewards_for(*keys):
        insert(con, "analytics.rewards", [reward(k, friend=100 + i) for i, k in enumerate(keys)])

    rewards_for(*(rwd(i) for i in range(50, 59)))
    insert(con, "analytics.reward_ledger", [
        dict(reward_key=None, seq=1, from_status=None, to_status="pending", occurred_at=T0),
        dict(reward_key=rwd(50), seq=None, from_status=None, to_status="pending", occurred_at=T0),
        dict(reward_key=rwd(51), seq=1, from_status=None, to_status=None, occurred_at=T0),
        dict(reward_key=rwd(52), seq=1, from_status=None, to_status="pending", occurred_at=None),
        dict(reward_key=rwd(53), seq=1, from_status=None, to_status="paid", occurred_at=T0),
        dict(reward_key=rwd(54), seq=1, from_status=None, to_status="pending", occurred_at=T0),
        dict(reward_key=rwd(54), seq=2, from_status="weird", to_status="approved", occurred_at=T0),
        dict(reward_key=rwd(55), seq=0, from_status=None, to_status="pending", occurred_at=T0),
        dict(reward_key=rwd(56), seq=1, from_status=None, to_status="pending", occurred_at=T0),
        dict(reward_key=rwd(57), seq=1, from_status=None, to_status="pending", occurred_at=T0),
        dict(reward_key=rwd(57), seq=1, from_status=None, to_status="pending", occurred_at=T0),
        dict(reward_key=rwd(58), seq=1, from_status=None, to_status="pending", occurred_at=T0),
        dict(reward_key=rwd(58), seq=3, from_status="pending", to_status="approved", occurred_at=T0),
        dict(reward_key=rwd(59), seq=1, from_status=None, to_status="pending", occurred_at=T0),   # no reward row
    ])
    k = lambda key, seq: f"{key if key else NULL_KEY}{KEY_SEP}{seq if seq is not None else NULL_KEY}"  # noqa: E731
    expected_row = {k(None, 1): {"reward_key_not_null"}, k(rwd(50), None): {"seq_not_null"},
                    k(rwd(51), 1): {"to_status_not_null"}, k(rwd(52), 1): {"occurred_at_not_null"},
                    k(rwd(53), 1): {"to_status_in_set"}, k(rwd(54), 2): {"from_status_in_set"},
                    k(rwd(55), 0): {"seq_positive"}}
    return (expected_row, {"reward_key_seq_unique": {rwd(57)},
                           "seq_contiguous": {rwd(50), rwd(55), rwd(57), rwd(58)},
                           "status_chain": {rwd(54), rwd(57)}, "ledger_reward_known": {rwd(59)}})


def _fraud_flags(con):
    unconstrained(con, "audit.fraud_flags")
    con.execute("ALTER TABLE audit.fraud_flags ALTER evidence TYPE VARCHAR")
    insert(con, "audit.fraud_flags", [fraud_flag("f1"), fraud_flag("f2", rule="SELF_REFERRAL", severity="reject")])
    bad = [(None, {}, {"flag_id_not_null"}), ("b1", {"rule": None}, {"rule_not_null"}),
           ("b2", {"severity": None}, {"severity_not_null"}), ("b3", {"subject_type": None}, {"subject_type_not_null"}),
           ("b4", {"subject_key": None}, {"subject_key_not_null"}), ("b5", {"detected_at": None}, {"detected_at_not_null"}),
           ("b6", {"rule": "SPAM"}, {"rule_in_set", "rule_severity_in_set"}),
           ("b7", {"severity": "block"}, {"severity_in_set", "rule_severity_in_set"}),
           ("b8", {"rule": "SELF_REFERRAL"}, {"rule_severity_in_set"}),
           ("b9", {"subject_type": "click"}, {"subject_type_in_set"}),
           ("b10", {"evidence": "ip=10.0.0.1"}, {"evidence_json"})]
    for key, kw, _ in bad:
        insert(con, "audit.fraud_flags", [fraud_flag(key, **kw)])
    insert(con, "audit.fraud_flags", [fraud_flag("dup"), fraud_flag("dup")])
    return ({key or NULL_KEY: names for key, _, names in bad}, {"flag_id_unique": {"dup"}})


CASES = {
    "staging.customers": _staging_customers, "staging.orders": _staging_orders, "staging.refunds": _staging_refunds,
    "staging.referral_events": _staging_referral_events, "analytics.customers": _analytics_customers,
    "analytics.orders": _analytics_orders, "analytics.referral_attribution": _analytics_attribution,
    "analytics.rewards": _analytics_rewards, "analytics.reward_ledger": _analytics_ledger,
    "audit.fraud_flags": _fraud_flags,
}


def test_every_suite_has_a_planted_case():
    assert set(CASES) == {s.table for s in SUITES}


@pytest.mark.parametrize("table", list(CASES))
def test_each_expectation_fails_on_its_planted_row_only(table):
    con = warehouse()
    expected_row, expected_table = CASES[table](con)
    suite = suite_for(table)
    # coverage: every expectation of the suite is planted at least once
    planted = set().union(*expected_row.values()) | set(expected_table)
    assert planted == {e.name for e in suite.row} | {t.name for t in suite.table_checks}

    result = run_suite(con, suite, run_id="r1", markets=MARKETS, sample_size=10)
    assert result.success is False
    assert open_failures(con, table) == expected_row
    by_name = {e.name: e for e in result.expectations}
    for e in suite.row:
        keys = {k for k, names in expected_row.items() if e.name in names}
        assert (by_name[e.name].success, by_name[e.name].unexpected_count) == (False, len(keys)), e.name
        assert set(by_name[e.name].failing_keys) == keys, e.name
    for t in suite.table_checks:
        out = by_name[t.name]
        assert out.success is False and out.note is None, (t.name, out.note)
        assert {str(s[next(iter(s))]) for s in out.unexpected_sample} == expected_table[t.name], t.name
    assert not [e for e in result.expectations if e.note and not e.success]     # nothing failed for a wrong reason


def test_all_suites_pass_on_good_data_and_report_every_expectation():
    con = warehouse()
    good_world(con)
    for suite in SUITES:
        result = run_suite(con, suite, run_id="r1", markets=MARKETS)
        assert result.table_exists and result.success, (suite.table, [(e.name, e.note) for e in result.failed])
        assert [e.name for e in result.expectations] == [e.name for e in suite.row] + [t.name for t in suite.table_checks]
        assert all(e.note is None for e in result.expectations), suite.table
        assert result.validated_rows == result.table_rows > 0
    assert con.execute("SELECT count(*) FROM ops.dq_open_failures").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM ops.dq_progress WHERE success").fetchall() == [(len(SUITES),)]


def test_missing_tables_and_columns_and_unknown_markets():
    con = warehouse(analytics=False)
    # the table of a suite does not exist yet: nothing to validate, the check passes
    result = run_suite(con, suite_for("analytics.rewards"), markets=MARKETS)
    assert (result.table_exists, result.success, result.expectations) == (False, True, [])
    # a contract column is missing: its expectations fail with a clear note, the others run
    con.execute("CREATE TABLE analytics.rewards (reward_key VARCHAR, campaign_id VARCHAR, status VARCHAR)")
    insert(con, "analytics.rewards", [dict(reward_key=rwd(1), campaign_id="camp-us", status="pending")])
    result = run_suite(con, suite_for("analytics.rewards"), markets=MARKETS)
    by_name = {e.name: e for e in result.expectations}
    assert by_name["amount_non_negative"].note == "missing column(s): amount"
    assert by_name["not_eligible_has_reason"].note == "missing column(s): reason"
    assert by_name["status_in_set"].success and by_name["reward_key_format"].success
    # the ledger does not exist: the rewards/ledger agreement is skipped, not failed
    assert by_name["status_matches_ledger"].success and "does not exist yet" in by_name["status_matches_ledger"].note
    assert by_name["campaign_id_friend_customer_key_unique"].note == "missing column(s): friend_customer_key"
    # markets unknown (no programs, no staging.market_rules): market expectations are skipped
    insert(con, "staging.orders", [staging_order("sf:o1", 1, market_id="anything")])
    result = run_suite(con, suite_for("staging.orders"))
    by_name = {e.name: e for e in result.expectations}
    assert by_name["market_id_in_set"].success and by_name["market_id_in_set"].note == "skipped: $markets unknown"
    assert result.success


def test_currencies_come_from_staging_currencies():
    con = warehouse()
    insert(con, "staging.orders", [staging_order("sf:o1", 1, currency="USD")])
    con.execute("DELETE FROM staging.currencies WHERE code = 'USD'")
    con.execute("INSERT INTO staging.currencies VALUES ('ZZZ', 2)")
    result = run_suite(con, suite_for("staging.orders"), markets=MARKETS)
    assert [e.name for e in result.failed] == ["currency_in_set"]
    assert result.failed[0].unexpected_sample == ["USD"]


def test_dates_are_compared_as_values_not_text():
    """A timestamp far in the past is still a valid placed_at (only NULL fails)."""
    con = warehouse()
    insert(con, "staging.orders", [staging_order("sf:o1", 1, placed_at=T0 - timedelta(days=3650))])
    assert run_suite(con, suite_for("staging.orders"), markets=MARKETS).success

"""Test helpers: a small warehouse built by hand (staging from the real DDL, analytics/audit tables
with the contract columns of contracts §6), and row helpers that insert by column name."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import duckdb

from referral_pipeline.transform.staging.runner import ensure_staging_schema
from referral_pipeline.warehouse.schema import ensure_schema

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)

ANALYTICS_DDL = """
CREATE TABLE IF NOT EXISTS analytics.customers (
    customer_key VARCHAR, email VARCHAR, email_canonical VARCHAR, first_name VARCHAR, last_name VARCHAR,
    market_id VARCHAR, sf_contact_id VARCHAR, sf_account_id VARCHAR, first_order_at TIMESTAMPTZ,
    orders_count INTEGER, net_revenue DECIMAL(18,4), referral_code VARCHAR, loyalty_points_balance INTEGER,
    loyalty_vip_tier VARCHAR, email_normalized VARCHAR, marketing_consent BOOLEAN, created_at TIMESTAMPTZ,
    source_record_keys VARCHAR[]);
CREATE TABLE IF NOT EXISTS analytics.orders (
    order_key VARCHAR, source VARCHAR, source_order_id VARCHAR, customer_key VARCHAR, market_id VARCHAR,
    placed_at TIMESTAMPTZ, status VARCHAR, currency VARCHAR, gross_amount DECIMAL(18,4), discount_amount DECIMAL(18,4),
    tax_amount DECIMAL(18,4), shipping_amount DECIMAL(18,4), refunded_amount DECIMAL(18,4), net_amount DECIMAL(18,4),
    coupon_codes VARCHAR[], referral_code VARCHAR, attribution_id VARCHAR, ip_address VARCHAR, user_agent VARCHAR,
    order_number VARCHAR, channel VARCHAR, device_id VARCHAR, email_normalized VARCHAR, updated_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS analytics.referral_attribution (
    order_key VARCHAR, friend_customer_key VARCHAR, advocate_customer_key VARCHAR, campaign_id VARCHAR,
    market_id VARCHAR, attribution_method VARCHAR, referral_code VARCHAR, clicked_at TIMESTAMPTZ,
    signed_up_at TIMESTAMPTZ, placed_at TIMESTAMPTZ, net_amount DECIMAL(18,4), currency VARCHAR,
    is_new_customer BOOLEAN, reward_key VARCHAR);
CREATE TABLE IF NOT EXISTS analytics.rewards (
    reward_key VARCHAR, campaign_id VARCHAR, market_id VARCHAR, advocate_customer_key VARCHAR,
    friend_customer_key VARCHAR, order_key VARCHAR, status VARCHAR, reason VARCHAR, amount DECIMAL(18,4),
    currency VARCHAR, fraud_rules VARCHAR[], created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS analytics.reward_ledger (
    reward_key VARCHAR, seq INTEGER, from_status VARCHAR, to_status VARCHAR, reason VARCHAR,
    occurred_at TIMESTAMPTZ, run_id VARCHAR);
CREATE TABLE IF NOT EXISTS audit.fraud_flags (
    flag_id VARCHAR, rule VARCHAR, severity VARCHAR, subject_type VARCHAR, subject_key VARCHAR,
    advocate_customer_key VARCHAR, friend_customer_key VARCHAR, evidence JSON, detected_at TIMESTAMPTZ, run_id VARCHAR);
"""

FUNNEL_DDL = """
CREATE TABLE IF NOT EXISTS analytics.referral_funnel_daily (
    day DATE, market_id VARCHAR, campaign_id VARCHAR, channel VARCHAR, shares BIGINT, clicks BIGINT, signups BIGINT,
    conversions BIGINT, revenue DECIMAL(18,4), rewards_approved BIGINT);
"""

CUS = {i: f"cus_{i:016x}" for i in range(1, 200)}


def rwd(i: int) -> str:
    return f"rwd_{i:016x}"


def warehouse(path: str = ":memory:", analytics: bool = True) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(path)
    ensure_schema(con)
    ensure_staging_schema(con)
    if analytics:
        con.execute(ANALYTICS_DDL)
    return con


def unconstrained(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Re-creates ``table`` with the same columns and types but no NOT NULL / key constraints, so a
    test can plant rows the canonical DDL would refuse (the suites must catch them anyway)."""
    schema, name = table.split(".")
    con.execute(f"CREATE TABLE {schema}.__tmp AS SELECT * FROM {table} LIMIT 0")
    con.execute(f"DROP TABLE {table}")
    con.execute(f"ALTER TABLE {schema}.__tmp RENAME TO {name}")


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: Iterable[dict[str, Any]]) -> None:
    """Inserts rows given as {column: value}; values are bound as parameters."""
    for row in rows:
        cols = list(row)
        con.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                    [row[c] for c in cols])


# ---- good rows ----------------------------------------------------------------------------------

def _split(key: str | None) -> tuple[str, str]:
    return tuple(key.split(":", 1)) if key and ":" in key else ("sf", key or "nokey")


def staging_customer(key: str, seq: int, **kw) -> dict[str, Any]:
    source, sid = _split(key)
    row = dict(customer_record_key=key, source=source, source_type="salesforce", source_customer_id=sid,
               email_raw=f"{sid}@example.com", email_normalized=f"{sid}@example.com", first_name="Ann",
               last_name="Lee", marketing_consent=True, country="US", created_at=T0, updated_at=T0, load_seq=seq)
    row.update(kw)
    return row


def staging_order(key: str, seq: int, **kw) -> dict[str, Any]:
    source, sid = _split(key)
    row = dict(order_key=key, source=source, source_type="salesforce", source_order_id=sid, order_number=sid,
               customer_record_key="sf:c1", email_normalized="c1@example.com", market_id="us",
               placed_at=T0, updated_at=T0, status="paid", source_status="Activated", currency="USD",
               gross_amount=100, discount_amount=10, tax_amount=8, shipping_amount=5, refunded_amount=0,
               net_amount=90, coupon_codes=["FRIEND10"], channel="web", load_seq=seq)
    row.update(kw)
    return row


def staging_refund(key: str, seq: int, **kw) -> dict[str, Any]:
    row = dict(refund_key=key, order_key="sf:o1", source="sf", source_refund_id=(key or "x").split(":")[-1],
               amount=20, currency="USD", created_at=T0 + timedelta(days=2), reason="damaged", kind="refund",
               load_seq=seq)
    row.update(kw)
    return row


def referral_event(key: str, seq: int, **kw) -> dict[str, Any]:
    row = dict(event_key=key, source="fb", kind="click", campaign_id="camp-us", occurred_at=T0,
               advocate_email="c1@example.com", friend_email="c2@example.com", referral_code="ANN1",
               channel="email", ip_address="10.0.0.1", load_seq=seq)
    row.update(kw)
    return row


def customer(key: str, **kw) -> dict[str, Any]:
    local = (key or "x")[-4:].lower()
    row = dict(customer_key=key, email=f"{local}@Example.com", email_canonical=f"{local}@example.com",
               first_name="Ann", last_name="Lee", market_id="us", first_order_at=T0, orders_count=1,
               net_revenue=90, loyalty_points_balance=10, email_normalized=f"{local}@example.com",
               created_at=T0)
    row.update(kw)
    return row


def order(key: str, **kw) -> dict[str, Any]:
    source, sid = _split(key)
    row = dict(order_key=key, source=source, source_order_id=sid, customer_key=CUS[1], market_id="us", placed_at=T0,
               status="paid", currency="USD", gross_amount=100, discount_amount=10, tax_amount=8, shipping_amount=5,
               refunded_amount=0, net_amount=90, coupon_codes=[], ip_address="10.0.0.9", updated_at=T0)
    row.update(kw)
    return row


def attribution(key: str, **kw) -> dict[str, Any]:
    row = dict(order_key=key, friend_customer_key=CUS[2], advocate_customer_key=CUS[1], campaign_id="camp-us",
               market_id="us", attribution_method="coupon", placed_at=T0, net_amount=90, currency="USD",
               is_new_customer=True, reward_key=rwd(1))
    row.update(kw)
    return row


def reward(key: str, friend: int = 2, **kw) -> dict[str, Any]:
    row = dict(reward_key=key, campaign_id="camp-us", market_id="us", advocate_customer_key=CUS[1],
               friend_customer_key=CUS.get(friend), order_key="sf:o1", status="approved", reason=None, amount=20,
               currency="USD", fraud_rules=[], created_at=T0, updated_at=T0 + timedelta(days=30))
    row.update(kw)
    return row


def ledger_for(key: str, statuses: list[str], **kw) -> list[dict[str, Any]]:
    rows, prev = [], None
    for i, st in enumerate(statuses, start=1):
        rows.append(dict(reward_key=key, seq=i, from_status=prev, to_status=st, reason=None,
                         occurred_at=T0 + timedelta(days=i), run_id="r0", **kw))
        prev = st
    return rows


def fraud_flag(key: str, **kw) -> dict[str, Any]:
    row = dict(flag_id=key, rule="SAME_IP_AS_ADVOCATE", severity="hold", subject_type="order", subject_key="ct:o2",
               advocate_customer_key=CUS[1], friend_customer_key=CUS[2], evidence='{"ip": "10.0.0.1"}',
               detected_at=T0, run_id="r0")
    row.update(kw)
    return row


def good_world(con: duckdb.DuckDBPyConnection) -> None:
    """A small consistent warehouse on which every suite passes."""
    insert(con, "staging.customers", [staging_customer("sf:c1", 1), staging_customer("ct:c2", 2, source_type="commercetools"),
                                      staging_customer("bc:c3", 3, source_type="bigcommerce", email_normalized=None)])
    insert(con, "staging.orders", [staging_order("sf:o1", 1), staging_order("ct:o2", 2, customer_record_key=None,
                                                                           source_type="commercetools"),
                                   staging_order("bc:o3", 3, source_type="bigcommerce", coupon_codes=None)])
    insert(con, "staging.refunds", [staging_refund("sf:r1", 1), staging_refund("ct:r2", 2, order_key="ct:o2",
                                                                              kind="cancellation", currency=None)])
    insert(con, "staging.referral_events", [referral_event("fb:share:1", 1, kind="share", friend_email=None),
                                            referral_event("fb:click:2", 2),
                                            referral_event("fb:signup:3", 3, kind="signup"),
                                            referral_event("fb:purchase:4", 4, kind="purchase", amount=90, currency="USD",
                                                           order_id="ct:o2")])
    insert(con, "analytics.customers", [customer(CUS[1]), customer(CUS[2], market_id=None, loyalty_points_balance=None),
                                        customer(CUS[3], email=None, email_canonical=None)])
    insert(con, "analytics.orders", [order("sf:o1"), order("ct:o2", customer_key=CUS[2]),
                                     order("bc:o3", customer_key=CUS[3], status="refunded", refunded_amount=90,
                                           net_amount=0)])
    insert(con, "analytics.referral_attribution", [attribution("ct:o2", reward_key=rwd(1))])
    insert(con, "analytics.rewards", [reward(rwd(1), order_key="ct:o2"),
                                      reward(rwd(2), friend=3, order_key="bc:o3", status="not_eligible",
                                             reason="NOT_NEW_CUSTOMER")])
    insert(con, "analytics.reward_ledger", ledger_for(rwd(1), ["pending", "approved"]) + ledger_for(rwd(2), ["not_eligible"]))
    insert(con, "audit.fraud_flags", [fraud_flag("f1"), fraud_flag("f2", rule="SELF_REFERRAL", severity="reject",
                                                                   subject_type="signup", subject_key="fb:signup:3")])

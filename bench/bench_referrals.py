"""Benchmark of the referral stages (attribution, promo codes, fraud, rewards, reports) on a
synthetic warehouse built directly in DuckDB: N customers, 5 orders each on average, 5% advocates
with shares, 10% referred friends (click, sign-up for half, friend incentive, a first order that
carries the referral by coupon, referral code, Friendbuy purchase row or sign-up). As in the
identity stage, ``analytics.orders`` is a view joining the orders with ``identity.customer_map``.
Times a full first run, a re-run with no change, and a run after a 1% delta (new orders, new
shares, refunds of 1% of the referred orders).

    .venv/bin/python bench/bench_referrals.py [--customers 1000000] [--threads 2] [--db PATH]
"""
from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from referral_pipeline.transform.attribution import run_attribution, run_promo_codes, run_referral_events  # noqa: E402
from referral_pipeline.transform.reports import run_funnel, run_reconciliation  # noqa: E402
from referral_pipeline.transform.rewards import run_fraud, run_rewards  # noqa: E402
from referral_pipeline_tests.transform.referrals_support import new_db, programs  # noqa: E402

AS_OF = datetime(2026, 11, 15, tzinfo=timezone.utc)

WORLD_SQL = """
CREATE OR REPLACE MACRO rnd(i, salt) AS (hash(i, salt) % 1000000) / 1000000.0;
INSERT INTO analytics.customers (customer_key, email, email_normalized, email_canonical, market_id, created_at)
SELECT 'cus_' || i, 'p' || i || '@example.com', 'p' || i || '@example.com', 'p' || i || '@example.com',
       CASE WHEN rnd(i, 1) < 0.6 THEN 'us' ELSE 'uk' END,
       TIMESTAMPTZ '2025-01-01' + to_seconds(CAST(rnd(i, 2) * 365 * 86400 AS BIGINT))
FROM range($n) t(i);
INSERT INTO identity.customer_map (identity_key, customer_key, email_normalized_at_assignment)
SELECT 'sf:' || i, 'cus_' || i, 'p' || i || '@example.com' FROM range($n) t(i);
INSERT INTO identity.email_index (email_normalized, customer_key) SELECT email, customer_key FROM analytics.customers;
-- advocates: i % 20 = 0; friends: i % 20 in (1, 2), referred by advocate i - i % 20
"""

EVENTS_SQL = """
INSERT INTO staging.referral_events (event_key, source, kind, campaign_id, occurred_at, advocate_customer_id,
    referral_code, channel, ip_address)
SELECT 'fb:share:' || i, 'fb', 'share', 'camp-' || c.market_id, TIMESTAMPTZ '2026-03-01' + to_seconds(CAST(rnd(i, 3) * 30 * 86400 AS BIGINT)),
       CAST(i AS VARCHAR), 'CODE' || i, (['email', 'facebook', 'sms'])[1 + i % 3], '10.' || (i % 250) || '.' || (i // 250 % 250) || '.1'
FROM range(0, $n, 20) t(i) JOIN analytics.customers c ON c.customer_key = 'cus_' || i;
-- friends: click, (signup), incentive, first order by one of four signals
CREATE TEMP TABLE fr AS
SELECT f.i, f.i - f.i % 20 AS a, c.market_id AS m, TIMESTAMPTZ '2026-04-01' + to_seconds(CAST(rnd(f.i, 4) * 150 * 86400 AS BIGINT)) AS t0,
       CAST(floor(rnd(f.i, 5) * 4) AS INT) AS signal
FROM (SELECT i FROM range($n) t(i) WHERE i % 20 IN (1, 2)) f JOIN analytics.customers c ON c.customer_key = 'cus_' || f.i;
INSERT INTO staging.referral_events (event_key, source, kind, campaign_id, occurred_at, advocate_customer_id, referral_code, ip_address, channel)
SELECT 'fb:click:' || i, 'fb', 'click', 'camp-' || m, t0, CAST(a AS VARCHAR), 'CODE' || a, '20.' || (i % 250) || '.' || (i // 250 % 250) || '.2', 'email' FROM fr;
INSERT INTO staging.referral_events (event_key, source, kind, campaign_id, occurred_at, advocate_customer_id, friend_customer_id, referral_code, ip_address)
SELECT 'fb:signup:' || i, 'fb', 'signup', 'camp-' || m, t0 + INTERVAL 1 HOUR, CAST(a AS VARCHAR), CAST(i AS VARCHAR), 'CODE' || a,
       '20.' || (i % 250) || '.' || (i // 250 % 250) || '.2' FROM fr WHERE signal IN (3, 2);
INSERT INTO staging.referral_events (event_key, source, kind, campaign_id, occurred_at, advocate_customer_id, friend_customer_id, coupon_code)
SELECT 'fb:incentive:' || i, 'fb', 'friend_incentive', 'camp-' || m, t0 + INTERVAL 2 HOUR, CAST(a AS VARCHAR), CAST(i AS VARCHAR), 'FRIEND-' || i FROM fr;
INSERT INTO staging.referral_events (event_key, source, kind, campaign_id, occurred_at, advocate_customer_id, friend_customer_id, order_id)
SELECT 'fb:purchase:' || i, 'fb', 'purchase', 'camp-' || m, t0 + INTERVAL 3 DAY, CAST(a AS VARCHAR), CAST(i AS VARCHAR), 'F' || i FROM fr WHERE signal = 1;
INSERT INTO staging.referral_events (event_key, source, kind, campaign_id, occurred_at, advocate_customer_id, friend_customer_id, amount)
SELECT 'fb:reward:' || i, 'fb', 'advocate_reward', 'camp-' || m, t0 + INTERVAL 40 DAY, CAST(a AS VARCHAR), CAST(i AS VARCHAR), 20 FROM fr WHERE i % 7 <> 0;
INSERT INTO staging.coupons (coupon_key, source, code, source_id, is_active, max_uses, store, name)
SELECT 'ct:' || i, 'ct', 'FRIEND-' || i, CAST(i AS VARCHAR), TRUE, 1, m, 'Refer-a-friend: friend incentive' FROM fr WHERE i % 50 <> 1;
"""

ORDERS_SQL = """
DROP TABLE analytics.orders;
CREATE TABLE bench_orders (
    order_key VARCHAR, source VARCHAR, source_order_id VARCHAR, customer_record_key VARCHAR, market_id VARCHAR,
    placed_at TIMESTAMPTZ, status VARCHAR, currency VARCHAR, gross_amount DECIMAL(18,4), discount_amount DECIMAL(18,4),
    tax_amount DECIMAL(18,4), shipping_amount DECIMAL(18,4), refunded_amount DECIMAL(18,4), net_amount DECIMAL(18,4),
    coupon_codes VARCHAR[], referral_code VARCHAR, attribution_id VARCHAR, ip_address VARCHAR, user_agent VARCHAR,
    order_number VARCHAR, channel VARCHAR, device_id VARCHAR, email_normalized VARCHAR, updated_at TIMESTAMPTZ,
    load_seq BIGINT);
CREATE VIEW analytics.orders AS
SELECT o.order_key, o.source, o.source_order_id, m.customer_key, o.market_id, o.placed_at, o.status, o.currency,
       o.gross_amount, o.discount_amount, o.tax_amount, o.shipping_amount, o.refunded_amount, o.net_amount,
       o.coupon_codes, o.referral_code, o.attribution_id, o.ip_address, o.user_agent, o.order_number, o.channel,
       o.device_id, o.email_normalized, o.updated_at, o.load_seq
FROM bench_orders o LEFT JOIN identity.customer_map m ON m.identity_key = o.customer_record_key;
INSERT INTO bench_orders
SELECT 'sf:' || k AS order_key, 'sf', CAST(k AS VARCHAR), 'sf:' || cust, c.market_id,
       TIMESTAMPTZ '2026-01-01' + to_seconds(CAST(rnd(k, 7) * 300 * 86400 AS BIGINT)),
       CASE WHEN rnd(k, 8) < 0.06 THEN 'cancelled' WHEN rnd(k, 8) < 0.10 THEN 'refunded' ELSE 'completed' END,
       CASE c.market_id WHEN 'us' THEN 'USD' ELSE 'GBP' END, 120, 0, 0, 0, 0, 120,
       CASE WHEN rnd(k, 9) < 0.05 THEN ['SPRING20'] ELSE [] END, NULL, NULL, '30.' || (k % 250) || '.' || (k // 250 % 250) || '.3',
       NULL, 'N' || k, NULL, NULL, NULL, NULL, k
FROM (SELECT k, CASE WHEN h % 20 IN (1, 2) THEN h + 2 ELSE h END AS cust
      FROM (SELECT k, CAST(hash(k, 6) % ($n - 20) AS BIGINT) AS h FROM range($orders) t(k))) o
JOIN analytics.customers c ON c.customer_key = 'cus_' || o.cust;
-- friends' first referred orders
INSERT INTO bench_orders
SELECT 'ct:f' || i, 'ct', 'f' || i, 'sf:' || i, m, t0 + INTERVAL 3 DAY,
       CASE WHEN i % 17 = 0 THEN 'refunded' ELSE 'completed' END, CASE m WHEN 'us' THEN 'USD' ELSE 'GBP' END,
       90, 10, 5, 5, CASE WHEN i % 17 = 0 THEN 80 ELSE 0 END, CASE WHEN i % 17 = 0 THEN 0 ELSE 80 END,
       CASE WHEN signal = 0 THEN ['FRIEND-' || i] ELSE [] END, CASE WHEN signal = 2 THEN 'CODE' || a END, NULL,
       '20.' || (i % 250) || '.' || (i // 250 % 250) || '.2', NULL, 'F' || i, NULL, NULL, NULL, NULL, 6000000 + i
FROM fr;
UPDATE analytics.customers c SET first_order_at = f.first_at
FROM (SELECT customer_record_key, min(placed_at) AS first_at FROM bench_orders WHERE status <> 'cancelled' GROUP BY 1) f
WHERE f.customer_record_key = 'sf:' || substr(c.customer_key, 5);
"""

DELTA_SQL = """
INSERT INTO bench_orders
SELECT 'sf:d' || k, 'sf', 'd' || k, 'sf:' || (hash(k, 11) % $n), 'us', TIMESTAMPTZ '2026-11-01' + to_seconds(k),
       'completed', 'USD', 60, 0, 0, 0, 0, 60, [], NULL, NULL, NULL, NULL, 'D' || k, NULL, NULL, NULL, NULL, 9000000 + k
FROM range($delta) t(k);
UPDATE bench_orders SET status = 'refunded', refunded_amount = 80, net_amount = 0, load_seq = 8000000 + load_seq
WHERE order_key IN (SELECT 'ct:f' || i FROM fr WHERE i % 100 = 41);
INSERT INTO staging.referral_events (event_key, source, kind, campaign_id, occurred_at, advocate_customer_id, referral_code, channel)
SELECT 'fb:share:d' || i, 'fb', 'share', 'camp-us', TIMESTAMPTZ '2026-11-02' + to_seconds(i), CAST(i * 20 AS VARCHAR), 'DCODE' || i, 'email'
FROM range($delta_events) t(i);
"""


def timed(label, fn, timings):
    started = time.perf_counter()
    result = fn()
    timings[label] = time.perf_counter() - started
    return result


def run_all(con, progs, as_of, run_id):
    timings = {}
    timed("referral_events", lambda: run_referral_events(con, progs, as_of), timings)
    timed("attribution", lambda: run_attribution(con, progs, as_of, run_id), timings)
    timed("promo_codes", lambda: run_promo_codes(con, progs, as_of), timings)
    timed("fraud_flags", lambda: run_fraud(con, progs, as_of, run_id), timings)
    rewards = timed("rewards", lambda: run_rewards(con, progs, as_of, run_id), timings)
    timed("funnel", lambda: run_funnel(con, progs, as_of), timings)
    timed("reconciliation", lambda: run_reconciliation(con, progs, as_of), timings)
    return timings, rewards


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--db", default=None, help="DuckDB file (default: a temporary file)")
    args = parser.parse_args(argv)
    n = args.customers
    tmp = tempfile.mkdtemp(prefix="bench-referrals-")
    con = new_db(args.db or str(Path(tmp) / "bench.duckdb"))
    con.execute(f"SET threads = {int(args.threads)}")
    progs = programs(advocate_monthly_cap=10, velocity={"advocate_per_24h": 5, "ip_per_hour": 3})
    started = time.perf_counter()
    con.execute(WORLD_SQL.replace("$n", str(n)))
    con.execute(EVENTS_SQL.replace("$n", str(n)))
    con.execute(ORDERS_SQL.replace("$orders", str(5 * n)).replace("$n", str(n)))
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
              for t in ("analytics.customers", "analytics.orders", "staging.referral_events")}
    print(f"world built in {time.perf_counter() - started:.1f} s: {counts}")

    full, rewards = run_all(con, progs, AS_OF, "full")
    print(f"full run: {sum(full.values()):.2f} s  " + "  ".join(f"{k} {v:.2f}" for k, v in full.items()))
    print(f"  rewards: {rewards.by_status}")
    again, rewards = run_all(con, progs, AS_OF, "again")
    print(f"re-run, no change: {sum(again.values()):.2f} s  ledger rows appended: {rewards.ledger_rows}  "
          + "  ".join(f"{k} {v:.2f}" for k, v in again.items()))
    con.execute(DELTA_SQL.replace("$delta_events", str(n // 100 // 20)).replace("$delta", str(5 * n // 100)).replace("$n", str(n)))
    delta, rewards = run_all(con, progs, AS_OF, "delta")
    print(f"after a 1% delta: {sum(delta.values()):.2f} s  ledger rows appended: {rewards.ledger_rows}  "
          + "  ".join(f"{k} {v:.2f}" for k, v in delta.items()))
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    con.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

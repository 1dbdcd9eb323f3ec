"""Benchmark of the identity stage: fills the staging tables synthetically with DuckDB ``range()``
(default 1M customer records of 700k people in three sources, 5M orders with 2.5% guest checkouts,
300k Friendbuy events), then times a full identity run, a re-run with no change, and an
incremental run after a 1% delta (changed and new customers, orders and events).

    .venv/bin/python bench/bench_identity.py [--customers 1000000] [--orders 5000000] [--db PATH] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402

from referral_pipeline.config.programs import load_programs  # noqa: E402
from referral_pipeline.resources import REPO_ROOT  # noqa: E402
from referral_pipeline.transform.identity.runner import ensure_identity_schema, run_identity  # noqa: E402

AS_OF = datetime(2026, 11, 1, tzinfo=timezone.utc)

FILL_CUSTOMERS = """
INSERT INTO staging.customers
SELECT src || ':' || CAST(100000000 + i AS VARCHAR), src, ['salesforce', 'commercetools', 'bigcommerce'][i % 3 + 1],
       CAST(100000000 + i AS VARCHAR),
       CASE WHEN i % 5 = 0 THEN upper(email) ELSE email END, email,
       'First' || p, 'Last' || p, NULL, p % 4 <> 0,
       ['US', 'GB', 'DE'][p % 3 + 1], CASE WHEN src = 'ct' THEN ['us', 'uk', 'eu'][p % 3 + 1] END,
       CASE WHEN src = 'sf' THEN '001' || CAST(p AS VARCHAR) END,
       TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_seconds(p * 20),
       TIMESTAMPTZ '2025-06-01 00:00:00+00' + to_seconds(i * 10), FALSE, i + 1
FROM (SELECT i, i % $people AS p, ['sf', 'ct', 'bc'][i % 3 + 1] AS src,
             'user' || CAST(i % $people AS VARCHAR) || '@' || ['example.com', 'gmail.com', 'mail.example.org', 'shop.example.net'][i % $people % 4 + 1] AS email
      FROM range($customers) r(i))
"""

FILL_ORDERS = """
INSERT INTO staging.orders
SELECT src || ':' || CAST(500000000 + j AS VARCHAR), src, ['salesforce', 'commercetools', 'bigcommerce'][j % 3 + 1],
       CAST(500000000 + j AS VARCHAR), 'N' || CAST(j AS VARCHAR),
       CASE WHEN guest THEN NULL ELSE src || ':' || CAST(100000000 + r AS VARCHAR) END,
       CASE WHEN guest THEN 'guest' || CAST(j % 60000 AS VARCHAR) || '@example.net' END,
       market, CASE WHEN src = 'ct' THEN market END,
       TIMESTAMPTZ '2025-06-01 00:00:00+00' + to_seconds(j * 6), TIMESTAMPTZ '2025-06-02 00:00:00+00' + to_seconds(j * 6),
       status, NULL, currency, gross, 0, gross * 0.07, 5, 0, gross, ['WELCOME10'][1:CAST(j % 10 = 0 AS INTEGER)],
       NULL, NULL, '10.' || CAST(j % 250 AS VARCHAR) || '.0.1', 'bench-agent', NULL, 'web', FALSE, $offset + j + 1
FROM (SELECT j, r, guest, src, market, ['USD', 'GBP', 'EUR'][list_position(['us', 'uk', 'eu'], market)] AS currency,
             CAST(20 + (j % 180) AS DECIMAL(18,4)) AS gross,
             CASE j % 25 WHEN 0 THEN 'cancelled' WHEN 1 THEN 'declined' WHEN 2 THEN 'refunded' WHEN 3 THEN 'incomplete'
                         ELSE 'completed' END AS status
      FROM (SELECT j, r, j % 40 = 0 AS guest,
                   ['sf', 'ct', 'bc'][r % 3 + 1] AS src,
                   CASE WHEN r % 3 = 1 THEN ['us', 'uk', 'eu'][r % $people % 3 + 1] ELSE 'us' END AS market
            FROM (SELECT j, (j * 7919) % $customers AS r FROM range($orders) t(j))))
"""

FILL_EVENTS = """
INSERT INTO staging.referral_events
SELECT 'fb:' || kind || ':' || CAST(k AS VARCHAR), 'fb', kind, 'camp-us',
       TIMESTAMPTZ '2026-04-01 00:00:00+00' + to_seconds(k * 30),
       CASE WHEN k % 2 = 0 THEN CAST(100000000 + adv AS VARCHAR) END,
       CASE WHEN k % 2 = 1 OR kind <> 'click' THEN 'user' || CAST(adv % $people AS VARCHAR) || '@' ||
            ['example.com', 'gmail.com', 'mail.example.org', 'shop.example.net'][adv % $people % 4 + 1] END,
       NULL,
       CASE WHEN kind = 'signup' THEN 'friend' || CAST(k AS VARCHAR) || '@example.com' END,
       'CODE' || CAST(adv AS VARCHAR), NULL, NULL, NULL, NULL, 'email', '10.1.' || CAST(k % 250 AS VARCHAR) || '.1',
       'bench-agent', NULL, NULL, $offset + k + 1
FROM (SELECT k, (k * 104729) % ($customers // 20) * 20 AS adv,
             CASE WHEN k % 6 = 0 THEN 'share' WHEN k % 6 = 1 THEN 'signup' ELSE 'click' END AS kind
      FROM range($events) e(k))
"""

# 1%: changed customers (a fifth with a new email), new customers, changed and new orders, new events
DELTA = [
    """UPDATE staging.customers SET
           email_normalized = CASE WHEN load_seq // 200 % 5 = 0 THEN 'changed' || email_normalized ELSE email_normalized END,
           first_name = first_name || 'x', updated_at = updated_at + INTERVAL 1 DAY,
           load_seq = load_seq + $bump
       WHERE load_seq % 200 = 7""",
    """INSERT INTO staging.customers SELECT replace(customer_record_key, ':1', ':9'), source, source_type,
           replace(source_customer_id, '1', '9'), email_raw, email_normalized, first_name, last_name, phone,
           marketing_consent, country, store, sf_account_id, created_at, updated_at, is_deleted, load_seq + $bump
       FROM staging.customers WHERE load_seq % 200 = 11""",
    """UPDATE staging.orders SET status = 'refunded', refunded_amount = net_amount, net_amount = 0,
           updated_at = updated_at + INTERVAL 3 DAY, load_seq = load_seq + $bump
       WHERE load_seq % 200 = 13""",
    """INSERT INTO staging.orders SELECT replace(order_key, ':5', ':8'), source, source_type,
           replace(source_order_id, '5', '8'), order_number, customer_record_key, email_normalized, market_id, store,
           placed_at + INTERVAL 30 DAY, updated_at + INTERVAL 30 DAY, status, source_status, currency, gross_amount,
           discount_amount, tax_amount, shipping_amount, refunded_amount, net_amount, coupon_codes, referral_code,
           attribution_id, ip_address, user_agent, device_id, channel, is_deleted, load_seq + $bump
       FROM staging.orders WHERE load_seq % 200 = 17""",
    """INSERT INTO staging.referral_events SELECT replace(event_key, ':', ':d'), source, kind, campaign_id,
           occurred_at + INTERVAL 1 DAY, advocate_customer_id, advocate_email, friend_customer_id, friend_email,
           referral_code, coupon_code, order_id, amount, currency, channel, ip_address, user_agent, new_customer,
           reward_type, load_seq + $bump
       FROM staging.referral_events WHERE load_seq % 100 = 19""",
]


def fill(con: duckdb.DuckDBPyConnection, customers: int, orders: int, events: int) -> None:
    people = max(1, customers * 7 // 10)
    con.execute(FILL_CUSTOMERS, {"people": people, "customers": customers})
    con.execute(FILL_ORDERS, {"people": people, "customers": customers, "orders": orders, "offset": customers})
    con.execute(FILL_EVENTS, {"people": people, "customers": customers, "events": events,
                              "offset": customers + orders})


def apply_delta(con: duckdb.DuckDBPyConnection) -> None:
    bump = 10 ** 9
    for sql in DELTA:
        con.execute(sql, {"bump": bump})


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(label: str, fn):
    """Wall time, and CPU time of this process (both threads): on a shared machine the CPU time is
    the steadier measure of the work done."""
    start, cpu = time.perf_counter(), cpu_seconds()
    out = fn()
    elapsed = time.perf_counter() - start
    print(f"{label:<52} {elapsed:7.2f} s wall {cpu_seconds() - cpu:7.2f} s CPU", flush=True)
    return out, elapsed


def open_bench_db(path: str | None, threads: int, prefix: str):
    """(connection with the identity schema, temporary directory to keep alive or None, path): the
    DuckDB file at ``path``, or a fresh one in a temporary directory."""
    tmp = None
    if path is None:
        tmp = tempfile.TemporaryDirectory(prefix=prefix)
        path = os.path.join(tmp.name, "bench.duckdb")
    con = duckdb.connect(path, config={"threads": threads})
    ensure_identity_schema(con)
    return con, tmp, path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=5_000_000)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--db", default=None, help="DuckDB file (default: a temporary file)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    con, tmp, args.db = open_bench_db(args.db, args.threads, "bench-identity-")
    programs = load_programs(REPO_ROOT / "data" / "programs.yaml")
    print(f"identity benchmark: {args.customers:,} customer records, {args.orders:,} orders, {args.events:,} events, "
          f"{args.threads} threads, {args.db}")
    timed("fill staging (not part of the stage)", lambda: fill(con, args.customers, args.orders, args.events))
    con.execute("CHECKPOINT")
    full, t_full = timed("full run (empty identity tables)", lambda: run_identity(con, programs, "full", AS_OF))
    print("   ", full.as_metadata())
    print("    slowest steps:", full.slowest_steps())
    same, t_same = timed("re-run, no input change", lambda: run_identity(con, programs, "again", AS_OF))
    print("   ", same.as_metadata())
    print("    slowest steps:", same.slowest_steps())
    timed("apply a 1% delta to staging (not part of the stage)", lambda: apply_delta(con))
    inc, t_inc = timed("incremental run after the 1% delta", lambda: run_identity(con, programs, "delta", AS_OF))
    print("   ", inc.as_metadata())
    print("    slowest steps:", inc.slowest_steps())
    rebuild, t_rebuild = timed("rebuild (map kept, outputs recomputed)",
                               lambda: run_identity(con, programs, "rebuild", AS_OF, rebuild=True))
    print("    slowest steps:", rebuild.slowest_steps())
    counts = con.execute("""SELECT (SELECT count(*) FROM identity.customer_map), (SELECT count(*) FROM identity.email_index),
                                   (SELECT count(*) FROM analytics.customers), (SELECT count(*) FROM analytics.orders)""").fetchall()[0]
    print(f"rows: customer_map {counts[0]:,}, email_index {counts[1]:,}, analytics.customers {counts[2]:,}, "
          f"analytics.orders {counts[3]:,}")
    print(f"incremental / full = {t_inc / t_full:.1%}; no-change re-run = {t_same:.2f} s; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    con.close()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()

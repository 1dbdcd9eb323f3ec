"""Benchmark of the whole transform chain on `large`-sized staging: identity, then the referral
stages (events, attribution, promo codes, fraud, rewards, funnel, reconciliation), loaded straight
into staging (no extraction): 1M customer records, 5M orders, 300k Friendbuy events from
``bench_identity``'s generator, plus the referral activity that makes the referral stages work
(100k referred friends: a first order carrying a coupon, a referral code, a Friendbuy purchase row
or a referral sign-up; clicks, incentives, platform coupons, distributed rewards).

Times a full run, an incremental run after a 1% delta (``bench_identity``'s delta plus new
referred orders; by default its changed rows are written as the staging runner writes them, deleted
and re-inserted, ``--delta update`` keeps ``bench_identity``'s in-place UPDATEs) and a run with no
change; reports wall and CPU seconds, peak RSS, the load
average of the machine (it is shared), and each run as a ratio to a plain DuckDB scan of the same
staging tables (``count(*)`` and ``sum(hash(column))`` over every column).

    .venv/bin/python bench/bench_chain.py [--customers 1000000] [--orders 5000000] [--events 300000] [--threads 2]
                                          [--delta staged|update]
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402

from bench.bench_identity import DELTA, apply_delta, cpu_seconds, fill, open_bench_db  # noqa: E402
from referral_pipeline.config.programs import load_programs  # noqa: E402
from referral_pipeline.resources import REPO_ROOT  # noqa: E402
from referral_pipeline.transform.identity.runner import run_identity  # noqa: E402
from referral_pipeline.transform.attribution import run_attribution, run_promo_codes, run_referral_events  # noqa: E402
from referral_pipeline.transform.reports import run_funnel, run_reconciliation  # noqa: E402
from referral_pipeline.transform.rewards import run_fraud, run_rewards  # noqa: E402

AS_OF = datetime(2026, 11, 1, tzinfo=timezone.utc)
STAGING = ("staging.customers", "staging.orders", "staging.referral_events", "staging.coupons")

# Referred friends: records f with f % 10 = 1 (10% of the records), referred by the advocate record
# a = f - f % 20 whose code 'CODE<a>' bench_identity's shares carry; the signal of the first order
# is f // 10 % 4: 0 coupon, 1 Friendbuy purchase row (orderId = order_key), 2 referral code, 3 sign-up.
REFERRALS = """
CREATE OR REPLACE TEMP TABLE bench_friends AS
SELECT f, f - f % 20 AS a, f // 10 % 4 AS signal, ['sf', 'ct', 'bc'][f % 3 + 1] AS src,
       'user' || CAST(f % $people AS VARCHAR) || '@' ||
           ['example.com', 'gmail.com', 'mail.example.org', 'shop.example.net'][f % $people % 4 + 1] AS email,
       TIMESTAMPTZ '2026-06-01 00:00:00+00' + to_seconds(f * 11 % (120 * 86400)) AS t0
FROM range(1, $customers, 10) r(f);
INSERT INTO staging.referral_events BY NAME
SELECT 'fb:click:f' || f AS event_key, 'fb' AS source, 'click' AS kind, 'camp-us' AS campaign_id, t0 AS occurred_at,
       CAST(100000000 + a AS VARCHAR) AS advocate_customer_id, 'CODE' || a AS referral_code, 'email' AS channel,
       '10.2.' || (f % 250) || '.1' AS ip_address, $seq + f AS load_seq
FROM bench_friends;
INSERT INTO staging.referral_events BY NAME
SELECT 'fb:incentive:f' || f AS event_key, 'fb' AS source, 'friend_incentive' AS kind, 'camp-us' AS campaign_id,
       t0 + INTERVAL 1 HOUR AS occurred_at, CAST(100000000 + a AS VARCHAR) AS advocate_customer_id,
       email AS friend_email, 'FRIEND-' || f AS coupon_code, 10 AS amount, $seq + 1000000 + f AS load_seq
FROM bench_friends;
INSERT INTO staging.referral_events BY NAME
SELECT 'fb:signup:f' || f AS event_key, 'fb' AS source, 'signup' AS kind, 'camp-us' AS campaign_id,
       t0 + INTERVAL 2 HOUR AS occurred_at, CAST(100000000 + a AS VARCHAR) AS advocate_customer_id,
       email AS friend_email, 'CODE' || a AS referral_code, '10.3.' || (f % 250) || '.1' AS ip_address,
       $seq + 2000000 + f AS load_seq
FROM bench_friends WHERE signal = 3;
INSERT INTO staging.referral_events BY NAME
SELECT 'fb:purchase:f' || f AS event_key, 'fb' AS source, 'purchase' AS kind, 'camp-us' AS campaign_id,
       t0 + INTERVAL 3 DAY AS occurred_at, CAST(100000000 + a AS VARCHAR) AS advocate_customer_id,
       email AS friend_email, src || ':F' || f AS order_id, 90 AS amount, $seq + 3000000 + f AS load_seq
FROM bench_friends WHERE signal = 1;
INSERT INTO staging.referral_events BY NAME
SELECT 'fb:reward:f' || f AS event_key, 'fb' AS source, 'advocate_reward' AS kind, 'camp-us' AS campaign_id,
       t0 + INTERVAL 40 DAY AS occurred_at, CAST(100000000 + a AS VARCHAR) AS advocate_customer_id,
       email AS friend_email, 20 AS amount, $seq + 4000000 + f AS load_seq
FROM bench_friends WHERE f % 7 <> 0;
INSERT INTO staging.coupons BY NAME
SELECT 'ct:f' || f AS coupon_key, 'ct' AS source, 'FRIEND-' || f AS code, 'f' || f AS source_id, TRUE AS is_active,
       1 AS max_uses, TRUE AS requires_code, 'us' AS store, 'Refer-a-friend: friend incentive' AS name,
       $seq + 5000000 + f AS load_seq
FROM bench_friends WHERE f % 50 <> 1;
INSERT INTO staging.orders BY NAME
SELECT src || ':F' || f AS order_key, src AS source, ['salesforce', 'commercetools', 'bigcommerce'][f % 3 + 1] AS source_type,
       'F' || f AS source_order_id, 'NF' || f AS order_number, src || ':' || CAST(100000000 + f AS VARCHAR) AS customer_record_key,
       'us' AS market_id, CASE WHEN src = 'ct' THEN 'us' END AS store, t0 + INTERVAL 3 DAY AS placed_at,
       t0 + INTERVAL 3 DAY AS updated_at, CASE WHEN f % 17 = 0 THEN 'refunded' ELSE 'completed' END AS status,
       'USD' AS currency, 90 AS gross_amount, 10 AS discount_amount, 5 AS tax_amount, 5 AS shipping_amount,
       CASE WHEN f % 17 = 0 THEN 80 ELSE 0 END AS refunded_amount, CASE WHEN f % 17 = 0 THEN 0 ELSE 80 END AS net_amount,
       CASE WHEN signal = 0 THEN ['FRIEND-' || f] ELSE [] END AS coupon_codes,
       CASE WHEN signal = 2 THEN 'code' || a END AS referral_code, '10.3.' || (f % 250) || '.1' AS ip_address,
       'bench-agent' AS user_agent, 'web' AS channel, FALSE AS is_deleted, $seq + 6000000 + f AS load_seq
FROM bench_friends;
"""

# On top of bench_identity's delta: 1% more referred friends' first orders (with their clicks).
REFERRAL_DELTA = """
INSERT INTO staging.referral_events BY NAME
SELECT 'fb:click:d' || f AS event_key, 'fb' AS source, 'click' AS kind, 'camp-us' AS campaign_id,
       TIMESTAMPTZ '2026-10-20 00:00:00+00' + to_seconds(f) AS occurred_at,
       CAST(100000000 + f - f % 20 AS VARCHAR) AS advocate_customer_id, 'CODE' || (f - f % 20) AS referral_code,
       '10.4.' || (f % 250) || '.1' AS ip_address, $seq + f AS load_seq
FROM range(5, $customers, 1000) r(f);
INSERT INTO staging.orders BY NAME
SELECT 'sf:D' || f AS order_key, 'sf' AS source, 'salesforce' AS source_type, 'D' || f AS source_order_id,
       'ND' || f AS order_number, 'sf:' || CAST(100000000 + f AS VARCHAR) AS customer_record_key, 'us' AS market_id,
       TIMESTAMPTZ '2026-10-21 00:00:00+00' + to_seconds(f) AS placed_at, TIMESTAMPTZ '2026-10-21 00:00:00+00' AS updated_at,
       'completed' AS status, 'USD' AS currency, 70 AS gross_amount, 0 AS discount_amount, 0 AS tax_amount,
       0 AS shipping_amount, 0 AS refunded_amount, 70 AS net_amount, CAST([] AS VARCHAR[]) AS coupon_codes,
       'code' || (f - f % 20) AS referral_code, '10.4.' || (f % 250) || '.1' AS ip_address, FALSE AS is_deleted,
       $seq + 1000000 + f AS load_seq
FROM range(5, $customers, 1000) r(f);
"""


# bench_identity's delta as the staging runner writes it (transform/staging/runner.py): a changed row
# is deleted and its new version inserted, so it lands at the end of the table (bench_identity's
# UPDATEs rewrite rows in place, in every row group, which no staging run does).
STAGED_DELTA = [
    """CREATE OR REPLACE TEMP TABLE bench_changed_customers AS
       SELECT * REPLACE (CASE WHEN load_seq // 200 % 5 = 0 THEN 'changed' || email_normalized ELSE email_normalized END
                             AS email_normalized, first_name || 'x' AS first_name,
                         updated_at + INTERVAL 1 DAY AS updated_at, load_seq + $bump AS load_seq)
       FROM staging.customers WHERE load_seq % 200 = 7""",
    "DELETE FROM staging.customers WHERE customer_record_key IN (SELECT customer_record_key FROM bench_changed_customers)",
    "INSERT INTO staging.customers SELECT * FROM bench_changed_customers",
    """CREATE OR REPLACE TEMP TABLE bench_changed_orders AS
       SELECT * REPLACE ('refunded' AS status, net_amount AS refunded_amount, 0 AS net_amount,
                         updated_at + INTERVAL 3 DAY AS updated_at, load_seq + $bump AS load_seq)
       FROM staging.orders WHERE load_seq % 200 = 13""",
    "DELETE FROM staging.orders WHERE order_key IN (SELECT order_key FROM bench_changed_orders)",
    "INSERT INTO staging.orders SELECT * FROM bench_changed_orders",
    *(sql for sql in DELTA if not sql.lstrip().startswith("UPDATE")),
]


def apply_staged_delta(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("BEGIN TRANSACTION")
    for sql in STAGED_DELTA:
        con.execute(sql, {"bump": 10 ** 9} if "$bump" in sql else None)
    con.execute("COMMIT")


def scan_seconds(con: duckdb.DuckDBPyConnection) -> float:
    """A plain scan of the staging tables the chain reads: count(*) and sum(hash(c)) of every column."""
    start = time.perf_counter()
    for table in STAGING:
        con.execute(f"SELECT count(*), sum(hash(COLUMNS(*))) FROM {table}").fetchall()
    return time.perf_counter() - start


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_chain(con, programs, run_id: str) -> tuple[float, float, dict[str, float]]:
    start, cpu = time.perf_counter(), cpu_seconds()
    stages: dict[str, float] = {}
    t = time.perf_counter()
    run_identity(con, programs, run_id, AS_OF)
    stages["identity"] = time.perf_counter() - t
    t_ref = time.perf_counter()
    referral = {"events": lambda: run_referral_events(con, programs, AS_OF),
                "attribution": lambda: run_attribution(con, programs, AS_OF, run_id),
                "promo": lambda: run_promo_codes(con, programs, AS_OF),
                "fraud": lambda: run_fraud(con, programs, AS_OF, run_id),
                "rewards": lambda: run_rewards(con, programs, AS_OF, run_id),
                "funnel": lambda: run_funnel(con, programs, AS_OF),
                "reconciliation": lambda: run_reconciliation(con, programs, AS_OF)}
    detail = []
    for name, fn in referral.items():     # the order of referral_chain.run_referral_chain
        t = time.perf_counter()
        result = fn()
        took = time.perf_counter() - t
        detail.append(f"{name} {took:.2f}" + (f" ({result.mode})" if hasattr(result, "mode") else ""))
    stages["referrals"] = time.perf_counter() - t_ref
    print("    referral stages: " + ", ".join(detail))
    return time.perf_counter() - start, cpu_seconds() - cpu, stages


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=5_000_000)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--db", default=None, help="DuckDB file (default: a temporary file)")
    parser.add_argument("--delta", choices=("staged", "update"), default="staged",
                        help="how the 1%% delta changes rows: as the staging runner does (delete + insert), "
                             "or bench_identity's in-place UPDATEs")
    args = parser.parse_args(argv)
    con, tmp, args.db = open_bench_db(args.db, args.threads, "bench-chain-")
    programs = load_programs(REPO_ROOT / "data" / "programs.yaml")
    started = time.perf_counter()
    fill(con, args.customers, args.orders, args.events)
    people = max(1, args.customers * 7 // 10)
    seq = args.customers + args.orders + args.events + 10
    con.execute(REFERRALS.replace("$people", str(people)).replace("$customers", str(args.customers))
                .replace("$seq", str(seq)))
    con.execute("CHECKPOINT")
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in STAGING}
    print(f"staging loaded in {time.perf_counter() - started:.1f} s: {counts}; {args.threads} threads; load {load()}")
    scan = min(scan_seconds(con) for _ in range(2))
    print(f"plain scan of the staging tables: {scan:.2f} s")

    report = []
    wall, cpu, stages = run_chain(con, programs, "full")
    report.append(("full run", wall, cpu, stages))
    print(f"full run: {wall:.2f} s wall, {cpu:.2f} s CPU, {stages}, load {load()}", flush=True)
    apply_staged_delta(con) if args.delta == "staged" else apply_delta(con)
    con.execute(REFERRAL_DELTA.replace("$customers", str(args.customers)).replace("$seq", str(10 ** 10)))
    wall, cpu, stages = run_chain(con, programs, "delta")
    report.append(("after a 1% delta", wall, cpu, stages))
    print(f"after a 1% delta: {wall:.2f} s wall, {cpu:.2f} s CPU, {stages}, load {load()}", flush=True)
    wall, cpu, stages = run_chain(con, programs, "again")
    report.append(("no change", wall, cpu, stages))
    print(f"no change: {wall:.2f} s wall, {cpu:.2f} s CPU, {stages}, load {load()}", flush=True)

    out = con.execute("""SELECT (SELECT count(*) FROM analytics.customers), (SELECT count(*) FROM analytics.referral_attribution),
                                (SELECT count(*) FROM analytics.rewards), (SELECT count(*) FROM audit.fraud_flags)""").fetchall()[0]
    print(f"outputs: customers {out[0]:,}, attributed orders {out[1]:,}, rewards {out[2]:,}, fraud flags {out[3]:,}")
    full_wall = report[0][1]
    print("\n| run | wall s | CPU s | identity s | referrals s | × plain scan | share of full |")
    print("|---|---|---|---|---|---|---|")
    for label, wall, cpu, stages in report:
        print(f"| {label} | {wall:.2f} | {cpu:.2f} | {stages['identity']:.2f} | {stages['referrals']:.2f} | "
              f"{wall / scan:.1f} | {wall / full_wall:.1%} |")
    print(f"\nplain scan {scan:.2f} s; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"load average at the end {load()}")
    con.close()
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

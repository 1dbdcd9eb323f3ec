"""Benchmark of the data-quality runner: a full first validation, a 1 % delta and a no-change run, on
``staging.orders`` (watermark on ``load_seq``) and on a copy without ``load_seq`` (fingerprint).

    .venv/bin/python bench/bench_quality.py [--orders 1000000] [--delta 0.01]

Rows are generated in DuckDB (in memory); only the runner is timed.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402

from referral_pipeline.quality import run_suite, suite_for  # noqa: E402
from referral_pipeline.transform.staging.runner import ensure_staging_schema  # noqa: E402
from referral_pipeline.warehouse.schema import ensure_schema  # noqa: E402

MARKETS = ["us", "uk", "eu"]
ORDERS_SQL = """
INSERT INTO staging.orders (order_key, source, source_type, source_order_id, customer_record_key, email_normalized,
    market_id, placed_at, updated_at, status, currency, gross_amount, discount_amount, tax_amount, shipping_amount,
    refunded_amount, net_amount, coupon_codes, channel, load_seq)
SELECT 'sf:' || i, 'sf', 'salesforce', CAST(i AS VARCHAR), 'sf:c' || (i % 200000), 'c' || (i % 200000) || '@example.com',
       ['us', 'uk', 'eu'][1 + i % 3], TIMESTAMPTZ '2026-01-01' + to_seconds(i % 9000000), TIMESTAMPTZ '2026-03-01',
       ['paid', 'shipped', 'completed', 'cancelled'][1 + i % 4], ['USD', 'GBP', 'EUR'][1 + i % 3],
       100 + i % 50, i % 10, 8, 5, 0, 90 + i % 50 - i % 10, ['FRIEND10'], 'web', $base + i
FROM range($first, $last) r(i)
"""


def timed(label, fn):
    started = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - started
    print(f"{label:<44} {elapsed:7.2f} s   validated {result.validated_rows:>9,} rows   "
          f"success={result.success} mode={result.mode}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--delta", type=float, default=0.01)
    args = parser.parse_args(argv)
    n, d = args.orders, int(args.orders * args.delta)
    con = duckdb.connect()
    ensure_schema(con)
    ensure_staging_schema(con)
    con.execute(ORDERS_SQL, {"first": 0, "last": n, "base": 0})
    suite = suite_for("staging.orders")
    print(f"staging.orders: {n:,} rows, {len(suite.row)} row-level + {len(suite.table_checks)} table-level expectations")
    timed("watermark: first (full) validation", lambda: run_suite(con, suite, markets=MARKETS))
    timed("watermark: no change", lambda: run_suite(con, suite, markets=MARKETS))
    # a 1 % delta: half new orders, half re-staged ones (new load_seq)
    con.execute(ORDERS_SQL, {"first": n, "last": n + d // 2, "base": 0})
    con.execute("UPDATE staging.orders SET status = 'completed', load_seq = load_seq + $n WHERE load_seq < $k",
                {"n": 2 * n, "k": d - d // 2})
    timed(f"watermark: {args.delta:.0%} delta ({d:,} rows)", lambda: run_suite(con, suite, markets=MARKETS))

    # the same table without a write sequence: fingerprint strategy (analytics tables without load_seq)
    con.execute("CREATE TABLE analytics.orders AS SELECT * EXCLUDE (load_seq, customer_record_key), "
                "'cus_' || lower(lpad(to_hex(hash(email_normalized) % 1000000), 16, '0')) AS customer_key "
                "FROM staging.orders")
    fsuite = suite_for("analytics.orders")
    rows = con.execute("SELECT count(*) FROM analytics.orders").fetchall()[0][0]
    print(f"analytics.orders (no load_seq): {rows:,} rows")
    timed("fingerprint: first (full) validation", lambda: run_suite(con, fsuite, markets=MARKETS))
    timed("fingerprint: no change", lambda: run_suite(con, fsuite, markets=MARKETS))
    con.execute("UPDATE analytics.orders SET status = 'shipped' WHERE hash(order_key) % 100 = 0")
    timed("fingerprint: ~1% updated", lambda: run_suite(con, fsuite, markets=MARKETS))
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

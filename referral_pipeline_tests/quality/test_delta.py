"""Delta-only validation: a run validates exactly the rows changed since the last one (plus rows that
failed and were not fixed), a run with no change writes nothing, and a failing row keeps failing
until it is fixed."""
from __future__ import annotations

from referral_pipeline.quality import run_suite, suite_for

from .support import CUS, customer, insert, order, staging_order, warehouse

MARKETS = ["us", "uk", "eu"]
ORDERS = suite_for("staging.orders")


def ops_state(con):
    return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in ("ops.dq_progress", "ops.dq_open_failures", "ops.dq_fingerprints")}


def restage(con, key, seq, **kw):
    """What the staging runner does with a changed record: replace the row, with a new load_seq."""
    con.execute("DELETE FROM staging.orders WHERE order_key = ?", [key])
    insert(con, "staging.orders", [staging_order(key, seq, **kw)])


def test_watermark_delta_on_load_seq():
    con = warehouse(analytics=False)
    insert(con, "staging.orders", [staging_order(f"sf:{i}", i) for i in range(1, 51)])
    first = run_suite(con, ORDERS, run_id="r1", markets=MARKETS)
    assert (first.success, first.strategy, first.mode) == (True, "watermark", "full")
    assert (first.delta_rows, first.validated_rows, first.table_rows) == (50, 50, 50)
    assert con.execute("SELECT mark_value, rows_validated, rows_validated_total FROM ops.dq_progress").fetchall() == [(50, 50, 50)]

    # no change: nothing validated, nothing written
    before = ops_state(con)
    again = run_suite(con, ORDERS, run_id="r2", markets=MARKETS)
    assert (again.success, again.mode, again.delta_rows, again.validated_rows) == (True, "delta", 0, 0)
    assert all(e.note == "no changed rows" for e in again.expectations if e.kind == "row")
    assert ops_state(con) == before

    # 7 new rows and 2 changed ones: exactly 9 validated
    insert(con, "staging.orders", [staging_order(f"sf:{i}", i) for i in range(51, 58)])
    restage(con, "sf:3", 58, status="shipped")
    restage(con, "sf:4", 59, status="completed")
    delta = run_suite(con, ORDERS, run_id="r3", markets=MARKETS)
    assert (delta.success, delta.delta_rows, delta.validated_rows, delta.reopened_rows) == (True, 9, 9, 0)
    assert con.execute("SELECT mark_value, rows_validated, rows_validated_total FROM ops.dq_progress").fetchall() == [(59, 9, 59)]
    assert {e.element_count for e in delta.expectations if e.kind == "row"} == {9}


def test_failing_row_keeps_failing_until_fixed():
    con = warehouse(analytics=False)
    insert(con, "staging.orders", [staging_order(f"sf:{i}", i) for i in range(1, 11)])
    run_suite(con, ORDERS, run_id="r1", markets=MARKETS)
    insert(con, "staging.orders", [staging_order("sf:bad", 11, currency="ZZZ")])
    bad = run_suite(con, ORDERS, run_id="r2", markets=MARKETS)
    assert (bad.success, bad.delta_rows, bad.validated_rows) == (False, 1, 1)
    assert [e.name for e in bad.failed] == ["currency_in_set"]
    assert con.execute("SELECT row_key, expectations, run_id FROM ops.dq_open_failures").fetchall() == \
        [("sf:bad", ["currency_in_set"], "r2")]

    # nothing changed: the check still fails (the bad row is re-validated), and nothing is written
    before = ops_state(con)
    still = run_suite(con, ORDERS, run_id="r3", markets=MARKETS)
    assert (still.success, still.delta_rows, still.reopened_rows, still.validated_rows) == (False, 0, 1, 1)
    assert still.failed[0].failing_keys == ["sf:bad"]
    assert ops_state(con) == before

    # an unrelated new row does not hide it either
    insert(con, "staging.orders", [staging_order("sf:new", 12)])
    other = run_suite(con, ORDERS, run_id="r4", markets=MARKETS)
    assert (other.success, other.delta_rows, other.reopened_rows) == (False, 1, 1)

    # fixed at the source and re-staged: the check passes, the open failure is gone
    restage(con, "sf:bad", 13, currency="USD")
    fixed = run_suite(con, ORDERS, run_id="r5", markets=MARKETS)
    assert (fixed.success, fixed.delta_rows, fixed.reopened_rows) == (True, 1, 0)
    assert con.execute("SELECT count(*) FROM ops.dq_open_failures").fetchall() == [(0,)]
    assert con.execute("SELECT success, failed_expectations, run_id FROM ops.dq_progress").fetchall() == [(True, [], "r5")]


def test_rebuilt_table_and_forced_full_validation():
    con = warehouse(analytics=False)
    insert(con, "staging.orders", [staging_order(f"sf:{i}", 100 + i) for i in range(1, 21)])
    run_suite(con, ORDERS, run_id="r1", markets=MARKETS)
    # a rebuild restarts load_seq below the mark: everything is validated again
    con.execute("DELETE FROM staging.orders")
    insert(con, "staging.orders", [staging_order(f"sf:{i}", i) for i in range(1, 16)])
    rebuilt = run_suite(con, ORDERS, run_id="r2", markets=MARKETS)
    assert (rebuilt.mode, rebuilt.validated_rows) == ("full", 15)
    assert con.execute("SELECT mark_value FROM ops.dq_progress").fetchall() == [(15,)]
    forced = run_suite(con, ORDERS, run_id="r3", markets=MARKETS, full=True)
    assert (forced.mode, forced.validated_rows) == ("full", 15)
    assert run_suite(con, ORDERS, run_id="r4", markets=MARKETS).validated_rows == 0


def test_chunked_reading_gives_the_same_result():
    con = warehouse(analytics=False)
    insert(con, "staging.orders", [staging_order("sf:0", 0)])
    con.execute("""INSERT INTO staging.orders SELECT * EXCLUDE (i) REPLACE ('sf:' || i AS order_key, CAST(i AS VARCHAR) AS source_order_id,
                       CASE WHEN i % 1000 = 7 THEN 'ZZZ' ELSE 'USD' END AS currency, i AS load_seq)
                   FROM staging.orders CROSS JOIN (SELECT range AS i FROM range(1, 2500))""")
    # 2,048 rows per chunk: the 2,500 rows are validated in 2 GX runs, results summed
    result = run_suite(con, ORDERS, run_id="r1", markets=MARKETS, chunk_rows=2048)
    cur = {e.name: e for e in result.expectations}["currency_in_set"]
    assert (result.validated_rows, cur.element_count, cur.unexpected_count) == (2500, 2500, 3)
    assert sorted(r[0] for r in con.execute("SELECT row_key FROM ops.dq_open_failures").fetchall()) == \
        ["sf:1007", "sf:2007", "sf:7"]


def test_fingerprint_delta_without_a_sequence_column():
    """analytics.orders has no load_seq: the delta is found by hashing rows in DuckDB."""
    con = warehouse()
    suite = suite_for("analytics.orders")
    insert(con, "analytics.customers", [customer(CUS[1])])
    insert(con, "analytics.orders", [order(f"sf:{i}") for i in range(1, 41)])
    first = run_suite(con, suite, run_id="r1", markets=MARKETS)
    assert (first.success, first.strategy, first.mode, first.validated_rows) == (True, "fingerprint", "full", 40)
    assert con.execute("SELECT count(*) FROM ops.dq_fingerprints").fetchall() == [(40,)]

    before = ops_state(con)
    assert run_suite(con, suite, run_id="r2", markets=MARKETS).validated_rows == 0
    assert ops_state(con) == before
    # a writer that rebuilds the whole table with the same content: still no delta
    con.execute("CREATE OR REPLACE TABLE analytics.orders AS SELECT * FROM analytics.orders ORDER BY order_key DESC")
    assert run_suite(con, suite, run_id="r3", markets=MARKETS).validated_rows == 0
    # nor a change to columns no expectation reads (bookkeeping timestamps, user agent)
    con.execute("UPDATE analytics.orders SET updated_at = now(), user_agent = 'curl'")
    assert run_suite(con, suite, run_id="r3", markets=MARKETS).validated_rows == 0
    assert ops_state(con) == before

    # 3 updated, 2 inserted, 1 deleted: 5 validated; fingerprints follow the table
    con.execute("UPDATE analytics.orders SET status = 'shipped' WHERE order_key IN ('sf:1', 'sf:2', 'sf:3')")
    insert(con, "analytics.orders", [order("sf:41"), order("sf:42")])
    con.execute("DELETE FROM analytics.orders WHERE order_key = 'sf:40'")
    delta = run_suite(con, suite, run_id="r4", markets=MARKETS)
    assert (delta.success, delta.mode, delta.delta_rows, delta.validated_rows) == (True, "delta", 5, 5)
    assert con.execute("SELECT count(*), count(DISTINCT row_key) FROM ops.dq_fingerprints").fetchall() == [(41, 41)]
    # a delete alone: nothing to validate, but the fingerprints drop the row
    con.execute("DELETE FROM analytics.orders WHERE order_key = 'sf:39'")
    gone = run_suite(con, suite, run_id="r5", markets=MARKETS)
    assert gone.validated_rows == 0
    assert con.execute("SELECT count(*) FROM ops.dq_fingerprints").fetchall() == [(40,)]

    # a bad update fails, stays failing on a re-run, and is fixed by the next update
    con.execute("UPDATE analytics.orders SET net_amount = -1 WHERE order_key = 'sf:5'")
    assert [e.name for e in run_suite(con, suite, run_id="r6", markets=MARKETS).failed] == ["net_amount_non_negative"]
    again = run_suite(con, suite, run_id="r7", markets=MARKETS)
    assert (again.success, again.delta_rows, again.reopened_rows) == (False, 0, 1)
    con.execute("UPDATE analytics.orders SET net_amount = 1 WHERE order_key = 'sf:5'")
    assert run_suite(con, suite, run_id="r8", markets=MARKETS).success


def test_strategy_switches_when_a_sequence_column_appears():
    con = warehouse()
    suite = suite_for("analytics.customers")
    insert(con, "analytics.customers", [customer(CUS[i]) for i in range(1, 6)])
    assert run_suite(con, suite, markets=MARKETS).strategy == "fingerprint"
    con.execute("ALTER TABLE analytics.customers ADD COLUMN load_seq BIGINT")
    con.execute("UPDATE analytics.customers SET load_seq = 1")
    switched = run_suite(con, suite, markets=MARKETS)
    assert (switched.strategy, switched.mode, switched.validated_rows) == ("watermark", "full", 5)
    assert con.execute("SELECT count(*) FROM ops.dq_fingerprints").fetchall() == [(0,)]
    assert run_suite(con, suite, markets=MARKETS).validated_rows == 0


def test_suite_or_value_set_change_revalidates_everything():
    con = warehouse(analytics=False)
    insert(con, "staging.orders", [staging_order(f"sf:{i}", i) for i in range(1, 6)])
    assert run_suite(con, ORDERS, markets=MARKETS).validated_rows == 5
    assert run_suite(con, ORDERS, markets=MARKETS).validated_rows == 0
    # a market leaves the programs file: the expectations changed, every row is validated again
    changed = run_suite(con, ORDERS, markets=["uk", "eu"])
    assert (changed.mode, changed.validated_rows, changed.success) == ("full", 5, False)
    assert [e.name for e in changed.failed] == ["market_id_in_set"]
    assert run_suite(con, ORDERS, markets=["uk", "eu"]).validated_rows == 5      # still failing: re-validated
    assert run_suite(con, ORDERS, markets=MARKETS).success


def test_an_expectation_error_does_not_move_the_mark():
    """A column of the wrong type makes GX raise: the check fails and the rows stay in the delta."""
    con = warehouse()
    suite = suite_for("analytics.customers")
    con.execute("ALTER TABLE analytics.customers ALTER orders_count TYPE VARCHAR")
    insert(con, "analytics.customers", [customer(CUS[1], orders_count="many")])
    first = run_suite(con, suite, markets=MARKETS)
    failed = {e.name: e for e in first.failed}
    assert list(failed) == ["orders_count_non_negative"] and failed["orders_count_non_negative"].note
    assert con.execute("SELECT count(*) FROM ops.dq_progress").fetchall() == [(0,)]
    assert run_suite(con, suite, markets=MARKETS).validated_rows == 1

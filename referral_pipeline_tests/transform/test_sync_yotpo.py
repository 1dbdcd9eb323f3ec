"""Sync engine + Yotpo destination over real HTTP against the Yotpo simulator (docs/sync.md)."""
from __future__ import annotations

import time
from datetime import timedelta

import orjson
import pytest

from referral_pipeline.sandbox.core.config import FaultSpec
from referral_pipeline.sync.engine import SyncSettings, idempotency_key
from referral_pipeline.sync.ownership import load_ownership, parse_ownership
from referral_pipeline.sync.yotpo import YotpoInstance, run_yotpo_sync, yotpo_instances
from referral_pipeline_tests.transform.identity_support import programs
from referral_pipeline_tests.transform.sync_support import (NOW, client_for, customer, item, new_db, order, refund,
                                                            set_faults, sim_state, writes, yotpo)

INST = YotpoInstance("yotpo", "YOTPO", ("us",))
FAST = SyncSettings(concurrency=4, chunk_size=50, max_attempts=5, retry_base_seconds=60)


def world(con, n_customers: int = 3):
    for i in range(n_customers):
        customer(con, f"cus_{i}", f"c{i}@example.com", phone=f"+1555000{i}")
        order(con, f"sf:{i}", f"cus_{i}", f"c{i}@example.com", status="paid", gross="100.00")
        item(con, f"sf:{i}", "1", f"sku{i}", 2, "50.00")
    order(con, "sf:p", "cus_0", "c0@example.com", status="placed", gross="40.00")
    customer(con, "cus_uk", "uk@example.com", market="uk")            # not a Yotpo market
    order(con, "sf:uk", "cus_uk", "uk@example.com", market="uk")
    refund(con, "sf:r1", "sf:1", "25.00")
    refund(con, "sf:c1", "sf:2", "100.00", kind="cancellation")      # cancellations travel as order status


def states(con, entity=None):
    sql = "SELECT entity, record_key, status, attempts, last_status_code FROM ops.sync_state"
    if entity:
        return con.execute(sql + " WHERE entity = ? ORDER BY record_key", [entity]).fetchall()
    return con.execute(sql + " ORDER BY entity, record_key").fetchall()


def sync(con, client, run_id, now=NOW, **kw):
    return run_yotpo_sync(con, client, INST, run_id=run_id, now=now, settings=kw.pop("settings", FAST), **kw)


def effects(state: dict) -> dict:
    """The simulator state that matters for exactly-once: orders, refunds, customers' points."""
    orders = {o["order_id"]: (o["status"], o["points_awarded"], o["points_credited"], o["refunded_amount_cents"])
              for o in state["orders"]}
    refunds = sorted((r["id"], r["order_id"], r["points_reversed"]) for r in state["refunds"])
    custs = {c["email"]: (c.get("points_balance"), c.get("points_earned"), c.get("total_purchases"),
                          c.get("first_name"), c.get("opt_in")) for c in state["customers"]}
    return {"orders": orders, "refunds": refunds, "customers": custs}


def test_instances_from_programs():
    assert yotpo_instances(programs()) == [YotpoInstance("yotpo", "YOTPO", ("us",))]


def test_first_sync_sends_everything_second_sends_nothing():
    con = new_db()
    world(con)
    with yotpo() as sim:
        client = client_for(sim)
        res = sync(con, client, "r1")
        assert states(con) == [
            ("customers", "cus_0", "ok", 1, 200), ("customers", "cus_1", "ok", 1, 200), ("customers", "cus_2", "ok", 1, 200),
            ("orders", "sf:0", "ok", 1, 200), ("orders", "sf:1", "ok", 1, 200), ("orders", "sf:2", "ok", 1, 200),
            ("orders", "sf:p", "ok", 1, 200), ("refunds", "sf:r1", "ok", 1, 200)]
        assert sim.request_counts["POST /api/v2/customers"] == 3
        assert sim.request_counts["POST /api/v2/orders"] == 4
        assert sim.request_counts["POST /api/v2/refunds"] == 1
        t = res.totals()
        assert (t["attempted"], t["sent"], t["unchanged"], t["failed"], t["dead"]) == (8, 8, 0, 0, 0)
        # every attempt logged with its deterministic idempotency key
        log = con.execute("""SELECT l.record_key, l.outcome, l.attempt, l.idempotency_key, s.payload_hash
                             FROM ops.sync_log l JOIN ops.sync_state s USING (destination, entity, record_key)
                             WHERE l.entity = 'orders' ORDER BY 1""").fetchall()
        assert [(k, o, a) for k, o, a, _, _ in log] == [("sf:0", "ok", 1), ("sf:1", "ok", 1), ("sf:2", "ok", 1),
                                                        ("sf:p", "ok", 1)]
        assert all(ik == idempotency_key("yotpo", "orders", k, h) for k, _, _, ik, h in log)
        # the order payload as sent (canonical JSON, items per unit, status mapped, NULL coupon left out)
        payload = orjson.loads(con.execute("SELECT payload FROM ops.sync_state WHERE record_key = 'sf:1'").fetchall()[0][0])
        assert payload == {"order_id": "sf:1", "customer_email": "c1@example.com", "customer_id": "cus_1",
                           "status": "paid", "total_amount_cents": 10000, "currency_code": "USD",
                           "created_at": "2026-05-01T00:00:00Z", "discount_amount_cents": 0,
                           "shipping_amount_cents": 500, "tax_amount_cents": 800, "ip_address": "10.0.0.1",
                           "user_agent": "pytest", "items": [{"id": "sku1", "name": "Sku1", "quantity": 2,
                                                               "price_cents": 5000}]}
        state = sim_state(sim)
        assert {r["id"]: r["points_reversed"] for r in state["refunds"]} == {"sf:r1": 22}   # 25.00 of 113.00 paid, on the 100.00 basis
        # the pull: loyalty snapshot and analytics.customers loyalty columns
        assert con.execute("""SELECT customer_key, points_balance, found, referral_code IS NOT NULL
                              FROM ops.loyalty_snapshot ORDER BY 1""").fetchall() == [
            ("cus_0", 100, True, True), ("cus_1", 78, True, True), ("cus_2", 100, True, True)]
        assert con.execute("SELECT customer_key, loyalty_points_balance FROM analytics.customers "
                           "WHERE loyalty_points_balance IS NOT NULL ORDER BY 1").fetchall() == [
            ("cus_0", 100), ("cus_1", 78), ("cus_2", 100)]
        before = dict(sim.request_counts)
        log_rows = con.execute("SELECT count(*) FROM ops.sync_log").fetchall()[0][0]
        snap = con.execute("SELECT * FROM ops.loyalty_snapshot ORDER BY ALL").fetchall()

        res2 = sync(con, client, "r2")
        assert dict(sim.request_counts) == before          # zero requests, writes or reads
        assert res2.totals()["attempted"] == 0 and res2.totals()["unchanged"] == 8
        assert con.execute("SELECT count(*) FROM ops.sync_log").fetchall()[0][0] == log_rows
        assert con.execute("SELECT * FROM ops.loyalty_snapshot ORDER BY ALL").fetchall() == snap


def test_one_order_change_sends_exactly_one_write_and_only_status_triggers():
    con = new_db()
    world(con)
    with yotpo() as sim:
        client = client_for(sim)
        sync(con, client, "r1")
        w = writes(sim)
        order(con, "sf:0", "cus_0", "c0@example.com", status="paid", gross="120.00")   # total only: not re-sent
        sync(con, client, "r2")
        assert writes(sim) == w
        order(con, "sf:p", "cus_0", "c0@example.com", status="paid", gross="40.00")    # placed -> paid
        res = sync(con, client, "r3")
        assert writes(sim) == w + 1
        assert res.entities["orders"].sent == 1 and res.entities["orders"].unchanged == 3
        assert {o["order_id"]: o["points_awarded"] for o in sim_state(sim)["orders"]}["sf:p"] == 40
        assert states(con, "orders")[3] == ("orders", "sf:p", "ok", 1, 200)
        # the changed customer was pulled again
        assert con.execute("SELECT points_balance, run_id FROM ops.loyalty_snapshot WHERE customer_key = 'cus_0'"
                           ).fetchall() == [(140, "r3")]


def test_a_run_without_pull_is_caught_up_by_the_next_pull():
    """Hourly runs push without pulling; the next (nightly) pull reads every customer that had a record
    accepted after their snapshot, even when that run itself sends nothing."""
    con = new_db()
    world(con)
    with yotpo() as sim:
        client = client_for(sim)
        sync(con, client, "r1")
        order(con, "sf:p", "cus_0", "c0@example.com", status="paid", gross="40.00")    # placed -> paid
        sync(con, client, "hourly", now=NOW + timedelta(hours=1), pull=False)
        assert con.execute("SELECT points_balance, run_id FROM ops.loyalty_snapshot WHERE customer_key = 'cus_0'"
                           ).fetchall() == [(100, "r1")]
        res = sync(con, client, "nightly", now=NOW + timedelta(hours=2))
        assert res.totals()["attempted"] == 0 and res.pulled == 1                     # only cus_0 is re-read
        assert con.execute("SELECT points_balance, run_id FROM ops.loyalty_snapshot WHERE customer_key = 'cus_0'"
                           ).fetchall() == [(140, "nightly")]
        assert con.execute("SELECT loyalty_points_balance FROM analytics.customers WHERE customer_key = 'cus_0'"
                           ).fetchall() == [(140,)]
        again = sync(con, client, "nightly2", now=NOW + timedelta(hours=3))
        assert again.pulled == 0


def test_injected_faults_converge_to_the_fault_free_state():
    con_ok, con = new_db(), new_db()
    world(con_ok, 6)
    world(con, 6)
    with yotpo() as sim:
        sync(con_ok, client_for(sim), "clean")
        expected = effects(sim_state(sim))
    faults = FaultSpec(p_429=0.05, p_500=0.04, p_503=0.04, p_slow=0.04, p_drop=0.03, slow_seconds=0.6,
                       retry_after_seconds=0.05, seed=7)
    with yotpo(faults=faults) as sim:
        client = client_for(sim, timeout=0.3, max_attempts=3)
        for run in range(6):
            sync(con, client, f"f{run}", now=NOW + timedelta(days=run))
        injected = dict(sim.faults.injected)
        set_faults(sim, p_429=0, p_500=0, p_503=0, p_slow=0, p_drop=0)
        sync(con, client, "final", now=NOW + timedelta(days=30))
        assert sum(injected.values()) >= 5 and client.stats.retries > 0
        got = effects(sim_state(sim))
    assert got == expected                      # no duplicate order or refund, points awarded once
    assert {s for _, _, s, _, _ in states(con)} == {"ok"}


def test_crash_after_in_flight_marker_is_reconciled_without_duplicate_effect():
    con = new_db()
    world(con)

    def crash(record_key, payload):
        if record_key == "sf:1":
            raise RuntimeError("simulated crash between send and outcome record")

    with yotpo() as sim:
        client = client_for(sim)
        with pytest.raises(RuntimeError, match="simulated crash"):
            sync(con, client, "r1", after_send=crash)
        # the whole chunk of orders was marked in flight before sending; no outcome recorded for it
        assert [s for _, _, s, _, _ in states(con, "orders")] == ["in_flight"] * 4
        assert con.execute("SELECT count(*) FROM ops.failed_payloads WHERE status = 'in_flight'").fetchall()[0][0] == 4
        posted = sim.request_counts["POST /api/v2/orders"]
        assert posted == 4                              # all four reached Yotpo
        sync(con, client, "r2")
        assert [s for _, _, s, _, _ in states(con)] == ["ok"] * 8
        state = sim_state(sim)
    # re-sent by natural key: Yotpo awarded each order once, refund recorded once
    assert {o["order_id"]: o["points_awarded"] for o in state["orders"]} == {"sf:0": 100, "sf:1": 100, "sf:2": 100,
                                                                             "sf:p": 0}
    assert [r["id"] for r in state["refunds"]] == ["sf:r1"]
    assert {c["email"]: c["points_earned"] for c in state["customers"]} == {
        "c0@example.com": 100, "c1@example.com": 78, "c2@example.com": 100}


def test_crashed_customer_upsert_reconciled_through_read_api():
    con = new_db()
    customer(con, "cus_a", "ann@example.com")

    def crash(record_key, payload):
        raise RuntimeError("crash")

    with yotpo() as sim:
        client = client_for(sim)
        with pytest.raises(RuntimeError):
            sync(con, client, "r1", after_send=crash, pull=False)
        assert states(con) == [("customers", "cus_a", "in_flight", 0, None)]
        sync(con, client, "r2", pull=False)
        assert sim.request_counts["POST /api/v2/customers"] == 1        # not re-sent
        assert sim.request_counts["GET /api/v2/customers"] == 1
        assert con.execute("SELECT record_key, outcome, attempt FROM ops.sync_log").fetchall() == [
            ("cus_a", "reconciled", 1)]
        assert states(con) == [("customers", "cus_a", "ok", 1, 200)]


def test_per_record_422_is_failed_does_not_block_others_and_is_retried_after_fix():
    con = new_db()
    customer(con, "cus_a", "ann@example.com")
    customer(con, "cus_bad", "not-an-email")
    customer(con, "cus_c", "cat@example.com")
    with yotpo() as sim:
        client = client_for(sim)
        sync(con, client, "r1", pull=False)
        assert states(con) == [("customers", "cus_a", "ok", 1, 200), ("customers", "cus_bad", "failed", 1, 422),
                               ("customers", "cus_c", "ok", 1, 200)]
        failed = con.execute("SELECT record_key, status, attempts, last_status_code, last_error, payload, next_retry_at "
                             "FROM ops.failed_payloads").fetchall()
        assert len(failed) == 1
        key, status, attempts, code, error, payload, next_retry = failed[0]
        assert (key, status, attempts, code, next_retry) == ("cus_bad", "failed", 1, 422, None)
        assert "email must be an email address" in error
        assert orjson.loads(payload)["email"] == "not-an-email"
        w = writes(sim)
        sync(con, client, "r2", pull=False)               # unchanged payload: not re-sent
        assert writes(sim) == w
        customer(con, "cus_bad", "bad@example.com")
        res = sync(con, client, "r3", pull=False)
        assert writes(sim) == w + 1 and res.entities["customers"].sent == 1
        assert states(con)[1] == ("customers", "cus_bad", "ok", 1, 200)   # attempts restart for the new content
        assert con.execute("SELECT count(*) FROM ops.failed_payloads").fetchall()[0][0] == 0


def test_invalid_payload_fails_without_a_request():
    con = new_db()
    customer(con, "cus_a", "ann@example.com")
    order(con, "sf:1", "cus_a", "ann@example.com", currency="usd1")
    with yotpo() as sim:
        sync(con, client_for(sim), "r1", pull=False)
        assert sim.request_counts["POST /api/v2/orders"] == 0
        row = con.execute("SELECT status, last_status_code, last_error FROM ops.sync_state WHERE entity='orders'").fetchall()[0]
        assert row[0] == "failed" and row[1] is None and "currency_code" in row[2]
        assert con.execute("SELECT outcome FROM ops.sync_log WHERE entity='orders'").fetchall() == [("invalid",)]


def test_transient_errors_retry_then_dead():
    con = new_db()
    customer(con, "cus_a", "ann@example.com")
    settings = SyncSettings(max_attempts=2, retry_base_seconds=60)
    with yotpo(faults=FaultSpec(p_503=1.0, retry_after_seconds=0)) as sim:
        client = client_for(sim, max_attempts=2)
        res = sync(con, client, "r1", settings=settings, pull=False)
        assert res.entities["customers"].retry == 1 and res.totals()["retried"] == 1
        row = con.execute("SELECT status, attempts, last_status_code, next_retry_at FROM ops.sync_state").fetchall()[0]
        assert row == ("retry", 1, 503, NOW + timedelta(seconds=60))
        sync(con, client, "r2", settings=settings, pull=False)      # not due yet: nothing sent
        assert sim.request_counts["POST /api/v2/customers"] == 2
        sync(con, client, "r3", now=NOW + timedelta(minutes=2), settings=settings, pull=False)
        assert con.execute("SELECT status, attempts, next_retry_at FROM ops.sync_state").fetchall() == [("dead", 2, None)]
        assert con.execute("SELECT attempt, outcome, status_code FROM ops.sync_log ORDER BY attempt").fetchall() == [
            (1, "retry", 503), (2, "dead", 503)]
        sync(con, client, "r4", now=NOW + timedelta(days=1), settings=settings, pull=False)   # dead: left alone
        assert sim.request_counts["POST /api/v2/customers"] == 4


def test_field_ownership_never_and_if_empty():
    own = parse_ownership({
        "yotpo.customers": {"id": {"owner": "pipeline", "policy": "always"},
                            "email": {"owner": "pipeline", "policy": "always"},
                            "first_name": {"owner": "yotpo", "policy": "never"},
                            "last_name": {"owner": "pipeline", "policy": "always"},
                            "opted_in": {"owner": "pipeline", "policy": "always"},
                            "phone_number": {"owner": "pipeline", "policy": "if_empty"}},
        "yotpo.orders": load_ownership().for_object("yotpo.orders").model_dump()["fields"],
        "yotpo.refunds": load_ownership().for_object("yotpo.refunds").model_dump()["fields"]})
    with pytest.raises(ValueError):
        parse_ownership({"x.y": {"f": {"owner": "yotpo", "policy": "always"}}})
    con = new_db()
    customer(con, "cus_a", "ann@example.com", phone="+15550001", last_name=None)
    payload = lambda: orjson.loads(con.execute("SELECT payload FROM ops.sync_state").fetchall()[0][0])  # noqa: E731
    with yotpo() as sim:
        client = client_for(sim)
        sync(con, client, "r1", ownership=own, pull=False)
        # never: first_name not sent; if_empty: phone sent on create; NULL last_name left out (no clearing)
        assert payload() == {"id": "cus_a", "email": "ann@example.com", "opted_in": True, "phone_number": "+15550001"}
        w = writes(sim)
        customer(con, "cus_a", "ann@example.com", phone="+15559999", first_name="Other", last_name=None)
        sync(con, client, "r2", ownership=own, pull=False)       # phone/first_name changes trigger nothing
        assert writes(sim) == w
        customer(con, "cus_a", "ann@example.com", phone="+15559999", last_name="Smith")
        sync(con, client, "r3", ownership=own, pull=False)
        assert writes(sim) == w + 1
        assert payload() == {"id": "cus_a", "email": "ann@example.com", "opted_in": True, "last_name": "Smith"}
        remote = sim_state(sim)["customers"][0]
        assert (remote["phone_number"], remote["last_name"], remote["first_name"]) == ("+15550001", "Smith", None)


def test_rate_limit_close_to_five_per_second_without_429():
    con = new_db()
    for i in range(20):
        customer(con, f"cus_{i:02d}", f"r{i}@example.com")
    with yotpo(rate_per_second=5) as sim:
        client = client_for(sim, rate=5.0)
        client.api.limiter.tokens = 0.0          # start from an empty bucket: measure the steady rate
        started = time.monotonic()
        res = sync(con, client, "r1", settings=SyncSettings(concurrency=4), pull=False)
        elapsed = time.monotonic() - started
        assert res.entities["customers"].sent == 20
        assert 429 not in client.stats.by_status
        assert 3.6 <= elapsed <= 5.0               # 20 requests at 5/s
        assert 4.0 <= 20 / elapsed <= 5.3


def test_refunds_are_scaled_to_the_yotpo_basis_and_a_full_refund_adds_up_to_the_order_total():
    """A source refund includes tax and shipping; Yotpo got the item subtotal. A refund of everything the
    shopper paid, in three parts, reverses exactly the order's points and Yotpo accepts every part."""
    con = new_db()
    customer(con, "cus_0", "c0@example.com")
    order(con, "sf:0", "cus_0", "c0@example.com", status="paid", gross="100.00")      # paid 113.00
    item(con, "sf:0", "1", "sku", 1, "100.00")
    refund(con, "sf:a", "sf:0", "33.33")
    with yotpo() as sim:
        client = client_for(sim)
        sync(con, client, "r1")
        refund(con, "sf:b", "sf:0", "33.33")
        refund(con, "sf:c", "sf:0", "46.34")                                          # 113.00 in total
        sync(con, client, "r2")
        assert con.execute("SELECT record_key, status FROM ops.sync_state WHERE entity = 'refunds' ORDER BY 1"
                           ).fetchall() == [("sf:a", "ok"), ("sf:b", "ok"), ("sf:c", "ok")]
        sent = [orjson.loads(p)["total_amount_cents"] for (p,) in con.execute(
            "SELECT payload FROM ops.sync_state WHERE entity = 'refunds' ORDER BY record_key").fetchall()]
        assert sent == [2950, 2949, 4101] and sum(sent) == 10000
        state = sim_state(sim)
        assert {o["order_id"]: o["refunded_amount_cents"] for o in state["orders"]} == {"sf:0": 10000}
        assert {c["email"]: c["points_balance"] for c in state["customers"]} == {"c0@example.com": 0}


def test_emails_are_sent_trimmed():
    """Golden emails keep the source's spelling, surrounding blanks included; destinations refuse them."""
    con = new_db()
    customer(con, "cus_ws", "  pat@example.com ")
    order(con, "sf:w", "cus_ws", " pat@example.com", status="paid", gross="10.00")
    with yotpo() as sim:
        sync(con, client_for(sim), "r1")
        assert {s for (s,) in con.execute("SELECT DISTINCT status FROM ops.sync_state").fetchall()} == {"ok"}
        state = sim_state(sim)
        assert [c["email"] for c in state["customers"]] == ["pat@example.com"]
        assert [o["customer_email"] for o in state["orders"]] == ["pat@example.com"]

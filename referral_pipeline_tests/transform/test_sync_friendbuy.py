"""Sync engine + Friendbuy destination over real HTTP against the Friendbuy simulator (docs/sync.md,
"Friendbuy"): customers, purchases once per order, refund/cancellation custom events."""
from __future__ import annotations

import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import orjson
import pytest
import requests

from referral_pipeline.clients.friendbuy import FriendbuyClient, FriendbuyResource
from referral_pipeline.sandbox.core.config import FaultSpec, SystemConfig
from referral_pipeline.sandbox.friendbuy import FriendbuySimulator
from referral_pipeline.sandbox.testing import serve_in_thread
from referral_pipeline.sync import friendbuy as fbsync
from referral_pipeline.sync.engine import SyncSettings
from referral_pipeline.sync.friendbuy import FriendbuyInstance, friendbuy_instances, run_friendbuy_sync
from referral_pipeline.sync.ownership import load_ownership, parse_ownership
from referral_pipeline_tests.transform.identity_support import programs
from referral_pipeline_tests.transform.sync_support import (NOW, customer, item, new_db, order, refund, set_faults,
                                                            sim_state, upsert)

INST = FriendbuyInstance("friendbuy", "FRIENDBUY", ("us", "uk"), (("us", "camp-us"), ("uk", "camp-uk")))
FAST = SyncSettings(concurrency=4, chunk_size=50, max_attempts=5, retry_base_seconds=60)
NO_FAULTS = dict(p_429=0, p_500=0, p_502=0, p_503=0, p_slow=0, p_drop=0, p_truncate=0)


# ---- simulator and client ------------------------------------------------------------------------------
@contextmanager
def friendbuy(options: dict | None = None, faults: FaultSpec | None = None, rate: float = 0):
    config = SystemConfig(options=options or {}, faults=faults or FaultSpec(),
                          rate_limit={"requests_per_second": rate} if rate else {})
    with serve_in_thread(FriendbuySimulator(config)) as sim:
        yield sim


def client_for(sim, rate: float | None = None, timeout: float = 10.0, **kw) -> FriendbuyClient:
    return FriendbuyClient(sim.base_url, sim.credentials["key"], sim.credentials["secret"], rate_limit_per_second=rate,
                           timeout=(2.0, timeout), backoff_base=0.05, backoff_cap=0.3, **kw)


def writes(sim) -> int:
    """Write requests (POST), authentication excluded."""
    return sum(v for k, v in sim.request_counts.items() if k.startswith("POST") and k != "POST /v1/authorization")


def add_records(sim, collection: str, *records: dict) -> None:
    r = requests.post(sim.base_url + "/_sandbox/records", json={"collection": collection, "records": list(records)},
                      timeout=10)
    assert r.status_code == 200, r.text


def share(code: str) -> dict:
    """A Friendbuy share of advocate Ada carrying ``code`` (so a purchase with it is attributed)."""
    return {"advocateCustomerId": "cus_ada", "advocateEmail": "ada@example.com", "advocateName": "Ada",
            "referralCode": code, "campaignId": "camp-us", "campaignName": "US", "channel": "email",
            "createdOn": "2024-01-01T00:00:00.000Z"}


# ---- warehouse -----------------------------------------------------------------------------------------
def world(con, n: int = 3) -> None:
    for i in range(n):
        customer(con, f"cus_{i}", f"c{i}@example.com")
        order(con, f"sf:{i}", f"cus_{i}", f"c{i}@example.com", status="paid", gross="100.00")
        item(con, f"sf:{i}", "1", f"sku{i}", 2, "50.00")
    customer(con, "cus_0", "c0@example.com", sf_contact_id="003A", sf_account_id="001A")
    order(con, "sf:p", "cus_0", "c0@example.com", status="placed", gross="40.00",      # repeat buyer
          placed_at=datetime(2026, 5, 2, tzinfo=timezone.utc), coupon_codes=["SUMMER", "FRIEND-1"],
          referral_code="ADA10", discount_amount=5)
    order(con, "sf:d", "cus_1", "c1@example.com", status="declined")                  # never a purchase
    customer(con, "cus_uk", "uk@example.com", market="uk")
    order(con, "sf:uk", "cus_uk", "uk@example.com", market="uk", currency="GBP")
    customer(con, "cus_ca", "ca@example.com", market="ca")                             # not a Friendbuy market
    order(con, "sf:ca", "cus_ca", "ca@example.com", market="ca")
    refund(con, "sf:1:refund", "sf:1", "25.00")
    refund(con, "sf:2:cancel", "sf:2", "100.00", kind="cancellation")


def sync(con, client, run_id, now=NOW, **kw):
    return run_friendbuy_sync(con, client, INST, run_id=run_id, now=now, settings=kw.pop("settings", FAST), **kw)


def states(con, entity=None):
    sql = "SELECT entity, record_key, status FROM ops.sync_state"
    if entity:
        return con.execute(sql + " WHERE entity = ? ORDER BY record_key", [entity]).fetchall()
    return con.execute(sql + " ORDER BY entity, record_key").fetchall()


def payload(con, entity, key) -> dict:
    return orjson.loads(con.execute("SELECT payload FROM ops.sync_state WHERE entity = ? AND record_key = ?",
                                    [entity, key]).fetchall()[0][0])


def effects(state: dict) -> dict:
    """What exactly-once means at Friendbuy: customers as stored, purchase events per orderId (with
    the export rows they produced), custom events per (eventType, deduplicationId)."""
    strip = lambda e: {k: v for k, v in e.items() if k not in ("eventId", "createdOn", "updatedOn")}  # noqa: E731
    return {"customers": sorted((strip(c) for c in state["customers"]), key=lambda c: c["customerId"]),
            "purchases": Counter(e["orderId"] for e in state["events"]["purchase"]),
            "purchase_bodies": {e["orderId"]: strip(e) for e in state["events"]["purchase"]},
            "custom": Counter((e["eventType"], e["deduplicationId"]) for e in state["events"]["custom"]),
            "export": Counter(r.get("orderId") for r in state["purchases"])}


# ---- tests ---------------------------------------------------------------------------------------------
def test_instances_from_programs():
    assert friendbuy_instances(programs()) == [
        FriendbuyInstance("friendbuy", "FRIENDBUY", ("us", "uk", "eu"),
                          (("us", "camp-us"), ("uk", "camp-uk"), ("eu", "camp-eu")))]


def test_first_sync_matches_the_warehouse_and_a_second_sends_nothing():
    con = new_db()
    world(con)
    with friendbuy() as sim:
        client = client_for(sim)
        res = sync(con, client, "r1")
        assert {s for _, _, s in states(con)} == {"ok"}
        state = sim_state(sim)
        # customers: exactly the instance's customers with an email, SF ids in additionalProperties
        expected_customers = {k for (k,) in con.execute("SELECT customer_key FROM analytics.customers "
                                                        "WHERE market_id IN ('us', 'uk')").fetchall()}
        assert {c["customerId"] for c in state["customers"]} == expected_customers
        c0 = next(c for c in state["customers"] if c["customerId"] == "cus_0")
        assert (c0["email"], c0["firstName"], c0["additionalProperties"]) == (
            "c0@example.com", "Cus_0", {"sfContactId": "003A", "sfAccountId": "001A", "market": "us"})
        # one purchase per order of a Friendbuy market (declined and other markets' orders excluded)
        assert effects(state)["purchases"] == Counter({"sf:0": 1, "sf:1": 1, "sf:2": 1, "sf:p": 1, "sf:uk": 1})
        bodies = effects(state)["purchase_bodies"]
        assert bodies["sf:1"] == {
            "orderId": "sf:1", "customerId": "cus_1", "amount": 100.0, "currency": "USD", "email": "c1@example.com",
            "firstName": "Cus_1", "lastName": "Test", "isNewCustomer": True, "ipAddress": "10.0.0.1",
            "userAgent": "pytest", "products": [{"sku": "sku1", "name": "Sku1", "quantity": 2, "price": 50.0}],
            "additionalProperties": {"market": "us", "campaignId": "camp-us"}}
        # second order of cus_0: not new; amount after discount; referral code; first coupon (no FB incentive known)
        assert {k: bodies["sf:p"][k] for k in ("isNewCustomer", "amount", "couponCode", "referralCode")} == {
            "isNewCustomer": False, "amount": 35.0, "couponCode": "SUMMER", "referralCode": "ADA10"}
        assert bodies["sf:uk"]["additionalProperties"] == {"market": "uk", "campaignId": "camp-uk"}
        assert bodies["sf:uk"]["currency"] == "GBP"
        # refund and cancellation as custom events, once per id
        assert effects(state)["custom"] == Counter({("refund", "sf:1:refund"): 1, ("cancellation", "sf:2:cancel"): 1})
        refund_event = next(e for e in state["events"]["custom"] if e["eventType"] == "refund")
        assert {k: refund_event[k] for k in ("email", "customerId", "additionalProperties")} == {
            "email": "c1@example.com", "customerId": "cus_1",
            "additionalProperties": {"orderId": "sf:1", "amount": "25.00", "currency": "USD", "market": "us",
                                     "campaignId": "camp-us"}}
        assert state["events"]["account-sign-up"] == []
        t = res.totals()
        assert (t["attempted"], t["sent"], t["failed"], t["held"]) == (11, 11, 0, 0)
        assert client.stats.by_status.get(429, 0) == 0

        before = dict(sim.request_counts)
        res2 = sync(con, client, "r2")
        assert dict(sim.request_counts) == before             # zero requests, writes or reads
        assert res2.totals()["attempted"] == 0 and res2.totals()["unchanged"] == 11


def test_one_change_sends_exactly_the_writes_it_implies():
    con = new_db()
    world(con)
    order(con, "bc:9", "cus_2", "c2@example.com", status="paid")
    with friendbuy() as sim:
        client = client_for(sim)
        sync(con, client, "r1")
        w, counts = writes(sim), dict(sim.request_counts)
        # status changes and refunds never re-send a purchase; a new order sends one
        order(con, "sf:0", "cus_0", "c0@example.com", status="refunded", gross="100.00")
        order(con, "sf:p", "cus_0", "c0@example.com", status="shipped", gross="45.00",
              placed_at=datetime(2026, 5, 2, tzinfo=timezone.utc))
        sync(con, client, "r2")
        assert writes(sim) == w
        customer(con, "cus_1", "c1@example.com", last_name="Changed")              # one customer upsert
        refund(con, "sf:0:refund", "sf:0", "100.00")                               # one refund event
        order(con, "bc:9", "cus_2", "c2@example.com", status="cancelled")          # one cancellation event
        order(con, "sf:new", "cus_1", "c1@example.com", status="paid",
              placed_at=datetime(2026, 5, 20, tzinfo=timezone.utc))
        res = sync(con, client, "r3")
        new = {k: v - counts.get(k, 0) for k, v in sim.request_counts.items() if v != counts.get(k, 0)}
        assert new == {"POST /v1/customer": 1, "POST /v1/event/purchase": 1, "POST /v1/event/custom": 2}
        assert (res.entities["customers"].sent, res.entities["purchases"].sent, res.entities["custom_events"].sent) \
            == (1, 1, 2)
        state = sim_state(sim)
        assert effects(state)["purchases"]["sf:new"] == 1
        assert effects(state)["purchase_bodies"]["sf:new"]["isNewCustomer"] is False
        assert effects(state)["custom"][("cancellation", "bc:9:cancellation")] == 1
        assert next(c for c in state["customers"] if c["customerId"] == "cus_1")["lastName"] == "Changed"
        w = writes(sim)
        sync(con, client, "r4")
        assert writes(sim) == w


def test_echoes_of_our_own_pushes_do_not_trigger_writes():
    """A pushed purchase with a referral code is attributed by Friendbuy and comes back through the
    exports (purchase row, reward, friend incentive code): the next run must send nothing."""
    con = new_db()
    world(con)
    with friendbuy() as sim:
        add_records(sim, "shares", share("ADA10"))
        client = client_for(sim)
        sync(con, client, "r1")
        state = sim_state(sim)
        assert effects(state)["export"] == Counter({"sf:p": 1})              # Friendbuy attributed it
        # what the next extraction lands: the purchase row, and the coupon as a friend incentive
        for i, (kind, coupon) in enumerate([("purchase", None), ("friend_incentive", "FRIEND-1")]):
            upsert(con, "staging.referral_events", "event_key",
                   {"event_key": f"fb:{kind}:{i}", "source": "fb", "kind": kind, "campaign_id": "camp-us",
                    "occurred_at": NOW, "friend_customer_id": "cus_0", "order_id": "sf:p", "coupon_code": coupon,
                    "referral_code": "ADA10"})
        con.execute("UPDATE analytics.customers SET referral_code = 'CUS0-CODE' WHERE customer_key = 'cus_0'")
        w = writes(sim)
        sync(con, client, "r2")
        assert writes(sim) == w


def test_coupon_prefers_a_friendbuy_friend_incentive():
    con = new_db()
    world(con, 1)
    upsert(con, "staging.referral_events", "event_key",
           {"event_key": "fb:fi:1", "source": "fb", "kind": "friend_incentive", "campaign_id": "camp-us",
            "occurred_at": NOW, "friend_customer_id": "cus_0", "coupon_code": "FRIEND-1"})
    with friendbuy() as sim:
        sync(con, client_for(sim), "r1")
        assert effects(sim_state(sim))["purchase_bodies"]["sf:p"]["couponCode"] == "FRIEND-1"


def test_injected_faults_converge_to_the_fault_free_state_when_the_account_dedupes_order_ids():
    con_ok, con = new_db(), new_db()
    world(con_ok, 8)
    world(con, 8)
    options = {"duplicate_purchase": "ignore"}
    with friendbuy(options) as sim:
        sync(con_ok, client_for(sim), "clean", order_id_dedup=True)
        expected = effects(sim_state(sim))
    faults = FaultSpec(p_429=0.05, p_500=0.04, p_503=0.04, p_slow=0.04, p_drop=0.03, slow_seconds=0.6,
                       retry_after_seconds=0.05, seed=11)
    with friendbuy(options, faults) as sim:
        client = client_for(sim, timeout=0.3, max_attempts=3)
        for run in range(6):
            sync(con, client, f"f{run}", now=NOW + timedelta(days=run), order_id_dedup=True)
        injected = dict(sim.faults.injected)
        set_faults(sim, **NO_FAULTS)
        sync(con, client, "final", now=NOW + timedelta(days=30), order_id_dedup=True)
        got = effects(sim_state(sim))
    assert sum(injected.values()) >= 8 and injected["slow"] + injected["drop"] >= 2 and client.stats.retries > 0
    assert got == expected                      # every purchase once, custom events once, same customers
    assert {s for _, _, s in states(con)} == {"ok"}


def test_without_known_dedupe_a_purchase_in_doubt_is_never_repeated_blindly():
    """Simulator default ``accept`` (a repeated orderId counts again): dropped purchase requests are
    in doubt; the next run checks the purchases export (attributed purchases show their orderId),
    holds the rest in ``ops.failed_payloads`` and sends nothing until an operator decides."""
    con = new_db()
    world(con, 2)
    con.execute("DELETE FROM analytics.orders WHERE order_key NOT IN ('sf:0', 'sf:1', 'sf:p')")
    con.execute("DELETE FROM staging.refunds")
    with friendbuy() as sim:
        add_records(sim, "shares", share("ADA10"))
        client = client_for(sim)
        sync(con, client, "r1")                    # customers + purchases ok (and a token, before the faults)
        refund(con, "sf:1:refund", "sf:1", "10.00")
        order(con, "sf:2", "cus_1", "c1@example.com", placed_at=datetime(2026, 5, 9, tzinfo=timezone.utc))
        order(con, "sf:3", "cus_0", "c0@example.com", referral_code="ADA10",
              placed_at=datetime(2026, 5, 9, tzinfo=timezone.utc))
        # 1. both purchase requests are dropped: the outcome is unknown to us (Friendbuy did not record them)
        set_faults(sim, p_drop=1.0)
        r = sync(con, client, "r2")
        assert r.entities["purchases"].retry == 2 and r.entities["purchases"].sent == 0
        # ... and a 500 to a purchase may come after Friendbuy recorded it: in doubt too, not failed
        set_faults(sim, p_drop=0.0, p_500=1.0)
        order(con, "sf:4", "cus_1", "c1@example.com", placed_at=datetime(2026, 5, 10, tzinfo=timezone.utc))
        sync(con, client, "r2b")
        set_faults(sim, **NO_FAULTS)
        assert con.execute("SELECT record_key, status, last_status_code FROM ops.sync_state WHERE entity = 'purchases' "
                           "AND status <> 'ok' ORDER BY 1").fetchall() == [
            ("sf:2", "in_flight", None), ("sf:3", "in_flight", None), ("sf:4", "in_flight", 500)]
        posted = sim.request_counts["POST /v1/event/purchase"]
        looked_up = sim.request_counts["GET /v1/analytics/purchases"]
        # 2. next run: nothing repeated; none is in the export (never recorded) -> all held
        r = sync(con, client, "r3", now=NOW + timedelta(hours=1))
        assert sim.request_counts["POST /v1/event/purchase"] == posted
        assert r.entities["purchases"].held == 3
        held = con.execute("SELECT record_key, status, last_error FROM ops.failed_payloads "
                           "WHERE entity = 'purchases' ORDER BY 1").fetchall()
        assert [(k, s) for k, s, _ in held] == [("sf:2", "in_flight"), ("sf:3", "in_flight"), ("sf:4", "in_flight")]
        assert all("in doubt" in e for _, _, e in held)
        assert sim.request_counts["GET /v1/analytics/purchases"] == looked_up + 1   # only sf:3 carries a code
        # 3. the operator checks Friendbuy: none is there -> released as due retries, sent once
        con.execute("UPDATE ops.sync_state SET status = 'retry', next_retry_at = NULL "
                    "WHERE entity = 'purchases' AND status = 'in_flight'")
        sync(con, client, "r4", now=NOW + timedelta(hours=2))
        assert {s for _, _, s in states(con)} == {"ok"}
        state = sim_state(sim)
    assert effects(state)["purchases"] == Counter({"sf:0": 1, "sf:1": 1, "sf:p": 1, "sf:2": 1, "sf:3": 1, "sf:4": 1})
    assert effects(state)["custom"] == Counter({("refund", "sf:1:refund"): 1})


def test_crash_after_marker_without_dedupe_reconciles_attributed_purchases_and_holds_the_rest():
    con = new_db()
    world(con, 2)
    con.execute("DELETE FROM staging.refunds")

    def crash(record_key, payload):
        if record_key == "sf:p":
            raise RuntimeError("simulated crash between send and outcome record")

    with friendbuy() as sim:
        add_records(sim, "shares", share("ADA10"))
        client = client_for(sim)
        with pytest.raises(RuntimeError, match="simulated crash"):
            sync(con, client, "r1", after_send=crash)
        assert [s for _, _, s in states(con, "purchases")] == ["in_flight"] * 4
        posted = sim.request_counts["POST /v1/event/purchase"]
        assert posted == 4
        res = sync(con, client, "r2")
        assert sim.request_counts["POST /v1/event/purchase"] == posted        # nothing repeated
        assert res.entities["purchases"].reconciled == 1 and res.entities["purchases"].held == 3
        assert states(con, "purchases") == [("purchases", "sf:0", "in_flight"), ("purchases", "sf:1", "in_flight"),
                                            ("purchases", "sf:p", "ok"), ("purchases", "sf:uk", "in_flight")]
        assert con.execute("SELECT outcome FROM ops.sync_log WHERE record_key = 'sf:p'").fetchall() == [("reconciled",)]
        # the operator confirms the held ones in Friendbuy -> ok; nothing is sent again
        con.execute("UPDATE ops.sync_state SET status = 'ok', first_ok_at = updated_at "
                    "WHERE entity = 'purchases' AND status = 'in_flight'")
        sync(con, client, "r3")
        assert sim.request_counts["POST /v1/event/purchase"] == posted
        state = sim_state(sim)
    assert effects(state)["purchases"] == Counter({"sf:0": 1, "sf:1": 1, "sf:p": 1, "sf:uk": 1})
    assert effects(state)["export"] == Counter({"sf:p": 1})


def test_held_entity_resends_only_what_the_destination_provably_lacks(monkeypatch):
    """Engine rule for ``resend_in_doubt=False``: reconcile ``False`` → re-sent in the same run;
    ``None`` → held."""
    con = new_db()
    world(con, 2)
    con.execute("DELETE FROM staging.refunds")
    real_specs = fbsync.friendbuy_specs

    def specs(*args, **kwargs):
        out = real_specs(*args, **kwargs)
        lacks = lambda client, p: False if p["order_id"] == "sf:0" else None  # noqa: E731
        return [replace(s, reconcile=lacks) if s.entity == "purchases" else s for s in out]

    def crash(record_key, payload):
        if "order_id" in payload:
            raise RuntimeError("crash after the purchases were sent")

    with friendbuy() as sim:
        client = client_for(sim)
        with pytest.raises(RuntimeError):
            sync(con, client, "r1", after_send=crash)
        assert [s for _, _, s in states(con, "purchases")] == ["in_flight"] * 4
        monkeypatch.setattr(fbsync, "friendbuy_specs", specs)
        res = sync(con, client, "r2")
        assert sim.request_counts["POST /v1/event/purchase"] == 4 + 1
        assert res.entities["purchases"].sent == 1 and res.entities["purchases"].held == 3
        assert [r for r in states(con, "purchases") if r[2] == "ok"] == [("purchases", "sf:0", "ok")]
        assert con.execute("SELECT outcome, attempt FROM ops.sync_log WHERE record_key = 'sf:0'").fetchall() == [
            ("ok", 1)]

def test_crash_after_marker_with_dedupe_resends_by_order_id_without_duplicate():
    con = new_db()
    world(con, 2)

    def crash(record_key, payload):
        if record_key in ("sf:1", "sf:0:refund"):
            raise RuntimeError("simulated crash")

    with friendbuy({"duplicate_purchase": "reject"}) as sim:
        client = client_for(sim)
        with pytest.raises(RuntimeError):
            sync(con, client, "r1", after_send=crash, order_id_dedup=True)
        assert [s for _, _, s in states(con, "purchases")] == ["in_flight"] * 4
        sync(con, client, "r2", order_id_dedup=True)          # re-sent by orderId: 409 "already tracked" = ok
        assert {s for _, _, s in states(con)} == {"ok"}
        refund(con, "sf:0:refund", "sf:0", "30.00")
        with pytest.raises(RuntimeError):
            sync(con, client, "r3", after_send=crash, order_id_dedup=True)   # the new refund's event crashes
        assert states(con, "custom_events")[0] == ("custom_events", "sf:0:refund", "in_flight")
        sync(con, client, "r4", order_id_dedup=True)          # re-sent by (eventType, deduplicationId)
        assert {s for _, _, s in states(con)} == {"ok"}
        assert sim.request_counts["POST /v1/event/purchase"] == 8
        assert sim.request_counts["POST /v1/event/custom"] == 3
        state = sim_state(sim)
    assert effects(state)["purchases"] == Counter({"sf:0": 1, "sf:1": 1, "sf:p": 1, "sf:uk": 1})
    assert effects(state)["custom"] == Counter({("refund", "sf:1:refund"): 1, ("refund", "sf:0:refund"): 1})


def test_per_record_422_is_failed_does_not_block_others_and_is_retried_after_fix():
    con = new_db()
    customer(con, "cus_a", "ann@example.com")
    customer(con, "cus_bad", "not-an-email")
    customer(con, "cus_c", "cat@example.com")
    order(con, "sf:bad", "cus_c", "cat@example.com", currency="usd1")             # refused by our model
    with friendbuy() as sim:
        client = client_for(sim)
        sync(con, client, "r1")
        assert states(con) == [("customers", "cus_a", "ok"), ("customers", "cus_bad", "failed"),
                               ("customers", "cus_c", "ok"), ("purchases", "sf:bad", "failed")]
        failed = dict((k, (c, e, p)) for k, c, e, p in con.execute(
            "SELECT record_key, last_status_code, last_error, payload FROM ops.failed_payloads").fetchall())
        assert failed["cus_bad"][0] == 422 and 'must be a valid email' in failed["cus_bad"][1]
        assert orjson.loads(failed["cus_bad"][2])["email"] == "not-an-email"
        assert failed["sf:bad"][0] is None and "currency" in failed["sf:bad"][1]
        assert sim.request_counts.get("POST /v1/event/purchase", 0) == 0
        w = writes(sim)
        sync(con, client, "r2")                                   # unchanged payloads: not re-sent
        assert writes(sim) == w
        customer(con, "cus_bad", "bad@example.com")
        order(con, "sf:bad", "cus_c", "cat@example.com", currency="USD")
        sync(con, client, "r3")
        assert writes(sim) == w + 2
        assert {s for _, _, s in states(con)} == {"ok"}
        assert con.execute("SELECT count(*) FROM ops.failed_payloads").fetchall()[0][0] == 0


def test_destination_owned_fields_are_never_written():
    con = new_db()
    customer(con, "cus_a", "ann@example.com")
    with friendbuy() as sim:
        client = client_for(sim)
        sync(con, client, "r1")
        # Friendbuy users set fields Friendbuy owns
        remote = sim_state(sim)["customers"][0]
        add_records(sim, "customers", {**remote, "loyaltyStatus": "blocked", "category": "vip"})
        customer(con, "cus_a", "ann@example.com", last_name="Smith")
        sync(con, client, "r2")
        remote = sim_state(sim)["customers"][0]
        assert (remote["lastName"], remote["loyaltyStatus"], remote["category"]) == ("Smith", "blocked", "vip")
        assert set(payload(con, "customers", "cus_a")) == {"customer_id", "email", "first_name", "last_name", "market"}
        # a field handed to Friendbuy (policy never) is neither sent nor a reason to send
        own = parse_ownership({**{name: obj.model_dump()["fields"] for name, obj in load_ownership().objects.items()},
                               "friendbuy.customers": {**load_ownership().for_object("friendbuy.customers")
                                                       .model_dump()["fields"],
                                                       "first_name": {"owner": "friendbuy", "policy": "never"}}})
        customer(con, "cus_a", "ann@example.com", last_name="Smith", first_name="Renamed")
        sync(con, client, "r3", ownership=own)
        assert sim_state(sim)["customers"][0]["firstName"] == "Cus_A"
        assert "first_name" not in payload(con, "customers", "cus_a")


def test_rate_close_to_the_configured_limit_without_429():
    con = new_db()
    for i in range(30):
        customer(con, f"cus_{i:02d}", f"r{i}@example.com")
    with friendbuy(rate=10) as sim:
        client = FriendbuyResource(mapi_key=sim.credentials["key"], mapi_secret=sim.credentials["secret"],
                                   mapi_url=sim.base_url, push_rate_limit_per_second=10).push_client()
        client.api.limiter.tokens = 0.0          # start from an empty bucket: measure the steady rate
        started = time.monotonic()
        res = sync(con, client, "r1", settings=SyncSettings(concurrency=4))
        elapsed = time.monotonic() - started
    assert res.entities["customers"].sent == 30
    assert 429 not in client.stats.by_status
    requests_sent = client.stats.requests                      # 30 upserts + 1 token
    assert requests_sent == 31
    assert 9.0 <= requests_sent / elapsed <= 10.6

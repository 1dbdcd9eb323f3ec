"""Salesforce write-back (Contacts, Referral__c, Referral_Reward__c) over real HTTP against the
Salesforce simulator: sObject Collections and Bulk API 2.0 ingest through the sync engine (docs/sync.md)."""
from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import orjson
import pytest
import requests

from referral_pipeline.config.programs import Programs
from referral_pipeline.sandbox.salesforce.schema import make_id
from referral_pipeline.sync.engine import SyncSettings, ensure_sync_schema
from referral_pipeline.sync.salesforce import (REFERRALS, SalesforceInstance, SalesforceWriteOptions,
                                               run_salesforce_sync, salesforce_instances, send_bulk)
from referral_pipeline.transform.attribution.context import ensure_attribution_schema
from referral_pipeline.transform.identity.runner import ensure_identity_schema
from referral_pipeline.transform.rewards.fraud import ensure_rewards_schema
from referral_pipeline_tests.sources.salesforce_support import client_for, contact, salesforce_sim, write_org
from referral_pipeline_tests.transform.identity_support import programs

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
PLACED = datetime(2026, 5, 1, 9, 30, tzinfo=timezone.utc)
INST = SalesforceInstance("salesforce", "sf", "SALESFORCE", ("us", "uk", "eu"))
FAST = SyncSettings(concurrency=4, chunk_size=200, max_attempts=6, retry_base_seconds=60)
C = {n: make_id("003", n) for n in range(1, 251)}
WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")


# ---- warehouse ---------------------------------------------------------------------------------------------
def new_db() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    ensure_identity_schema(con)
    ensure_attribution_schema(con)
    ensure_rewards_schema(con)
    ensure_sync_schema(con)
    return con


def put(con, table: str, key: str, row: dict) -> None:
    con.execute(f"DELETE FROM {table} WHERE {key} = ?", [row[key]])
    con.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))


def customer(con, key: str, market: str = "us", contact_n: int | None = None, **extra) -> None:
    cid = C[contact_n] if contact_n else None
    put(con, "analytics.customers", "customer_key", {
        "customer_key": key, "email": f"{key}@example.com", "market_id": market, "sf_contact_id": cid,
        "source_record_keys": [f"sf:{cid}"] if cid else [f"ct:{key}"], "is_deleted": False, **extra})


def attribution(con, order_key: str, friend: str, advocate: str, campaign: str = "camp-us", market: str = "us",
                method: str = "referral_code", code: str | None = "ANN10", clicked_at=None, **extra) -> None:
    put(con, "analytics.referral_attribution", "order_key", {
        "order_key": order_key, "friend_customer_key": friend, "advocate_customer_key": advocate,
        "campaign_id": campaign, "market_id": market, "attribution_method": method, "referral_code": code,
        "clicked_at": clicked_at, "placed_at": PLACED, "is_new_customer": True, "attributed_at": NOW,
        "updated_at": NOW, "load_seq": 1, **extra})


def reward_key(campaign: str, friend: str) -> str:
    return "rwd_" + hashlib.sha256(f"{campaign}|{friend}".encode()).hexdigest()[:16]


def referral_key(campaign: str, advocate: str, friend: str) -> str:
    return "ref_" + hashlib.sha256(f"{campaign}|{advocate}|{friend}".encode()).hexdigest()[:16]


def reward(con, friend: str, advocate: str | None, status: str = "pending", campaign: str = "camp-us",
           market: str = "us", **extra) -> str:
    key = reward_key(campaign, friend)
    put(con, "analytics.rewards", "reward_key", {
        "reward_key": key, "campaign_id": campaign, "market_id": market, "advocate_customer_key": advocate,
        "friend_customer_key": friend, "order_key": f"sf:{friend}", "status": status, "reason": None,
        "amount": Decimal("20"), "currency": "USD", "fraud_rules": [], "created_at": NOW, "updated_at": NOW,
        "status_changed_at": NOW, "load_seq": 1, **extra})
    return key


def world(con) -> None:
    """Four customers with Contacts, one without (commercetools), one in eu; three referrals."""
    for n in range(1, 5):
        customer(con, f"cus_{n}", contact_n=n, referral_code=f"CODE{n}", loyalty_points_balance=10 * n,
                 loyalty_vip_tier="Gold" if n == 1 else None)
    customer(con, "cus_5")
    customer(con, "cus_6", market="eu")
    attribution(con, "sf:o2", "cus_2", "cus_1", clicked_at=PLACED - timedelta(days=2))
    attribution(con, "ct:o5", "cus_5", "cus_1", method="coupon", code=None)
    attribution(con, "ct:o6", "cus_6", "cus_5", campaign="camp-eu", market="eu", method="signup", code=None,
                signed_up_at=PLACED - timedelta(days=1))
    reward(con, "cus_2", "cus_1", status="approved", reason="RETURN_WINDOW_PASSED")
    reward(con, "cus_5", "cus_1", status="on_hold", reason="SAME_IP_AS_ADVOCATE", fraud_rules=["SAME_IP_AS_ADVOCATE"])
    reward(con, "cus_6", "cus_5", status="not_eligible", campaign="camp-eu", market="eu", currency="EUR",
           reason="BELOW_MIN_ORDER_VALUE")
    put(con, "analytics.referral_events", "event_key", {
        "event_key": "fb:adv1", "kind": "advocate_reward", "market_id": "us", "campaign_id": "camp-us",
        "occurred_at": NOW, "friend_customer_key": "cus_2", "advocate_customer_key": "cus_1",
        "coupon_code": "ADV-ANN-20", "updated_at": NOW, "load_seq": 1})


# ---- simulator ---------------------------------------------------------------------------------------------------
def org(tmp_path, n_contacts: int = 5):
    return write_org(tmp_path, {"Contact": [contact(n, n) for n in range(1, n_contacts + 1)]})


def sync(con, client, run_id: str, now: datetime = NOW, **kw):
    return run_salesforce_sync(con, client, INST, run_id=run_id, now=now, settings=kw.pop("settings", FAST), **kw)


def sim_state(sim) -> dict:
    return requests.get(sim.base_url + "/_sandbox/state", timeout=10).json()


def writes(sim) -> int:
    return sum(v for k, v in sim.request_counts.items() if k.split(" ")[0] in WRITE_METHODS
               and "oauth2" not in k)


def plant(sim, collection: str, records: list[dict]) -> None:
    r = requests.post(sim.base_url + "/_sandbox/records", json={"collection": collection, "records": records},
                      timeout=10)
    assert r.status_code == 200, r.text


def by(records: list[dict], key: str) -> dict:
    return {r[key]: r for r in records if r.get(key) and not r.get("IsDeleted")}


def states(con, entity: str | None = None):
    sql = "SELECT entity, record_key, status, attempts FROM ops.sync_state"
    if entity:
        return con.execute(sql + " WHERE entity = ? ORDER BY record_key", [entity]).fetchall()
    return con.execute(sql + " ORDER BY entity, record_key").fetchall()


def assert_matches_warehouse(con, state: dict) -> None:
    """The sandbox holds exactly what the DuckDB views say (contracts §4 as the oracle)."""
    rewards = by(state["Referral_Reward__c"], "Reward_Key__c")
    expected = con.execute("""SELECT reward_key, status, reason, CAST(amount AS DOUBLE), currency, order_key,
                                     advocate_customer_key, friend_customer_key, campaign_id, market_id
                              FROM analytics.rewards ORDER BY 1""").fetchall()
    assert sorted(rewards) == [r[0] for r in expected]
    for key, status, reason, amount, currency, order_key, adv, friend, campaign, market in expected:
        got = rewards[key]
        assert (got["Status__c"], got.get("Status_Reason__c"), got["Amount__c"], got["CurrencyIsoCode"],
                got.get("Order_Key__c"), got.get("Advocate_Customer_Key__c"), got["Friend_Customer_Key__c"],
                got["Campaign_Id__c"], got["Market__c"]) == (status, reason, amount, currency, order_key, adv, friend,
                                                             campaign, market)
    contacts = {r["Id"]: r for r in state["Contact"]}
    for key, cid, code, points, tier in con.execute(
            "SELECT customer_key, sf_contact_id, referral_code, loyalty_points_balance, loyalty_vip_tier "
            "FROM analytics.customers WHERE sf_contact_id IS NOT NULL").fetchall():
        got = contacts[cid]
        assert (got["Referral_Customer_Key__c"], got.get("Referral_Code__c"), got.get("Loyalty_Points_Balance__c"),
                got.get("Loyalty_VIP_Tier__c")) == (key, code, None if points is None else float(points), tier)


# ---- tests ---------------------------------------------------------------------------------------------------------
def test_instances_from_programs():
    assert salesforce_instances(programs()) == [INST]
    two = Programs.model_validate({
        "sources": [{"id": "sf", "type": "salesforce"}, {"id": "sf2", "type": "salesforce", "env_prefix": "SF2"},
                    {"id": "ct", "type": "commercetools"}],
        "markets": [{"id": m, "business_unit": m, "currency": "USD", "match": [{"source": s}],
                     "advocate_reward": {"amount": 1, "currency": "USD"}}
                    for m, s in (("us", "sf"), ("de", "sf2"), ("eu", "ct"))]})
    assert salesforce_instances(two) == [SalesforceInstance("salesforce", "sf", "SALESFORCE", ("us", "eu")),
                                         SalesforceInstance("salesforce_sf2", "sf2", "SF2", ("de",))]


def test_first_sync_matches_warehouse_second_sends_nothing(tmp_path):
    con = new_db()
    world(con)
    with salesforce_sim(org(tmp_path)) as sim:
        client = client_for(sim)
        res = sync(con, client, "r1")
        state = sim_state(sim)
        assert_matches_warehouse(con, state)
        # one request per entity: contacts updated by Id, the custom objects upserted by External ID
        assert {k: v for k, v in sim.request_counts.items() if k.split(" ")[0] in WRITE_METHODS and "oauth2" not in k} \
            == {"PATCH /services/data/v{version}/composite/sobjects": 1,
                "PATCH /services/data/v{version}/composite/sobjects/{sobject}/{field}": 2}
        t = res.totals()
        assert (t["attempted"], t["sent"], t["failed"], t["requests"]) == (10, 10, 0, 3)
        assert len(state["Contact"]) == 5                          # no Contact created
        assert "Referral_Customer_Key__c" not in by(state["Contact"], "Id")[C[5]]   # no customer: untouched
        refs = by(state["Referral__c"], "Referral_Key__c")
        assert len(refs) == 3
        r = refs[referral_key("camp-us", "cus_1", "cus_2")]
        assert (r["Advocate_Contact__c"], r["Friend_Contact__c"], r["Attribution_Method__c"], r["Referral_Code__c"],
                r["Campaign_Id__c"], r["Market__c"]) == (C[1], C[2], "referral_code", "ANN10", "camp-us", "us")
        assert r["Clicked_At__c"].startswith("2026-04-29T09:30:00") and r["First_Purchase_At__c"].startswith(
            "2026-05-01T09:30:00")
        r5 = refs[referral_key("camp-us", "cus_1", "cus_5")]   # friend without a Contact: key only, no lookup
        assert (r5.get("Friend_Contact__c"), r5["Friend_Customer_Key__c"], r5["Advocate_Contact__c"]) == (
            None, "cus_5", C[1])
        rewards = by(state["Referral_Reward__c"], "Reward_Key__c")
        held = rewards[reward_key("camp-us", "cus_5")]
        assert (held["Fraud_Rules__c"], held.get("Promo_Code__c")) == ("SAME_IP_AS_ADVOCATE", None)
        assert rewards[reward_key("camp-us", "cus_2")]["Promo_Code__c"] == "ADV-ANN-20"
        assert by(state["Contact"], "Id")[C[1]]["Loyalty_VIP_Tier__c"] == "Gold"

        w = writes(sim)
        res2 = sync(con, client, "r2")
        assert writes(sim) == w                                    # a run with no change sends zero writes
        assert (res2.totals()["attempted"], res2.totals()["unchanged"], res2.totals()["requests"]) == (0, 10, 0)
        assert {s for *_, s, _ in states(con)} == {"ok"}


def test_one_change_sends_exactly_its_writes(tmp_path):
    con = new_db()
    world(con)
    with salesforce_sim(org(tmp_path)) as sim:
        client = client_for(sim)
        sync(con, client, "r1")
        before = dict(sim.request_counts)
        reward(con, "cus_5", "cus_1", status="pending", reason="REVIEW_APPROVED")     # a reviewer approved the hold
        res = sync(con, client, "r2", now=NOW + timedelta(hours=1))
        delta = {k: v - before.get(k, 0) for k, v in sim.request_counts.items() if v != before.get(k, 0)}
        assert delta == {"PATCH /services/data/v{version}/composite/sobjects/{sobject}/{field}": 1}
        assert {e: (r.attempted, r.sent) for e, r in res.entities.items()} == {
            "contacts": (0, 0), "referrals": (0, 0), "rewards": (1, 1)}
        assert_matches_warehouse(con, sim_state(sim))
        # a loyalty change touches one Contact
        customer(con, "cus_3", contact_n=3, referral_code="CODE3", loyalty_points_balance=999)
        res = sync(con, client, "r3")
        assert {e: r.sent for e, r in res.entities.items()} == {"contacts": 1, "referrals": 0, "rewards": 0}
        got = by(sim_state(sim)["Contact"], "Id")[C[3]]
        assert (got["Loyalty_Points_Balance__c"], got.get("Loyalty_VIP_Tier__c")) == (999.0, None)


def test_reattribution_echo_does_not_rewrite_the_referral(tmp_path):
    """Friendbuy echoes our purchase push; the next attribution says method friendbuy (precedence over
    referral_code), possibly without the click. Referral__c keeps how the referral started: zero writes."""
    con = new_db()
    world(con)
    with salesforce_sim(org(tmp_path)) as sim:
        client = client_for(sim)
        sync(con, client, "r1")
        w = writes(sim)
        attribution(con, "sf:o2", "cus_2", "cus_1", method="friendbuy", code="ann10", clicked_at=None)
        res = sync(con, client, "r2", now=NOW + timedelta(days=1))
        assert writes(sim) == w and res.totals()["attempted"] == 0
        ref = by(sim_state(sim)["Referral__c"], "Referral_Key__c")[referral_key("camp-us", "cus_1", "cus_2")]
        assert (ref["Attribution_Method__c"], ref["Referral_Code__c"]) == ("referral_code", "ANN10")
        # an earlier attributed order of the pair is a real change: First_Purchase_At__c moves, once
        attribution(con, "sf:o1", "cus_2", "cus_1", placed_at=PLACED - timedelta(days=1))
        res = sync(con, client, "r3", now=NOW + timedelta(days=2))
        assert res.entities["referrals"].sent == 1 and writes(sim) == w + 1
        payload = orjson.loads(con.execute("SELECT payload FROM ops.sync_state WHERE entity = 'referrals' AND "
                                           "record_key = ?", [referral_key("camp-us", "cus_1", "cus_2")]
                                           ).fetchall()[0][0])
        assert "attribution_method__c" not in payload and payload["first_purchase_at__c"].startswith("2026-04-30")


def test_injected_faults_converge_to_the_fault_free_state(tmp_path):
    def many(con):
        world(con)
        for n in range(40):
            attribution(con, f"ct:x{n}", f"fr_{n}", "cus_1", code=f"C{n}")
            reward(con, f"fr_{n}", "cus_1", status=("pending", "approved", "issued")[n % 3])

    def comparable(state):
        strip = ("Id", "Name", "SystemModstamp", "LastModifiedDate", "CreatedDate", "CreatedById",
                 "LastModifiedById")
        return {t: sorted((tuple(sorted((k, str(v)) for k, v in r.items() if k not in strip)) for r in state[t]))
                for t in ("Contact", "Referral__c", "Referral_Reward__c")}

    con_ok, con = new_db(), new_db()
    many(con_ok)
    many(con)
    with salesforce_sim(org(tmp_path)) as sim:
        sync(con_ok, client_for(sim), "clean")
        expected = comparable(sim_state(sim))
    faults = {"p_429": 0.05, "p_500": 0.04, "p_503": 0.04, "p_slow": 0.04, "p_drop": 0.03, "slow_seconds": 0.6,
              "retry_after_seconds": 0.05, "seed": 11}
    with salesforce_sim(org(tmp_path)) as sim:
        client = client_for(sim, timeout=(2.0, 0.3), max_attempts=2)    # logged in before the faults start
        requests.post(sim.base_url + "/_sandbox/faults", json=faults, timeout=10).raise_for_status()
        opts = SalesforceWriteOptions(collection_size=5)     # many small requests for the faults to hit
        for run in range(8):
            sync(con, client, f"f{run}", now=NOW + timedelta(days=run), options=opts)
        injected = dict(sim.faults.injected)
        requests.post(sim.base_url + "/_sandbox/faults", json={"p_429": 0, "p_500": 0, "p_503": 0, "p_slow": 0,
                                                               "p_drop": 0}, timeout=10).raise_for_status()
        sync(con, client, "final", now=NOW + timedelta(days=30), options=opts)
        got = comparable(sim_state(sim))
    assert sum(injected.values()) >= 3 and client.stats.retries > 0
    # some records stayed retry after the in-run retries and were sent by a later run
    assert con.execute("SELECT count(*) FROM ops.sync_log WHERE outcome = 'retry'").fetchall()[0][0] > 0
    assert got == expected                     # same records, no duplicate Referral__c / Referral_Reward__c
    assert {s for *_, s, _ in states(con)} == {"ok"}


def test_crash_after_in_flight_marker_resends_by_external_id_without_duplicate(tmp_path):
    con = new_db()
    world(con)

    def crash(record_key, payload):
        if record_key == reward_key("camp-us", "cus_2"):
            raise RuntimeError("simulated crash between send and outcome record")

    with salesforce_sim(org(tmp_path)) as sim:
        client = client_for(sim)
        with pytest.raises(RuntimeError, match="simulated crash"):
            sync(con, client, "r1", after_send=crash)
        assert [s for *_, s, _ in states(con, "rewards")] == ["in_flight"] * 3
        assert len(sim_state(sim)["Referral_Reward__c"]) == 3          # the request had reached Salesforce
        res = sync(con, client, "r2")
        assert res.entities["rewards"].sent == 3 and res.entities["rewards"].requests == 1   # re-sent in one request
        state = sim_state(sim)
        assert len(state["Referral_Reward__c"]) == 3                    # upsert by Reward_Key__c: no duplicate
        assert {s for *_, s, _ in states(con)} == {"ok"}
        assert_matches_warehouse(con, state)


def test_required_field_missing_in_a_collection_fails_that_record_only_and_is_retried_after_fix(tmp_path):
    con = new_db()
    world(con)
    broken = reward(con, "cus_5", "cus_1", status="on_hold", order_key=None)
    with salesforce_sim(org(tmp_path)) as sim:
        obj = sim.schema.objects["Referral_Reward__c"]               # an admin makes Order_Key__c required
        obj.add(dataclasses.replace(obj.field("Order_Key__c"), required=True))
        client = client_for(sim)
        res = sync(con, client, "r1")
        assert res.entities["rewards"].requests == 1 and res.entities["rewards"].failed == 1
        assert states(con, "rewards") == sorted([
            ("rewards", reward_key("camp-eu", "cus_6"), "ok", 1), ("rewards", reward_key("camp-us", "cus_2"), "ok", 1),
            ("rewards", broken, "failed", 1)], key=lambda r: r[1])
        (key, status, code, error, payload), = con.execute(
            "SELECT record_key, status, last_status_code, last_error, payload FROM ops.failed_payloads").fetchall()
        assert (key, status, code) == (broken, "failed", 400)
        assert error.startswith("REQUIRED_FIELD_MISSING: Required fields are missing: [Order_Key__c]")
        assert orjson.loads(payload)["reward_key__c"] == broken
        assert len(by(sim_state(sim)["Referral_Reward__c"], "Reward_Key__c")) == 2
        w = writes(sim)
        sync(con, client, "r2")                                        # unchanged payload: not re-sent
        assert writes(sim) == w
        reward(con, "cus_5", "cus_1", status="on_hold", order_key="ct:o5")   # the data is fixed
        res = sync(con, client, "r3")
        assert res.entities["rewards"].sent == 1 and writes(sim) == w + 1
        assert con.execute("SELECT count(*) FROM ops.failed_payloads").fetchall() == [(0,)]
        assert by(sim_state(sim)["Referral_Reward__c"], "Reward_Key__c")[broken]["Order_Key__c"] == "ct:o5"


def test_salesforce_owned_fields_are_never_written(tmp_path):
    con = new_db()
    world(con)
    with salesforce_sim(org(tmp_path)) as sim:
        client = client_for(sim)
        sync(con, client, "r1")
        rkey = reward_key("camp-us", "cus_5")
        rid = by(sim_state(sim)["Referral_Reward__c"], "Reward_Key__c")[rkey]["Id"]
        # Salesforce users change their fields between runs
        plant(sim, "Contact", [{"Id": C[1], "Email": "ann.new@example.com", "FirstName": "Annie", "LastName": "Z"}])
        plant(sim, "Referral_Reward__c", [{"Id": rid, "Review_Decision__c": "approve", "Review_Notes__c": "ok"}])
        # and our side changes the same records
        customer(con, "cus_1", contact_n=1, referral_code="CODE1", loyalty_points_balance=500, loyalty_vip_tier="Gold")
        reward(con, "cus_5", "cus_1", status="pending", reason="REVIEW_APPROVED")
        res = sync(con, client, "r2")
        assert (res.entities["contacts"].sent, res.entities["rewards"].sent) == (1, 1)
        state = sim_state(sim)
        c1 = by(state["Contact"], "Id")[C[1]]
        assert (c1["Email"], c1["FirstName"], c1["LastName"], c1["Loyalty_Points_Balance__c"]) == (
            "ann.new@example.com", "Annie", "Z", 500.0)
        rw = by(state["Referral_Reward__c"], "Reward_Key__c")[rkey]
        assert (rw["Review_Decision__c"], rw["Review_Notes__c"], rw["Status__c"]) == ("approve", "ok", "pending")
    owned = {"email", "firstname", "lastname", "review_decision__c", "review_notes__c"}
    for (payload,) in con.execute("SELECT payload FROM ops.sync_state").fetchall():
        assert not owned & set(orjson.loads(payload))


def test_collections_carry_200_records_per_request(tmp_path):
    con = new_db()
    customer(con, "cus_1", contact_n=1)
    for n in range(450):
        reward(con, f"fr_{n:03d}", "cus_1")
    with salesforce_sim(org(tmp_path)) as sim:
        res = sync(con, client_for(sim), "r1", settings=SyncSettings(concurrency=4))
        assert res.entities["rewards"].sent == 450
        assert sim.request_counts["PATCH /services/data/v{version}/composite/sobjects/{sobject}/{field}"] == 3
        assert len(sim_state(sim)["Referral_Reward__c"]) == 450


def test_bulk_ingest_above_threshold_one_job_per_entity_with_per_record_failures(tmp_path):
    con = new_db()
    for n in range(1, 251):
        customer(con, f"cus_{n:03d}", contact_n=n, loyalty_points_balance=n)
    gone = "cus_250"                                       # its Contact was deleted in Salesforce
    for n in range(600):
        reward(con, f"fr_{n:03d}", "cus_1", status="approved" if n % 2 else "pending",
               order_key=None if n == 7 else f"sf:o{n}")
    opts = SalesforceWriteOptions(bulk_threshold=5)
    with salesforce_sim(org(tmp_path, 250)) as sim:
        plant(sim, "Contact", [{"Id": C[250], "IsDeleted": True}])
        obj = sim.schema.objects["Referral_Reward__c"]
        obj.add(dataclasses.replace(obj.field("Order_Key__c"), required=True))
        client = client_for(sim)
        res = sync(con, client, "r1", options=opts)
        counts = sim.request_counts
        assert counts["POST /services/data/v{version}/jobs/ingest"] == 2          # contacts (update) + rewards
        assert counts["PUT /services/data/v{version}/jobs/ingest/{job_id}/batches"] == 2
        assert "PATCH /services/data/v{version}/composite/sobjects/{sobject}/{field}" not in counts
        assert res.entities["rewards"].requests <= 10 and res.entities["contacts"].requests <= 10
        assert (res.entities["rewards"].sent, res.entities["rewards"].failed) == (599, 1)
        assert (res.entities["contacts"].sent, res.entities["contacts"].failed) == (249, 1)
        errors = dict(con.execute("SELECT record_key, last_error FROM ops.failed_payloads").fetchall())
        assert errors[reward_key("camp-us", "fr_007")].startswith("REQUIRED_FIELD_MISSING:")
        assert errors[gone].startswith("ENTITY_IS_DELETED:")
        state = sim_state(sim)
        assert len(by(state["Referral_Reward__c"], "Reward_Key__c")) == 599
        assert by(state["Contact"], "Id")[C[42]]["Loyalty_Points_Balance__c"] == 42.0
        # a re-run with no change: no job at all
        w = writes(sim)
        sync(con, client, "r2", options=opts)
        assert writes(sim) == w


def test_rate_close_to_the_configured_limit_without_throttling(tmp_path):
    con = new_db()
    customer(con, "cus_1", contact_n=1)
    for n in range(2400):
        reward(con, f"fr_{n:04d}", "cus_1")
    with salesforce_sim(org(tmp_path), rate_limit={"requests_per_second": 5}) as sim:
        client = client_for(sim, rate_limit_per_second=5.0)
        client.api.limiter.tokens = 0.0             # start from an empty bucket: measure the steady rate
        res = sync(con, client, "r1", settings=SyncSettings(concurrency=4),
                   options=SalesforceWriteOptions(bulk_threshold=10_000))
        assert res.entities["rewards"].sent == 2400 and res.entities["rewards"].requests == 12
        assert not {403, 429} & set(client.stats.by_status)
        log = [r for r in sim.request_log if "composite/sobjects/{sobject}" in r["template"]]
        times = [datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp() for r in log]
        assert len(times) == 12 and {r["status"] for r in log} == {200}
        rate = (len(times) - 1) / (max(times) - min(times))
        assert rate >= 4.5                           # ≥ 90% of the 5 requests/s limit


def test_daily_allowance_spent_keeps_records_for_a_later_run(tmp_path):
    con = new_db()
    world(con)
    with salesforce_sim(org(tmp_path), rate_limit={"daily_api_requests": 1}) as sim:
        client = client_for(sim)
        res = sync(con, client, "r1")
        assert (res.entities["contacts"].sent, res.entities["referrals"].retry, res.entities["rewards"].retry) == (
            4, 3, 3)
        row = con.execute("SELECT status, last_status_code, next_retry_at FROM ops.sync_state "
                          "WHERE entity = 'rewards' LIMIT 1").fetchall()[0]
        assert row == ("retry", 403, NOW + timedelta(seconds=60))     # not failed: nothing is wrong with them


def test_bulk_job_refused_as_a_whole_fails_its_records(tmp_path):
    with salesforce_sim(org(tmp_path)) as sim:
        client = client_for(sim)
        bodies = [{"referral_key__c": f"k{n}", "no_such_field__c": "x"} for n in range(201)]
        outcomes = send_bulk(client, REFERRALS, bodies)
        assert {(o.outcome, o.status_code) for o in outcomes} == {("failed", 400)}
        assert "Failed" in outcomes[0].error and "no_such_field__c" in outcomes[0].error
        assert sim.request_counts["GET /services/data/v{version}/jobs/ingest/{job_id}/{kind}"] == 0
        assert sim_state(sim)["Referral__c"] == []

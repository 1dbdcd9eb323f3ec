"""Commerce write-back over real HTTP against the commercetools and BigCommerce simulators
(docs/sync.md "Commerce write-back"): referral code, reward status and loyalty points on every
customer record of the instance, exactly as the DuckDB view says."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
import requests

from referral_pipeline.sandbox.bigcommerce import BigCommerceSimulator
from referral_pipeline.sandbox.core.config import FaultSpec, SystemConfig
from referral_pipeline.sandbox.testing import serve_in_thread
from referral_pipeline.sync.bigcommerce import bigcommerce_instances, pack, run_bigcommerce_sync
from referral_pipeline.sync.commerce import CommerceInstance, define_customer_values
from referral_pipeline.sync.commercetools import (TYPE_KEY, commercetools_instances, plan_actions,
                                                  run_commercetools_sync)
from referral_pipeline.sync.engine import SyncSettings, ensure_sync_schema
from referral_pipeline.sync.ownership import load_ownership, parse_ownership
from referral_pipeline.transform.rewards.fraud import ensure_rewards_schema
from referral_pipeline.transform.staging.runner import ensure_staging_schema
from referral_pipeline.warehouse.schema import ensure_schema
from referral_pipeline_tests.sources import bigcommerce_support as bcs
from referral_pipeline_tests.sources import commercetools_support as cts
from referral_pipeline_tests.transform import identity_support as ids

CT = CommerceInstance("ct", "commercetools", "CTP")
BC = CommerceInstance("bc", "bigcommerce", "BIGCOMMERCE")
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
FAST = SyncSettings(concurrency=4, chunk_size=50, max_attempts=5, retry_base_seconds=60)
CT_POST = "POST /{projectKey}/customers/{id}"
CT_GET = "GET /{projectKey}/customers/{id}"
CT_QUERY = "GET /{projectKey}/customers"
BC_PUT = "PUT /stores/{store_hash}/v3/customers/attribute-values"
FOREIGN_TYPE_ID = "7a1f0c4e-0000-4000-8000-0000000000ff"


# ---- the warehouse: staged customer records -> identity stage -> golden records, rewards ------------------
def warehouse():
    con = ids.new_db()
    ensure_schema(con)
    ensure_rewards_schema(con)
    ensure_sync_schema(con)
    return con


def email(i: int) -> str:
    return f"shopper{i}@example.com"


def reward(con, key: str, advocate_email: str, status: str, placed: str) -> None:
    at = ids.ts(placed)
    con.execute("DELETE FROM analytics.rewards WHERE reward_key = ?", [key])
    con.execute("""INSERT INTO analytics.rewards (reward_key, campaign_id, market_id, advocate_customer_key,
                       friend_customer_key, status, created_at, updated_at, status_changed_at, placed_at, load_seq)
                   VALUES (?, 'camp-us', 'us', ?, 'cus_friend', ?, ?, ?, ?, ?, 1)""",
                [key, ids.cus(advocate_email), status, NOW, NOW, NOW, at])


def loyalty(con, i: int, points: int) -> None:
    con.execute("UPDATE analytics.customers SET loyalty_points_balance = ? WHERE customer_key = ?",
                [points, ids.cus(email(i))])


def world(con, source: str, record_ids: list[str]) -> None:
    """Customer i: record ``<source>:<record_ids[i]>``. 0: code + points; 1: code + approved (newest of two
    rewards); 2: code only; 3: points only; 4: nothing to write; 5+: code."""
    for i, rid in enumerate(record_ids):
        ids.customer(con, f"{source}:{rid}", email(i), first_name=f"Ann{i}")
        if i in (0, 1, 2) or i >= 5:
            ids.event(con, f"s{i}", "share", advocate_email=email(i), referral_code=f"CODE{i}")
    ids.run(con)
    loyalty(con, 0, 120)
    if len(record_ids) > 3:
        loyalty(con, 3, 40)
    reward(con, "rwd_old", email(1), "canceled", "2026-03-01T00:00:00")
    reward(con, "rwd_new", email(1), "approved", "2026-04-01T00:00:00")


def view(con, source: str) -> dict[str, tuple]:
    """The DuckDB view the destination must match: record id -> (code, status, points)."""
    define_customer_values(con)
    return {r[0]: r[1:] for r in con.execute(
        "SELECT record_id, referral_code, referral_reward_status, loyalty_points FROM commerce_customer_values(?)",
        [source]).fetchall()}


def states(con) -> list[tuple]:
    return con.execute("SELECT record_key, status, last_status_code FROM ops.sync_state ORDER BY 1").fetchall()


def sim_state(sim) -> dict:
    return requests.get(sim.base_url + "/_sandbox/state", timeout=10).json()


def set_faults(sim, **faults) -> None:
    assert requests.post(sim.base_url + "/_sandbox/faults", json=faults, timeout=10).status_code == 200


def writes(sim) -> int:
    return sum(v for k, v in sim.request_counts.items() if k.split()[0] in ("POST", "PUT", "PATCH"))


# ---- commercetools ------------------------------------------------------------------------------------------
def ct_customer(i: int, **over) -> dict:
    rec = cts.customer(i, **over)
    if "custom" not in over:
        rec.pop("custom")
    return rec


def ct_ids(n: int) -> list[str]:
    return [cts.uid("c", i) for i in range(n)]


def ct_sim(tmp_path: Path, n: int = 5, customers: list[dict] | None = None, types: list[dict] | None = None,
           faults: FaultSpec | None = None, rate: float | None = None):
    cts.write_fixtures(tmp_path / "fx", customers=customers or [ct_customer(i) for i in range(n)], types=types or [])
    config = SystemConfig(faults=faults or FaultSpec(),
                          rate_limit={"requests_per_second": rate} if rate else {})
    from referral_pipeline.sandbox.commercetools import CommercetoolsSimulator
    return serve_in_thread(CommercetoolsSimulator(config, data_root=tmp_path / "fx"))


def ct_remote(sim) -> dict[str, tuple]:
    """Every customer carrying our fields -> (referralCode, referralRewardStatus, loyaltyPoints)."""
    state = sim_state(sim)
    type_id = next(t["id"] for t in state["types"] if t["key"] == TYPE_KEY)
    out = {}
    for c in state["customers"]:
        custom = c.get("custom") or {}
        if (custom.get("type") or {}).get("id") == type_id:
            f = custom.get("fields") or {}
            out[c["id"]] = (f.get("referralCode"), f.get("referralRewardStatus"), f.get("loyaltyPoints"))
    return out


def ct_sync(con, client, run_id, now=NOW, **kw):
    return run_commercetools_sync(con, client, CT, run_id=run_id, now=now, settings=kw.pop("settings", FAST), **kw)


def test_instances_from_programs():
    programs = ids.programs()
    assert commercetools_instances(programs) == [CommerceInstance("ct", "commercetools", "CTP")]
    assert bigcommerce_instances(programs) == [CommerceInstance("bc", "bigcommerce", "BIGCOMMERCE")]


def test_ct_first_sync_matches_view_second_sends_no_write(tmp_path):
    con = warehouse()
    world(con, "ct", ct_ids(5))
    expected = view(con, "ct")
    assert expected == {cts.uid("c", 0): ("CODE0", None, 120), cts.uid("c", 1): ("CODE1", "approved", None),
                        cts.uid("c", 2): ("CODE2", None, None), cts.uid("c", 3): (None, None, 40)}
    with ct_sim(tmp_path) as sim:
        client = cts.client_for(sim)
        res = ct_sync(con, client, "r1")
        assert sim.request_counts["POST /{projectKey}/types"] == 1            # type created once
        assert ct_remote(sim) == expected                                     # the view, exactly
        assert sim.request_counts[CT_POST] == 4 and sim.request_counts[CT_QUERY] == 1     # one read for the batch
        assert sim.request_counts[CT_GET] == 0
        assert [s for _, s, _ in states(con)] == ["ok"] * 4
        t = res.totals()
        assert (t["attempted"], t["sent"], t["failed"], t["requests"]) == (4, 4, 0, 7)
        untouched = next(c for c in sim_state(sim)["customers"] if c["id"] == cts.uid("c", 4))
        assert "custom" not in untouched and untouched["version"] == 1       # nothing to write: not written
        payload = orjson.loads(con.execute("SELECT payload FROM ops.sync_state WHERE record_key = ?",
                                           [cts.uid("c", 1)]).fetchall()[0][0])
        assert payload == {"id": cts.uid("c", 1), "referral_code": "CODE1", "referral_reward_status": "approved"}

        w = writes(sim)
        res2 = ct_sync(con, client, "r2")
        assert writes(sim) == w                                               # zero writes
        assert res2.totals()["attempted"] == 0 and res2.totals()["unchanged"] == 4
        assert sim.request_counts[CT_QUERY] == 1                              # not even a customer read


def test_ct_one_change_sends_exactly_one_action(tmp_path):
    con = warehouse()
    world(con, "ct", ct_ids(5))
    with ct_sim(tmp_path) as sim:
        client = cts.client_for(sim)
        ct_sync(con, client, "r1")
        w = writes(sim)
        before = {c["id"]: c["version"] for c in sim_state(sim)["customers"]}
        reward(con, "rwd_newest", email(1), "issued", "2026-05-01T00:00:00")
        res = ct_sync(con, client, "r2")
        assert writes(sim) == w + 1 and res.entities["customers"].sent == 1
        after = {c["id"]: c["version"] for c in sim_state(sim)["customers"]}
        assert {k for k in after if after[k] != before[k]} == {cts.uid("c", 1)}
        assert after[cts.uid("c", 1)] == before[cts.uid("c", 1)] + 1         # one update, one version
        assert ct_remote(sim) == view(con, "ct")


def test_ct_existing_type_and_foreign_fields_are_kept(tmp_path):
    """The project already has referral-customer with a field of its own (marketingConsent) and only
    referralCode of ours: we add our two missing definitions, write only our fields, and a change a
    user makes to the other field between runs is neither overwritten nor causes a write."""
    existing_type = {"id": cts.CUSTOMER_TYPE["id"], "version": 3, "key": TYPE_KEY, "name": {"en": "Referral"},
                     "resourceTypeIds": ["customer"], "createdAt": cts.at(0), "lastModifiedAt": cts.at(0),
                     "fieldDefinitions": [
                         {"name": "referralCode", "label": {"en": "Code"}, "required": False,
                          "type": {"name": "String"}, "inputHint": "SingleLine"},
                         {"name": "marketingConsent", "label": {"en": "Consent"}, "required": False,
                          "type": {"name": "Boolean"}, "inputHint": "SingleLine"}]}
    foreign_type = {"id": FOREIGN_TYPE_ID, "version": 1, "key": "loyalty-legacy", "name": {"en": "Legacy"},
                    "resourceTypeIds": ["customer"], "createdAt": cts.at(0), "lastModifiedAt": cts.at(0),
                    "fieldDefinitions": [{"name": "tier", "label": {"en": "Tier"}, "required": False,
                                          "type": {"name": "String"}, "inputHint": "SingleLine"}]}
    customers = [cts.customer(0), cts.customer(1),          # referral-customer with referralCode + marketingConsent
                 ct_customer(2, custom={"type": {"typeId": "type", "id": FOREIGN_TYPE_ID}, "fields": {"tier": "gold"}}),
                 ct_customer(3)]
    con = warehouse()
    world(con, "ct", ct_ids(4))
    with ct_sim(tmp_path, customers=customers, types=[existing_type, foreign_type]) as sim:
        client = cts.client_for(sim)
        ct_sync(con, client, "r1")
        state = sim_state(sim)
        assert "POST /{projectKey}/types" not in sim.request_counts            # not re-created
        our_type = next(t for t in state["types"] if t["key"] == TYPE_KEY)
        assert [d["name"] for d in our_type["fieldDefinitions"]] == ["referralCode", "marketingConsent",
                                                                     "referralRewardStatus", "loyaltyPoints"]
        by_id = {c["id"]: c for c in state["customers"]}
        assert by_id[cts.uid("c", 0)]["custom"]["fields"] == {"referralCode": "CODE0", "marketingConsent": True,
                                                              "loyaltyPoints": 120}
        assert by_id[cts.uid("c", 1)]["custom"]["fields"] == {"referralCode": "CODE1", "marketingConsent": False,
                                                              "referralRewardStatus": "approved"}
        # another custom type: a per-record failure with a clear error; the others are fine
        assert by_id[cts.uid("c", 2)]["custom"]["fields"] == {"tier": "gold"}
        assert states(con) == [(cts.uid("c", 0), "ok", 200), (cts.uid("c", 1), "ok", 200),
                               (cts.uid("c", 2), "failed", None), (cts.uid("c", 3), "ok", 200)]
        error = con.execute("SELECT last_error FROM ops.failed_payloads").fetchall()[0][0]
        assert f"custom type {FOREIGN_TYPE_ID}, not referral-customer; not overwritten" in error

        # a user changes the field that is not ours: no write, and it stays as the user set it
        cts.post_records(sim, "customers", [{**by_id[cts.uid("c", 0)],
                                             "custom": {**by_id[cts.uid("c", 0)]["custom"],
                                                        "fields": {**by_id[cts.uid("c", 0)]["custom"]["fields"],
                                                                   "marketingConsent": False}}}])
        w = writes(sim)
        ct_sync(con, client, "r2")
        assert writes(sim) == w
        assert next(c for c in sim_state(sim)["customers"]
                    if c["id"] == cts.uid("c", 0))["custom"]["fields"]["marketingConsent"] is False

        # the merchant removes the legacy type; the nightly retry of failed records then succeeds
        cts.post_records(sim, "customers", [{**by_id[cts.uid("c", 2)], "custom": None}])
        ct_sync(con, client, "r3", settings=SyncSettings(retry_failed=True))
        assert [s for _, s, _ in states(con)] == ["ok"] * 4
        assert ct_remote(sim) == view(con, "ct")


def test_ct_concurrent_modification_rereads_and_retries_once(tmp_path):
    """A user edits the customer between our read and our update: 409, re-read, retry, both changes kept."""
    con = warehouse()
    world(con, "ct", ct_ids(3))
    with ct_sim(tmp_path, n=3) as sim:
        client = cts.client_for(sim)
        read = client.get_customers
        edited = []

        def racing_read(customer_ids):
            found = read(customer_ids)
            if not edited:
                c1 = next(c for c in found if c["id"] == cts.uid("c", 1))
                edited.append(c1["id"])
                cts.post_records(sim, "customers", [{**c1, "firstName": "Edited"}])   # version moves
            return found

        client.get_customers = racing_read
        ct_sync(con, client, "r1")
        assert states(con) == [(i, "ok", 200) for i in ct_ids(3)]
        assert sim.request_counts[CT_POST] == 4 and sim.request_counts[CT_GET] == 1   # one 409, one re-read
        c1 = next(c for c in sim_state(sim)["customers"] if c["id"] == cts.uid("c", 1))
        assert c1["firstName"] == "Edited" and c1["custom"]["fields"]["referralRewardStatus"] == "approved"
        assert con.execute("SELECT count(*) FROM ops.sync_log").fetchall() == [(3,)]


def test_ct_plan_actions_only_touch_what_differs():
    ours = {"type": {"typeId": "type", "id": "t1"}, "fields": {"referralCode": "A", "loyaltyPoints": 5, "x": 1}}
    payload = {"id": "c", "referral_code": "A", "loyalty_points": 6, "referral_reward_status": "pending"}
    assert plan_actions({"id": "c", "custom": ours}, payload, "t1") == [
        {"action": "setCustomField", "name": "referralRewardStatus", "value": "pending"},
        {"action": "setCustomField", "name": "loyaltyPoints", "value": 6}]
    assert plan_actions({"id": "c"}, {"id": "c", "referral_code": "A"}, "t1") == [
        {"action": "setCustomType", "type": {"typeId": "type", "key": TYPE_KEY}, "fields": {"referralCode": "A"}}]
    # a NULL reaches the payload only for a field with clear: true; then our value is removed
    assert plan_actions({"id": "c", "custom": ours}, {"id": "c", "loyalty_points": None}, "t1") == [
        {"action": "setCustomField", "name": "loyaltyPoints"}]


def test_ct_injected_faults_converge_to_the_fault_free_state(tmp_path):
    con_ok, con = warehouse(), warehouse()
    world(con_ok, "ct", ct_ids(12))
    world(con, "ct", ct_ids(12))
    with ct_sim(tmp_path / "a", n=12) as sim:
        ct_sync(con_ok, cts.client_for(sim), "clean")
        expected = ct_remote(sim)
    faults = FaultSpec(p_429=0.05, p_500=0.04, p_503=0.04, p_slow=0.04, p_drop=0.03, slow_seconds=0.6,
                       retry_after_seconds=0.05, seed=11)
    with ct_sim(tmp_path / "b", n=12, faults=faults) as sim:
        client = cts.client_for(sim, timeout=(2.0, 0.3), max_attempts=3)
        for run in range(5):
            ct_sync(con, client, f"f{run}", now=NOW + timedelta(days=run))
        injected = sum(sim.faults.injected.values())
        set_faults(sim, p_429=0, p_500=0, p_503=0, p_slow=0, p_drop=0)
        ct_sync(con, client, "final", now=NOW + timedelta(days=30))
        assert injected >= 5 and client.stats.retries > 0
        assert ct_remote(sim) == expected == view(con, "ct")
        # set-to-value writes: however often a send was repeated, each customer changed once per field
        assert all(len(c.get("custom", {}).get("fields", {})) <= 3 for c in sim_state(sim)["customers"])
    assert {s for _, s, _ in states(con)} == {"ok"}


def test_ct_crash_after_marker_is_reconciled_without_a_resend(tmp_path):
    con = warehouse()
    world(con, "ct", ct_ids(4))

    def crash(record_key, payload):
        raise RuntimeError("simulated crash between send and outcome record")

    with ct_sim(tmp_path, n=4) as sim:
        client = cts.client_for(sim)
        with pytest.raises(RuntimeError, match="simulated crash"):
            ct_sync(con, client, "r1", settings=SyncSettings(concurrency=1), after_send=crash)
        assert [s for _, s, _ in states(con)] == ["in_flight"] * 4
        posts = sim.request_counts[CT_POST]
        assert posts >= 1
        res = ct_sync(con, client, "r2")
        assert [s for _, s, _ in states(con)] == ["ok"] * 4
        assert res.entities["customers"].reconciled == posts                  # read back, not re-sent
        assert sim.request_counts[CT_POST] == 4                               # each customer written once
        assert ct_remote(sim) == view(con, "ct")
        assert con.execute("SELECT count(*) FROM ops.sync_log WHERE outcome = 'reconciled'").fetchall() == [(posts,)]


def test_ct_missing_customer_and_never_fields(tmp_path):
    """A record the project does not have fails alone (404); a field whose ownership is ``never`` is
    never written."""
    own = load_ownership()
    rules = own.for_object("commercetools.customers").model_dump()["fields"]
    rules["loyalty_points"] = {"owner": "commercetools", "policy": "never"}
    ownership = parse_ownership({"commercetools.customers": rules})
    con = warehouse()
    world(con, "ct", ct_ids(4))
    with ct_sim(tmp_path, customers=[ct_customer(i) for i in (0, 1, 3)]) as sim:
        ct_sync(con, cts.client_for(sim), "r1", ownership=ownership)
        assert states(con) == [(cts.uid("c", 0), "ok", 200), (cts.uid("c", 1), "ok", 200),
                               (cts.uid("c", 2), "failed", 404), (cts.uid("c", 3), "ok", 200)]
        remote = ct_remote(sim)
        assert remote[cts.uid("c", 0)] == ("CODE0", None, None)              # points never written
        assert cts.uid("c", 3) not in remote                                 # only points: nothing to write


def test_ct_rate_close_to_the_configured_limit_without_429(tmp_path):
    con = warehouse()
    world(con, "ct", ct_ids(24))
    with ct_sim(tmp_path, n=24, rate=20) as sim:
        client = cts.client_for(sim)
        warm = warehouse()                             # first run in the process: lazy imports, token
        world(warm, "ct", ct_ids(1))
        ct_sync(warm, client, "warm-up", rate_per_second=20.0)
        res = ct_sync(con, client, "r1", rate_per_second=20.0)
        entity = res.entities["customers"]
        assert entity.sent == 23 and 429 not in client.stats.by_status
        assert entity.requests == 1 + 2 + 22           # type read; 2 batch reads (20 + 3); a POST per change
        assert entity.requests_per_second >= 0.9 * 20, entity.requests_per_second


# ---- BigCommerce --------------------------------------------------------------------------------------------
OTHER_ATTRIBUTE = {"id": 1, "name": "favourite_colour", "type": "string", "date_created": "2025-01-01T00:00:00Z",
                   "date_modified": "2025-01-01T00:00:00Z"}


def bc_sim(tmp_path: Path, n: int = 5, customers: list[dict] | None = None, faults: FaultSpec | None = None,
           rate_limit: dict | None = None):
    folder = tmp_path / "fx" / "bigcommerce"
    folder.mkdir(parents=True, exist_ok=True)
    rows = customers if customers is not None else [bcs.customer(i, 0) for i in range(1, n + 1)]
    (folder / "customers.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    (folder / "customer-attributes.jsonl").write_bytes(orjson.dumps(OTHER_ATTRIBUTE) + b"\n")
    config = SystemConfig(faults=faults or FaultSpec(), rate_limit=rate_limit or {"requests_per_window": 0})
    return serve_in_thread(BigCommerceSimulator(config, data_root=tmp_path / "fx"))


def bc_ids(n: int) -> list[str]:
    return [str(i) for i in range(1, n + 1)]


def bc_remote(sim) -> dict[str, tuple]:
    """customer id -> (referral_code, referral_reward_status) for customers carrying any of ours."""
    state = sim_state(sim)
    names = {a["id"]: a["name"] for a in state["customer-attributes"]}
    out = {}
    for c in state["customers"]:
        values = {names[v["attribute_id"]]: v["attribute_value"] for v in c.get("attributes") or []}
        if {"referral_code", "referral_reward_status"} & values.keys():
            out[str(c["id"])] = (values.get("referral_code"), values.get("referral_reward_status"))
    return out


def bc_view(con) -> dict[str, tuple]:
    return {k: v[:2] for k, v in view(con, "bc").items() if v[0] is not None or v[1] is not None}


def bc_sync(con, client, run_id, now=NOW, **kw):
    return run_bigcommerce_sync(con, client, BC, run_id=run_id, now=now, settings=kw.pop("settings", FAST), **kw)


def test_pack_keeps_customers_whole_within_ten_values():
    assert pack([[1, 2]] * 5 + [[1]]) == [[0, 1, 2, 3, 4], [5]]
    assert pack([[1]] * 12) == [list(range(10)), [10, 11]]
    assert pack([[1], [1, 2], [1, 2], [1, 2], [1, 2], [1, 2]]) == [[0, 1, 2, 3, 4], [5]]


def test_bc_first_sync_matches_view_second_sends_no_write(tmp_path):
    con = warehouse()
    world(con, "bc", bc_ids(14))
    expected = bc_view(con)
    assert len(expected) == 12 and expected["2"] == ("CODE1", "approved")   # 4 (points only) and 5: nothing
    with bc_sim(tmp_path, n=14) as sim:
        client = bcs.client_for(sim)
        res = bc_sync(con, client, "r1")
        assert sim.request_counts["POST /stores/{store_hash}/v3/customers/attributes"] == 1
        assert bc_remote(sim) == expected
        # 13 values in whole customers of ≤ 10 values: 10 customers per engine batch -> 2 + 1 requests
        assert sim.request_counts[BC_PUT] == 3
        assert [s for _, s, _ in states(con)] == ["ok"] * 12 and res.totals()["failed"] == 0
        w = writes(sim)
        res2 = bc_sync(con, client, "r2")
        assert writes(sim) == w and res2.totals()["attempted"] == 0


def test_bc_one_change_sends_one_request_foreign_attribute_never_touched(tmp_path):
    customers = [bcs.customer(i, 0, attributes=[{"id": 500 + i, "attribute_id": 1, "attribute_value": "blue",
                                                  "customer_id": i, "date_created": "2025-01-01T00:00:00Z",
                                                  "date_modified": "2025-01-01T00:00:00Z"}])
                 for i in range(1, 6)]
    con = warehouse()
    world(con, "bc", bc_ids(5))
    with bc_sim(tmp_path, customers=customers) as sim:
        client = bcs.client_for(sim)
        bc_sync(con, client, "r1")
        w = writes(sim)
        # a merchant changes the attribute that is not ours; we change one customer's reward status
        c1 = next(c for c in sim_state(sim)["customers"] if c["id"] == 1)
        bcs.upsert(sim, "customers", [{**c1, "attributes": [{**c1["attributes"][0], "attribute_value": "green"},
                                                            *c1["attributes"][1:]]}])
        reward(con, "rwd_c0", email(0), "pending", "2026-05-01T00:00:00")
        res = bc_sync(con, client, "r2")
        assert writes(sim) == w + 1 and res.entities["customers"].sent == 1
        assert bc_remote(sim) == bc_view(con)
        colours = {c["id"]: [v["attribute_value"] for v in c["attributes"] if v["attribute_id"] == 1]
                   for c in sim_state(sim)["customers"]}
        assert colours == {1: ["green"], 2: ["blue"], 3: ["blue"], 4: ["blue"], 5: ["blue"]}


def test_bc_per_record_422_fails_alone_and_is_retried_after_fix(tmp_path):
    """Customer 2 is in the warehouse but not in the store: its batch is refused (422), re-sent one
    customer at a time; only customer 2 fails. An over-long code is refused before any request."""
    con = warehouse()
    world(con, "bc", bc_ids(6))
    con.execute("UPDATE analytics.customers SET referral_code = repeat('X', 300) WHERE customer_key = ?",
                [ids.cus(email(5))])
    customers = [bcs.customer(i, 0) for i in (1, 3, 4, 5, 6)]
    with bc_sim(tmp_path, customers=customers) as sim:
        client = bcs.client_for(sim)
        bc_sync(con, client, "r1")
        assert states(con) == [("1", "ok", 200), ("2", "failed", 422), ("3", "ok", 200), ("6", "failed", None)]
        failed = dict(con.execute("SELECT record_key, last_error FROM ops.failed_payloads").fetchall())
        assert "customer 2 does not exist" in failed["2"] and "invalid payload" in failed["6"]
        assert sim.request_counts[BC_PUT] == 1 + 3           # the batch, then each customer alone
        w = writes(sim)
        bc_sync(con, client, "r2")                          # unchanged payloads: not re-sent
        assert writes(sim) == w
        bcs.upsert(sim, "customers", [bcs.customer(2, 0)])  # the customer now exists
        con.execute("UPDATE analytics.customers SET referral_code = 'CODE5' WHERE customer_key = ?",
                    [ids.cus(email(5))])                    # the code is fixed at the source
        res = bc_sync(con, client, "r3", settings=SyncSettings(retry_failed=True))
        assert res.entities["customers"].sent == 2 and writes(sim) == w + 1
        assert [s for _, s, _ in states(con)] == ["ok"] * 4
        assert bc_remote(sim) == bc_view(con)


def test_bc_injected_faults_converge_and_crash_is_resent_without_duplicates(tmp_path):
    con_ok, con = warehouse(), warehouse()
    world(con_ok, "bc", bc_ids(120))
    world(con, "bc", bc_ids(120))
    with bc_sim(tmp_path / "a", n=120) as sim:
        bc_sync(con_ok, bcs.client_for(sim), "clean")
        expected = bc_remote(sim)
    faults = FaultSpec(p_429=0.05, p_500=0.04, p_503=0.04, p_slow=0.04, p_drop=0.03, slow_seconds=0.6,
                       retry_after_seconds=0.05, seed=5)
    crashed = []

    def crash_once(record_key, payload):
        if not crashed:
            crashed.append(record_key)
            raise RuntimeError("simulated crash")

    with bc_sim(tmp_path / "b", n=120, faults=faults) as sim:
        client = bcs.client_for(sim)
        client.api.timeout = (2.0, 0.3)
        client.api.max_attempts = 3
        with pytest.raises(RuntimeError, match="simulated crash"):
            bc_sync(con, client, "crash", after_send=crash_once)
        assert "in_flight" in {s for _, s, _ in states(con)}
        for run in range(5):
            bc_sync(con, client, f"f{run}", now=NOW + timedelta(days=run))
        injected = sum(sim.faults.injected.values())
        set_faults(sim, p_429=0, p_500=0, p_503=0, p_slow=0, p_drop=0)
        bc_sync(con, client, "final", now=NOW + timedelta(days=30))
        assert injected >= 3 and client.stats.retries > 0
        assert bc_remote(sim) == expected == bc_view(con)
        for c in sim_state(sim)["customers"]:                  # upserts: one value per attribute
            attribute_ids = [v["attribute_id"] for v in c.get("attributes") or []]
            assert len(attribute_ids) == len(set(attribute_ids))
    assert {s for _, s, _ in states(con)} == {"ok"}


def test_bc_quota_respected_with_three_writers_without_429(tmp_path):
    """A store quota of 10 requests per 0.5 s window (20/s): 3 concurrent writers keep just under it."""
    con = warehouse()
    world(con, "bc", bc_ids(300))
    with bc_sim(tmp_path, n=300, rate_limit={"requests_per_window": 10, "window_ms": 500}) as sim:
        client = bcs.client_for(sim)
        warm = warehouse()                                   # first run in the process: lazy imports
        world(warm, "bc", bc_ids(1))
        bc_sync(warm, client, "warm-up")
        time.sleep(0.5)                                      # a fresh quota window
        res = bc_sync(con, client, "r1", settings=SyncSettings(concurrency=8))
        entity = res.entities["customers"]
        assert entity.sent == 298 and 429 not in client.stats.by_status
        # 299 values; 30 engine batches of ≤ 10 customers, the one holding customer 2 (two values) needs 2 PUTs
        assert entity.requests == 1 + 31                     # attributes read + PUTs
        assert entity.requests_per_second >= 0.9 * 20, entity.requests_per_second


# ---- echo: the write changes the customers' modification stamps; the next extraction reads them again --------
def test_echo_of_our_writes_changes_no_analytics_row_and_sends_nothing(tmp_path):
    """Extract ct and bc customers from the simulators, stage, identity, write back; extract again (our
    writes moved lastModifiedAt / date_modified, so every written customer is read again): the golden
    records keep their values and the second push sends no write."""
    ct_root = cts.write_fixtures(tmp_path / "ct", customers=[ct_customer(i, email=email(i)) for i in range(4)])
    bc_folder = tmp_path / "bc" / "bigcommerce"
    bc_folder.mkdir(parents=True)
    (bc_folder / "customers.jsonl").write_bytes(b"".join(
        orjson.dumps(bcs.customer(i, -100, email=email(10 + i))) + b"\n" for i in range(1, 4)))
    con = warehouse()
    ensure_staging_schema(con, ids.programs())
    for i in list(range(4)) + [11, 12, 13]:
        ids.event(con, f"s{i}", "share", advocate_email=email(i), referral_code=f"CODE{i}")
    with cts.serve(ct_root) as ct, bcs.bc_sim(tmp_path / "bc") as bc:
        ct_client, bc_client = cts.client_for(ct), bcs.client_for(bc)

        def pipeline(run_id: str) -> None:
            cts.extract_entity(con, ct_client, "customers", run_id)
            cts.stage_all(con, run_id)
            bcs.extract_all(con, bc_client, run_id)
            bcs.stage_all(con, run_id)
            ids.run_identity(con, ids.programs(), run_id, NOW)

        pipeline("p1")
        loyalty(con, 0, 75)                                        # as the Yotpo pull would
        reward(con, "rwd_b", email(12), "approved", "2026-04-01T00:00:00")
        ct_sync(con, ct_client, "s1")
        bc_sync(con, bc_client, "s1")
        assert len(ct_remote(ct)) == 4 and len(bc_remote(bc)) == 3
        golden = con.execute("SELECT * EXCLUDE (updated_at, load_seq) FROM analytics.customers ORDER BY ALL").fetchall()
        w_ct, w_bc = writes(ct), writes(bc)

        pipeline("p2")
        assert con.execute("SELECT source, updated FROM ops.extract_log WHERE run_id = 'p2' AND entity = 'customers' "
                           "ORDER BY 1").fetchall() == [("bc", 3), ("ct", 4)]      # our writes, read back
        assert con.execute("SELECT * EXCLUDE (updated_at, load_seq) FROM analytics.customers ORDER BY ALL"
                           ).fetchall() == golden
        ct_sync(con, ct_client, "s2")
        bc_sync(con, bc_client, "s2")
        assert (writes(ct), writes(bc)) == (w_ct, w_bc)
        assert ct_remote(ct) == view(con, "ct") and bc_remote(bc) == bc_view(con)

"""BigCommerce extraction against the simulator over real HTTP: first and repeated runs, source
changes, shared stamps across page boundaries, records changing during the walk, 204 pages,
rate limits, injected faults, request counts, archived orders and backfill windows."""
from __future__ import annotations

import math
from urllib.parse import parse_qsl, urlsplit

import requests

from referral_pipeline.extract.base import extract
from referral_pipeline.extract.bigcommerce import EXTRACTORS
from referral_pipeline.sandbox.core.config import FaultSpec
from referral_pipeline.warehouse.landing import read_cursor

from .bigcommerce_support import (COUPONS, CUSTOMERS, ORDER_COUPONS, ORDERS, OVERLAP, REFUNDS, at, bc_sim,
                                  client_for, coupon, customer, extract_all, landed_order, new_warehouse, order, page_ids,
                                  raw_rows, refund, small_world, stage_all, table_rows, upsert, write_world)


def test_first_run_lands_everything_and_a_second_run_changes_nothing(tmp_path):
    world = small_world()
    with bc_sim(write_world(tmp_path, world)) as sim:
        con = new_warehouse()
        client = client_for(sim)
        first = extract_all(con, client, "run-1", page_size=7)
        counts_after_first = dict(sim.request_counts)
        second = extract_all(con, client, "run-2", page_size=7)
    assert {e: r.counts.fetched for e, r in first.items()} == {"customers": 23, "orders": 31, "refunds": 5, "coupons": 6}
    assert {e: r.counts.new for e, r in first.items()} == {"customers": 23, "orders": 31, "refunds": 5, "coupons": 6}
    # raw payloads are the API's records: customers as served with attributes and addresses
    hidden = ("store_credit_amounts", "form_fields")   # shown only when included
    assert raw_rows(con, "customers") == {str(c["id"]): {k: v for k, v in c.items() if k not in hidden}
                                          for c in world["customers"]}
    landed = raw_rows(con, "orders")
    for api in world["orders"]:
        got = dict(landed[str(api["id"])])
        consignments = got.pop("consignments")
        assert got == landed_order(api)
        assert consignments["shipping"][0]["line_items"] == api["products"]
    assert landed["103"]["coupons"][0]["code"] == "FRIEND-AAA" and "coupons" not in landed["100"]
    assert raw_rows(con, "refunds") == {str(r["id"]): r for r in world["refunds"]}
    assert raw_rows(con, "coupons") == {str(c["id"]): c for c in world["coupons"]}
    assert con.execute("SELECT pk FROM raw.bc__orders WHERE is_deleted").fetchall() == [("131",)]
    # cursors: the greatest (stamp, id) landed; none for coupons (no stamp)
    assert read_cursor(con, "bc", "customers").value == at(33) and read_cursor(con, "bc", "customers").id == "23"
    assert read_cursor(con, "bc", "orders").value == at(59) and read_cursor(con, "bc", "orders").id == "129"
    assert read_cursor(con, "bc", "refunds").value == at(115) and read_cursor(con, "bc", "refunds").id == "5"
    assert read_cursor(con, "bc", "coupons").value is None
    # second run: only the overlap window (stamp >= cursor - 5 min) is read again, and nothing changes
    assert {e: (r.counts.new, r.counts.updated) for e, r in second.items()} == {e: (0, 0) for e in second}
    assert second["customers"].counts.fetched == 6   # customers 18..23 (at 28..33 >= 33 - 5)
    assert second["orders"].counts.fetched == 6      # live orders 124..129 (archived 131 at 45 is older)
    assert second["refunds"].counts.fetched == 2     # refunds 4 and 5 (at 112, 115 >= 115 - 5)
    assert second["coupons"].counts.fetched == 6     # no stamp: always read in full
    assert second["orders"].cursor_after == first["orders"].cursor_after
    assert counts_after_first[ORDER_COUPONS] == 2    # only the two couponed orders


def test_source_changes_are_picked_up(tmp_path):
    world = small_world()
    with bc_sim(write_world(tmp_path, world)) as sim:
        con = new_warehouse()
        client = client_for(sim)
        extract_all(con, client, "run-1")
        stage_all(con, "run-1")
        upsert(sim, "customers", [{"id": 2, "email": "new.address@example.com"}])
        upsert(sim, "orders", [{"id": 101, "status_id": 5, "status": "Cancelled"}])
        upsert(sim, "refunds", [refund(6, 104, 0, amount=12.5) | {"created": None}])  # a new refund moves order 104
        upsert(sim, "coupons", [coupon(7, "NEW-CODE")])
        runs = extract_all(con, client, "run-2")
        staged = stage_all(con, "run-2")
    assert (runs["customers"].counts.new, runs["customers"].counts.updated) == (0, 1)
    assert (runs["orders"].counts.new, runs["orders"].counts.updated) == (0, 2)
    assert (runs["refunds"].counts.new, runs["coupons"].counts.new) == (1, 1)
    assert raw_rows(con, "customers")["2"]["email"] == "new.address@example.com"
    assert con.execute("SELECT email_normalized FROM staging.customers WHERE customer_record_key = 'bc:2'").fetchone() == \
        ("new.address@example.com",)
    assert con.execute("SELECT status FROM staging.orders WHERE order_key = 'bc:101'").fetchone() == ("cancelled",)
    assert con.execute("SELECT amount, order_key FROM staging.refunds WHERE refund_key = 'bc:6'").fetchone()[1] == "bc:104"
    assert con.execute("SELECT code FROM staging.coupons WHERE coupon_key = 'bc:7'").fetchone() == ("NEW-CODE",)
    assert staged["bc.orders"].processed == 2 and staged["bc.customers"].processed == 1


def test_shared_stamps_across_page_boundaries_are_read_exactly_once(tmp_path):
    # 13 customers and 17 orders share one stamp, with records before and after it; pages of 5
    customers = [customer(i, 5 if 3 <= i <= 15 else i) for i in range(1, 21)]
    orders = [order(100 + k, 7 if 2 <= k <= 18 else k) for k in range(22)]
    with bc_sim(write_world(tmp_path, {"customers": customers, "orders": orders})) as sim:
        con = new_warehouse()
        client = client_for(sim)
        seen: dict[str, list] = {}
        for entity in ("customers", "orders"):
            extractor = EXTRACTORS[entity](client, "bc", 5)
            seen[entity] = [i for page in extractor.pages(read_cursor(con, "bc", entity)) for i in page_ids(page)]
        results = extract_all(con, client, "run-1", page_size=5)
    assert sorted(seen["customers"]) == list(range(1, 21))
    assert sorted(seen["orders"]) == list(range(100, 122))   # no loss, no duplicate
    assert results["orders"].counts.fetched == 22 and results["customers"].counts.fetched == 20
    assert len(raw_rows(con, "orders")) == 22


class ChangingSession(requests.Session):
    """Changes order 100 (already read) right after the first page of orders is served, as a shop
    admin would mid-walk: with plain page/limit paging, one record would slip past the reader."""

    def __init__(self, sim):
        super().__init__()
        self.sim, self.pages = sim, 0

    def request(self, method, url, *args, **kwargs):
        response = super().request(method, url, *args, **kwargs)
        if url.endswith("/v2/orders") and response.status_code == 200 and "is_deleted" not in (kwargs.get("params") or {}):
            self.pages += 1
            if self.pages == 1:
                upsert(self.sim, "orders", [{"id": 100, "staff_notes": "edited mid-walk"}])
        return response


def test_a_record_changed_during_the_walk_is_read_again_and_nothing_is_skipped(tmp_path):
    orders = [order(100 + k, k) for k in range(12)]
    with bc_sim(write_world(tmp_path, {"orders": orders})) as sim:
        con = new_warehouse()
        client = client_for(sim, session=ChangingSession(sim))
        result = extract(con, EXTRACTORS["orders"](client, "bc", 4), "run-1")
    landed = raw_rows(con, "orders")
    assert sorted(int(k) for k in landed) == list(range(100, 112))
    assert landed["100"]["staff_notes"] == "edited mid-walk"
    assert result.counts.fetched == 13 and result.counts.new == 12   # order 100 twice, merged by key


def test_an_exactly_full_last_page_ends_on_a_204(tmp_path):
    orders = [order(100 + k, k) for k in range(10)]
    coupons = [coupon(c, f"C-{c}") for c in range(1, 11)]
    with bc_sim(write_world(tmp_path, {"orders": orders, "coupons": coupons})) as sim:
        con = new_warehouse()
        client = client_for(sim)
        orders_result = extract(con, EXTRACTORS["orders"](client, "bc", 5), "run-1")
        coupons_result = extract(con, EXTRACTORS["coupons"](client, "bc", 5), "run-1")
        counts = dict(sim.request_counts)
    assert (orders_result.counts.fetched, coupons_result.counts.fetched) == (10, 10)
    assert client.stats.by_status[204] == 2            # the archived walk and the empty coupon page
    assert counts[COUPONS] == 3                        # 5 + 5 + 204
    # orders: archived (204), page 1 (5), from the 5th stamp (1 seen + 4), from the 9th (1 seen + 1)
    assert counts[ORDERS] == 4


def test_429_waits_for_x_rate_limit_time_reset_ms(tmp_path):
    customers = [customer(i, i) for i in range(1, 13)]
    faults = FaultSpec(p_429=0.35, retry_after_seconds=0.2, seed=4)
    with bc_sim(write_world(tmp_path, {"customers": customers}), faults=faults) as sim:
        con = new_warehouse()
        client = client_for(sim)
        result = extract(con, EXTRACTORS["customers"](client, "bc", 2), "run-1")
        throttled = sim.faults.injected["429"]
    assert result.counts.fetched == 12 and len(raw_rows(con, "customers")) == 12
    assert throttled >= 1 and client.stats.by_status[429] == throttled == client.stats.retries
    assert client.stats.waited_seconds >= 0.2 * throttled - 1e-6


def test_the_store_quota_pauses_the_client_instead_of_failing(tmp_path):
    customers = [customer(i, i) for i in range(1, 11)]
    with bc_sim(write_world(tmp_path, {"customers": customers}),
                rate_limit={"requests_per_window": 2, "window_ms": 300}) as sim:
        con = new_warehouse()
        client = client_for(sim)
        result = extract(con, EXTRACTORS["customers"](client, "bc", 2), "run-1")
    assert result.counts.fetched == 10
    assert client.stats.requests == 5 and client.stats.by_status[429] == 0  # paused on Requests-Left: 0
    assert client.stats.waited_seconds > 0.2


def test_twenty_percent_faults_give_the_same_warehouse_as_a_clean_run(tmp_path):
    root = write_world(tmp_path, small_world())
    with bc_sim(root) as sim:
        clean = new_warehouse()
        extract_all(clean, client_for(sim), "clean", page_size=4)
        stage_all(clean, "clean")
    faults = FaultSpec(p_429=0.05, p_500=0.04, p_502=0.03, p_503=0.04, p_drop=0.04, retry_after_seconds=0.01, seed=11)
    with bc_sim(root, faults=faults) as sim:
        faulty = new_warehouse()
        client = client_for(sim)
        extract_all(faulty, client, "faulty", page_size=4)
        stage_all(faulty, "faulty")
        injected = sum(sim.faults.injected.values())
    assert injected >= 5 and client.stats.retries == injected
    for entity in ("customers", "orders", "refunds", "coupons"):
        assert raw_rows(faulty, entity) == raw_rows(clean, entity)
    for table, key in (("staging.customers", "customer_record_key"), ("staging.orders", "order_key"),
                       ("staging.order_items", "order_item_key"), ("staging.refunds", "refund_key"),
                       ("staging.coupons", "coupon_key")):
        assert table_rows(faulty, table, key) == table_rows(clean, table, key)
    assert faulty.execute("SELECT cursor_value FROM ops.sync_cursors ORDER BY entity").fetchall() == \
        clean.execute("SELECT cursor_value FROM ops.sync_cursors ORDER BY entity").fetchall()


def test_request_count_is_close_to_records_over_250(tmp_path):
    customers = [customer(i, i) for i in range(1, 601)]
    orders = [order(1000 + k, k, customer_id=k % 600 + 1, coupon="FRIEND-X" if k % 60 == 0 else None)
              for k in range(620)]
    refunds = [refund(r, 1000 + r, r) for r in range(1, 261)]
    coupons = [coupon(c, f"C-{c}") for c in range(1, 301)]
    world = {"customers": customers, "orders": orders, "refunds": refunds, "coupons": coupons}
    with bc_sim(write_world(tmp_path, world)) as sim:
        con = new_warehouse()
        results = extract_all(con, client_for(sim), "run-1")
        counts = dict(sim.request_counts)
    assert {e: r.counts.fetched for e, r in results.items()} == {e: len(rows) for e, rows in world.items()}
    assert counts[CUSTOMERS] == math.ceil(600 / 250)
    assert counts[ORDERS] == 1 + 3                     # archived walk + 250, 1 seen + 249, 1 seen + 121
    assert counts[ORDER_COUPONS] == 11                 # one per couponed order, none for the others
    assert counts[REFUNDS] == 2 and counts[COUPONS] == 2


def test_archived_orders_are_landed_and_staged_as_deleted(tmp_path):
    orders = [order(100, 1), order(101, 2, is_deleted=True)]
    with bc_sim(write_world(tmp_path, {"orders": orders})) as sim:
        con = new_warehouse()
        client = client_for(sim)
        extract(con, EXTRACTORS["orders"](client, "bc", 250), "run-1")
        upsert(sim, "orders", [{"id": 100, "is_deleted": True}])   # archived after the first run
        extract(con, EXTRACTORS["orders"](client, "bc", 250), "run-2", overlap=OVERLAP)
        stage_all(con, "run-2")
    assert con.execute("SELECT order_key, is_deleted FROM staging.orders ORDER BY 1").fetchall() == \
        [("bc:100", True), ("bc:101", True)]


def test_a_backfill_window_reads_only_that_window_and_keeps_the_cursor(tmp_path):
    world = small_world()
    with bc_sim(write_world(tmp_path, world)) as sim:
        con = new_warehouse()
        client = client_for(sim)
        extract_all(con, client, "run-1")
        before = read_cursor(con, "bc", "orders")
        result = extract(con, EXTRACTORS["orders"](client, "bc", 3), "backfill", window=(at(30), at(40)))
        refunds = extract(con, EXTRACTORS["refunds"](client, "bc", 3), "backfill", window=(at(103), at(109)))
    # orders stamped in [30, 40): 100..111 (at 30) and 112..119 (at 42..49 are outside) -> 12
    assert result.counts.fetched == 12 and result.counts.updated == 0
    assert refunds.counts.fetched == 2     # refunds 1 (at 103) and 2 (at 106)
    assert read_cursor(con, "bc", "orders") == before


def test_the_first_run_also_lands_records_with_an_unparseable_modification_stamp(tmp_path):
    orders = [order(100, 1, date_modified="not a date"), order(101, 2), order(102, 3)]
    customers = [customer(1, 1, date_modified="yesterday"), customer(2, 2)]
    with bc_sim(write_world(tmp_path, {"orders": orders, "customers": customers})) as sim:
        con = new_warehouse()
        results = extract_all(con, client_for(sim), "run-1", page_size=2)
    assert sorted(raw_rows(con, "orders")) == ["100", "101", "102"]
    assert sorted(raw_rows(con, "customers")) == ["1", "2"]
    assert con.execute("SELECT stamp FROM raw.bc__orders WHERE pk = '100'").fetchone() == (None,)
    assert results["orders"].cursor_after.value == at(3)


def test_the_delta_queries_send_each_api_its_own_filters_and_headers(tmp_path):
    sent: list[requests.PreparedRequest] = []
    session = requests.Session()
    session.hooks["response"].append(lambda response, *a, **k: sent.append(response.request))
    with bc_sim(write_world(tmp_path, small_world())) as sim:
        con = new_warehouse()
        client = client_for(sim, session=session)
        extract_all(con, client, "run-1")
        sent.clear()
        extract_all(con, client, "run-2")
    queries = [(urlsplit(r.url).path.split("/", 3)[3], dict(parse_qsl(urlsplit(r.url).query))) for r in sent]
    assert all(r.headers["X-Auth-Token"] == "sandbox-bigcommerce-token" and r.headers["Accept"] == "application/json"
               for r in sent)
    by_path = {}
    for path, query in queries:
        by_path.setdefault(path, []).append(query)
    assert by_path["v3/customers"] == [{"sort": "date_modified:asc", "limit": "250", "include": "attributes,addresses",
                                        "date_modified:min": "2026-06-01T00:28:00", "page": "1"}]
    assert by_path["v2/orders"] == [
        {"limit": "250", "include": "consignments.line_items", "is_deleted": "true", "sort": "date_modified:asc",
         "page": "1", "min_date_modified": "Mon, 01 Jun 2026 00:54:00 +0000"},
        {"limit": "250", "include": "consignments.line_items", "sort": "date_modified:asc",
         "page": "1", "min_date_modified": "Mon, 01 Jun 2026 00:54:00 +0000"}]
    assert by_path["v3/orders/payment_actions/refunds"] == [{"limit": "250", "created:min": "2026-06-01T01:50:00Z",
                                                            "page": "1"}]
    assert by_path["v2/coupons"] == [{"min_id": "1", "limit": "250"}]
    assert len(queries) == 5
